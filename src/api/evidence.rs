//! Auditors' evidence: the audit trail (JSON or JSONL), its verification, and the
//! network flow matrix.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{rfc3339, ApiQuery};
use super::{ApiError, ApiResult, ApiState, Caller, ErrorBody};
use crate::audit::{AuditRecord, Verification};
use crate::flows::{self, Flow};
use crate::ops::AuditPage;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_audit))
        .routes(routes!(verify))
        .routes(routes!(flow_matrix))
}

/// Filters of the audit export.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Events at or after (RFC 3339).
    #[serde(default, deserialize_with = "rfc3339::optional")]
    pub since: Option<DateTime<Utc>>,
    /// Events before (RFC 3339).
    #[serde(default, deserialize_with = "rfc3339::optional")]
    pub until: Option<DateTime<Utc>>,
    /// At most this many events (default and maximum 100,000).
    pub limit: Option<u32>,
    /// Events after this sequence number (for paging).
    pub after_seq: Option<i64>,
    /// `json` (default) or `jsonl`.
    pub format: Option<String>,
}

/// The audit trail, with each event's hash so an export is verifiable on its own
/// (security, auditor).
#[utoipa::path(get, path = "/api/v1/audit", params(AuditQuery),
    responses((status = 200, body = Vec<AuditRecord>, description = "JSON, or JSON Lines with ?format=jsonl"), (status = 403, body = ErrorBody)))]
async fn list_audit(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Response> {
    let page = AuditPage {
        since: q.since,
        until: q.until,
        limit: q.limit,
        after_seq: q.after_seq,
    };
    let records = s.ops.audit(&caller, &page).await?;
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(records).into_response()),
        Some("jsonl") => {
            let mut body = String::new();
            for r in &records {
                body.push_str(&serde_json::to_string(r).map_err(|e| ApiError::internal("audit event as JSON", &e))?);
                body.push('\n');
            }
            Ok(([(CONTENT_TYPE, "application/x-ndjson")], body).into_response())
        }
        Some(other) => Err(ApiError::bad_request(format!(
            "unknown format {other:?} (json or jsonl)"
        ))),
    }
}

/// Recomputes the whole hash chain (security, auditor).
#[utoipa::path(get, path = "/api/v1/audit/verify", responses((status = 200, body = Verification), (status = 403, body = ErrorBody)))]
async fn verify(State(s): State<ApiState>, caller: Caller) -> ApiResult<Json<Verification>> {
    Ok(Json(s.ops.verify_audit(&caller).await?))
}

/// Format of the flow matrix.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FlowQuery {
    /// `json` (default), `csv` or `md`.
    pub format: Option<String>,
}

/// The network flow matrix, from the live configuration (admin, security, auditor).
#[utoipa::path(get, path = "/api/v1/flows", params(FlowQuery), responses((status = 200, body = Vec<Flow>), (status = 403, body = ErrorBody)))]
async fn flow_matrix(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<FlowQuery>,
) -> ApiResult<Response> {
    let rows = s.ops.flow_matrix(&caller, &s.node).await?;
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(rows).into_response()),
        Some("csv") => {
            let csv = flows::to_csv(&rows).map_err(|e| ApiError::internal("flow matrix as CSV", &e))?;
            Ok(([(CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response())
        }
        Some("md") => Ok((
            [(CONTENT_TYPE, "text/markdown; charset=utf-8")],
            flows::to_markdown(&rows),
        )
            .into_response()),
        Some(other) => Err(ApiError::bad_request(format!(
            "unknown format {other:?} (json, csv or md)"
        ))),
    }
}
