//! Maintenance windows: request, list, approve, reject, cancel, revoke.

use crate::events::Event;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{rfc3339, ApiJson, ApiQuery};
use super::{ApiError, ApiResult, ApiState, Caller, ErrorBody, RestrictiveCaller};
use crate::audit::AuditEvent;
use crate::domain::{one_line, DeviceId, DeviceName, EndReason, Role, VendorId, WindowId, WindowState};
use crate::guard::{Pending, Restriction};
use crate::store::{JournalEntry, NewWindow, StoreError, Window, WindowFilter, WindowTransition};

/// How far in the past a window may start: a request prepared a moment ago
/// (or "starting now" on a client whose clock is a little ahead) is accepted; a
/// backdated window is not.
pub const MAX_PAST_START: chrono::Duration = chrono::Duration::minutes(1);
/// Allowance for the request's transit on top of [`MAX_PAST_START`], so that a
/// client sending exactly "one minute ago" is not refused for the milliseconds
/// its request took.
const TRANSIT_GRACE: chrono::Duration = chrono::Duration::seconds(5);

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

/// A window as shown: `state` is its lifecycle state, where `approved` becomes
/// `active` between its start and end and `ended` after.
#[derive(Debug, Serialize, ToSchema)]
pub struct WindowView {
    pub id: WindowId,
    pub vendor_id: VendorId,
    pub device_ids: Vec<DeviceId>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// requested, approved, active, ended, rejected, cancelled or revoked.
    pub state: String,
    pub reason: String,
    pub emergency: bool,
    pub extra_networks: Vec<String>,
    /// Account that requested it.
    pub requested_by: String,
    pub approved_by: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub review_verdict: Option<String>,
    pub review_comment: Option<String>,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<DateTime<Utc>>,
    /// A pending extension: the end asked for, why, and by whom.
    pub extension_ends_at: Option<DateTime<Utc>>,
    pub extension_reason: Option<String>,
    pub extension_requested_by: Option<String>,
}

/// The lifecycle state of a window at `now`.
pub fn lifecycle_state(w: &Window, now: DateTime<Utc>) -> &'static str {
    match w.state {
        WindowState::Approved if now >= w.ends_at => "ended",
        WindowState::Approved if now >= w.starts_at => "active",
        other => other.as_str(),
    }
}

