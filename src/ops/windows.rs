//! Windows and emergency grants: request, approve, reject, cancel, revoke,
//! extend, review, grant. The state machine and the separation of duties live here.

use chrono::{DateTime, Utc};
use ipnet::IpNet;

use super::{effects, unavailable, Actor, Ops, OpsError, OpsResult};
use crate::domain::{DeviceId, DeviceName, EndReason, Role, VendorId, WindowId, WindowState};
use crate::events::Event;
use crate::guard::{Pending, Restriction};
use crate::rights::Function;
use crate::store::{Change, Effects, NewWindow, StoreError, Window, WindowTransition};

/// How far in the past a window may start: a request prepared a moment ago
/// (or "starting now" on a client whose clock is a little ahead) is accepted; a
/// backdated window is not.
pub const MAX_PAST_START: chrono::Duration = chrono::Duration::minutes(1);
/// Allowance for the request's transit on top of [`MAX_PAST_START`], so that a
/// client sending exactly "one minute ago" is not refused for the milliseconds
/// its request took.
const TRANSIT_GRACE: chrono::Duration = chrono::Duration::seconds(5);

/// A planned window asked for.
#[derive(Debug, Clone)]
pub struct WindowRequest {
    /// Required for admins; a vendor account requests for its own vendor.
    pub vendor_id: Option<VendorId>,
    /// By id or by name.
    pub devices: Vec<DeviceId>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Already checked: one line.
    pub reason: String,
}

/// An emergency grant asked for.
#[derive(Debug, Clone)]
pub struct EmergencyGrant {
    pub vendor_id: VendorId,
    pub devices: Vec<DeviceId>,
    pub duration_minutes: u32,
    pub justification: String,
    /// Already parsed and checked against the breadth rule.
    pub extra_networks: Vec<IpNet>,
}

fn window_notice(w: &Window) -> serde_json::Value {
    serde_json::json!({"window_id": w.id, "vendor_id": w.vendor_id, "starts_at": w.starts_at, "ends_at": w.ends_at})
}

impl Ops {
    /// A window the actor may see (404 otherwise, so its existence is not revealed).
    pub async fn visible_window(&self, who: &Actor, id: &WindowId) -> OpsResult<Window> {
        let w = self.store.window(id).await?;
        if !who.sees_vendor(&w.vendor_id) {
            return Err(OpsError::not_found("window"));
        }
        Ok(w)
    }

    /// Requests a planned window (vendor for itself, admin for any vendor).
    pub async fn request_window(&self, who: &Actor, req: WindowRequest) -> OpsResult<Window> {
        who.may(Function::RequestWindow)?;
        let vendor_id = match (who.role, req.vendor_id) {
            (Role::Vendor, Some(v)) if !who.sees_vendor(&v) => {
                return Err(OpsError::forbidden(
                    "a vendor account requests windows for its own vendor only",
                ))
            }
            (Role::Vendor, _) => who
                .vendor_id
                .clone()
                .ok_or_else(|| OpsError::forbidden("this vendor account has no vendor"))?,
            (_, Some(v)) => v,
            (_, None) => return Err(OpsError::bad_request("vendor_id is required")),
        };
        let now = self.now();
        if req.ends_at <= req.starts_at {
            return Err(OpsError::bad_request("ends_at must be after starts_at"));
        }
        if req.ends_at <= now {
            return Err(OpsError::bad_request(
                "the window would already be over: ends_at is in the past",
            ));
        }
        if req.starts_at < now - MAX_PAST_START - TRANSIT_GRACE {
            return Err(OpsError::bad_request(format!(
                "starts_at ({}) is {} minutes in the past: a window may start at most 1 minute ago (give the current time to start now)",
                req.starts_at.to_rfc3339(),
                (now - req.starts_at).num_minutes()
            )));
        }
        if req.ends_at - req.starts_at > self.rules.max_window {
            return Err(OpsError::bad_request(format!(
                "the window is longer than the allowed maximum of {} hours (policy.max_window_hours)",
                self.rules.max_window.num_hours()
            )));
        }
        if req.starts_at > now + self.rules.max_horizon {
            return Err(OpsError::bad_request(format!(
                "windows may start at most {} days ahead (policy.max_horizon_days)",
                self.rules.max_horizon.num_days()
            )));
        }
        let vendor = self.store.vendor(&vendor_id).await.map_err(|e| {
            OpsError::unless_found(e, || OpsError::unprocessable(format!("unknown vendor {vendor_id}")))
        })?;
        if let Some(w) = self.overdue_report(&vendor.id).await? {
            return Err(OpsError::conflict(format!(
                "the intervention report of window {} (ended {}) is overdue: file it before requesting a new window",
                w.id,
                w.closed_at.unwrap_or(w.ends_at)
            )));
        }
        let device_ids = self.assigned_devices(&vendor.id, req.devices).await?;
        let new = NewWindow {
            vendor_id: vendor.id,
            device_ids,
            starts_at: req.starts_at,
            ends_at: req.ends_at,
            reason: req.reason,
            requested_by: who.id.0.clone(),
            emergency: false,
            approved_by: None,
            extra_networks: vec![],
        };
        let record = effects(|w: &Window| {
            Effects::audit(self.event(
                who,
                Event::WindowRequested,
                w.id.as_str(),
                serde_json::json!({"vendor_id": w.vendor_id, "device_ids": w.device_ids, "starts_at": w.starts_at, "ends_at": w.ends_at, "reason": w.reason}),
            ))
            .notice(Event::WindowRequested, window_notice(w))
        });
        Ok(self.store.create_window(&new, now, &record).await?)
    }

