//! One window of the vendor: its facts, an extension request, cancellation
//! before its start, and the intervention report beside the sessions the
//! gateway observed (then the filed report, its addenda and the addendum form).
//! The forms post to [`super::actions`].

use axum::extract::{Path, Query, State};
use maud::{html, Markup};
use serde::Deserialize;

use super::super::fail::Fail;
use super::super::form::{csrf_field, input, textarea, FieldErrors};
use super::super::i18n::Tr;
use super::super::layout::{self, page, Nav};
use super::super::session::Viewer;
use super::{device_names, devices_of, overdue_block, vendor_only};
use crate::api::ApiState;
use crate::domain::WindowId;
use crate::ops::queries::{LifecycleState, WindowView};
use crate::store::{Device, Report, Session};

/// What the forms of the page show: the values typed and their errors (after
/// a refused post), else empty.
#[derive(Debug, Default)]
pub(super) struct Forms {
    pub(super) extend: ExtendForm,
    pub(super) extend_errors: FieldErrors,
    pub(super) cancel_errors: FieldErrors,
    pub(super) report: ReportForm,
    pub(super) report_errors: FieldErrors,
    pub(super) addendum: AddendumForm,
    pub(super) addendum_errors: FieldErrors,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ExtendForm {
    #[serde(default)]
    pub(super) ends_at: String,
    #[serde(default)]
    pub(super) reason: String,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct CancelForm {
    #[serde(default)]
    pub(super) reason: String,
}

/// The report's fields, named as the API's `FileReport`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ReportForm {
    #[serde(default)]
    pub(super) summary: String,
    #[serde(default)]
    pub(super) actions: String,
    #[serde(default)]
    pub(super) outcome: String,
    #[serde(default)]
    pub(super) follow_up: String,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct AddendumForm {
    #[serde(default)]
    pub(super) text: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct ShowQuery {
    done: Option<String>,
}

pub(super) const OUTCOMES: [&str; 3] = ["success", "partial", "failed"];

pub(super) async fn show(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Result<Markup, Fail> {
    vendor_only(&v)?;
    render(&s, &v, &WindowId(id), &Forms::default(), q.done.as_deref()).await
}

/// The sessions section's content alone, for the console script to refresh.
pub(super) async fn live_sessions(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
) -> Result<Markup, Fail> {
    vendor_only(&v)?;
    let data = s.ops.report(v.actor(), &WindowId(id)).await?;
    let devices = s.ops.devices(v.actor()).await?;
    Ok(sessions_table(&v.tr, &devices, &data.sessions))
}

/// Whether the report may be filed now (the rule of `Ops::file_report`).
fn report_open(w: &WindowView, sessions: &[Session]) -> bool {
    match w.state {
        LifecycleState::Revoked | LifecycleState::Ended => true,
        LifecycleState::Approved | LifecycleState::Active => {
            !sessions.is_empty() && sessions.iter().all(|x| x.ended_at.is_some())
        }
        _ => false,
    }
}

pub(super) async fn render(
    s: &ApiState,
    v: &Viewer,
    id: &WindowId,
    forms: &Forms,
    done: Option<&str>,
) -> Result<Markup, Fail> {
    let tr = &v.tr;
    let w = s.ops.window(v.actor(), id).await?;
    let seen = s.ops.report(v.actor(), id).await?;
    let devices = s.ops.devices(v.actor()).await?;
    let names = device_names(&devices);
    let state = w.state.as_str();
    let cancellable = matches!(w.state, LifecycleState::Requested | LifecycleState::Approved);
    let extendable = matches!(w.state, LifecycleState::Approved | LifecycleState::Active);
    let reportable = matches!(
        w.state,
        LifecycleState::Approved | LifecycleState::Active | LifecycleState::Ended | LifecycleState::Revoked
    );
    let title = tr.ta("ven-window-title", &[("reason", &w.reason)]);
    let body = html! {
        (layout::done_notice(tr, done))
        @if seen.overdue {
            (overdue_block(v, s.ops.rules.on_overdue, &w.id, seen.due_at, false))
        }
        section #window aria-labelledby="window-facts" {
            h2 #window-facts { (tr.t("ven-window-facts")) }
            dl.facts {
                dt { (tr.t("ven-col-state")) }
                dd.state data-state=(state) { span class=(format!("badge state-{state}")) { (tr.t(&format!("ven-state-{state}"))) } }
                dt { (tr.t("ven-col-devices")) } dd { (devices_of(&names, &w.device_ids)) }
                dt { (tr.t("ven-col-start")) } dd { (layout::when(tr, w.starts_at)) }
                dt { (tr.t("ven-col-end")) } dd { (layout::when(tr, w.ends_at)) }
                dt { (tr.t("ven-field-reason")) } dd { (w.reason) }
                @if w.emergency { dt { (tr.t("ven-emergency")) } dd { (tr.t("yes")) } }
                // When, and why if a reason was given (the deciding account is
                // security's business, shown to auditors, not here).
                @if let Some(at) = w.decided_at {
                    dt { (tr.t("ven-decided")) }
                    dd {
                        (layout::when(tr, at))
                        @if let Some(r) = &w.decision_reason { " — " (r) }
                    }
                }
                @if let Some(ext) = w.extension_ends_at {
                    dt { (tr.t("ven-extension-pending")) }
                    dd {
                        (tr.t("ven-extension-until")) " " (layout::when(tr, ext))
                        @if let Some(r) = &w.extension_reason { " — " (r) }
                    }
                }
                dt { (tr.t("ven-window-id")) } dd { code { (w.id) } }
            }
        }
        @if extendable { (extend_form(v, &w, forms)) }
        @if cancellable { (cancel_form(v, &w, forms)) }
        @if reportable {
            div.report-grid {
                div.report-main {
                    @match &seen.report {
                        Some(r) => { (filed_report(v, &w, r, forms)) }
                        None if report_open(&w, &seen.sessions) => { (report_form(v, &w, forms)) }
                        None => {
                            section #report-later {
                                h2 { (tr.t("ven-report")) }
                                p { (tr.t("ven-report-later")) }
                            }
                        }
                    }
                }
                section #sessions aria-labelledby="sessions-title" {
                    h2 #sessions-title { (tr.t("ven-sessions")) }
                    p { small { (tr.t("ven-sessions-help")) } }
                    (layout::live("sessions-live", &format!("/console/vendor/windows/{}/live/sessions", w.id),
                        sessions_table(tr, &devices, &seen.sessions)))
                }
            }
        }
        p { a href="/console/vendor" { (tr.t("back")) } }
    };
    Ok(page(v, Nav::Vendor, &title, body))
}

/// The sessions observed during a window.
fn sessions_table(tr: &Tr, devices: &[Device], sessions: &[Session]) -> Markup {
    let names = device_names(devices);
    html! {
        @if sessions.is_empty() {
            (layout::empty(tr))
        } @else {
            div.table-wrap { table.responsive {
                thead { tr {
                    th scope="col" { (tr.t("ven-col-technician")) }
                    th scope="col" { (tr.t("ven-col-device")) }
                    th scope="col" { (tr.t("ven-col-source")) }
                    th scope="col" { (tr.t("ven-col-start")) }
                    th scope="col" { (tr.t("ven-col-end")) }
                    th scope="col" { (tr.t("ven-col-bytes")) }
                    th scope="col" { (tr.t("ven-col-end-reason")) }
                } }
                tbody {
                    @for x in sessions {
                        tr data-session=(x.id) {
                            td data-label=(tr.t("ven-col-technician")) { (x.technician_subject) }
                            td data-label=(tr.t("ven-col-device")) { (names.get(&x.device_id).cloned().unwrap_or_else(|| x.device_id.to_string())) }
                            td data-label=(tr.t("ven-col-source")) { (x.source_ip) ":" (x.source_port) }
                            td data-label=(tr.t("ven-col-start")) { (layout::when(tr, x.started_at)) }
                            td data-label=(tr.t("ven-col-end")) {
                                @match x.ended_at {
                                    Some(t) => { (layout::when(tr, t)) }
                                    None => { span.badge { (tr.t("ven-session-open")) } }
                                }
                            }
                            td.bytes data-label=(tr.t("ven-col-bytes")) {
                                (tr.ta("ven-bytes", &[("up", &x.bytes_from_vendor.to_string()), ("down", &x.bytes_to_vendor.to_string())]))
                            }
                            td data-label=(tr.t("ven-col-end-reason")) {
                                @if let Some(r) = x.end_reason { (tr.t(&format!("ven-end-{}", r.as_str()))) }
                            }
                        }
                    }
                }
            } }
        }
    }
}

fn extend_form(v: &Viewer, w: &WindowView, forms: &Forms) -> Markup {
    let tr = &v.tr;
    let errors = &forms.extend_errors;
    // A first proposal: one hour more.
    let value = if forms.extend.ends_at.is_empty() {
        tr.input_value(w.ends_at + chrono::Duration::hours(1))
    } else {
        forms.extend.ends_at.clone()
    };
    html! {
        section #extension aria-labelledby="extend-title" {
            h2 #extend-title { (tr.t("ven-extend")) }
            (errors.summary(tr))
            form.stack #extend method="post" action=(format!("/console/vendor/windows/{}/extend", w.id)) novalidate {
                (csrf_field(&v.csrf))
                (input("ends_at", &tr.t("ven-field-new-end"), "datetime-local", &value, true, errors,
                    Some(&tr.ta("ven-time-help-short", &[("tz", tr.tz.name())]))))
                (input("reason", &tr.t("ven-field-reason"), "text", &forms.extend.reason, true, errors, None))
                div { button type="submit" { (tr.t("ven-extend-submit")) } }
            }
        }
    }
}

