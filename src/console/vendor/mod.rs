//! The vendor's pages: its devices, its windows with their states and reports,
//! requesting a window, and one window's page (extension, cancellation, the
//! intervention report beside the sessions the gateway observed, addenda).
//! Vendor accounts only; the use cases keep a vendor to its own objects.

mod actions;
mod request;
mod window;

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use serde::Deserialize;

use super::fail::Fail;
use super::i18n::Tr;
use super::layout::{self, page, Nav};
use super::session::Viewer;
use crate::api::ApiState;
use crate::domain::{DeviceId, WindowId};
use crate::ops::queries::{LifecycleState, ReportView, ReportsQuery, WindowsQuery};
use crate::ops::{Actor, Granted, OpsError};
use crate::policy::OverdueMode;
use crate::rights::Function;
use crate::store::Device;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/console/vendor", get(home))
        .route(
            "/console/vendor/windows/new",
            get(request::form_page).post(request::submit),
        )
        .route("/console/vendor/windows/{id}", get(window::show))
        .route("/console/vendor/windows/{id}/live/sessions", get(window::live_sessions))
        .route("/console/vendor/windows/{id}/extend", post(actions::extend))
        .route("/console/vendor/windows/{id}/cancel", post(actions::cancel))
        .route("/console/vendor/windows/{id}/report", post(actions::report))
        .route("/console/vendor/windows/{id}/addendum", post(actions::addendum))
}

/// These pages are the vendor accounts' own.
fn vendor_only(v: &Viewer) -> Result<Granted, Fail> {
    Ok(v.actor().may(Function::VendorConsole)?)
}

/// The state's cell: the translated label, the raw state in `data-state`.
fn state_cell(tr: &Tr, state: LifecycleState) -> Markup {
    let state = state.as_str();
    html! {
        td.state data-state=(state) data-label=(tr.t("ven-col-state")) {
            span class=(format!("badge state-{state}")) { (tr.t(&format!("ven-state-{state}"))) }
        }
    }
}

/// Device names by id, for showing a window's devices.
fn device_names(devices: &[Device]) -> HashMap<DeviceId, String> {
    devices.iter().map(|d| (d.id.clone(), d.name.to_string())).collect()
}

