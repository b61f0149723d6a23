//! Maintenance windows: request, list, approve, reject, cancel, revoke.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{rfc3339, ApiJson, ApiQuery};
use super::{ApiError, ApiResult, ApiState, Caller, ErrorBody, RestrictiveCaller};
use crate::domain::{one_line, DeviceId, VendorId, WindowId};
use crate::ops::{LifecycleState, WindowView, WindowsQuery};
use crate::store::Window;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(request_window, list_windows))
        .routes(routes!(get_window))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(revoke))
        .routes(routes!(cancel))
        .routes(routes!(extend))
        .routes(routes!(review))
}

/// A window request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestWindow {
    /// Required for admin accounts; a vendor account requests for itself.
    pub vendor_id: Option<VendorId>,
    /// Devices by id or by name (the TLS server name technicians connect to).
    #[schema(value_type = Vec<String>, example = json!(["mri-1"]))]
    pub device_ids: Vec<DeviceId>,
    /// RFC 3339 with an offset; at most one minute in the past.
    #[serde(deserialize_with = "rfc3339::required")]
    pub starts_at: DateTime<Utc>,
    /// RFC 3339 with an offset.
    #[serde(deserialize_with = "rfc3339::required")]
    pub ends_at: DateTime<Utc>,
    /// What will be done, for the approver (one line).
    pub reason: String,
}

/// Request a window (vendor for itself, admin for any vendor).
#[utoipa::path(post, path = "/api/v1/windows", request_body = RequestWindow,
    responses((status = 201, body = WindowView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn request_window(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(req): ApiJson<RequestWindow>,
) -> ApiResult<(StatusCode, Json<WindowView>)> {
    let reason = check_reason(&req.reason)?;
    let w = s
        .ops
        .request_window(
            &caller,
            crate::ops::WindowRequest {
                vendor_id: req.vendor_id,
                devices: req.device_ids,
                starts_at: req.starts_at,
                ends_at: req.ends_at,
                reason,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(s.ops.window_view(w))))
}

/// Filters of the window list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct WindowQuery {
    /// requested, approved, active, ended, rejected, cancelled, revoked.
    pub state: Option<String>,
    pub vendor_id: Option<VendorId>,
    pub device_id: Option<DeviceId>,
    /// Windows ending after this instant (RFC 3339).
    #[serde(default, deserialize_with = "rfc3339::optional")]
    pub since: Option<DateTime<Utc>>,
    /// Windows starting before this instant (RFC 3339).
    #[serde(default, deserialize_with = "rfc3339::optional")]
    pub until: Option<DateTime<Utc>>,
    /// Emergency grants only (true) or none (false).
    pub emergency: Option<bool>,
    /// With `emergency=true`: reviewed (true) or awaiting review (false).
    pub reviewed: Option<bool>,
}

/// List windows (a vendor account sees its own).
#[utoipa::path(get, path = "/api/v1/windows", params(WindowQuery),
    responses((status = 200, body = Vec<WindowView>), (status = 400, body = ErrorBody)))]
async fn list_windows(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<WindowQuery>,
) -> ApiResult<Json<Vec<WindowView>>> {
    Ok(Json(s.ops.windows(&caller, &q.parse()?).await?))
}

impl WindowQuery {
    fn parse(self) -> ApiResult<WindowsQuery> {
        let state = self
            .state
            .as_deref()
            .map(str::parse::<LifecycleState>)
            .transpose()
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(WindowsQuery {
            state,
            vendor_id: self.vendor_id,
            device_id: self.device_id,
            since: self.since,
            until: self.until,
            emergency: self.emergency,
            reviewed: self.reviewed,
        })
    }
}

pub(super) async fn visible_window(s: &ApiState, caller: &Caller, id: String) -> ApiResult<Window> {
    Ok(s.ops.visible_window(caller, &WindowId(id)).await?)
}

/// One window.
#[utoipa::path(get, path = "/api/v1/windows/{id}", params(("id" = String, Path)),
    responses((status = 200, body = WindowView), (status = 404, body = ErrorBody)))]
async fn get_window(State(s): State<ApiState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<WindowView>> {
    Ok(Json(s.ops.window(&caller, &WindowId(id)).await?))
}

/// A decision's justification.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    pub reason: String,
}

