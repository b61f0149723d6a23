//! Lockdown ("mise en sécurité"): cut every tunnel and refuse new ones until
//! security lifts it. The state is stored, so a restarted node stays locked;
//! locking down takes effect on this node before it is stored (see `guard`).

use crate::events::Event;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiJson;
use super::{ApiError, ApiResult, ApiState, Caller, ErrorBody, RestrictiveCaller};
use crate::audit::AuditEvent;
use crate::domain::{EndReason, Role};
use crate::guard::LiftError;
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
async fn get_lockdown(State(s): State<ApiState>, _caller: RestrictiveCaller) -> ApiResult<Json<LockdownView>> {
    let stored = s.store.lockdown().await;
    match (s.cache.guard().local_lockdown(), stored) {
        (None, stored) => Ok(Json(LockdownView::new(stored?, true))),
        (Some((local, source)), stored) => {
            let persisted = stored.is_ok_and(|st| st.active && st.set_at == local.set_at);
            let mut view = LockdownView::new(local, persisted);
            view.local = Some(source);
            Ok(Json(view))
        }
    }
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
    caller.require(&[Role::Security])?;
    let reason = reason(&req.reason)?;
    let now = s.clock.now();
    let state = LockdownState {
        active: true,
        reason: Some(reason.clone()),
        set_by: Some(caller.id.0.clone()),
        set_at: Some(crate::audit::truncate_micros(now)),
    };
    // Invariant 7: cut and refuse here first; the store may not take it.
    let guard = s.cache.guard();
    guard.lock_locally(state.clone());
    let cut = s.registry.cut_all(EndReason::Lockdown);
    s.notifier.send(
        Event::LockdownOn,
        serde_json::json!({"reason": reason, "by": caller.name, "tunnels_cut": cut}),
    );
    let event = AuditEvent::new(
        now,
        caller.actor(),
        Event::LockdownOn,
        "lockdown",
        "success",
        serde_json::json!({"reason": reason, "tunnels_cut": cut}),
    );
    let stored = guard
        .persist_lockdown(s.store.as_ref(), &s.journal, state.clone(), event)
        .await;
    let mut view = LockdownView::new(state, stored.is_ok());
    view.tunnels_cut = Some(cut);
    match stored {
        Ok(()) => {
            s.admission_changed().await;
            Ok((StatusCode::OK, Json(view)))
        }
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
    caller.require(&[Role::Security])?;
    let reason = reason(&req.reason)?;
    let guard = s.cache.guard();
    if let Some(file) = guard.file_lockdown() {
        return Err(ApiError::conflict(format!(
            "this node is locked down by its lockdown file (reason: {}): lift it on the server with `portier lockdown off`",
            file.reason.unwrap_or_default()
        )));
    }
    let state = LockdownState {
        active: false,
        reason: Some(reason.clone()),
        set_by: Some(caller.id.0.clone()),
        set_at: Some(crate::audit::truncate_micros(s.clock.now())),
    };
    guard
        .lift_lockdown(s.store.as_ref(), &s.journal, &state)
        .await
        .map_err(|e| match e {
            LiftError::Store(e) => ApiError::from(e),
            pending @ LiftError::Pending(_) => ApiError::unavailable(pending.to_string()),
        })?;
    s.admission_changed().await;
    s.notifier.send(
        Event::LockdownOff,
        serde_json::json!({"reason": reason, "by": caller.name}),
    );
    s.audit(
        &caller,
        Event::LockdownOff,
        "lockdown",
        serde_json::json!({"reason": reason}),
    )
    .await;
    Ok(Json(LockdownView::new(state, true)))
}