    /// Grants emergency access (security): an approved window starting now,
    /// flagged `emergency`, awaiting a review by a second security account. It
    /// bypasses an overdue report, nothing else.
    pub async fn grant_emergency(&self, who: &Actor, req: EmergencyGrant) -> OpsResult<Window> {
        who.may(Function::GrantEmergency)?;
        if req.justification.trim().is_empty() {
            return Err(OpsError::bad_request(
                "justification is mandatory for an emergency grant",
            ));
        }
        let max = self.rules.max_emergency.num_minutes();
        if req.duration_minutes == 0 || i64::from(req.duration_minutes) > max {
            return Err(OpsError::bad_request(format!(
                "duration_minutes must be 1 to {max} (policy.max_emergency_minutes)"
            )));
        }
        let vendor = self.store.vendor(&req.vendor_id).await.map_err(|e| {
            OpsError::unless_found(e, || {
                OpsError::unprocessable(format!("unknown vendor {}", req.vendor_id))
            })
        })?;
        let device_ids = self.assigned_devices(&vendor.id, req.devices).await?;
        let now = self.now();
        let new = NewWindow {
            vendor_id: vendor.id.clone(),
            device_ids,
            starts_at: now,
            ends_at: now + chrono::Duration::minutes(i64::from(req.duration_minutes)),
            reason: req.justification.clone(),
            requested_by: who.id.0.clone(),
            emergency: true,
            approved_by: Some(who.id.0.clone()),
            extra_networks: req.extra_networks,
        };
        let record = effects(|w: &Window| {
            let details = serde_json::json!({
                "window_id": w.id, "vendor_id": w.vendor_id, "vendor_name": vendor.name, "device_ids": w.device_ids,
                "ends_at": w.ends_at, "justification": req.justification, "extra_networks": w.extra_networks, "granted_by": who.name,
            });
            Effects::audit(self.event(who, Event::EmergencyGranted, w.id.as_str(), details.clone()))
                .change(Change::Window(w.id.clone()))
                .notice(Event::EmergencyGranted, details)
        });
        let w = self.store.create_window(&new, now, &record).await?;
        self.changed().await;
        Ok(w)
    }

    /// Approves a requested window, or the pending extension of an approved one
    /// (security, admin; never the account that asked).
    pub async fn approve_window(&self, who: &Actor, id: &WindowId) -> OpsResult<Window> {
        who.may(Function::ApproveWindow)?;
        let w = self.store.window(id).await?;
        if w.state == WindowState::Approved && w.extension_ends_at.is_some() {
            return self.approve_extension(who, w).await;
        }
        if w.requested_by == who.id.0 {
            return Err(OpsError::forbidden(
                "separation of duties: a window cannot be approved by the account that requested it",
            ));
        }
        if w.ends_at <= self.now() {
            return Err(OpsError::conflict("the window is already over"));
        }
        let t = self.transition(who, &[WindowState::Requested], WindowState::Approved, None);
        let record = effects(|w: &Window| {
            Effects::audit(self.event(
                who,
                Event::WindowApproved,
                w.id.as_str(),
                serde_json::json!({"vendor_id": w.vendor_id, "requested_by": w.requested_by}),
            ))
            .change(Change::Window(w.id.clone()))
            .notice(Event::WindowApproved, window_notice(w))
        });
        let w = self.store.transition_window(&w.id, &t, &record).await?;
        self.changed().await;
        Ok(w)
    }

