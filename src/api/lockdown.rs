//! Lockdown ("mise en sécurité"): cut every tunnel and refuse new ones until
//! security lifts it. The state is stored, so a restarted node stays locked.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiJson;
use super::{ApiResult, ApiState, Caller, ErrorBody};
use crate::domain::{EndReason, Role};
use crate::store::LockdownState;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(get_lockdown, lock, unlock))
}

/// Why.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LockdownReason {
    pub reason: String,
}

fn reason(r: &str) -> ApiResult<String> {
    Ok(crate::domain::one_line("reason", r, 2000)?)
}

/// The lockdown state: whether it is on, who set it, when and why.
#[utoipa::path(get, path = "/api/v1/lockdown", responses((status = 200, body = LockdownState), (status = 401, body = ErrorBody)))]
async fn get_lockdown(State(s): State<ApiState>, _caller: Caller) -> ApiResult<Json<LockdownState>> {
    Ok(Json(s.store.lockdown().await?))
}

/// Stores the switch and records who set it, when and why.
async fn switch(s: &ApiState, caller: &Caller, active: bool, reason: String) -> ApiResult<LockdownState> {
    let state = LockdownState {
        active,
        reason: Some(reason),
        set_by: Some(caller.id.0.clone()),
        set_at: Some(crate::audit::truncate_micros(s.clock.now())),
    };
    s.store.set_lockdown(&state).await?;
    Ok(state)
}

/// Lock down (security): every live tunnel is cut, every new one refused.
#[utoipa::path(post, path = "/api/v1/lockdown", request_body = LockdownReason,
    responses((status = 200, body = LockdownState), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn lock(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(req): ApiJson<LockdownReason>,
) -> ApiResult<Json<LockdownState>> {
    caller.require(&[Role::Security])?;
    let reason = reason(&req.reason)?;
    let state = switch(&s, &caller, true, reason.clone()).await?;
    let cut = s.registry.cut_all(EndReason::Lockdown);
    s.admission_changed().await;
    s.notifier.send(
        "lockdown.on",
        serde_json::json!({"reason": reason, "by": caller.name, "tunnels_cut": cut}),
    );
    s.audit(
        &caller,
        "lockdown.on",
        "lockdown",
        serde_json::json!({"reason": reason, "tunnels_cut": cut}),
    )
    .await;
    Ok(Json(state))
}

/// Lift the lockdown (security, with a reason).
#[utoipa::path(delete, path = "/api/v1/lockdown", request_body = LockdownReason,
    responses((status = 200, body = LockdownState), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn unlock(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(req): ApiJson<LockdownReason>,
) -> ApiResult<Json<LockdownState>> {
    caller.require(&[Role::Security])?;
    let reason = reason(&req.reason)?;
    let state = switch(&s, &caller, false, reason.clone()).await?;
    s.admission_changed().await;
    s.notifier
        .send("lockdown.off", serde_json::json!({"reason": reason, "by": caller.name}));
    s.audit(
        &caller,
        "lockdown.off",
        "lockdown",
        serde_json::json!({"reason": reason}),
    )
    .await;
    Ok(Json(state))
}
