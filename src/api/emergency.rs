//! Emergency access: the exception procedure for urgent interventions.

use crate::events::Event;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiJson;
use super::vendors::parse_networks;
use super::windows::{assigned_devices, WindowView};
use super::{ApiError, ApiResult, ApiState, Caller, ErrorBody};
use crate::domain::{one_line, DeviceId, Role, VendorId};
use crate::store::NewWindow;

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
    caller.require(&[Role::Security])?;
    if req.justification.trim().is_empty() {
        return Err(ApiError::bad_request(
            "justification is mandatory for an emergency grant",
        ));
    }
    let justification = one_line("justification", &req.justification, 2000)?;
    let max = s.limits.max_emergency.num_minutes();
    if req.duration_minutes == 0 || i64::from(req.duration_minutes) > max {
        return Err(ApiError::bad_request(format!(
            "duration_minutes must be 1 to {max} (policy.max_emergency_minutes)"
        )));
    }
    let extra_networks = parse_networks(
        req.extra_networks.as_deref().unwrap_or_default(),
        Some(s.limits.networks),
    )?;
    let vendor = s.store.vendor(&req.vendor_id).await.map_err(|e| {
        ApiError::unless_found(e, || {
            ApiError::unprocessable(format!("unknown vendor {}", req.vendor_id))
        })
    })?;
    let device_ids = assigned_devices(&s, &vendor.id, req.device_ids).await?;
    let now = s.clock.now();
    let w = s
        .store
        .create_window(
            &NewWindow {
                vendor_id: vendor.id.clone(),
                device_ids,
                starts_at: now,
                ends_at: now + chrono::Duration::minutes(i64::from(req.duration_minutes)),
                reason: justification.clone(),
                requested_by: caller.id.0.clone(),
                emergency: true,
                approved_by: Some(caller.id.0.clone()),
                extra_networks,
            },
            now,
        )
        .await?;
    s.admission_changed().await;
    let details = serde_json::json!({
        "window_id": w.id, "vendor_id": w.vendor_id, "vendor_name": vendor.name, "device_ids": w.device_ids,
        "ends_at": w.ends_at, "justification": justification, "extra_networks": w.extra_networks, "granted_by": caller.name,
    });
    s.notifier.send(Event::EmergencyGranted, details.clone());
    s.audit(&caller, Event::EmergencyGranted, w.id.as_str(), details).await;
    Ok((StatusCode::CREATED, Json(WindowView::new(w, now))))
}