fn cancel_form(v: &Viewer, w: &WindowView, forms: &Forms) -> Markup {
    let tr = &v.tr;
    let errors = &forms.cancel_errors;
    html! {
        section #cancellation aria-labelledby="cancel-title" {
            h2 #cancel-title { (tr.t("ven-cancel")) }
            (errors.summary(tr))
            form.stack #cancel method="post" action=(format!("/console/vendor/windows/{}/cancel", w.id)) novalidate {
                (csrf_field(&v.csrf))
                (input("reason", &tr.t("ven-field-cancel-reason"), "text", "", false, errors, None))
                div { button.danger type="submit" { (tr.t("ven-cancel-submit")) } }
            }
        }
    }
}

fn report_form(v: &Viewer, w: &WindowView, forms: &Forms) -> Markup {
    let tr = &v.tr;
    let errors = &forms.report_errors;
    let f = &forms.report;
    let outcome_error = errors.get("outcome");
    html! {
        section #report-new aria-labelledby="report-title" {
            h2 #report-title { (tr.t("ven-report")) }
            p { (tr.t("ven-report-intro")) }
            (errors.summary(tr))
            form.stack #report method="post" action=(format!("/console/vendor/windows/{}/report", w.id)) novalidate {
                (csrf_field(&v.csrf))
                (textarea("summary", &tr.t("ven-field-summary"), &f.summary, true, errors))
                (textarea("actions", &tr.t("ven-field-actions"), &f.actions, true, errors))
                div.field.invalid[outcome_error.is_some()] {
                    label for="f-outcome" { (tr.t("ven-field-outcome")) }
                    select #f-outcome name="outcome" required
                        aria-invalid=[outcome_error.map(|_| "true")]
                        aria-describedby=[outcome_error.map(|_| "f-outcome-error")] {
                        option value="" selected[f.outcome.is_empty()] { (tr.t("ven-outcome-choose")) }
                        @for o in OUTCOMES {
                            option value=(o) selected[f.outcome == o] { (tr.t(&format!("ven-outcome-{o}"))) }
                        }
                    }
                    @if let Some(e) = outcome_error { p.error #f-outcome-error { (e) } }
                }
                (textarea("follow_up", &tr.t("ven-field-follow-up"), &f.follow_up, false, errors))
                div { button type="submit" { (tr.t("ven-report-submit")) } }
            }
        }
    }
}

