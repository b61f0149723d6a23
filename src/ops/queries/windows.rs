//! Reading windows, with their lifecycle state.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{DeviceId, Role, UnknownValue, VendorId, WindowId, WindowState};
use crate::ops::{Actor, Ops, OpsResult};
use crate::rights::Function;
use crate::store::{Window, WindowFilter};

/// A window's state as shown: the stored state, where `approved` becomes
/// `active` between its start and end and `ended` after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleState {
    Requested,
    /// Approved, not started yet.
    Approved,
    /// Approved, between its start and end: tunnels are admitted.
    Active,
    /// Approved, and its end has passed.
    Ended,
    Rejected,
    Cancelled,
    Revoked,
}

impl LifecycleState {
    /// The lifecycle state of `w` at `now`.
    pub fn of(w: &Window, now: DateTime<Utc>) -> Self {
        match w.state {
            WindowState::Approved if now >= w.ends_at => Self::Ended,
            WindowState::Approved if now >= w.starts_at => Self::Active,
            WindowState::Approved => Self::Approved,
            WindowState::Requested => Self::Requested,
            WindowState::Rejected => Self::Rejected,
            WindowState::Cancelled => Self::Cancelled,
            WindowState::Revoked => Self::Revoked,
        }
    }

    /// The stable snake_case spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Approved => "approved",
            Self::Active => "active",
            Self::Ended => "ended",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
            Self::Revoked => "revoked",
        }
    }

    /// The stored state it follows from.
    pub fn stored(self) -> WindowState {
        match self {
            Self::Requested => WindowState::Requested,
            Self::Approved | Self::Active | Self::Ended => WindowState::Approved,
            Self::Rejected => WindowState::Rejected,
            Self::Cancelled => WindowState::Cancelled,
            Self::Revoked => WindowState::Revoked,
        }
    }
}

impl FromStr for LifecycleState {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "active" => Self::Active,
            "ended" => Self::Ended,
            // The stored states, with the stored states' error for anything else.
            other => match other.parse::<WindowState>()? {
                WindowState::Requested => Self::Requested,
                WindowState::Approved => Self::Approved,
                WindowState::Rejected => Self::Rejected,
                WindowState::Cancelled => Self::Cancelled,
                WindowState::Revoked => Self::Revoked,
            },
        })
    }
}

impl std::fmt::Display for LifecycleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Filters of the window list; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct WindowsQuery {
    /// `Approved` means the stored state (`approved`, `active` and `ended` windows);
    /// `Active` and `Ended` select on the clock.
    pub state: Option<LifecycleState>,
    /// Ignored for a vendor account, which sees its own vendor's windows only.
    pub vendor_id: Option<VendorId>,
    pub device_id: Option<DeviceId>,
    /// Windows ending after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Windows starting before this instant.
    pub until: Option<DateTime<Utc>>,
    /// Emergency grants only (true) or none (false).
    pub emergency: Option<bool>,
    /// With `emergency: Some(true)`: reviewed (true) or awaiting review (false).
    pub reviewed: Option<bool>,
}

/// A window as shown: `state` is its lifecycle state, where `approved` becomes
/// `active` between its start and end and `ended` after.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WindowView {
    pub id: WindowId,
    pub vendor_id: VendorId,
    pub device_ids: Vec<DeviceId>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// requested, approved, active, ended, rejected, cancelled or revoked.
    #[schema(value_type = String)]
    pub state: LifecycleState,
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

impl WindowView {
    /// `w` as shown at `now`.
    pub fn new(w: Window, now: DateTime<Utc>) -> Self {
        Self {
            state: LifecycleState::of(&w, now),
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

impl Ops {
    /// A window as shown now (for the result of a change the actor just made).
    pub fn window_view(&self, w: Window) -> WindowView {
        WindowView::new(w, self.now())
    }

    /// Windows matching `q` (any account; a vendor account sees its own vendor's).
    pub async fn windows(&self, who: &Actor, q: &WindowsQuery) -> OpsResult<Vec<WindowView>> {
        who.may(Function::ListWindows)?;
        let vendor_id = match who.role {
            Role::Vendor => who.vendor_id.clone(),
            _ => q.vendor_id.clone(),
        };
        let filter = WindowFilter {
            state: q.state.map(LifecycleState::stored),
            vendor_id,
            device_id: q.device_id.clone(),
            since: q.since,
            until: q.until,
            emergency: q.emergency,
            reviewed: q.reviewed,
        };
        let now = self.now();
        let list = self.store.list_windows(&filter).await?;
        Ok(list
            .into_iter()
            .filter(|w| who.sees_vendor(&w.vendor_id))
            .map(|w| WindowView::new(w, now))
            // The store filters on stored states; `active` and `ended` depend on the
            // clock. (`approved` keeps meaning the stored state: started or not.)
            .filter(|v| match q.state {
                Some(s @ (LifecycleState::Active | LifecycleState::Ended)) => v.state == s,
                _ => true,
            })
            .collect())
    }

    /// One window (404 if the actor may not see it).
    pub async fn window(&self, who: &Actor, id: &WindowId) -> OpsResult<WindowView> {
        who.may(Function::ReadWindow)?;
        let w = self.visible_window(who, id).await?;
        Ok(self.window_view(w))
    }
}

#[cfg(test)]
mod tests {
    use super::LifecycleState;

    #[test]
    fn states_parse_as_shown_and_unknown_ones_are_named() {
        for s in [
            "requested",
            "approved",
            "active",
            "ended",
            "rejected",
            "cancelled",
            "revoked",
        ] {
            assert_eq!(s.parse::<LifecycleState>().map(LifecycleState::as_str).ok(), Some(s));
        }
        let e = "open".parse::<LifecycleState>().err().map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("unknown window state \"open\""));
    }
}