    async fn approve_extension(&self, who: &Actor, w: Window) -> OpsResult<Window> {
        let Some(pending) = w.extension_ends_at else {
            return Err(OpsError::conflict("no extension is pending for this window"));
        };
        if w.extension_requested_by.as_deref() == Some(who.id.as_str()) {
            return Err(OpsError::forbidden(
                "separation of duties: an extension cannot be approved by the account that requested it",
            ));
        }
        if w.emergency {
            // Invariant 4: an emergency grant is a second person's decision; stretching
            // it is one too, and it stays within the cap however it is extended.
            check_emergency_extension(who, &w)?;
            self.check_emergency_cap(&w, pending)
                .map_err(|e| OpsError::conflict(e.to_string()))?;
        }
        let now = self.now();
        if w.ends_at <= now {
            return Err(OpsError::conflict("the window is already over: request a new window"));
        }
        let record = effects(|w: &Window| {
            Effects::audit(self.event(
                who,
                Event::WindowExtended,
                w.id.as_str(),
                serde_json::json!({"ends_at": w.ends_at, "live_tunnels_here": self.registry.list().iter().filter(|s| s.window_id == w.id).count()}),
            ))
            .change(Change::Window(w.id.clone()))
            .notice(
                Event::WindowExtended,
                serde_json::json!({"window_id": w.id, "vendor_id": w.vendor_id, "ends_at": w.ends_at}),
            )
        });
        let w = self
            .store
            .decide_extension(&w.id, pending, true, who.id.as_str(), now, &record)
            .await?;
        // Live tunnels keep running, with their deadline moved.
        self.registry.move_window_deadline(&w.id, w.ends_at);
        self.changed().await;
        Ok(w)
    }

    /// Rejects a requested window, or the pending extension of an approved one
    /// (security, admin).
    pub async fn reject_window(&self, who: &Actor, id: &WindowId, reason: String) -> OpsResult<Window> {
        who.may(Function::RejectWindow)?;
        let current = self.store.window(id).await?;
        if let (WindowState::Approved, Some(pending)) = (current.state, current.extension_ends_at) {
            let record = effects(|w: &Window| {
                Effects::audit(self.event(
                    who,
                    Event::WindowExtensionRejected,
                    w.id.as_str(),
                    serde_json::json!({"reason": reason}),
                ))
                .notice(
                    Event::WindowExtensionRejected,
                    serde_json::json!({"window_id": w.id, "vendor_id": w.vendor_id, "reason": reason}),
                )
            });
            return Ok(self
                .store
                .decide_extension(&current.id, pending, false, who.id.as_str(), self.now(), &record)
                .await?);
        }
        let t = self.transition(
            who,
            &[WindowState::Requested],
            WindowState::Rejected,
            Some(reason.clone()),
        );
        let record = effects(|w: &Window| {
            Effects::audit(self.event(
                who,
                Event::WindowRejected,
                w.id.as_str(),
                serde_json::json!({"reason": reason}),
            ))
            .notice(
                Event::WindowRejected,
                serde_json::json!({"window_id": w.id, "vendor_id": w.vendor_id, "reason": reason}),
            )
        });
        Ok(self.store.transition_window(&current.id, &t, &record).await?)
    }

