//! The notification outbox as the store keeps it (issue 9 item 6). A notice is
//! written in the transaction of the change it announces (or through the
//! journal when it goes with no change), then delivered by whichever node
//! claims it first: a claim is a lease (`claimed_by` until `claimed_until`), so
//! two nodes never deliver the same notice at once, and a node stopped
//! mid-delivery only delays it until the lease expires.

use chrono::{DateTime, Utc};

/// A notice claimed for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    /// Grows with each notice; names it for good (see [`OutboxItem::message_id`]).
    pub seq: i64,
    pub created_at: DateTime<Utc>,
    /// The event's stored name. Delivered as is, even if this version does not
    /// know it (written by a newer node).
    pub event: String,
    /// The event's data, as stored (JSON text).
    pub data: String,
    /// Delivery attempts so far, this one included.
    pub attempts: u32,
    /// Keys of the sinks that already accepted it (not sent to again).
    pub sinks_done: Vec<String>,
}

impl OutboxItem {
    /// The Standard Webhooks `webhook-id`: the same on every attempt and from
    /// every node, since it is derived from the stored row. The creation time
    /// is part of it so that a database restored or recreated (its sequence
    /// starting over) does not reuse the ids a receiver remembers.
    pub fn message_id(&self) -> String {
        format!("msg_{}_{}", self.seq, self.created_at.timestamp_micros())
    }
}

/// Notices not yet settled, for `/readyz` and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxBacklog {
    /// Neither delivered nor given up.
    pub pending: u64,
    /// The oldest of them was created then.
    pub oldest_pending_at: Option<DateTime<Utc>>,
    /// Given up (kept until the retention ends).
    pub failed: u64,
}

/// What [`crate::store::Store::purge_outbox`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxPurge {
    /// Settled rows deleted.
    pub deleted: u64,
    /// Pending rows nobody delivered within the horizon, now marked failed.
    pub expired: u64,
}

/// Reads a stored `sinks_done`. A value that does not parse counts as "none
/// yet" (the notice is sent again to every sink) rather than blocking delivery.
pub(crate) fn parse_sinks_done(seq: i64, text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_else(|e| {
        tracing::warn!(seq, error = %e, "unreadable outbox sinks_done: delivering to every sink again");
        Vec::new()
    })
}

/// `sinks_done` as stored.
pub(crate) fn sinks_done_text(sinks: &[String]) -> String {
    serde_json::to_string(sinks).unwrap_or_else(|_| "[]".to_owned())
}
