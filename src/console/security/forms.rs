//! The security home's two standing forms: the emergency grant and the
//! lockdown switch, with what was typed and the errors next to the fields.

use std::collections::HashMap;

use maud::{html, Markup};

use crate::console::form::{csrf_field, input, FieldErrors};
use crate::console::session::Viewer;
use crate::domain::Role;
use crate::ops::LockdownStatus;
use crate::store::{Device, Vendor};

/// What was typed in the emergency form (shown again after a refusal).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub(super) struct EmergencyInput {
    #[serde(default)]
    pub vendor_id: String,
    #[serde(default)]
    pub device_ids: Vec<String>,
    #[serde(default)]
    pub minutes: String,
    #[serde(default)]
    pub justification: String,
    #[serde(default)]
    pub extra_networks: String,
}

/// The emergency grant form (security).
pub(super) fn emergency_form(
    v: &Viewer,
    vendors: &[Vendor],
    devices: &[Device],
    cap_minutes: i64,
    given: Option<&EmergencyInput>,
    errors: &FieldErrors,
) -> Markup {
    let tr = &v.tr;
    let fresh = EmergencyInput {
        minutes: cap_minutes.min(60).to_string(),
        ..EmergencyInput::default()
    };
    let given = given.unwrap_or(&fresh);
    let vendor_names: HashMap<&str, &str> = vendors.iter().map(|v| (v.id.as_str(), v.name.as_str())).collect();
    let vendor_err = errors.get("vendor_id");
    let devices_err = errors.get("device_ids");
    let minutes_err = errors.get("minutes");
    let cap = cap_minutes.to_string();
    html! {
        (errors.summary(tr))
        form.stack #emergency method="post" action="/console/security/emergency" novalidate {
            (csrf_field(&v.csrf))
            div.field.invalid[vendor_err.is_some()] {
                label for="f-vendor_id" { (tr.t("sec-em-vendor")) }
                select #f-vendor_id name="vendor_id" required
                    aria-invalid=[vendor_err.map(|_| "true")] aria-describedby=[vendor_err.map(|_| "f-vendor_id-error")] {
                    option value="" { (tr.t("sec-em-choose")) }
                    @for vendor in vendors.iter().filter(|x| x.enabled) {
                        option value=(vendor.id) selected[given.vendor_id == vendor.id.as_str()] { (vendor.name) }
                    }
                }
                @if let Some(e) = vendor_err { p.error #f-vendor_id-error { (e) } }
            }
            fieldset.checks.invalid[devices_err.is_some()] #f-device_ids
                aria-describedby=[devices_err.map(|_| "f-device_ids-error")] {
                legend { (tr.t("sec-em-devices")) }
                @let shown: Vec<&Device> = devices.iter().filter(|d| d.enabled && !d.vendor_ids.is_empty()).collect();
                @if shown.is_empty() { p.empty { (tr.t("sec-em-no-devices")) } }
                @for d in shown {
                    @let assigned: Vec<&str> = d.vendor_ids.iter().map(|id| vendor_names.get(id.as_str()).copied().unwrap_or(id.as_str())).collect();
                    label {
                        input type="checkbox" name="device_ids" value=(d.id) checked[given.device_ids.iter().any(|x| x == d.id.as_str())];
                        " " (d.name) " "
                        small { "(" (assigned.join(", ")) ")" }
                    }
                }
                @if let Some(e) = devices_err { p.error #f-device_ids-error { (e) } }
            }
            div.field.invalid[minutes_err.is_some()] {
                label for="f-minutes" { (tr.t("sec-em-minutes")) }
                input #f-minutes name="minutes" type="number" min="1" max=(cap) step="1" inputmode="numeric"
                    value=(given.minutes) required
                    aria-invalid=[minutes_err.map(|_| "true")]
                    aria-describedby=(if minutes_err.is_some() { "f-minutes-help f-minutes-error" } else { "f-minutes-help" });
                small #f-minutes-help { (tr.ta("sec-em-minutes-help", &[("max", &cap)])) }
                @if let Some(e) = minutes_err { p.error #f-minutes-error { (e) } }
            }
            (input("justification", &tr.t("sec-em-justification"), "text", &given.justification, true, errors, Some(&tr.t("sec-em-justification-help"))))
            (input("extra_networks", &tr.t("sec-em-networks"), "text", &given.extra_networks, false, errors, Some(&tr.t("sec-em-networks-help"))))
            div { button.danger type="submit" { (tr.t("sec-em-submit")) } }
        }
    }
}

/// What was typed in a lockdown form.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub(super) struct LockdownInput {
    #[serde(default)]
    pub reason: String,
    /// The explicit confirmation checkbox.
    pub confirm: Option<String>,
}

/// The lockdown switch: its state, and the form that changes it (security).
pub(super) fn lockdown(v: &Viewer, status: &LockdownStatus, given: &LockdownInput, errors: &FieldErrors) -> Markup {
    let tr = &v.tr;
    let st = &status.state;
    let on = st.active;
    let may = v.actor().role == Role::Security;
    let confirm_err = errors.get("confirm");
    html! {
        @if on {
            p.lockdown-state.overdue {
                strong { (tr.t("sec-lock-is-on")) } " "
                (tr.ta("sec-lock-details", &[
                    ("since", &st.set_at.map(|t| tr.local(t)).unwrap_or_default()),
                    ("by", st.set_by.as_deref().unwrap_or("—")),
                    ("reason", st.reason.as_deref().unwrap_or("—")),
                ]))
            }
            @if !status.persisted { p.overdue role="status" { (tr.t("sec-lock-not-stored")) } }
            @if status.local == Some("file") { p.overdue { (tr.t("sec-lock-file")) } }
        } @else {
            p.lockdown-state { (tr.t("sec-lock-is-off")) }
        }
        @if may {
            (errors.summary(tr))
            form.stack id=(if on { "lockdown-off" } else { "lockdown-on" }) method="post"
                action=(if on { "/console/security/lockdown/off" } else { "/console/security/lockdown/on" }) novalidate {
                (csrf_field(&v.csrf))
                (input("reason", &tr.t(if on { "sec-lock-off-reason" } else { "sec-lock-on-reason" }), "text", &given.reason, true, errors, None))
                div.field.check.invalid[confirm_err.is_some()] {
                    input #f-confirm type="checkbox" name="confirm" value="yes" checked[given.confirm.is_some()]
                        aria-invalid=[confirm_err.map(|_| "true")] aria-describedby=[confirm_err.map(|_| "f-confirm-error")];
                    label for="f-confirm" { (tr.t(if on { "sec-lock-off-confirm" } else { "sec-lock-on-confirm" })) }
                    @if let Some(e) = confirm_err { p.error #f-confirm-error { (e) } }
                }
                div {
                    @if on { button type="submit" { (tr.t("sec-lock-off-submit")) } }
                    @else { button.danger type="submit" { (tr.t("sec-lock-on-submit")) } }
                }
            }
        } @else {
            p.sod { small { (tr.t("sec-lock-security-only")) } }
        }
    }
}
