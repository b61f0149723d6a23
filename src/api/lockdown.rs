//! Lockdown ("mise en sécurité"): cut every tunnel and refuse new ones until
//! security lifts it. The state is stored, so a restarted node stays locked;
//! locking down takes effect on this node before it is stored (see `guard`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiJson;
use super::{ApiResult, ApiState, Caller, ErrorBody, RestrictiveCaller};
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

/// The lockdown state as this node applies it.
#[derive(Debug, Serialize, ToSchema)]
pub struct LockdownView {
    pub active: bool,
    pub reason: Option<String>,
    pub set_by: Option<String>,
    pub set_at: Option<DateTime<Utc>>,
    /// Whether this state is stored in the database (every node follows it). False
    /// while a lockdown holds on this node only: it is retried until stored.
    pub persisted: bool,
    /// Set when this node is locked down by itself: `api` (a lockdown not stored
    /// yet) or `file` (the node's lockdown file, `gateway.lockdown_file`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<&'static str>,
    /// POST: tunnels this node cut.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnels_cut: Option<usize>,
    /// What happened, when it is not simply done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl LockdownView {
    fn new(state: LockdownState, persisted: bool) -> Self {
        Self {
            active: state.active,
            reason: state.reason,
            set_by: state.set_by,
            set_at: state.set_at,
            persisted,
            local: None,
            tunnels_cut: None,
            message: None,
        }
    }
}

/// The lockdown state: whether it is on, who set it, when and why. A lockdown
/// this node holds by itself (not stored yet, or from its lockdown file) is shown
/// even while the database is down.
#[utoipa::path(get, path = "/api/v1/lockdown", responses((status = 200, body = LockdownView), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn get_lockdown(
    State(s): State<ApiState>,
    RestrictiveCaller(caller): RestrictiveCaller,
) -> ApiResult<Json<LockdownView>> {
    let status = s.ops.lockdown_status(&caller).await?;
    let mut view = LockdownView::new(status.state, status.persisted);
    view.local = status.local;
    Ok(Json(view))
}

/// Lock down (security): every live tunnel of this node is cut and new ones are
/// refused at once, even if the database cannot be reached; the lockdown is then
/// stored (200) or, if the database does not take it, kept on this node and
/// retried until it is stored (202, `persisted: false`).
#[utoipa::path(post, path = "/api/v1/lockdown", request_body = LockdownReason,
    responses((status = 200, body = LockdownView, description = "locked down and stored"),
        (status = 202, body = LockdownView, description = "locked down on this node; not stored yet, retried"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn lock(
    State(s): State<ApiState>,
    RestrictiveCaller(caller): RestrictiveCaller,
    ApiJson(req): ApiJson<LockdownReason>,
) -> ApiResult<(StatusCode, Json<LockdownView>)> {
    let reason = reason(&req.reason)?;
    let outcome = s.ops.lock_down(&caller, reason).await?;
    let cut = outcome.cut;
    let mut view = LockdownView::new(outcome.state, outcome.stored.is_ok());
    view.tunnels_cut = Some(cut);
    match outcome.stored {
        Ok(()) => Ok((StatusCode::OK, Json(view))),
        Err(e) => {
            tracing::error!(error = %e, "lockdown in force on this node but not stored yet; retrying");
            view.local = Some("api");
            view.message = Some(format!(
                "locked down on this node ({cut} tunnels cut, new ones refused) but not stored yet: {e}; it is retried until stored, then every node follows"
            ));
            Ok((StatusCode::ACCEPTED, Json(view)))
        }
    }
}

/// Lift the lockdown (security, with a reason). Needs the database: lifting is
/// not a restrictive action. A node locked down by its lockdown file stays so
/// until `portier lockdown off` removes the file (409).
#[utoipa::path(delete, path = "/api/v1/lockdown", request_body = LockdownReason,
    responses((status = 200, body = LockdownView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn unlock(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(req): ApiJson<LockdownReason>,
) -> ApiResult<Json<LockdownView>> {
    let reason = reason(&req.reason)?;
    let state = s.ops.lift_lockdown(&caller, reason).await?;
    Ok(Json(LockdownView::new(state, true)))
}
