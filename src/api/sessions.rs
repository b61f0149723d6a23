//! Sessions: the record of every tunnel, as JSON or CSV, and termination.

use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{rfc3339, ApiJson, ApiQuery};
use super::windows::Reason;
use super::{ApiError, ApiResult, ApiState, Caller, ErrorBody, RestrictiveCaller};
use crate::domain::{DeviceId, Role, SessionId, VendorId};
use crate::store::{Session, SessionFilter};

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

/// A session record, and whether it is live now.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    #[serde(flatten)]
    pub session: Session,
    /// Not ended, and its node is alive (beats, has not stopped). An open record
    /// whose node crashed is live nowhere: it is closed when that node restarts
    /// (`gateway_restart`) or, once the node is lost, by a surviving node (`node_lost`).
    pub live: bool,
}

impl SessionView {
    fn new(session: Session, live_nodes: &[String]) -> Self {
        let live = session.ended_at.is_none() && live_nodes.contains(&session.node);
        Self { session, live }
    }
}

async fn live_nodes(s: &ApiState) -> Result<Vec<String>, ApiError> {
    Ok(s.store.live_nodes(s.clock.now() - s.limits.node_stale).await?)
}

/// List sessions (security, auditor; a vendor account sees its own).
#[utoipa::path(get, path = "/api/v1/sessions", params(SessionQuery),
    responses((status = 200, body = Vec<SessionView>, description = "JSON, or CSV with ?format=csv"), (status = 403, body = ErrorBody)))]
async fn list_sessions(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<SessionQuery>,
) -> ApiResult<Response> {
    caller.require(&[Role::Security, Role::Auditor, Role::Vendor])?;
    let vendor_id = match caller.role {
        Role::Vendor => caller.vendor_id.clone(),
        _ => q.vendor_id,
    };
    let filter = SessionFilter {
        vendor_id,
        device_id: q.device_id,
        window_id: None,
        active: q.active,
        since: q.since,
        until: q.until,
        limit: None,
        // Live means: not ended, and its node still beats (a crashed node's
        // sessions are live nowhere, whatever their record says until it restarts).
        live_after: Some(s.clock.now() - s.limits.node_stale),
    };
    let list: Vec<Session> = s
        .store
        .list_sessions(&filter)
        .await?
        .into_iter()
        .filter(|x| caller.sees_vendor(&x.vendor_id))
        .collect();
    match q.format.as_deref() {
        None | Some("json") => {
            let live = live_nodes(&s).await?;
            let views: Vec<SessionView> = list.into_iter().map(|x| SessionView::new(x, &live)).collect();
            Ok(Json(views).into_response())
        }
        Some("csv") => Ok(([(CONTENT_TYPE, "text/csv; charset=utf-8")], sessions_csv(&list)?).into_response()),
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
    caller.require(&[Role::Security, Role::Auditor, Role::Vendor])?;
    let session = s.store.session(&SessionId(id)).await?;
    if !caller.sees_vendor(&session.vendor_id) {
        return Err(ApiError::not_found("session"));
    }
    Ok(Json(SessionView::new(session, &live_nodes(&s).await?)))
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