    /// Revokes an approved window (security, admin): its live tunnels are cut
    /// on every node. The cut and the refusal of new tunnels happen on this node
    /// first; if the database cannot take the revocation, the cut stands, the
    /// window stays refused here, and the revocation is retried until stored
    /// (`Unavailable`).
    pub async fn revoke_window(&self, who: &Actor, id: &WindowId, reason: String) -> OpsResult<Window> {
        who.may(Function::RevokeWindow)?;
        // Invariant 7: cut and refuse first; only an approved window has tunnels.
        let restriction = Restriction::Window(id.clone());
        let guard = self.guard();
        guard.restrict(restriction.clone());
        let cut = self.registry.cut_window(id, EndReason::WindowRevoked);
        let t = self.transition(
            who,
            &[WindowState::Approved],
            WindowState::Revoked,
            Some(reason.clone()),
        );
        let event = self.event(
            who,
            Event::WindowRevoked,
            id.as_str(),
            serde_json::json!({"reason": reason, "tunnels_cut_here": cut}),
        );
        let record = |w: &Window| {
            Effects::audit(event.clone())
                .change(Change::Window(w.id.clone()))
                .notice(
                    Event::WindowRevoked,
                    serde_json::json!({"window_id": w.id, "vendor_id": w.vendor_id, "reason": reason, "emergency": w.emergency}),
                )
        };
        let w = match self.store.transition_window(id, &t, &record).await {
            Ok(w) => w,
            Err(e) if unavailable(&e) => {
                tracing::error!(error = %e, window = %id, "revocation not stored; kept on this node and retried");
                guard.defer(Pending::RevokeWindow {
                    id: id.clone(),
                    transition: t,
                    effects: Effects::audit(event.clone()).change(Change::Window(id.clone())).notice(
                        Event::WindowRevoked,
                        serde_json::json!({"window_id": id, "reason": reason}),
                    ),
                });
                return Err(OpsError::unavailable(format!(
                    "the database cannot be reached: {cut} live tunnels of this window were cut on this node and it stays refused here; the revocation is stored as soon as the database is back"
                )));
            }
            Err(e) => {
                guard.release(&restriction);
                return Err(e.into());
            }
        };
        guard.release(&restriction);
        self.changed().await;
        Ok(w)
    }

    /// Cancels a window before it starts (the requesting vendor, admin).
    pub async fn cancel_window(&self, who: &Actor, id: &WindowId, reason: Option<String>) -> OpsResult<Window> {
        who.may(Function::CancelWindow)?;
        let w = self.visible_window(who, id).await?;
        if w.state == WindowState::Approved && w.starts_at <= self.now() {
            return Err(OpsError::conflict("the window has started: ask security to revoke it"));
        }
        let t = self.transition(
            who,
            &[WindowState::Requested, WindowState::Approved],
            WindowState::Cancelled,
            reason.clone(),
        );
        let record = effects(|w: &Window| {
            Effects::audit(self.event(
                who,
                Event::WindowCancelled,
                w.id.as_str(),
                serde_json::json!({"reason": reason}),
            ))
            .change(Change::Window(w.id.clone()))
        });
        let w = self.store.transition_window(&w.id, &t, &record).await?;
        self.changed().await;
        Ok(w)
    }

    /// Asks for a later end (the window's vendor). An emergency grant stays
    /// within `policy.max_emergency_minutes` from its start.
    pub async fn request_extension(
        &self,
        who: &Actor,
        id: &WindowId,
        ends_at: DateTime<Utc>,
        reason: String,
    ) -> OpsResult<Window> {
        who.may(Function::ExtendWindow)?;
        let w = self.visible_window(who, id).await?;
        let now = self.now();
        if w.state != WindowState::Approved || w.ends_at <= now {
            return Err(OpsError::conflict(
                "only an approved window that has not ended can be extended",
            ));
        }
        if ends_at <= w.ends_at {
            return Err(OpsError::bad_request("ends_at must be after the window's current end"));
        }
        if w.emergency {
            self.check_emergency_cap(&w, ends_at)?;
        }
        if ends_at - w.starts_at > self.rules.max_window {
            return Err(OpsError::bad_request(format!(
                "the extended window would be longer than the allowed maximum of {} hours (policy.max_window_hours)",
                self.rules.max_window.num_hours()
            )));
        }
        let record = effects(|w: &Window| {
            Effects::audit(self.event(
                who,
                Event::WindowExtensionRequested,
                w.id.as_str(),
                serde_json::json!({"ends_at": ends_at, "reason": reason}),
            ))
            .notice(
                Event::WindowExtensionRequested,
                serde_json::json!({"window_id": w.id, "vendor_id": w.vendor_id, "ends_at": ends_at, "reason": reason}),
            )
        });
        Ok(self
            .store
            .request_extension(&w.id, ends_at, &reason, who.id.as_str(), &record)
            .await?)
    }

