//! The auditor pages: a timeline of windows and sessions, the sessions with
//! their CSV export, the reports with their sessions, the audit trail with its
//! verification, the flow matrix, the evidence bundle and the security
//! dossier. Each page opens to
//! the roles the API lets read the same (auditor; security, and admin where
//! the API allows it), and only its tabs are offered.

mod dossier;
mod evidence;
mod reports;
mod sessions;
mod timeline;
mod trail;

use std::collections::HashMap;

use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use serde::Deserialize;

use super::fail::Fail;
use super::form::FieldErrors;
use super::i18n::{Lang, Tr};
use super::layout::{empty, when};
use super::session::Viewer;
use crate::api::ApiState;
use crate::domain::{DeviceId, VendorId};
use crate::rights::Function;
use crate::store::{Device, Session, Vendor};

/// Most rows a list shows (the CSV download has them all, as the API's).
const MAX_ROWS: usize = 500;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/console/audit", get(timeline::show))
        .route("/console/audit/sessions", get(sessions::show))
        .route("/console/audit/sessions/csv", get(sessions::csv))
        .route("/console/audit/reports", get(reports::show))
        .route("/console/audit/trail", get(trail::show))
        .route("/console/audit/trail/verify", post(trail::verify))
        .route("/console/audit/flows", get(evidence::flows))
        .route("/console/audit/evidence", get(evidence::show))
        .route("/console/audit/evidence/download", get(evidence::download))
        .route("/console/audit/dossier", get(dossier::show))
        .route("/console/audit/dossier/{lang}/{document}", get(dossier::document))
}

/// The area's tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tab {
    Timeline,
    Sessions,
    Reports,
    Trail,
    Flows,
    Evidence,
    Dossier,
}

impl Tab {
    const ALL: [Tab; 7] = [
        Tab::Timeline,
        Tab::Sessions,
        Tab::Reports,
        Tab::Trail,
        Tab::Flows,
        Tab::Evidence,
        Tab::Dossier,
    ];

    const fn path(self) -> &'static str {
        match self {
            Tab::Timeline => "/console/audit",
            Tab::Sessions => "/console/audit/sessions",
            Tab::Reports => "/console/audit/reports",
            Tab::Trail => "/console/audit/trail",
            Tab::Flows => "/console/audit/flows",
            Tab::Evidence => "/console/audit/evidence",
            Tab::Dossier => "/console/audit/dossier",
        }
    }

    const fn label(self) -> &'static str {
        match self {
            Tab::Timeline => "aud-tab-timeline",
            Tab::Sessions => "aud-tab-sessions",
            Tab::Reports => "aud-tab-reports",
            Tab::Trail => "aud-tab-trail",
            Tab::Flows => "aud-tab-flows",
            Tab::Evidence => "aud-tab-evidence",
            Tab::Dossier => "aud-tab-dossier",
        }
    }

    /// The function the tab shows: the table says who may open it (the use
    /// case behind it checks again).
    const fn function(self) -> Function {
        match self {
            Tab::Timeline => Function::ReadTimeline,
            Tab::Sessions => Function::AuditSessionsPage,
            Tab::Reports => Function::AuditReportsPage,
            Tab::Trail => Function::ReadAudit,
            Tab::Flows => Function::ReadFlows,
            Tab::Evidence => Function::ExportEvidence,
            Tab::Dossier => Function::ReadDossier,
        }
    }
}

