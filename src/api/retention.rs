//! Secure disposal (`POST /api/v1/purge`, admin) and the incident timeline
//! (`GET /api/v1/timeline`, security, auditor, admin).

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{rfc3339, ApiJson, ApiQuery};
use super::{ApiResult, ApiState, Caller, ErrorBody};
use crate::domain::{DeviceId, VendorId};
use crate::ops::{IncidentQuery, IncidentTimeline, PurgeInput};
use crate::store::PurgeCounts;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(purge)).routes(routes!(timeline))
}

/// A purge request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequestBody {
    /// The cut-off (RFC 3339): personal data older than this goes. At least
    /// `[retention] min_days` (default 365) in the past.
    #[serde(deserialize_with = "rfc3339::required")]
    pub before: DateTime<Utc>,
    /// Count only: nothing changes and nothing is recorded.
    #[serde(default)]
    pub dry_run: bool,
}

/// Erase or delete the personal data older than a cut-off, keeping the audit
/// chain verifiable (admin). What goes and what stays: docs/retention.md.
#[utoipa::path(post, path = "/api/v1/purge", request_body = PurgeRequestBody,
    responses((status = 200, body = PurgeCounts, description = "What was (or, with dry_run, would be) erased or deleted"),
        (status = 400, body = ErrorBody, description = "Cut-off in the future"),
        (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The audit events the purge would delete do not verify (the message names the first invalid sequence number): nothing was purged"),
        (status = 422, body = ErrorBody, description = "Cut-off within the minimum retention ([retention] min_days)")))]
async fn purge(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(req): ApiJson<PurgeRequestBody>,
) -> ApiResult<Json<PurgeCounts>> {
    let input = PurgeInput {
        before: req.before,
        dry_run: req.dry_run,
    };
    Ok(Json(s.ops.purge(&caller, &input).await?))
}

/// Whose timeline, over which period.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TimelineParams {
    /// One vendor (exactly one of vendor_id and device_id).
    pub vendor_id: Option<VendorId>,
    /// One device.
    pub device_id: Option<DeviceId>,
    /// From (RFC 3339, inclusive); default 30 days before `until`. The period
    /// is 366 days at most (longer: 400).
    #[serde(default, deserialize_with = "rfc3339::optional")]
    pub since: Option<DateTime<Utc>>,
    /// To (RFC 3339, exclusive); default now.
    #[serde(default, deserialize_with = "rfc3339::optional")]
    pub until: Option<DateTime<Utc>>,
    /// At most this many events (default and maximum 10,000); more is refused with 422.
    pub limit: Option<usize>,
}

/// Everything the audit trail holds about one vendor or one device over a
/// period, oldest first: windows and decisions, extensions, emergency grants,
/// sessions with their bytes and end, admission denials, reports (security,
/// auditor, admin).
#[utoipa::path(get, path = "/api/v1/timeline", params(TimelineParams),
    responses((status = 200, body = IncidentTimeline),
        (status = 400, body = ErrorBody, description = "Neither or both of vendor_id and device_id, bad dates, until not after since, or a period longer than 366 days"),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No such vendor or device"),
        (status = 422, body = ErrorBody, description = "More events than the limit: narrow the period")))]
async fn timeline(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<TimelineParams>,
) -> ApiResult<Json<IncidentTimeline>> {
    let query = IncidentQuery {
        vendor_id: q.vendor_id,
        device_id: q.device_id,
        since: q.since,
        until: q.until,
        limit: q.limit,
    };
    Ok(Json(s.ops.incident_timeline(&caller, &query).await?))
}
