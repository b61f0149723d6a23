//! What a committed change leaves behind, written in the change's own
//! transaction: its audit event, the change-feed entry every node follows, and
//! the notifications to deliver. A change cannot be stored without them, and
//! none of them can be stored without the change.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::audit::AuditEvent;
use crate::domain::{DeviceId, SessionId, TechnicianId, VendorId, WindowId};
use crate::events::Event;

/// The PostgreSQL notification channel a committed feed entry is announced on
/// (payload: its `seq`), so following nodes wake at once instead of at their next poll.
pub const CHANGES_CHANNEL: &str = "portier_changes";

/// What changed, as the nodes following the feed need to know it: which object
/// to re-read into their admission snapshot, or which session to cut.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Change {
    /// A window's state, end or devices changed (approval, revocation, extension…).
    Window(WindowId),
    /// A technician was added or revoked.
    Technician(TechnicianId),
    /// A vendor was created, enabled, disabled, or its networks replaced.
    Vendor(VendorId),
    /// A device was created, enabled, disabled or reassigned.
    Device(DeviceId),
    /// A vendor's reports changed (its overdue state may have).
    Reports(VendorId),
    /// The lockdown switched.
    Lockdown,
    /// Cut this session, whichever node holds it.
    Terminate(SessionId),
}

impl Change {
    /// The stored `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Window(_) => "window",
            Change::Technician(_) => "technician",
            Change::Vendor(_) => "vendor",
            Change::Device(_) => "device",
            Change::Reports(_) => "reports",
            Change::Lockdown => "lockdown",
            Change::Terminate(_) => "terminate",
        }
    }

    /// The stored `object` column: the id concerned (empty for the lockdown).
    pub fn object(&self) -> &str {
        match self {
            Change::Window(id) => id.as_str(),
            Change::Technician(id) => id.as_str(),
            Change::Vendor(id) | Change::Reports(id) => id.as_str(),
            Change::Device(id) => id.as_str(),
            Change::Lockdown => "",
            Change::Terminate(id) => id.as_str(),
        }
    }

    /// The change a stored row designates; `None` for a kind this version does
    /// not know (written by a newer node): the follower then reloads in full.
    pub fn from_row(kind: &str, object: &str) -> Option<Change> {
        let id = object.to_owned();
        Some(match kind {
            "window" => Change::Window(WindowId(id)),
            "technician" => Change::Technician(TechnicianId(id)),
            "vendor" => Change::Vendor(VendorId(id)),
            "device" => Change::Device(DeviceId(id)),
            "reports" => Change::Reports(VendorId(id)),
            "lockdown" => Change::Lockdown,
            "terminate" => Change::Terminate(SessionId(id)),
            _ => return None,
        })
    }
}

/// A stored change-feed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    /// Grows in commit order.
    pub seq: i64,
    pub at: DateTime<Utc>,
    /// `None`: a kind this version does not know.
    pub change: Option<Change>,
}

/// A notification to deliver to the configured sinks (webhooks, syslog).
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub event: Event,
    pub data: serde_json::Value,
}

impl Notice {
    pub fn new(event: Event, data: serde_json::Value) -> Self {
        Self { event, data }
    }
}

/// The audit event, feed entry and notifications of one change.
#[derive(Debug, Clone, PartialEq)]
pub struct Effects {
    pub audit: AuditEvent,
    pub changes: Vec<Change>,
    pub notices: Vec<Notice>,
}

impl Effects {
    /// A change recorded by its audit event only (nothing for other nodes to do).
    pub fn audit(audit: AuditEvent) -> Self {
        Self {
            audit,
            changes: Vec::new(),
            notices: Vec::new(),
        }
    }

    /// Adds a feed entry.
    #[must_use]
    pub fn change(mut self, c: Change) -> Self {
        self.changes.push(c);
        self
    }

    /// Adds a notification.
    #[must_use]
    pub fn notice(mut self, event: Event, data: serde_json::Value) -> Self {
        self.notices.push(Notice::new(event, data));
        self
    }
}

/// Builds a change's effects from its stored result (which holds the ids and
/// values the store assigned), inside the change's transaction.
pub type Record<'a, T> = &'a (dyn Fn(&T) -> Effects + Send + Sync);