/// The status of a page re-rendered with a use case's refusal of its input.
pub(in crate::console) fn refusal_status(e: &crate::ops::OpsError) -> axum::http::StatusCode {
    use axum::http::StatusCode;
    match e {
        crate::ops::OpsError::Conflict(_) => StatusCode::CONFLICT,
        crate::ops::OpsError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// Checks the viewer may open `tab` (a 403 page otherwise).
fn allow(v: &Viewer, tab: Tab) -> Result<(), Fail> {
    v.actor().may(tab.function())?;
    Ok(())
}

/// The tabs the viewer may open, `current` marked.
fn tabs(v: &Viewer, current: Tab) -> Markup {
    let role = v.actor().role;
    html! {
        nav aria-label=(v.tr.t("aud-tabs")) {
            ul.tabs {
                @for t in Tab::ALL.iter().filter(|t| t.function().roles().contains(role)) {
                    li { a href=(t.path()) aria-current=[(*t == current).then_some("page")] { (v.tr.t(t.label())) } }
                }
            }
        }
    }
}

/// The filters of a list, as typed (a GET form: the page can be bookmarked).
#[derive(Debug, Default, Clone, Deserialize)]
struct FilterQuery {
    vendor_id: Option<String>,
    device_id: Option<String>,
    since: Option<String>,
    until: Option<String>,
    /// `true`: live sessions only.
    live: Option<String>,
}

/// The filters, parsed; what could not be parsed is in `errors`, next to its field.
#[derive(Debug, Default)]
struct Filters {
    vendor_id: Option<VendorId>,
    device_id: Option<DeviceId>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    live: bool,
    errors: FieldErrors,
}

/// A typed value, or `None` when left empty.
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl FilterQuery {
    fn parse(&self, tr: &Tr) -> Filters {
        let mut f = Filters::default();
        let id = |field: &str, value: Option<&str>, errors: &mut FieldErrors| match value {
            Some(v) if v.len() > 100 || v.chars().any(char::is_control) => {
                errors.add(field, tr.t("aud-err-bad-id"));
                None
            }
            other => other.map(str::to_owned),
        };
        f.vendor_id = id("vendor_id", given(&self.vendor_id), &mut f.errors).map(VendorId);
        f.device_id = id("device_id", given(&self.device_id), &mut f.errors).map(DeviceId);
        for (field, raw, slot) in [
            ("since", &self.since, &mut f.since),
            ("until", &self.until, &mut f.until),
        ] {
            if let Some(text) = given(raw) {
                match tr.parse_local(text) {
                    Ok(t) => *slot = Some(t),
                    Err(e) => f.errors.add(field, e),
                }
            }
        }
        if let (Some(s), Some(u)) = (f.since, f.until) {
            if u <= s {
                f.errors.add("until", tr.t("aud-err-until-after-since"));
            }
        }
        f.live = given(&self.live).is_some_and(|l| l == "true");
        f
    }

    /// The same filters as a query string (for the CSV link).
    fn query_string(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("vendor_id", &self.vendor_id),
            ("device_id", &self.device_id),
            ("since", &self.since),
            ("until", &self.until),
            ("live", &self.live),
        ] {
            if let Some(v) = given(v) {
                q.append_pair(k, v);
            }
        }
        q.finish()
    }
}

/// Vendors and devices by id, for names and the filters' choices.
struct Names {
    vendors: Vec<Vendor>,
    devices: Vec<Device>,
    vendor_names: HashMap<VendorId, String>,
    device_names: HashMap<DeviceId, String>,
}

impl Names {
    async fn load(s: &ApiState, v: &Viewer) -> Result<Self, Fail> {
        let vendors = s.ops.vendors(v.actor()).await?;
        let devices = s.ops.devices(v.actor()).await?;
        Ok(Self {
            vendor_names: vendors.iter().map(|x| (x.id.clone(), x.name.clone())).collect(),
            device_names: devices
                .iter()
                .map(|x| (x.id.clone(), x.name.as_str().to_owned()))
                .collect(),
            vendors,
            devices,
        })
    }

    fn vendor<'a>(&'a self, id: &'a VendorId) -> &'a str {
        self.vendor_names.get(id).map_or(id.as_str(), String::as_str)
    }

    fn device<'a>(&'a self, id: &'a DeviceId) -> &'a str {
        self.device_names.get(id).map_or(id.as_str(), String::as_str)
    }

    fn devices_of(&self, ids: &[DeviceId]) -> String {
        ids.iter().map(|d| self.device(d)).collect::<Vec<_>>().join(", ")
    }
}

/// A labelled choice among `options` (`(value, label)`), with "any" first.
fn select(
    name: &str,
    label: &str,
    any: &str,
    options: &[(String, String)],
    chosen: Option<&str>,
    errors: &FieldErrors,
) -> Markup {
    let id = format!("f-{name}");
    let error = errors.get(name);
    html! {
        div.field.invalid[error.is_some()] {
            label for=(id) { (label) }
            select id=(id) name=(name) aria-invalid=[error.map(|_| "true")]
                aria-describedby=[error.map(|_| format!("{id}-error"))] {
                option value="" { (any) }
                @for (value, text) in options {
                    option value=(value) selected[chosen == Some(value.as_str())] { (text) }
                }
            }
            @if let Some(e) = error { p.error id=(format!("{id}-error")) { (e) } }
        }
    }
}

/// The filter form of a list (GET, so without a CSRF token: it changes
/// nothing, and a token in the address would end up in the history).
#[allow(clippy::too_many_arguments)]
fn filter_form(
    v: &Viewer,
    id: &str,
    action: &str,
    q: &FilterQuery,
    f: &Filters,
    names: &Names,
    defaults: Option<(DateTime<Utc>, DateTime<Utc>)>,
    with_live: bool,
) -> Markup {
    let tr = &v.tr;
    let vendors: Vec<(String, String)> = names.vendors.iter().map(|x| (x.id.0.clone(), x.name.clone())).collect();
    let devices: Vec<(String, String)> = names
        .devices
        .iter()
        .map(|x| (x.id.0.clone(), x.name.as_str().to_owned()))
        .collect();
    let shown = |raw: &Option<String>, default: Option<DateTime<Utc>>| match (given(raw), default) {
        (Some(text), _) => text.to_owned(),
        (None, Some(t)) => tr.input_value(t),
        (None, None) => String::new(),
    };
    let since = shown(&q.since, defaults.map(|d| d.0));
    let until = shown(&q.until, defaults.map(|d| d.1));
    html! {
        form.filters id=(id) method="get" action=(action) {
            (f.errors.summary(tr))
            (select("vendor_id", &tr.t("aud-vendor"), &tr.t("aud-any"), &vendors, given(&q.vendor_id), &f.errors))
            (select("device_id", &tr.t("aud-device"), &tr.t("aud-any"), &devices, given(&q.device_id), &f.errors))
            (super::form::input("since", &tr.t("aud-since"), "datetime-local", &since, false, &f.errors, None))
            (super::form::input("until", &tr.t("aud-until"), "datetime-local", &until, false, &f.errors, None))
            @if with_live {
                div.field.check {
                    label {
                        input type="checkbox" name="live" value="true" checked[f.live];
                        " " (tr.t("aud-live-only"))
                    }
                }
            }
            div.filter-actions {
                button type="submit" { (tr.t("aud-filter")) }
                " "
                a href=(action) { (tr.t("aud-reset")) }
            }
        }
    }
}

/// A number of bytes, readable.
fn bytes(tr: &Tr, n: u64) -> String {
    const UNITS: [(u64, &str, &str); 3] = [
        (1 << 30, "Gio", "GiB"),
        (1 << 20, "Mio", "MiB"),
        (1 << 10, "Kio", "KiB"),
    ];
    for (size, fr, en) in UNITS {
        if n >= size {
            let unit = if tr.lang == Lang::Fr { fr } else { en };
            #[allow(clippy::cast_precision_loss)]
            let value = n as f64 / size as f64;
            return format!("{value:.1} {unit}");
        }
    }
    tr.tn("aud-bytes", "n", i64::try_from(n).unwrap_or(i64::MAX))
}

/// The sessions as a table: one `tr[data-session]` each. With each session,
/// whether it is live now, when known (`None`: an open record is shown as open).
fn sessions_table<'a>(tr: &Tr, names: &Names, rows: impl IntoIterator<Item = (&'a Session, Option<bool>)>) -> Markup {
    let sessions: Vec<(&Session, Option<bool>)> = rows.into_iter().collect();
    if sessions.is_empty() {
        return empty(tr);
    }
    let (tech, vendor, device, source, started, ended, volume, end) = (
        tr.t("aud-col-technician"),
        tr.t("aud-col-vendor"),
        tr.t("aud-col-device"),
        tr.t("aud-col-source"),
        tr.t("aud-col-started"),
        tr.t("aud-col-ended"),
        tr.t("aud-col-bytes"),
        tr.t("aud-col-end-reason"),
    );
    html! {
        div.table-wrap {
            table.responsive.sessions {
                thead { tr {
                    th scope="col" { (tech) } th scope="col" { (vendor) } th scope="col" { (device) }
                    th scope="col" { (source) } th scope="col" { (started) } th scope="col" { (ended) }
                    th scope="col" { (volume) } th scope="col" { (end) }
                } }
                tbody {
                    @for (s, live) in &sessions {
                        tr data-session=(s.id) {
                            td data-label=(tech) { (s.technician_subject) }
                            td data-label=(vendor) { (names.vendor(&s.vendor_id)) }
                            td data-label=(device) { (names.device(&s.device_id)) }
                            td data-label=(source) { code { (s.source_ip) ":" (s.source_port) } }
                            td data-label=(started) { (when(tr, s.started_at)) }
                            td data-label=(ended) {
                                @match s.ended_at {
                                    Some(t) => (when(tr, t)),
                                    None if *live == Some(true) => span.badge.live { (tr.t("aud-live")) },
                                    None if *live == Some(false) => span.badge.warn { (tr.t("aud-open-not-live")) },
                                    None => span.badge { (tr.t("aud-open")) },
                                }
                            }
                            td data-label=(volume) {
                                (tr.ta("aud-bytes-both", &[("in", &bytes(tr, s.bytes_from_vendor)), ("out", &bytes(tr, s.bytes_to_vendor))]))
                            }
                            td data-label=(end) data-reason=[s.end_reason.map(|r| r.as_str())] {
                                @if let Some(r) = s.end_reason { (tr.t(&format!("aud-end-{}", r.as_str()))) }
                            }
                        }
                    }
                }
            }
        }
    }
}
