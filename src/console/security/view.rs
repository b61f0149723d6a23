//! The live sections of the security home, each a pure function of its data, so the
//! page and the live routes (`/console/security/live/…`) render the same markup.

use std::collections::HashMap;

use maud::{html, Markup};

use crate::console::form::{csrf_field, FieldErrors};
use crate::console::i18n::{Lang, Tr};
use crate::console::layout::{empty, when};
use crate::console::session::Viewer;
use crate::domain::{DeviceId, Role, VendorId};
use crate::ops::{Denial, LiveTunnel, PendingDecisions, WindowView};
use crate::store::{Device, Vendor};

/// Vendor and device names by id (a record removed since shows its id).
#[derive(Debug, Default)]
pub(super) struct Names {
    vendors: HashMap<String, String>,
    devices: HashMap<String, String>,
    accounts: HashMap<String, String>,
}

impl Names {
    pub(super) fn new(vendors: &[Vendor], devices: &[Device], accounts: HashMap<String, String>) -> Self {
        Self {
            vendors: vendors.iter().map(|v| (v.id.0.clone(), v.name.clone())).collect(),
            devices: devices.iter().map(|d| (d.id.0.clone(), d.name.to_string())).collect(),
            accounts,
        }
    }

    /// An account's name (its id if unknown: a CLI operator, a deleted account).
    fn account<'s>(&'s self, id: &'s str) -> &'s str {
        self.accounts.get(id).map_or(id, String::as_str)
    }

    fn vendor(&self, id: &VendorId) -> String {
        self.vendors.get(id.as_str()).cloned().unwrap_or_else(|| id.to_string())
    }

    fn devices(&self, ids: &[DeviceId]) -> String {
        let names: Vec<String> = ids
            .iter()
            .map(|id| self.devices.get(id.as_str()).cloned().unwrap_or_else(|| id.to_string()))
            .collect();
        names.join(", ")
    }
}

/// The per-row forms of the live tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RowForm {
    Approve,
    Reject,
    Terminate,
    Review,
}

/// A row's form that was refused, shown again with its errors and input.
#[derive(Debug, Clone)]
pub(super) struct RowFailure {
    pub form: RowForm,
    /// The window or session id of the row.
    pub id: String,
    /// The reason or comment typed.
    pub text: String,
    pub verdict: String,
    pub errors: FieldErrors,
}

impl RowFailure {
    fn on<'a>(fail: Option<&'a RowFailure>, form: RowForm, id: &str) -> Option<&'a RowFailure> {
        fail.filter(|f| f.form == form && f.id == id)
    }
}

/// A one-line text input inside a row's form, with its label and error. The
/// input that was refused takes the focus (so the live refresh, which never
/// replaces the section holding the focus, keeps the error visible).
fn row_text(prefix: &str, row: &str, name: &str, label: &str, fail: Option<&RowFailure>) -> Markup {
    let id = format!("{prefix}-{row}");
    let error = fail.and_then(|f| f.errors.get(name));
    let value = fail.map(|f| f.text.as_str()).unwrap_or_default();
    html! {
        label for=(id) { (label) }
        input id=(id) type="text" name=(name) value=(value) placeholder=(label) required maxlength="2000"
            autofocus[error.is_some()]
            aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| format!("{id}-error"))];
        @if let Some(e) = error { p.error id=(format!("{id}-error")) { (e) } }
    }
}

/// Form-level error of a row's form (not about one of its fields).
fn row_error(fail: Option<&RowFailure>) -> Markup {
    html! {
        @if let Some(m) = fail.and_then(|f| f.errors.form.as_deref()) { p.error role="alert" { (m) } }
    }
}

