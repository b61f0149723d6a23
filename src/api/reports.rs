//! Intervention reports ("comptes-rendus"): what the vendor declares it did,
//! shown next to what the gateway observed (the window's sessions).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{rfc3339, ApiJson, ApiQuery};
use super::windows::visible_window;
use super::{ApiError, ApiResult, ApiState, Caller, ErrorBody};
use crate::domain::{DeviceId, Role, VendorId, WindowId};
use crate::store::{Report, ReportFilter, Session, SessionFilter, StoreError, Window};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(file_report, get_report))
        .routes(routes!(add_addendum))
        .routes(routes!(list_reports))
}

/// A report to file.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileReport {
    pub summary: String,
    pub actions: String,
    /// `success`, `partial` or `failed`.
    pub outcome: String,
    pub follow_up: Option<String>,
}

/// A window's report (if filed) with the sessions observed during it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportView {
    pub window_id: WindowId,
    pub vendor_id: VendorId,
    pub device_ids: Vec<DeviceId>,
    pub window_starts_at: DateTime<Utc>,
    pub window_ends_at: DateTime<Utc>,
    pub emergency: bool,
    /// When the report is (or was) due.
    pub due_at: DateTime<Utc>,
    /// Due, with at least one session, and not filed.
    pub overdue: bool,
    pub report: Option<Report>,
    pub sessions: Vec<Session>,
}

/// Reports are multi-line: line feeds and tabs, no other control characters.
fn text(field: &'static str, v: &str, max: usize) -> ApiResult<String> {
    Ok(crate::domain::multi_line(field, v, max)?)
}

/// When a window ended: revocation time, or its planned end.
fn ended_at(w: &Window) -> DateTime<Utc> {
    w.closed_at.unwrap_or(w.ends_at)
}

async fn view(s: &ApiState, w: Window, report: Option<Report>) -> ApiResult<ReportView> {
    let sessions = s
        .store
        .list_sessions(&SessionFilter {
            window_id: Some(w.id.clone()),
            ..SessionFilter::default()
        })
        .await?;
    let due_at = ended_at(&w) + s.limits.report_due;
    let overdue = crate::policy::report_overdue(ended_at(&w), s.limits.report_due, s.clock.now());
    Ok(ReportView {
        overdue: report.is_none() && !w.emergency && !sessions.is_empty() && overdue,
        window_id: w.id,
        vendor_id: w.vendor_id,
        device_ids: w.device_ids,
        window_starts_at: w.starts_at,
        window_ends_at: w.ends_at,
        emergency: w.emergency,
        due_at,
        report,
        sessions,
    })
}

/// File the window's intervention report (its vendor), once the window has ended,
/// been revoked, or its sessions are over. A report cannot be edited afterwards.
#[utoipa::path(post, path = "/api/v1/windows/{id}/report", params(("id" = String, Path)), request_body = FileReport,
    responses((status = 201, body = ReportView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn file_report(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<FileReport>,
) -> ApiResult<(StatusCode, Json<ReportView>)> {
    caller.require(&[Role::Vendor])?;
    let w = visible_window(&s, &caller, id).await?;
    let summary = text("summary", &req.summary, 10_000)?;
    let actions = text("actions", &req.actions, 20_000)?;
    let follow_up = req
        .follow_up
        .as_deref()
        .map(|f| text("follow_up", f, 10_000))
        .transpose()?;
    let input = crate::ops::ReportInput {
        summary,
        actions,
        outcome: req.outcome,
        follow_up,
    };
    let report = s.ops.file_report(&caller, &w.id, input).await?;
    Ok((StatusCode::CREATED, Json(view(&s, w, Some(report)).await?)))
}

/// A window's report with its sessions (any account; vendor: its own).
#[utoipa::path(get, path = "/api/v1/windows/{id}/report", params(("id" = String, Path)),
    responses((status = 200, body = ReportView), (status = 404, body = ErrorBody)))]
async fn get_report(State(s): State<ApiState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<ReportView>> {
    let w = visible_window(&s, &caller, id).await?;
    let report = match s.store.report(&w.id).await {
        Ok(r) => Some(r),
        Err(StoreError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    Ok(Json(view(&s, w, report).await?))
}

/// A correction.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Addendum {
    pub text: String,
}

/// Append a correction to a filed report (its vendor). The report itself never changes.
#[utoipa::path(post, path = "/api/v1/windows/{id}/report/addenda", params(("id" = String, Path)), request_body = Addendum,
    responses((status = 201, body = ReportView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn add_addendum(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Addendum>,
) -> ApiResult<(StatusCode, Json<ReportView>)> {
    let w = visible_window(&s, &caller, id).await?;
    let body = text("text", &req.text, 10_000)?;
    let report = s.ops.add_report_addendum(&caller, &w.id, body).await?;
    Ok((StatusCode::CREATED, Json(view(&s, w, Some(report)).await?)))
}

/// Filters of the report list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    pub vendor_id: Option<VendorId>,
    pub device_id: Option<DeviceId>,
    /// true: the windows whose report is overdue (no report yet) instead of filed reports.
    pub overdue: Option<bool>,
    /// Filed (or, with overdue, ended) at or after (RFC 3339).
    #[serde(default, deserialize_with = "rfc3339::optional")]
    pub since: Option<DateTime<Utc>>,
    /// Filed (or, with overdue, ended) before (RFC 3339).
    #[serde(default, deserialize_with = "rfc3339::optional")]
    pub until: Option<DateTime<Utc>>,
    /// `json` (default) or `csv` (filed reports).
    pub format: Option<String>,
}

/// Filed reports, or overdue ones (any account; vendor: its own).
#[utoipa::path(get, path = "/api/v1/reports", params(ReportQuery), responses((status = 200, body = Vec<ReportView>)))]
async fn list_reports(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> ApiResult<Response> {
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => return Err(ApiError::bad_request(format!("unknown format {other:?} (json or csv)"))),
    };
    let vendor_id = match caller.role {
        Role::Vendor => caller.vendor_id.clone(),
        _ => q.vendor_id,
    };
    let in_period = |t: DateTime<Utc>| q.since.is_none_or(|s| t >= s) && q.until.is_none_or(|u| t < u);
    let mut out = Vec::new();
    if q.overdue == Some(true) {
        let windows = s
            .store
            .unreported_windows(
                vendor_id.as_ref(),
                crate::policy::overdue_if_ended_by(s.limits.report_due, s.clock.now()),
            )
            .await?;
        for w in windows {
            if in_period(ended_at(&w))
                && q.device_id.as_ref().is_none_or(|d| w.device_ids.contains(d))
                && caller.sees_vendor(&w.vendor_id)
            {
                out.push(view(&s, w, None).await?);
            }
        }
    } else {
        let reports = s
            .store
            .list_reports(&ReportFilter {
                vendor_id,
                since: q.since,
                until: q.until,
            })
            .await?;
        for r in reports {
            let w = s.store.window(&r.window_id).await?;
            if q.device_id.as_ref().is_none_or(|d| w.device_ids.contains(d)) && caller.sees_vendor(&w.vendor_id) {
                out.push(view(&s, w, Some(r)).await?);
            }
        }
    }
    if csv {
        let rows: Vec<(&Report, usize)> = out
            .iter()
            .filter_map(|v| v.report.as_ref().map(|r| (r, v.sessions.len())))
            .collect();
        let text = crate::export::reports_csv(&rows).map_err(|e| ApiError::internal("reports as CSV", &e))?;
        return Ok(([(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")], text).into_response());
    }
    Ok(Json(out).into_response())
}
