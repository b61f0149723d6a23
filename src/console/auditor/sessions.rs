//! Sessions with filters, and their CSV export: the same rows and columns as
//! the API's `GET /api/v1/sessions?format=csv`, written by the same function.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::html;

use super::{allow, filter_form, sessions_table, tabs, FilterQuery, Filters, Names, Tab, MAX_ROWS};
use crate::api::ApiState;
use crate::console::layout::page;
use crate::console::{Fail, Nav, Viewer};
use crate::ops::SessionsQuery;

/// The API's query for the same filters (`limit`: the page's bound; the CSV has no bound).
fn query(f: &Filters, limit: Option<u32>) -> SessionsQuery {
    SessionsQuery {
        vendor_id: f.vendor_id.clone(),
        device_id: f.device_id.clone(),
        active: f.live.then_some(true),
        since: f.since,
        until: f.until,
        limit,
    }
}

pub(super) async fn show(State(s): State<ApiState>, v: Viewer, Query(q): Query<FilterQuery>) -> Result<Response, Fail> {
    allow(&v, Tab::Sessions)?;
    let tr = &v.tr;
    let f = q.parse(tr);
    let names = Names::load(&s, &v).await?;
    let (mut list, status) = if f.errors.is_empty() {
        // One more than shown, to know the list was cut.
        let bound = u32::try_from(MAX_ROWS + 1).ok();
        let list = s.ops.sessions(v.actor(), &query(&f, bound)).await?;
        (list, StatusCode::OK)
    } else {
        (Vec::new(), StatusCode::BAD_REQUEST)
    };
    let cut = list.len() > MAX_ROWS;
    list.truncate(MAX_ROWS);
    let qs = q.query_string();
    let csv = if qs.is_empty() {
        "/console/audit/sessions/csv".to_owned()
    } else {
        format!("/console/audit/sessions/csv?{qs}")
    };
    let body = html! {
        (tabs(&v, Tab::Sessions))
        (filter_form(&v, "sessions-filter", "/console/audit/sessions", &q, &f, &names, None, true))
        p.downloads { a #sessions-csv href=(csv) download { (tr.t("aud-sessions-csv")) } }
        section #sessions aria-labelledby="sessions-title" {
            h2 #sessions-title { (tr.tn("aud-sessions-count", "n", i64::try_from(list.len()).unwrap_or(i64::MAX))) }
            @if cut { p.notice { (tr.tn("aud-list-cut", "n", i64::try_from(MAX_ROWS).unwrap_or(i64::MAX))) } }
            (sessions_table(tr, &names, list.iter().map(|x| (&x.session, Some(x.live)))))
        }
    };
    Ok((status, page(&v, Nav::Audit, &tr.t("aud-title-sessions"), body)).into_response())
}

/// The sessions as CSV, every row (as the API's export).
pub(super) async fn csv(State(s): State<ApiState>, v: Viewer, Query(q): Query<FilterQuery>) -> Result<Response, Fail> {
    allow(&v, Tab::Sessions)?;
    let f = q.parse(&v.tr);
    if let Some(message) = f.errors.fields.values().next() {
        return Err(Fail::Refused(StatusCode::BAD_REQUEST, message.clone()));
    }
    let list = s.ops.sessions(v.actor(), &query(&f, None)).await?;
    let sessions: Vec<_> = list.into_iter().map(|x| x.session).collect();
    let text = crate::api::sessions_csv(&sessions).map_err(|e| {
        tracing::error!(error = %e.message, "sessions as CSV");
        Fail::Internal
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"portier-sessions.csv\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response())
}