    /// Reviews an emergency grant afterwards (security; never its granter).
    pub async fn review_emergency(
        &self,
        who: &Actor,
        id: &WindowId,
        verdict: &str,
        comment: String,
    ) -> OpsResult<Window> {
        who.may(Function::ReviewEmergency)?;
        if verdict != "justified" && verdict != "unjustified" {
            return Err(OpsError::bad_request(
                "verdict must be \"justified\" or \"unjustified\"",
            ));
        }
        let w = self.store.window(id).await?;
        if !w.emergency {
            return Err(OpsError::conflict("only emergency grants are reviewed"));
        }
        if w.approved_by.as_deref() == Some(who.id.as_str()) {
            return Err(OpsError::forbidden(
                "separation of duties: an emergency grant is reviewed by a second security account, not its granter",
            ));
        }
        let record = effects(|w: &Window| {
            Effects::audit(self.event(
                who,
                Event::EmergencyReviewed,
                w.id.as_str(),
                serde_json::json!({"verdict": verdict, "comment": comment}),
            ))
            .notice(
                Event::EmergencyReviewed,
                serde_json::json!({"window_id": w.id, "verdict": verdict}),
            )
        });
        Ok(self
            .store
            .review_window(&w.id, verdict, &comment, who.id.as_str(), self.now(), &record)
            .await?)
    }

    fn transition(
        &self,
        who: &Actor,
        from: &[WindowState],
        to: WindowState,
        reason: Option<String>,
    ) -> WindowTransition {
        WindowTransition {
            from: from.to_vec(),
            to,
            by: who.id.0.clone(),
            reason,
            at: self.now(),
        }
    }

    /// 400 if an emergency grant extended to `ends_at` would last longer, from its
    /// start, than `policy.max_emergency_minutes`.
    fn check_emergency_cap(&self, w: &Window, ends_at: DateTime<Utc>) -> OpsResult<()> {
        let max = self.rules.max_emergency;
        let total = ends_at - w.starts_at;
        if total > max {
            return Err(OpsError::bad_request(format!(
                "an emergency grant lasts at most {} minutes in all (policy.max_emergency_minutes); extended to {} it would last {} minutes: request a planned window instead",
                max.num_minutes(),
                ends_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                total.num_minutes()
            )));
        }
        Ok(())
    }

    /// The devices of a request, given by id or by name (the TLS server name
    /// technicians connect to): resolved to ids, sorted, without duplicates, 1 to
    /// 100 of them, each existing and assigned to `vendor` (422 otherwise).
    async fn assigned_devices(&self, vendor: &VendorId, given: Vec<DeviceId>) -> OpsResult<Vec<DeviceId>> {
        if given.is_empty() || given.len() > 100 {
            return Err(OpsError::bad_request("device_ids must list 1 to 100 devices"));
        }
        let mut all = None;
        let mut ids = Vec::with_capacity(given.len());
        for entry in given {
            let device = match self.store.device(&entry).await {
                Ok(d) => d,
                Err(StoreError::NotFound(_)) => {
                    // Not an id: perhaps a name. The list is read once per request.
                    let name = DeviceName::try_from(entry.0.clone()).ok();
                    if all.is_none() {
                        all = Some(self.store.list_devices().await?);
                    }
                    let found = name.and_then(|n| all.iter().flatten().find(|d| d.name == n).cloned());
                    found.ok_or_else(|| {
                        OpsError::unprocessable(format!("unknown device {:?} (neither an id nor a name)", entry.0))
                    })?
                }
                Err(e) => return Err(e.into()),
            };
            if !device.vendor_ids.contains(vendor) {
                return Err(OpsError::unprocessable(format!(
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
}

/// 403 unless the actor may approve the extension of an emergency grant: a
/// security account other than the one that granted it.
fn check_emergency_extension(who: &Actor, w: &Window) -> OpsResult<()> {
    if who.role != Role::Security {
        return Err(OpsError::forbidden(
            "the extension of an emergency grant is approved by a security account",
        ));
    }
    let granter = w.approved_by.as_deref().unwrap_or(w.requested_by.as_str());
    if granter == who.id.as_str() || w.requested_by == who.id.as_str() {
        return Err(OpsError::forbidden(
            "separation of duties: the extension of an emergency grant is approved by a second security account, not its granter",
        ));
    }
    Ok(())
}