fn filed_report(v: &Viewer, w: &WindowView, r: &Report, forms: &Forms) -> Markup {
    let tr = &v.tr;
    let errors = &forms.addendum_errors;
    let outcome = if OUTCOMES.contains(&r.outcome.as_str()) {
        tr.t(&format!("ven-outcome-{}", r.outcome))
    } else {
        r.outcome.clone()
    };
    html! {
        section #report-filed aria-labelledby="report-title" {
            h2 #report-title { (tr.t("ven-report")) }
            p { (tr.ta("ven-report-filed-by", &[("by", &r.filed_by)])) " " (layout::when(tr, r.filed_at)) }
            dl.facts {
                dt { (tr.t("ven-field-summary")) } dd.text { (r.summary) }
                dt { (tr.t("ven-field-actions")) } dd.text { (r.actions) }
                dt { (tr.t("ven-field-outcome")) } dd data-outcome=(r.outcome) { (outcome) }
                @if let Some(f) = &r.follow_up { dt { (tr.t("ven-field-follow-up")) } dd.text { (f) } }
            }
            h3 { (tr.t("ven-addenda")) }
            @if r.addenda.is_empty() {
                (layout::empty(tr))
            } @else {
                ol.addenda {
                    @for a in &r.addenda {
                        li data-addendum=(a.id) {
                            p.text { (a.text) }
                            small { (tr.ta("ven-report-filed-by", &[("by", &a.filed_by)])) " " (layout::when(tr, a.filed_at)) }
                        }
                    }
                }
            }
            (errors.summary(tr))
            form.stack #addendum method="post" action=(format!("/console/vendor/windows/{}/addendum", w.id)) novalidate {
                (csrf_field(&v.csrf))
                (textarea("text", &tr.t("ven-field-addendum"), &forms.addendum.text, true, errors))
                div { button type="submit" { (tr.t("ven-addendum-submit")) } }
            }
        }
    }
}