/// Whether `v` may approve `w` (a request, or its pending extension): the
/// separation of duties of the use case, so the button is not offered in vain.
fn may_approve(v: &Viewer, w: &WindowView) -> Result<(), &'static str> {
    let me = v.actor().id.as_str();
    if w.extension_ends_at.is_none() {
        return if w.requested_by == me {
            Err("sec-approve-not-yours")
        } else {
            Ok(())
        };
    }
    if w.extension_requested_by.as_deref() == Some(me) {
        return Err("sec-approve-not-yours");
    }
    if w.emergency {
        if v.actor().role != Role::Security {
            return Err("sec-approve-emergency-security");
        }
        if w.approved_by.as_deref() == Some(me) || w.requested_by == me {
            return Err("sec-approve-not-granter");
        }
    }
    Ok(())
}

/// Requests and extension requests to decide.
pub(super) fn pending(v: &Viewer, p: &PendingDecisions, names: &Names, fail: Option<&RowFailure>) -> Markup {
    let tr = &v.tr;
    if p.requests.is_empty() && p.extensions.is_empty() {
        return empty(tr);
    }
    html! {
        div.table-wrap {
            table.responsive {
                thead { tr {
                    th scope="col" { (tr.t("sec-col-request")) }
                    th scope="col" { (tr.t("sec-col-vendor")) }
                    th scope="col" { (tr.t("sec-col-devices")) }
                    th scope="col" { (tr.t("sec-col-period")) }
                    th scope="col" { (tr.t("sec-col-reason")) }
                    th scope="col" { (tr.t("sec-col-requested-by")) }
                    th scope="col" { (tr.t("sec-col-decide")) }
                } }
                tbody {
                    @for w in p.requests.iter().chain(p.extensions.iter()) {
                        (pending_row(v, w, names, fail))
                    }
                }
            }
        }
    }
}

fn pending_row(v: &Viewer, w: &WindowView, names: &Names, fail: Option<&RowFailure>) -> Markup {
    let tr = &v.tr;
    let id = w.id.as_str();
    let vendor = names.vendor(&w.vendor_id);
    let extension = w.extension_ends_at;
    let asked_by = match extension {
        Some(_) => w.extension_requested_by.as_deref().unwrap_or(&w.requested_by),
        None => &w.requested_by,
    };
    let reject_fail = RowFailure::on(fail, RowForm::Reject, id);
    let approve_fail = RowFailure::on(fail, RowForm::Approve, id);
    html! {
        tr data-window=(id) {
            td data-label=(tr.t("sec-col-request")) {
                @if extension.is_some() { span.badge { (tr.t("sec-kind-extension")) } }
                @else { span.badge { (tr.t("sec-kind-window")) } }
                @if w.emergency { " " span.badge.warn { (tr.t("sec-emergency")) } }
            }
            td data-label=(tr.t("sec-col-vendor")) { (vendor) }
            td data-label=(tr.t("sec-col-devices")) { (names.devices(&w.device_ids)) }
            td data-label=(tr.t("sec-col-period")) {
                (when(tr, w.starts_at)) " → " (when(tr, w.ends_at))
                @if let Some(to) = extension {
                    br;
                    strong { (tr.t("sec-extension-to")) } " " (when(tr, to))
                }
            }
            td data-label=(tr.t("sec-col-reason")) {
                @if let (Some(_), Some(r)) = (extension, w.extension_reason.as_deref()) { (r) }
                @else { (w.reason) }
            }
            td data-label=(tr.t("sec-col-requested-by")) { (names.account(asked_by)) }
            td data-label=(tr.t("sec-col-decide")) {
                @match may_approve(v, w) {
                    Ok(()) => {
                        form.approve.inline method="post" action=(format!("/console/security/windows/{id}/approve")) {
                            (csrf_field(&v.csrf))
                            button type="submit" aria-label=(tr.ta("sec-approve-label", &[("vendor", &vendor)])) { (tr.t("sec-approve")) }
                        }
                        (row_error(approve_fail))
                    }
                    Err(why) => { p.sod { small { (tr.t(why)) } } }
                }
                form.reject.inline method="post" action=(format!("/console/security/windows/{id}/reject")) novalidate {
                    (csrf_field(&v.csrf))
                    (row_text("reject", id, "reason", &tr.t("sec-reject-reason"), reject_fail))
                    button.secondary type="submit" { (tr.t("sec-reject")) }
                }
                (row_error(reject_fail))
            }
        }
    }
}

