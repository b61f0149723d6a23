//! Secure disposal (`portier purge`): what a purge asks of the store and what
//! it did. The rules (who, how old at least) are in `ops::retention`; each
//! backend's SQL in its `retention` module. What counts as personal data is
//! documented in `docs/retention.md`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The text that replaces an erased free-text field.
pub const ERASED: &str = "[erased]";

/// The address that replaces an erased session source address.
pub const ERASED_IP: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

/// A purge: personal data older than `before` is erased or deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeRequest {
    /// The cut-off (exclusive): only data older than this goes.
    pub before: DateTime<Utc>,
    /// When the purge runs (its audit event's time).
    pub at: DateTime<Utc>,
    /// Count what would go, in a transaction rolled back: nothing changes and
    /// nothing is recorded.
    pub dry_run: bool,
}

/// The last audit event a purge deleted: verification continues from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditAnchor {
    /// Its sequence number: the trail now starts at `seq + 1`.
    pub seq: i64,
    /// Its hash: the `prev_hash` of the first kept event.
    pub hash: String,
}

/// What a purge erased or deleted (or, in a dry run, would).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PurgeCounts {
    /// Ended sessions whose source address, port and certificate subject were erased.
    pub sessions: u64,
    /// Closed windows whose reasons (request, decision, extension, review) were erased.
    pub windows: u64,
    /// Reports whose texts (summary, actions, follow-up) were erased.
    pub reports: u64,
    /// Report addenda whose text was erased.
    pub report_addenda: u64,
    /// Console sessions deleted (with their source addresses).
    pub console_sessions: u64,
    /// Sign-in records deleted (failed attempts, half-done sign-ins).
    pub sign_in_records: u64,
    /// Settled notifications (delivered or given up) deleted from the outbox.
    pub notifications: u64,
    /// Audit events deleted, whole.
    pub audit_events: u64,
    /// Where verification starts after the purge (`None`: the trail is whole).
    pub audit_anchor: Option<AuditAnchor>,
    /// The audit events to delete were verified first, from the previous
    /// anchor (or the genesis) on: a purge whose prefix does not verify is
    /// refused, so it never erases the evidence of tampering.
    pub prefix_verified: bool,
}

/// Audit events read per page while a purge verifies the prefix it deletes.
pub(crate) const PREFIX_PAGE: i64 = 5_000;

/// The refusal of a purge whose prefix does not verify (409).
/// The verdict on a purge's prefix, `v` having read it through the first kept
/// event, with the trail's latest `data.purged` event after it (which must
/// name the current anchor): a prefix that does not verify refuses the purge.
pub(crate) fn prefix_verdict(
    mut v: crate::audit::ChainVerifier,
    latest_purge: Option<&crate::audit::AuditRecord>,
    cut: i64,
) -> super::StoreResult<()> {
    if let Some(r) = latest_purge {
        v.note_latest_purge(r);
    }
    match v.finish().first_invalid_seq {
        None => Ok(()),
        Some(seq) => {
            tracing::warn!(
                first_invalid_seq = seq,
                cut,
                "purge refused: the audit prefix does not verify"
            );
            Err(super::StoreError::Conflict(format!(
                "the audit trail does not verify at sequence number {seq}, among the events this purge would delete: \
                 purging would erase the evidence of tampering, so nothing was purged (see `portier audit verify`)"
            )))
        }
    }
}
