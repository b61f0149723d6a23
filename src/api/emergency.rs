//! Emergency access: the exception procedure for urgent interventions.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiJson;
use super::vendors::parse_networks;
use super::{ApiResult, ApiState, Caller, ErrorBody};
use crate::domain::{one_line, DeviceId, VendorId};
use crate::ops::WindowView;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(grant))
}

/// An emergency grant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmergencyGrant {
    pub vendor_id: VendorId,
    /// Devices by id or by name (the TLS server name technicians connect to).
    #[schema(value_type = Vec<String>, example = json!(["mri-1"]))]
    pub device_ids: Vec<DeviceId>,
    /// At most `policy.max_emergency_minutes`.
    pub duration_minutes: u32,
    /// Why this cannot wait for a planned window (mandatory).
    pub justification: String,
    /// Source networks admitted for this grant only, besides the vendor's declared
    /// ones; none broader than `policy.min_network_prefix_v4` / `_v6`.
    pub extra_networks: Option<Vec<String>>,
}

/// Grant emergency access (security): an approved window starting now, flagged
/// `emergency`, notified, and awaiting a review by a second security account.
/// It bypasses an overdue report, nothing else.
#[utoipa::path(post, path = "/api/v1/emergency", request_body = EmergencyGrant,
    responses((status = 201, body = WindowView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn grant(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(req): ApiJson<EmergencyGrant>,
) -> ApiResult<(StatusCode, Json<WindowView>)> {
    let justification = one_line("justification", &req.justification, 2000)?;
    let extra_networks = parse_networks(
        req.extra_networks.as_deref().unwrap_or_default(),
        Some(s.limits.networks),
    )?;
    let w = s
        .ops
        .grant_emergency(
            &caller,
            crate::ops::EmergencyGrant {
                vendor_id: req.vendor_id,
                devices: req.device_ids,
                duration_minutes: req.duration_minutes,
                justification,
                extra_networks,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(s.ops.window_view(w))))
}
