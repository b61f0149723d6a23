//! Intervention reports with the sessions observed during their windows, and
//! the windows whose report is overdue.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use maud::{html, Markup};

use super::{allow, filter_form, sessions_table, tabs, FilterQuery, Names, Tab};
use crate::api::ApiState;
use crate::console::i18n::Tr;
use crate::console::layout::{empty, page, when};
use crate::console::{Fail, Nav, Viewer};
use crate::ops::{ReportView, ReportsQuery};

/// Reports filed within this many days are shown when no period is given.
const DEFAULT_DAYS: i64 = 90;

fn window_head(tr: &Tr, names: &Names, w: &ReportView) -> Markup {
    html! {
        h3 {
            (names.vendor(&w.vendor_id)) " — " (names.devices_of(&w.device_ids))
            @if w.emergency { " " span.badge.warn { (tr.t("aud-emergency")) } }
        }
        p { (tr.t("aud-window")) " " (when(tr, w.window_starts_at)) " → " (when(tr, w.window_ends_at)) }
    }
}

fn report(tr: &Tr, names: &Names, w: &ReportView) -> Markup {
    html! {
        article.report data-window=(w.window_id) {
            (window_head(tr, names, w))
            @if let Some(r) = &w.report {
                dl.facts {
                    dt { (tr.t("aud-report-outcome")) }
                    dd { span.badge data-outcome=(r.outcome) { (tr.t(&format!("aud-outcome-{}", r.outcome))) } }
                    dt { (tr.t("aud-report-filed")) }
                    dd { (when(tr, r.filed_at)) " — " (r.filed_by) }
                    dt { (tr.t("aud-report-summary")) }
                    dd.text { (r.summary) }
                    dt { (tr.t("aud-report-actions")) }
                    dd.text { (r.actions) }
                    @if let Some(f) = &r.follow_up {
                        dt { (tr.t("aud-report-follow-up")) }
                        dd.text { (f) }
                    }
                }
                @if !r.addenda.is_empty() {
                    h4 { (tr.t("aud-report-addenda")) }
                    ol.addenda {
                        @for a in &r.addenda {
                            li { (when(tr, a.filed_at)) " — " (a.filed_by) p.text { (a.text) } }
                        }
                    }
                }
            }
            h4 { (tr.t("aud-report-sessions")) }
            (sessions_table(tr, names, w.sessions.iter().map(|x| (x, None))))
        }
    }
}

pub(super) async fn show(State(s): State<ApiState>, v: Viewer, Query(q): Query<FilterQuery>) -> Result<Response, Fail> {
    allow(&v, Tab::Reports)?;
    let tr = &v.tr;
    let f = q.parse(tr);
    let names = Names::load(&s, &v).await?;
    let since = f.since.or_else(|| Some(s.clock.now() - Duration::days(DEFAULT_DAYS)));
    let ((filed, overdue), status) = if f.errors.is_empty() {
        let mut q = ReportsQuery {
            vendor_id: f.vendor_id.clone(),
            device_id: f.device_id.clone(),
            overdue: false,
            since,
            until: f.until,
        };
        let filed = s.ops.reports(v.actor(), &q).await?;
        // Overdue ones whenever their window ended, unless a period is chosen.
        q.overdue = true;
        q.since = f.since;
        let overdue = s.ops.reports(v.actor(), &q).await?;
        ((filed, overdue), StatusCode::OK)
    } else {
        ((Vec::new(), Vec::new()), StatusCode::BAD_REQUEST)
    };
    let body = html! {
        (tabs(&v, Tab::Reports))
        (filter_form(&v, "reports-filter", "/console/audit/reports", &q, &f, &names, None, false))
        @if q.since.as_deref().is_none_or(str::is_empty) {
            p.hint { (tr.tn("aud-reports-default-period", "n", DEFAULT_DAYS)) }
        }
        section #overdue aria-labelledby="overdue-title" {
            h2 #overdue-title { (tr.tn("aud-overdue-count", "n", i64::try_from(overdue.len()).unwrap_or(i64::MAX))) }
            @if overdue.is_empty() { (empty(tr)) }
            @for w in &overdue {
                div.overdue data-window=(w.window_id) {
                    (window_head(tr, &names, w))
                    p { strong { (tr.ta("aud-overdue-since", &[("due", &tr.local(w.due_at))])) } }
                    (sessions_table(tr, &names, w.sessions.iter().map(|x| (x, None))))
                }
            }
        }
        section #reports aria-labelledby="reports-title" {
            h2 #reports-title { (tr.tn("aud-reports-count", "n", i64::try_from(filed.len()).unwrap_or(i64::MAX))) }
            @if filed.is_empty() { (empty(tr)) }
            @for w in &filed { (report(tr, &names, w)) }
        }
    };
    Ok((status, page(&v, Nav::Audit, &tr.t("aud-title-reports"), body)).into_response())
}
