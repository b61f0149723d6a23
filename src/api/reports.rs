//! Intervention reports ("comptes-rendus"): what the vendor declares it did,
//! shown next to what the gateway observed (the window's sessions).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{rfc3339, ApiJson, ApiQuery};
use super::windows::visible_window;
use super::{ApiError, ApiResult, ApiState, Caller, ErrorBody};
use crate::domain::{DeviceId, VendorId, WindowId};
use crate::ops::{ReportView, ReportsQuery};
use crate::rights::Function;
use crate::store::Report;

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

/// Reports are multi-line: line feeds and tabs, no other control characters.
fn text(field: &'static str, v: &str, max: usize) -> ApiResult<String> {
    Ok(crate::domain::multi_line(field, v, max)?)
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
    caller.may(Function::FileReport)?;
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
    s.ops.file_report(&caller, &w.id, input).await?;
    Ok((StatusCode::CREATED, Json(s.ops.report(&caller, &w.id).await?)))
}

/// A window's report with its sessions (any account; vendor: its own).
#[utoipa::path(get, path = "/api/v1/windows/{id}/report", params(("id" = String, Path)),
    responses((status = 200, body = ReportView), (status = 404, body = ErrorBody)))]
async fn get_report(State(s): State<ApiState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<ReportView>> {
    Ok(Json(s.ops.report(&caller, &WindowId(id)).await?))
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
    s.ops.add_report_addendum(&caller, &w.id, body).await?;
    Ok((StatusCode::CREATED, Json(s.ops.report(&caller, &w.id).await?)))
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
    let query = ReportsQuery {
        vendor_id: q.vendor_id,
        device_id: q.device_id,
        overdue: q.overdue == Some(true),
        since: q.since,
        until: q.until,
    };
    let out = s.ops.reports(&caller, &query).await?;
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