/// A byte count, rounded to one decimal in the largest unit that keeps it above 1.
pub(super) fn size(tr: &Tr, n: u64) -> String {
    const UNITS: [&str; 4] = ["sec-unit-b", "sec-unit-kb", "sec-unit-mb", "sec-unit-gb"];
    let mut unit = 0usize;
    let mut scale = 1u64;
    while unit + 1 < UNITS.len() && n >= scale.saturating_mul(1024) {
        scale = scale.saturating_mul(1024);
        unit += 1;
    }
    let number = if unit == 0 {
        n.to_string()
    } else {
        let tenths = n.saturating_mul(10) / scale;
        let sep = if tr.lang == Lang::Fr { ',' } else { '.' };
        format!("{}{sep}{}", tenths / 10, tenths % 10)
    };
    let id = UNITS.get(unit).copied().unwrap_or("sec-unit-b");
    tr.ta(id, &[("n", &number)])
}

/// The tunnels live now, with terminate.
pub(super) fn tunnels(v: &Viewer, list: &[LiveTunnel], fail: Option<&RowFailure>) -> Markup {
    let tr = &v.tr;
    if list.is_empty() {
        return empty(tr);
    }
    let may_terminate = v.actor().role == Role::Security;
    html! {
        div.table-wrap {
            table.responsive {
                thead { tr {
                    th scope="col" { (tr.t("sec-col-technician")) }
                    th scope="col" { (tr.t("sec-col-vendor")) }
                    th scope="col" { (tr.t("sec-col-device")) }
                    th scope="col" { (tr.t("sec-col-source")) }
                    th scope="col" { (tr.t("sec-col-since")) }
                    th scope="col" { (tr.t("sec-col-bytes")) }
                    th scope="col" { (tr.t("sec-col-time-left")) }
                    @if may_terminate { th scope="col" { (tr.t("sec-col-action")) } }
                } }
                tbody {
                    @for t in list {
                        @let id = t.session_id.as_str();
                        @let f = RowFailure::on(fail, RowForm::Terminate, id);
                        tr data-session=(id) {
                            td data-label=(tr.t("sec-col-technician")) {
                                (t.technician_name) br; small { (t.technician_subject) }
                            }
                            td data-label=(tr.t("sec-col-vendor")) { (t.vendor_name) }
                            td data-label=(tr.t("sec-col-device")) { (t.device_name) }
                            td data-label=(tr.t("sec-col-source")) {
                                code { (std::net::SocketAddr::new(t.source_ip, t.source_port)) }
                                @if !t.here { br; small { (tr.ta("sec-on-node", &[("node", &t.node)])) } }
                            }
                            td data-label=(tr.t("sec-col-since")) { (when(tr, t.started_at)) }
                            td data-label=(tr.t("sec-col-bytes")) {
                                (tr.ta("sec-bytes", &[
                                    ("from", &size(tr, t.bytes_from_vendor)),
                                    ("to", &size(tr, t.bytes_to_vendor)),
                                ]))
                            }
                            td data-label=(tr.t("sec-col-time-left")) {
                                @let left = chrono::Duration::seconds(t.seconds_left);
                                span.badge.warn[t.seconds_left < 600] { (tr.duration(left)) }
                                br; small { (tr.ta("sec-cut-at", &[("at", &tr.local(t.window_ends_at))])) }
                                @if let Some(ext) = t.extension_ends_at {
                                    br; small { (tr.ta("sec-extension-asked", &[("at", &tr.local(ext))])) }
                                }
                            }
                            @if may_terminate {
                                td data-label=(tr.t("sec-col-action")) {
                                    form.terminate.inline method="post" action=(format!("/console/security/sessions/{id}/terminate")) novalidate {
                                        (csrf_field(&v.csrf))
                                        (row_text("terminate", id, "reason", &tr.t("sec-terminate-reason"), f))
                                        button.danger type="submit" { (tr.t("sec-terminate")) }
                                    }
                                    (row_error(f))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Emergency grants awaiting review, with the review form (never for the granter).
pub(super) fn reviews(v: &Viewer, list: &[WindowView], names: &Names, fail: Option<&RowFailure>) -> Markup {
    let tr = &v.tr;
    if list.is_empty() {
        return empty(tr);
    }
    let me = v.actor().id.as_str();
    html! {
        div.table-wrap {
            table.responsive {
                thead { tr {
                    th scope="col" { (tr.t("sec-col-vendor")) }
                    th scope="col" { (tr.t("sec-col-devices")) }
                    th scope="col" { (tr.t("sec-col-granted-by")) }
                    th scope="col" { (tr.t("sec-col-period")) }
                    th scope="col" { (tr.t("sec-col-justification")) }
                    th scope="col" { (tr.t("sec-col-review")) }
                } }
                tbody {
                    @for w in list {
                        @let id = w.id.as_str();
                        @let f = RowFailure::on(fail, RowForm::Review, id);
                        @let granter = w.approved_by.as_deref().unwrap_or(&w.requested_by);
                        tr data-window=(id) {
                            td data-label=(tr.t("sec-col-vendor")) { (names.vendor(&w.vendor_id)) }
                            td data-label=(tr.t("sec-col-devices")) { (names.devices(&w.device_ids)) }
                            td data-label=(tr.t("sec-col-granted-by")) { (names.account(granter)) }
                            td data-label=(tr.t("sec-col-period")) { (when(tr, w.starts_at)) " → " (when(tr, w.ends_at)) }
                            td data-label=(tr.t("sec-col-justification")) {
                                (w.reason)
                                @if !w.extra_networks.is_empty() {
                                    @let nets = w.extra_networks.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
                                    br; small { (tr.ta("sec-extra-networks", &[("list", &nets)])) }
                                }
                            }
                            td data-label=(tr.t("sec-col-review")) {
                                @if v.actor().role != Role::Security {
                                    p.sod { small { (tr.t("sec-review-security-only")) } }
                                } @else if granter == me || w.requested_by == me {
                                    p.sod { small { (tr.t("sec-review-not-granter")) } }
                                } @else {
                                    (review_form(v, id, f))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn review_form(v: &Viewer, id: &str, f: Option<&RowFailure>) -> Markup {
    let tr = &v.tr;
    let verdict = f.map(|f| f.verdict.as_str()).unwrap_or_default();
    let verdict_err = f.and_then(|f| f.errors.get("verdict"));
    let comment_err = f.and_then(|f| f.errors.get("comment"));
    let (vid, cid) = (format!("verdict-{id}"), format!("comment-{id}"));
    html! {
        form.review.stack method="post" action=(format!("/console/security/windows/{id}/review")) novalidate {
            (csrf_field(&v.csrf))
            div.field.invalid[verdict_err.is_some()] {
                label for=(vid) { (tr.t("sec-verdict")) }
                select id=(vid) name="verdict" required autofocus[verdict_err.is_some()]
                    aria-invalid=[verdict_err.map(|_| "true")] aria-describedby=[verdict_err.map(|_| format!("{vid}-error"))] {
                    option value="justified" selected[verdict == "justified"] { (tr.t("sec-verdict-justified")) }
                    option value="unjustified" selected[verdict == "unjustified"] { (tr.t("sec-verdict-unjustified")) }
                }
                @if let Some(e) = verdict_err { p.error id=(format!("{vid}-error")) { (e) } }
            }
            div.field.invalid[comment_err.is_some()] {
                label for=(cid) { (tr.t("sec-comment")) }
                textarea id=(cid) name="comment" rows="3" required maxlength="2000" autofocus[comment_err.is_some() && verdict_err.is_none()]
                    aria-invalid=[comment_err.map(|_| "true")] aria-describedby=[comment_err.map(|_| format!("{cid}-error"))] {
                    (f.map(|f| f.text.as_str()).unwrap_or_default())
                }
                @if let Some(e) = comment_err { p.error id=(format!("{cid}-error")) { (e) } }
            }
            div { button type="submit" { (tr.t("sec-review-submit")) } }
            (row_error(f))
        }
    }
}

/// What a denial's reason code means, when the catalogue knows it.
fn denial_reason(tr: &Tr, code: &str) -> Option<String> {
    const KNOWN: [&str; 12] = [
        "unknown_device",
        "device_disabled",
        "unknown_technician",
        "vendor_disabled",
        "device_not_assigned",
        "source_ip_not_declared",
        "no_active_window",
        "lockdown",
        "report_overdue",
        "certificate_expired",
        "store_unavailable",
        "device_unreachable",
    ];
    KNOWN
        .contains(&code)
        .then(|| tr.t(&format!("sec-deny-{}", code.replace('_', "-"))))
}

/// The latest denials with their reasons.
pub(super) fn denials(v: &Viewer, list: &[Denial], names: &Names) -> Markup {
    let tr = &v.tr;
    if list.is_empty() {
        return empty(tr);
    }
    html! {
        div.table-wrap {
            table.responsive {
                thead { tr {
                    th scope="col" { (tr.t("sec-col-when")) }
                    th scope="col" { (tr.t("sec-col-reason")) }
                    th scope="col" { (tr.t("sec-col-source")) }
                    th scope="col" { (tr.t("sec-col-device-asked")) }
                    th scope="col" { (tr.t("sec-col-vendor")) }
                    th scope="col" { (tr.t("sec-col-certificate")) }
                } }
                tbody {
                    @for d in list {
                        tr data-denial=(d.session_id) {
                            td data-label=(tr.t("sec-col-when")) { (when(tr, d.at)) }
                            td data-label=(tr.t("sec-col-reason")) {
                                @if let Some(text) = denial_reason(tr, &d.reason) { (text) br; }
                                code.reason { (d.reason) }
                                @if d.suppressed_since_last > 0 {
                                    br; small { (tr.tn("sec-deny-suppressed", "n", i64::try_from(d.suppressed_since_last).unwrap_or(i64::MAX))) }
                                }
                            }
                            td data-label=(tr.t("sec-col-source")) { (d.source_ip.as_deref().unwrap_or("—")) }
                            td data-label=(tr.t("sec-col-device-asked")) { (d.sni.as_deref().unwrap_or("—")) }
                            td data-label=(tr.t("sec-col-vendor")) {
                                @if let Some(vid) = &d.vendor_id { (names.vendor(vid)) } @else { "—" }
                            }
                            td data-label=(tr.t("sec-col-certificate")) {
                                (d.certificate_subject.as_deref().unwrap_or("—"))
                                @if let Some(n) = &d.node { br; small { (tr.ta("sec-on-node", &[("node", n)])) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_rounded_in_the_reader_s_language() {
        let en = Tr::new(Lang::En, chrono_tz::Europe::Paris);
        let fr = Tr::new(Lang::Fr, chrono_tz::Europe::Paris);
        assert_eq!(size(&en, 0), "0 B");
        assert_eq!(size(&en, 1023), "1023 B");
        assert_eq!(size(&en, 1536), "1.5 kB");
        assert_eq!(size(&fr, 1536), "1,5 ko");
        assert_eq!(size(&en, 5 * 1024 * 1024), "5.0 MB");
        assert_eq!(size(&fr, u64::MAX), size(&fr, u64::MAX));
    }
}
