//! Sessions: the record of every tunnel, as JSON or CSV, and termination.

use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{rfc3339, ApiJson, ApiQuery};
use super::windows::Reason;
use super::{ApiError, ApiResult, ApiState, Caller, ErrorBody, RestrictiveCaller};
use crate::domain::{DeviceId, SessionId, VendorId};
use crate::ops::{SessionView, SessionsQuery};
use crate::store::Session;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_sessions))
        .routes(routes!(get_session))
        .routes(routes!(terminate))
}

/// Filters of the session list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SessionQuery {
    pub vendor_id: Option<VendorId>,
    pub device_id: Option<DeviceId>,
    /// true: live sessions only (not ended, on a node that is alive); false: the others.
    pub active: Option<bool>,
    /// Sessions started at or after (RFC 3339).
    #[serde(default, deserialize_with = "rfc3339::optional")]
    pub since: Option<DateTime<Utc>>,
    /// Sessions started before (RFC 3339).
    #[serde(default, deserialize_with = "rfc3339::optional")]
    pub until: Option<DateTime<Utc>>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// CSV columns, in order (documented in the README).
pub const CSV_COLUMNS: [&str; 14] = [
    "id",
    "window_id",
    "vendor_id",
    "technician_id",
    "technician_subject",
    "device_id",
    "source_ip",
    "source_port",
    "started_at",
    "ended_at",
    "bytes_from_vendor",
    "bytes_to_vendor",
    "end_reason",
    "node",
];

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Sessions as CSV (RFC 4180 quoting by the csv crate).
pub fn sessions_csv(list: &[Session]) -> Result<String, ApiError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| {
        tracing::error!(error = %e, "csv encoding failed");
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    };
    w.write_record(CSV_COLUMNS).map_err(fail)?;
    for s in list {
        w.write_record([
            s.id.to_string(),
            s.window_id.to_string(),
            s.vendor_id.to_string(),
            s.technician_id.to_string(),
            s.technician_subject.clone(),
            s.device_id.to_string(),
            s.source_ip.to_string(),
            s.source_port.to_string(),
            time(s.started_at),
            s.ended_at.map(time).unwrap_or_default(),
            s.bytes_from_vendor.to_string(),
            s.bytes_to_vendor.to_string(),
            s.end_reason.map(|r| r.as_str().to_owned()).unwrap_or_default(),
            s.node.clone(),
        ])
        .map_err(fail)?;
    }
    let bytes = w.into_inner().map_err(|e| fail(e.into_error().into()))?;
    String::from_utf8(bytes).map_err(|_| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    })
}

/// List sessions (security, auditor; a vendor account sees its own).
#[utoipa::path(get, path = "/api/v1/sessions", params(SessionQuery),
    responses((status = 200, body = Vec<SessionView>, description = "JSON, or CSV with ?format=csv"), (status = 403, body = ErrorBody)))]
async fn list_sessions(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<SessionQuery>,
) -> ApiResult<Response> {
    let query = SessionsQuery {
        vendor_id: q.vendor_id,
        device_id: q.device_id,
        active: q.active,
        since: q.since,
        until: q.until,
        limit: None,
    };
    let views = s.ops.sessions(&caller, &query).await?;
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(views).into_response()),
        Some("csv") => {
            let list: Vec<Session> = views.into_iter().map(|v| v.session).collect();
            Ok(([(CONTENT_TYPE, "text/csv; charset=utf-8")], sessions_csv(&list)?).into_response())
        }
        Some(other) => Err(ApiError::bad_request(format!("unknown format {other:?} (json or csv)"))),
    }
}

/// One session.
#[utoipa::path(get, path = "/api/v1/sessions/{id}", params(("id" = String, Path)),
    responses((status = 200, body = SessionView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_session(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SessionView>> {
    Ok(Json(s.ops.session(&caller, &SessionId(id)).await?))
}

/// Terminate a live session (security): cut within a second, `end_reason = terminated`,
/// whichever node holds it. Held here: cut before anything is read or written; if
/// the database cannot be reached the answer is 503, the cut stands and its audit
/// event is retried until stored. Held by another node: the termination is
/// committed and that node cuts it from the change feed; the answer waits up to
/// 3 s for its record (200), else says it is accepted but not yet confirmed (202).
#[utoipa::path(post, path = "/api/v1/sessions/{id}/terminate", params(("id" = String, Path)), request_body = Reason,
    responses((status = 200, body = Session, description = "cut"),
        (status = 202, body = Session, description = "committed; the node holding the session has not recorded the cut yet"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "the database cannot be reached (a session live here is cut all the same)")))]
async fn terminate(
    State(s): State<ApiState>,
    RestrictiveCaller(caller): RestrictiveCaller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Reason>,
) -> ApiResult<(StatusCode, Json<Session>)> {
    let reason = crate::domain::one_line("reason", &req.reason, 2000)?;
    let done = s.ops.terminate_session(&caller, &SessionId(id), reason).await?;
    let status = if done.cut { StatusCode::OK } else { StatusCode::ACCEPTED };
    Ok((status, Json(done.session)))
}