impl WindowView {
    pub fn new(w: Window, now: DateTime<Utc>) -> Self {
        Self {
            state: lifecycle_state(&w, now).to_owned(),
            id: w.id,
            vendor_id: w.vendor_id,
            device_ids: w.device_ids,
            starts_at: w.starts_at,
            ends_at: w.ends_at,
            reason: w.reason,
            emergency: w.emergency,
            extra_networks: w.extra_networks.iter().map(ToString::to_string).collect(),
            requested_by: w.requested_by,
            approved_by: w.approved_by,
            decided_by: w.decided_by,
            decided_at: w.decided_at,
            decision_reason: w.decision_reason,
            created_at: w.created_at,
            review_verdict: w.review_verdict,
            review_comment: w.review_comment,
            reviewed_by: w.reviewed_by,
            reviewed_at: w.reviewed_at,
            extension_ends_at: w.extension_ends_at,
            extension_reason: w.extension_reason,
            extension_requested_by: w.extension_requested_by,
        }
    }
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
    caller.require(&[Role::Vendor, Role::Admin])?;
    let vendor_id = match (caller.role, req.vendor_id) {
        (Role::Vendor, Some(v)) if !caller.sees_vendor(&v) => {
            return Err(ApiError::forbidden(
                "a vendor account requests windows for its own vendor only",
            ))
        }
        (Role::Vendor, _) => caller
            .vendor_id
            .clone()
            .ok_or_else(|| ApiError::forbidden("this vendor account has no vendor"))?,
        (_, Some(v)) => v,
        (_, None) => return Err(ApiError::bad_request("vendor_id is required")),
    };
    let now = s.clock.now();
    let reason = check_reason(&req.reason)?;
    if req.ends_at <= req.starts_at {
        return Err(ApiError::bad_request("ends_at must be after starts_at"));
    }
    if req.ends_at <= now {
        return Err(ApiError::bad_request(
            "the window would already be over: ends_at is in the past",
        ));
    }
    if req.starts_at < now - MAX_PAST_START - TRANSIT_GRACE {
        return Err(ApiError::bad_request(format!(
            "starts_at ({}) is {} minutes in the past: a window may start at most 1 minute ago (give the current time to start now)",
            req.starts_at.to_rfc3339(),
            (now - req.starts_at).num_minutes()
        )));
    }
    if req.ends_at - req.starts_at > s.limits.max_window {
        return Err(ApiError::bad_request(format!(
            "the window is longer than the allowed maximum of {} hours (policy.max_window_hours)",
            s.limits.max_window.num_hours()
        )));
    }
    if req.starts_at > now + s.limits.max_horizon {
        return Err(ApiError::bad_request(format!(
            "windows may start at most {} days ahead (policy.max_horizon_days)",
            s.limits.max_horizon.num_days()
        )));
    }
    let vendor =
        s.store.vendor(&vendor_id).await.map_err(|e| {
            ApiError::unless_found(e, || ApiError::unprocessable(format!("unknown vendor {vendor_id}")))
        })?;
    if s.limits.on_overdue == crate::policy::OverdueMode::Block {
        let overdue = s
            .store
            .unreported_windows(Some(&vendor.id), now - s.limits.report_due)
            .await?;
        if let Some(w) = overdue.first() {
            return Err(ApiError::conflict(format!(
                "the intervention report of window {} (ended {}) is overdue: file it before requesting a new window",
                w.id,
                w.closed_at.unwrap_or(w.ends_at)
            )));
        }
    }
    let device_ids = assigned_devices(&s, &vendor.id, req.device_ids).await?;
    let w = s
        .store
        .create_window(
            &NewWindow {
                vendor_id: vendor.id,
                device_ids,
                starts_at: req.starts_at,
                ends_at: req.ends_at,
                reason,
                requested_by: caller.id.0.clone(),
                emergency: false,
                approved_by: None,
                extra_networks: vec![],
            },
            now,
        )
        .await?;
    s.notifier.send(Event::WindowRequested, serde_json::json!({"window_id": w.id, "vendor_id": w.vendor_id, "starts_at": w.starts_at, "ends_at": w.ends_at}));
    s.audit(
        &caller,
        Event::WindowRequested,w.id.as_str(),
        serde_json::json!({"vendor_id": w.vendor_id, "device_ids": w.device_ids, "starts_at": w.starts_at, "ends_at": w.ends_at, "reason": w.reason}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(WindowView::new(w, now))))
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
    let wanted = q.state.as_deref();
    let stored = match wanted {
        None => None,
        Some("active" | "ended") => Some(WindowState::Approved),
        Some(other) => Some(
            other
                .parse::<WindowState>()
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
        ),
    };
    let vendor_id = match caller.role {
        Role::Vendor => caller.vendor_id.clone(),
        _ => q.vendor_id,
    };
    let filter = WindowFilter {
        state: stored,
        vendor_id,
        device_id: q.device_id,
        since: q.since,
        until: q.until,
        emergency: q.emergency,
        reviewed: q.reviewed,
    };
    let now = s.clock.now();
    let list = s.store.list_windows(&filter).await?;
    Ok(Json(
        list.into_iter()
            .filter(|w| caller.sees_vendor(&w.vendor_id))
            .map(|w| WindowView::new(w, now))
            // The store filters on stored states; `active` and `ended` depend on the clock.
            .filter(|w| !matches!(wanted, Some("active" | "ended")) || wanted == Some(w.state.as_str()))
            .collect(),
    ))
}

pub(super) async fn visible_window(s: &ApiState, caller: &Caller, id: String) -> ApiResult<Window> {
    let w = s.store.window(&WindowId(id)).await?;
    if !caller.sees_vendor(&w.vendor_id) {
        return Err(ApiError::not_found("window"));
    }
    Ok(w)
}

/// One window.
#[utoipa::path(get, path = "/api/v1/windows/{id}", params(("id" = String, Path)),
    responses((status = 200, body = WindowView), (status = 404, body = ErrorBody)))]