/// A window's devices, by name where known (the id otherwise).
fn devices_of(names: &HashMap<DeviceId, String>, ids: &[DeviceId]) -> String {
    ids.iter()
        .map(|id| names.get(id).cloned().unwrap_or_else(|| id.to_string()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An overdue report, saying what it blocks under `policy.on_overdue_report`.
fn overdue_block(v: &Viewer, mode: OverdueMode, window: &WindowId, due: DateTime<Utc>, link: bool) -> Markup {
    let tr = &v.tr;
    let consequence = match mode {
        OverdueMode::Block => tr.t("ven-overdue-blocks"),
        OverdueMode::Warn => tr.t("ven-overdue-warns"),
    };
    html! {
        div.overdue role="alert" data-window=(window) {
            p {
                strong { (tr.ta("ven-overdue-title", &[("window", window.as_str())])) }
                " " (tr.t("ven-overdue-due")) " " (layout::when(tr, due)) "."
            }
            p.blocks { (consequence) }
            @if link {
                p { a href=(format!("/console/vendor/windows/{window}#report")) { (tr.t("ven-overdue-file")) } }
            }
        }
    }
}

/// The actor's windows whose report is overdue (whether or not
/// `policy.on_overdue_report` makes them block), oldest first.
async fn overdue_reports(s: &ApiState, who: &Actor) -> Result<Vec<ReportView>, Fail> {
    let q = ReportsQuery {
        overdue: true,
        ..ReportsQuery::default()
    };
    Ok(s.ops
        .reports(who, &q)
        .await?
        .into_iter()
        .filter(|r| r.overdue)
        .collect())
}

/// The home page shows windows ending within this many days back, and later.
const RECENT_DAYS: i64 = 90;

#[derive(Debug, Deserialize)]
struct HomeQuery {
    done: Option<String>,
}

async fn home(State(s): State<ApiState>, v: Viewer, Query(q): Query<HomeQuery>) -> Result<maud::Markup, Fail> {
    vendor_only(&v)?;
    let who = v.actor();
    let devices = s.ops.devices(who).await?;
    // A bounded page: the windows of the last RECENT_DAYS and to come (the
    // auditor's timeline and the API reach further back).
    let recent = s.ops.clock.now() - chrono::Duration::days(RECENT_DAYS);
    let mut windows = s
        .ops
        .windows(
            who,
            &WindowsQuery {
                since: Some(recent),
                ..WindowsQuery::default()
            },
        )
        .await?;
    let filed = s
        .ops
        .reports(
            who,
            &ReportsQuery {
                since: Some(recent),
                ..ReportsQuery::default()
            },
        )
        .await?;
    let overdue = overdue_reports(&s, who).await?;
    // Newest first: what is coming and what just happened matter most.
    windows.sort_by_key(|w| std::cmp::Reverse(w.starts_at));
    let names = device_names(&devices);
    let tr = &v.tr;
    let mode = s.ops.rules.on_overdue;
    let body = html! {
        (layout::done_notice(tr, q.done.as_deref()))
        @for r in &overdue {
            (overdue_block(&v, mode, &r.window_id, r.due_at, true))
        }
        section #devices aria-labelledby="devices-title" {
            h2 #devices-title { (tr.t("ven-devices")) }
            @if devices.is_empty() {
                (layout::empty(tr))
            } @else {
                div.table-wrap { table.responsive {
                    thead { tr {
                        th scope="col" { (tr.t("ven-col-device")) }
                        th scope="col" { (tr.t("ven-col-protocol")) }
                        th scope="col" { (tr.t("ven-col-description")) }
                        th scope="col" { (tr.t("ven-col-enabled")) }
                    } }
                    tbody {
                        @for d in &devices {
                            tr data-device=(d.id) {
                                td data-label=(tr.t("ven-col-device")) { (d.name) }
                                td data-label=(tr.t("ven-col-protocol")) { (d.protocol) }
                                td data-label=(tr.t("ven-col-description")) { (d.description.as_deref().unwrap_or("")) }
                                td data-label=(tr.t("ven-col-enabled")) {
                                    @if d.enabled { (tr.t("ven-device-enabled")) }
                                    @else { span.badge.warn { (tr.t("ven-device-disabled")) } }
                                }
                            }
                        }
                    }
                } }
            }
        }
        section #windows aria-labelledby="windows-title" {
            h2 #windows-title { (tr.t("ven-windows")) }
            p { small { (tr.tn("ven-windows-recent", "days", RECENT_DAYS)) } }
            p { a #new-window href="/console/vendor/windows/new" { (tr.t("ven-new-window")) } }
            @if windows.is_empty() {
                (layout::empty(tr))
            } @else {
                div.table-wrap { table.responsive {
                    thead { tr {
                        th scope="col" { (tr.t("ven-col-window")) }
                        th scope="col" { (tr.t("ven-col-devices")) }
                        th scope="col" { (tr.t("ven-col-start")) }
                        th scope="col" { (tr.t("ven-col-end")) }
                        th scope="col" { (tr.t("ven-col-state")) }
                        th scope="col" { (tr.t("ven-col-report")) }
                    } }
                    tbody {
                        @for w in &windows {
                            tr data-window=(w.id) {
                                td data-label=(tr.t("ven-col-window")) {
                                    a href=(format!("/console/vendor/windows/{}", w.id)) { (w.reason) }
                                    @if w.emergency { " " span.badge.warn { (tr.t("ven-emergency")) } }
                                    @if w.extension_ends_at.is_some() { " " span.badge { (tr.t("ven-extension-pending")) } }
                                }
                                td data-label=(tr.t("ven-col-devices")) { (devices_of(&names, &w.device_ids)) }
                                td data-label=(tr.t("ven-col-start")) { (layout::when(tr, w.starts_at)) }
                                td data-label=(tr.t("ven-col-end")) { (layout::when(tr, w.ends_at)) }
                                (state_cell(tr, w.state))
                                td.report data-label=(tr.t("ven-col-report")) {
                                    @if filed.iter().any(|r| r.window_id == w.id && r.report.is_some()) {
                                        (tr.t("ven-report-filed"))
                                    } @else if overdue.iter().any(|o| o.window_id == w.id) {
                                        span.badge.warn { (tr.t("ven-report-overdue")) }
                                    } @else {
                                        "—"
                                    }
                                }
                            }
                        }
                    }
                } }
            }
        }
    };
    Ok(page(&v, Nav::Vendor, &tr.t("ven-title"), body))
}

/// The HTTP status of a refusal re-shown on its form.
fn refused_status(e: &OpsError) -> axum::http::StatusCode {
    use axum::http::StatusCode;
    match e {
        OpsError::Conflict(_) => StatusCode::CONFLICT,
        OpsError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// A browser's multi-line text with its line ends as line feeds (forms send
/// CRLF, which the use cases' text rules refuse as a control character).
fn lf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

#[cfg(test)]
mod tests {
    use super::super::i18n::{message_ids, Lang};
    use crate::domain::EndReason;

    #[test]
    fn every_state_and_end_reason_has_its_words() {
        let states = [
            "requested",
            "approved",
            "active",
            "ended",
            "rejected",
            "cancelled",
            "revoked",
        ];
        for lang in Lang::ALL {
            let ids = message_ids(lang);
            for s in states {
                assert!(ids.contains(&format!("ven-state-{s}")), "{s} in {}", lang.code());
            }
            for r in EndReason::ALL {
                assert!(
                    ids.contains(&format!("ven-end-{}", r.as_str())),
                    "{} in {}",
                    r.as_str(),
                    lang.code()
                );
            }
            for o in super::window::OUTCOMES {
                assert!(ids.contains(&format!("ven-outcome-{o}")), "{o} in {}", lang.code());
            }
        }
    }
}