/// An optional justification.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionalReason {
    pub reason: Option<String>,
}

fn check_reason(r: &str) -> ApiResult<String> {
    Ok(one_line("reason", r, 2000)?)
}

/// Approve a requested window (security, admin; never the account that requested it).
#[utoipa::path(post, path = "/api/v1/windows/{id}/approve", params(("id" = String, Path)),
    responses((status = 200, body = WindowView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn approve(State(s): State<ApiState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<WindowView>> {
    let w = s.ops.approve_window(&caller, &WindowId(id)).await?;
    Ok(Json(s.ops.window_view(w)))
}

/// Reject a requested window (security, admin).
#[utoipa::path(post, path = "/api/v1/windows/{id}/reject", params(("id" = String, Path)), request_body = Reason,
    responses((status = 200, body = WindowView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn reject(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Reason>,
) -> ApiResult<Json<WindowView>> {
    let reason = check_reason(&req.reason)?;
    let w = s.ops.reject_window(&caller, &WindowId(id), reason).await?;
    Ok(Json(s.ops.window_view(w)))
}

/// Revoke an approved window (security, admin): its live tunnels are cut. The
/// cut and the refusal of new tunnels happen on this node first; if the database
/// cannot take the revocation, the answer is 503 but the cut stands, the window
/// stays refused here and the revocation is retried until stored.
#[utoipa::path(post, path = "/api/v1/windows/{id}/revoke", params(("id" = String, Path)), request_body = Reason,
    responses((status = 200, body = WindowView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "not stored yet: the tunnels are cut on this node and the revocation is retried")))]
async fn revoke(
    State(s): State<ApiState>,
    RestrictiveCaller(caller): RestrictiveCaller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Reason>,
) -> ApiResult<Json<WindowView>> {
    let reason = check_reason(&req.reason)?;
    let w = s.ops.revoke_window(&caller, &WindowId(id), reason).await?;
    Ok(Json(s.ops.window_view(w)))
}

/// Cancel a window before it starts (the requesting vendor, admin).
#[utoipa::path(post, path = "/api/v1/windows/{id}/cancel", params(("id" = String, Path)), request_body(content = OptionalReason, description = "optional"),
    responses((status = 200, body = WindowView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn cancel(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<WindowView>> {
    // The body is optional: an empty one means no reason given.
    let body: OptionalReason = if body.iter().all(u8::is_ascii_whitespace) {
        OptionalReason::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))?
    };
    let reason = body.reason.map(|r| check_reason(&r)).transpose()?;
    let w = s.ops.cancel_window(&caller, &WindowId(id), reason).await?;
    Ok(Json(s.ops.window_view(w)))
}

/// An extension request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendWindow {
    /// RFC 3339 with an offset.
    #[serde(deserialize_with = "rfc3339::required")]
    pub ends_at: DateTime<Utc>,
    pub reason: String,
}

/// Ask for a later end (the window's vendor). Security approves it with
/// `/approve` (never its requester) or refuses it with `/reject`. An emergency
/// grant stays within `policy.max_emergency_minutes` from its start, and its
/// extension is approved by a security account other than its granter.
#[utoipa::path(post, path = "/api/v1/windows/{id}/extend", params(("id" = String, Path)), request_body = ExtendWindow,
    responses((status = 200, body = WindowView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn extend(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ExtendWindow>,
) -> ApiResult<Json<WindowView>> {
    let reason = check_reason(&req.reason)?;
    let w = s
        .ops
        .request_extension(&caller, &WindowId(id), req.ends_at, reason)
        .await?;
    Ok(Json(s.ops.window_view(w)))
}

/// A retrospective review.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Review {
    /// `justified` or `unjustified`.
    pub verdict: String,
    pub comment: String,
}

/// Review an emergency grant afterwards (security; never the account that granted it).
#[utoipa::path(post, path = "/api/v1/windows/{id}/review", params(("id" = String, Path)), request_body = Review,
    responses((status = 200, body = WindowView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn review(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Review>,
) -> ApiResult<Json<WindowView>> {
    let comment = crate::domain::multi_line("comment", &req.comment, 2000)?;
    let w = s
        .ops
        .review_emergency(&caller, &WindowId(id), &req.verdict, comment)
        .await?;
    Ok(Json(s.ops.window_view(w)))
}