async fn get_window(State(s): State<ApiState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<WindowView>> {
    let w = visible_window(&s, &caller, id).await?;
    Ok(Json(WindowView::new(w, s.clock.now())))
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

async fn transition(
    s: &ApiState,
    caller: &Caller,
    id: &WindowId,
    from: &[WindowState],
    to: WindowState,
    reason: Option<String>,
) -> ApiResult<Window> {
    let t = WindowTransition {
        from: from.to_vec(),
        to,
        by: caller.id.0.clone(),
        reason,
        at: s.clock.now(),
    };
    Ok(s.store.transition_window(id, &t).await?)
}

/// Approve a requested window (security, admin; never the account that requested it).
#[utoipa::path(post, path = "/api/v1/windows/{id}/approve", params(("id" = String, Path)),
    responses((status = 200, body = WindowView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn approve(State(s): State<ApiState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<WindowView>> {
    caller.require(&[Role::Security, Role::Admin])?;
    let w = s.store.window(&WindowId(id)).await?;
    if w.state == WindowState::Approved && w.extension_ends_at.is_some() {
        return approve_extension(&s, &caller, w).await;
    }
    if w.requested_by == caller.id.0 {
        return Err(ApiError::forbidden(
            "separation of duties: a window cannot be approved by the account that requested it",
        ));
    }
    let now = s.clock.now();
    if w.ends_at <= now {
        return Err(ApiError::conflict("the window is already over"));
    }
    let w = transition(
        &s,
        &caller,
        &w.id,
        &[WindowState::Requested],
        WindowState::Approved,
        None,
    )
    .await?;
    s.admission_changed().await;
    s.notifier.send(Event::WindowApproved, serde_json::json!({"window_id": w.id, "vendor_id": w.vendor_id, "starts_at": w.starts_at, "ends_at": w.ends_at}));
    s.audit(
        &caller,
        Event::WindowApproved,
        w.id.as_str(),
        serde_json::json!({"vendor_id": w.vendor_id, "requested_by": w.requested_by}),
    )
    .await;
    Ok(Json(WindowView::new(w, now)))
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
    caller.require(&[Role::Security, Role::Admin])?;
    let reason = check_reason(&req.reason)?;
    let current = s.store.window(&WindowId(id)).await?;
    if let (WindowState::Approved, Some(pending)) = (current.state, current.extension_ends_at) {
        let w = s
            .store
            .decide_extension(&current.id, pending, false, caller.id.as_str(), s.clock.now())
            .await?;
        s.notifier.send(
            Event::WindowExtensionRejected,
            serde_json::json!({"window_id": w.id, "vendor_id": w.vendor_id, "reason": reason}),
        );
        s.audit(
            &caller,
            Event::WindowExtensionRejected,
            w.id.as_str(),
            serde_json::json!({"reason": reason}),
        )
        .await;
        return Ok(Json(WindowView::new(w, s.clock.now())));
    }
    let w = transition(
        &s,
        &caller,
        &current.id,
        &[WindowState::Requested],
        WindowState::Rejected,
        Some(reason.clone()),
    )
    .await?;
    s.notifier.send(
        Event::WindowRejected,
        serde_json::json!({"window_id": w.id, "vendor_id": w.vendor_id, "reason": reason}),
    );
    s.audit(
        &caller,
        Event::WindowRejected,
        w.id.as_str(),
        serde_json::json!({"reason": reason}),
    )
    .await;
    Ok(Json(WindowView::new(w, s.clock.now())))
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
    caller.require(&[Role::Security, Role::Admin])?;
    let reason = check_reason(&req.reason)?;
    let id = WindowId(id);
    // Invariant 7: cut and refuse first; only an approved window has tunnels.
    let restriction = Restriction::Window(id.clone());
    let guard = s.cache.guard();
    guard.restrict(restriction.clone());
    let cut = s.registry.cut_window(&id, EndReason::WindowRevoked);
    let t = WindowTransition {
        from: vec![WindowState::Approved],
        to: WindowState::Revoked,
        by: caller.id.0.clone(),
        reason: Some(reason.clone()),
        at: s.clock.now(),
    };
    let event = AuditEvent::new(
        t.at,
        caller.actor(),
        Event::WindowRevoked,
        id.as_str(),
        "success",
        serde_json::json!({"reason": reason, "tunnels_cut": cut}),
    );
    let w = match s.store.transition_window(&id, &t).await {
        Ok(w) => w,
        Err(e) if e.is_unavailable() => {
            tracing::error!(error = %e, window = %id, "revocation not stored; kept on this node and retried");
            guard.defer(Pending::RevokeWindow {
                id,
                transition: t,
                event,
            });
            return Err(ApiError::unavailable(format!(
                "the database cannot be reached: {cut} live tunnels of this window were cut on this node and it stays refused here; the revocation is stored as soon as the database is back"
            )));
        }
        Err(e) => {
            guard.release(&restriction);
            return Err(e.into());
        }
    };
    guard.release(&restriction);
    s.admission_changed().await;
    s.notifier.send(
        Event::WindowRevoked,
        serde_json::json!({"window_id": w.id, "vendor_id": w.vendor_id, "reason": reason, "emergency": w.emergency}),
    );
    if let Err(e) = s.journal.write(JournalEntry::Audit(event.clone())).await {
        tracing::error!(error = %e, "revocation stored, its audit event is retried");
        guard.defer(Pending::Audit(event));
    }
    Ok(Json(WindowView::new(w, s.clock.now())))
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
    caller.require(&[Role::Vendor, Role::Admin])?;
    let w = visible_window(&s, &caller, id).await?;
    let now = s.clock.now();
    if w.state == WindowState::Approved && w.starts_at <= now {
        return Err(ApiError::conflict("the window has started: ask security to revoke it"));
    }
    // The body is optional: an empty one means no reason given.
    let body: OptionalReason = if body.iter().all(u8::is_ascii_whitespace) {
        OptionalReason::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))?
    };
    let reason = body.reason.map(|r| check_reason(&r)).transpose()?;
    let w = transition(
        &s,
        &caller,
        &w.id,
        &[WindowState::Requested, WindowState::Approved],
        WindowState::Cancelled,
        reason,
    )
    .await?;
    s.admission_changed().await;
    s.audit(&caller, Event::WindowCancelled, w.id.as_str(), serde_json::json!({}))
        .await;
    Ok(Json(WindowView::new(w, now)))
}

async fn approve_extension(s: &ApiState, caller: &Caller, w: Window) -> ApiResult<Json<WindowView>> {
    let Some(pending) = w.extension_ends_at else {
        return Err(ApiError::conflict("no extension is pending for this window"));
    };
    if w.extension_requested_by.as_deref() == Some(caller.id.as_str()) {
        return Err(ApiError::forbidden(
            "separation of duties: an extension cannot be approved by the account that requested it",
        ));
    }
    if w.emergency {
        // Invariant 4: an emergency grant is a second person's decision; stretching
        // it is one too, and it stays within the cap however it is extended.
        check_emergency_extension(caller, &w)?;
        check_emergency_cap(s, &w, pending).map_err(|e| ApiError::conflict(e.message))?;
    }
    let now = s.clock.now();
    if w.ends_at <= now {
        return Err(ApiError::conflict("the window is already over: request a new window"));
    }
    let w = s
        .store
        .decide_extension(&w.id, pending, true, caller.id.as_str(), now)
        .await?;
    // Live tunnels keep running, with their deadline moved.
    let moved = s.registry.move_window_deadline(&w.id, w.ends_at);
    s.admission_changed().await;
    s.notifier.send(
        Event::WindowExtended,
        serde_json::json!({"window_id": w.id, "vendor_id": w.vendor_id, "ends_at": w.ends_at}),
    );
    s.audit(
        caller,
        Event::WindowExtended,
        w.id.as_str(),
        serde_json::json!({"ends_at": w.ends_at, "live_tunnels": moved}),
    )
    .await;
    Ok(Json(WindowView::new(w, now)))
}

/// 400 if an emergency grant extended to `ends_at` would last longer, from its
/// start, than `policy.max_emergency_minutes`.
fn check_emergency_cap(s: &ApiState, w: &Window, ends_at: DateTime<Utc>) -> ApiResult<()> {
    let max = s.limits.max_emergency;
    let total = ends_at - w.starts_at;
    if total > max {
        return Err(ApiError::bad_request(format!(
            "an emergency grant lasts at most {} minutes in all (policy.max_emergency_minutes); extended to {} it would last {} minutes: request a planned window instead",
            max.num_minutes(),
            ends_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            total.num_minutes()
        )));
    }
    Ok(())
}

/// 403 unless the caller may approve the extension of an emergency grant: a
/// security account other than the one that granted it.
fn check_emergency_extension(caller: &Caller, w: &Window) -> ApiResult<()> {
    if caller.role != Role::Security {
        return Err(ApiError::forbidden(
            "the extension of an emergency grant is approved by a security account",
        ));
    }
    let granter = w.approved_by.as_deref().unwrap_or(w.requested_by.as_str());
    if granter == caller.id.as_str() || w.requested_by == caller.id.as_str() {
        return Err(ApiError::forbidden(
            "separation of duties: the extension of an emergency grant is approved by a second security account, not its granter",
        ));
    }
    Ok(())
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
    caller.require(&[Role::Vendor])?;
    let w = visible_window(&s, &caller, id).await?;
    let reason = check_reason(&req.reason)?;
    let now = s.clock.now();
    if w.state != WindowState::Approved || w.ends_at <= now {
        return Err(ApiError::conflict(
            "only an approved window that has not ended can be extended",
        ));
    }
    if req.ends_at <= w.ends_at {
        return Err(ApiError::bad_request("ends_at must be after the window's current end"));
    }
    if w.emergency {
        check_emergency_cap(&s, &w, req.ends_at)?;
    }
    if req.ends_at - w.starts_at > s.limits.max_window {
        return Err(ApiError::bad_request(format!(
            "the extended window would be longer than the allowed maximum of {} hours (policy.max_window_hours)",
            s.limits.max_window.num_hours()
        )));
    }
    let w = s
        .store
        .request_extension(&w.id, req.ends_at, &reason, caller.id.as_str())
        .await?;
    s.notifier.send(
        Event::WindowExtensionRequested,
        serde_json::json!({"window_id": w.id, "vendor_id": w.vendor_id, "ends_at": req.ends_at, "reason": reason}),
    );
    s.audit(
        &caller,
        Event::WindowExtensionRequested,
        w.id.as_str(),
        serde_json::json!({"ends_at": req.ends_at, "reason": reason}),
    )
    .await;
    Ok(Json(WindowView::new(w, now)))
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
    caller.require(&[Role::Security])?;
    if req.verdict != "justified" && req.verdict != "unjustified" {
        return Err(ApiError::bad_request(
            "verdict must be \"justified\" or \"unjustified\"",
        ));
    }
    let comment = crate::domain::multi_line("comment", &req.comment, 2000)?;
    let w = s.store.window(&WindowId(id)).await?;
    if !w.emergency {
        return Err(ApiError::conflict("only emergency grants are reviewed"));
    }
    if w.approved_by.as_deref() == Some(caller.id.as_str()) {
        return Err(ApiError::forbidden(
            "separation of duties: an emergency grant is reviewed by a second security account, not its granter",
        ));
    }
    let w = s
        .store
        .review_window(&w.id, &req.verdict, &comment, caller.id.as_str(), s.clock.now())
        .await?;
    s.notifier.send(
        Event::EmergencyReviewed,
        serde_json::json!({"window_id": w.id, "verdict": req.verdict}),
    );
    s.audit(
        &caller,
        Event::EmergencyReviewed,
        w.id.as_str(),
        serde_json::json!({"verdict": req.verdict, "comment": comment}),
    )
    .await;
    Ok(Json(WindowView::new(w, s.clock.now())))
}

/// The devices of a request, given by id or by name (the TLS server name
/// technicians connect to): resolved to ids, sorted, without duplicates, 1 to
/// 100 of them, each existing and assigned to `vendor` (422 otherwise).
pub(super) async fn assigned_devices(
    s: &ApiState,
    vendor: &VendorId,
    given: Vec<DeviceId>,
) -> ApiResult<Vec<DeviceId>> {
    if given.is_empty() || given.len() > 100 {
        return Err(ApiError::bad_request("device_ids must list 1 to 100 devices"));
    }
    let mut all = None;
    let mut ids = Vec::with_capacity(given.len());
    for entry in given {
        let device = match s.store.device(&entry).await {
            Ok(d) => d,
            Err(StoreError::NotFound(_)) => {
                // Not an id: perhaps a name. The list is read once per request.
                let name = DeviceName::try_from(entry.0.clone()).ok();
                if all.is_none() {
                    all = Some(s.store.list_devices().await?);
                }
                let found = name.and_then(|n| all.iter().flatten().find(|d| d.name == n).cloned());
                found.ok_or_else(|| {
                    ApiError::unprocessable(format!("unknown device {:?} (neither an id nor a name)", entry.0))
                })?
            }
            Err(e) => return Err(e.into()),
        };
        if !device.vendor_ids.contains(vendor) {
            return Err(ApiError::unprocessable(format!(
                "device {} ({}) is not assigned to this vendor",
                device.id, device.name
            )));
        }
        ids.push(device.id);
    }
    ids.sort();
    ids.dedup();
    Ok(ids)
}
