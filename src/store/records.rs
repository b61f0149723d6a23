//! The records the store reads and writes.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde::Serialize;

use crate::audit::AuditEvent;
use crate::domain::{
    DeviceId, DeviceName, EndReason, Fingerprint, Role, SessionId, TechnicianId, TokenId, UserId, VendorId, WindowId,
    WindowState,
};

/// A vendor and its declared networks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Vendor {
    pub id: VendorId,
    pub name: String,
    #[schema(value_type = Vec<String>, example = json!(["203.0.113.7/32"]))]
    pub networks: Vec<IpNet>,
    pub security_contact: Option<String>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

/// A vendor to create.
#[derive(Debug, Clone)]
pub struct NewVendor {
    pub name: String,
    pub networks: Vec<IpNet>,
    pub security_contact: Option<String>,
}

/// A technician: a client certificate bound to a vendor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Technician {
    pub id: TechnicianId,
    pub vendor_id: VendorId,
    pub name: String,
    pub subject: String,
    #[serde(rename = "fingerprint_sha256", serialize_with = "ser_fingerprint")]
    #[schema(value_type = String)]
    pub fingerprint: Fingerprint,
    pub certificate_pem: String,
    /// Start of the certificate's validity; `None` only for a row registered before
    /// it was recorded whose certificate could not be read: such a technician is refused.
    pub not_before: Option<DateTime<Utc>>,
    pub not_after: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

fn ser_fingerprint<S: serde::Serializer>(f: &Fingerprint, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&f.to_hex())
}

/// A technician to register.
#[derive(Debug, Clone)]
pub struct NewTechnician {
    pub vendor_id: VendorId,
    pub name: String,
    pub subject: String,
    pub fingerprint: Fingerprint,
    pub certificate_pem: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

/// A device behind the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Device {
    pub id: DeviceId,
    pub name: DeviceName,
    /// `host:port` the gateway connects to.
    pub address: String,
    /// A label for the flow matrix (`ssh`, `https`, `dicom`…).
    pub protocol: String,
    pub description: Option<String>,
    pub enabled: bool,
    pub vendor_ids: Vec<VendorId>,
    pub created_at: DateTime<Utc>,
}

/// A device to create.
#[derive(Debug, Clone)]
pub struct NewDevice {
    pub name: DeviceName,
    pub address: String,
    pub protocol: String,
    pub description: Option<String>,
    pub vendor_ids: Vec<VendorId>,
}

/// A maintenance window (or an emergency grant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Window {
    pub id: WindowId,
    pub vendor_id: VendorId,
    pub device_ids: Vec<DeviceId>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub state: WindowState,
    pub reason: String,
    pub emergency: bool,
    #[schema(value_type = Vec<String>)]
    pub extra_networks: Vec<IpNet>,
    pub requested_by: String,
    pub approved_by: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_reason: Option<String>,
    pub closed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// Emergency grants: the retrospective review (`justified` or `unjustified`).
    pub review_verdict: Option<String>,
    pub review_comment: Option<String>,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<DateTime<Utc>>,
    /// A pending extension request: the new end asked for.
    pub extension_ends_at: Option<DateTime<Utc>>,
    pub extension_reason: Option<String>,
    pub extension_requested_by: Option<String>,
}

/// A window to create: `requested`, or `approved` at once for an emergency grant.
#[derive(Debug, Clone)]
pub struct NewWindow {
    pub vendor_id: VendorId,
    pub device_ids: Vec<DeviceId>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reason: String,
    pub requested_by: String,
    pub emergency: bool,
    /// Set for emergency grants, which are created approved by their granter.
    pub approved_by: Option<String>,
    pub extra_networks: Vec<IpNet>,
}

/// A state change of a window, applied only if it is still in `from`.
#[derive(Debug, Clone)]
pub struct WindowTransition {
    pub from: Vec<WindowState>,
    pub to: WindowState,
    pub by: String,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

/// Filters of the window list; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct WindowFilter {
    pub state: Option<WindowState>,
    pub vendor_id: Option<VendorId>,
    pub device_id: Option<DeviceId>,
    /// Windows ending after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Windows starting before this instant.
    pub until: Option<DateTime<Utc>>,
    pub emergency: Option<bool>,
    /// `Some(false)`: emergency grants not reviewed yet.
    pub reviewed: Option<bool>,
}

/// A session record (DESIGN.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Session {
    pub id: SessionId,
    pub window_id: WindowId,
    pub vendor_id: VendorId,
    pub technician_id: TechnicianId,
    pub technician_subject: String,
    pub device_id: DeviceId,
    #[schema(value_type = String)]
    pub source_ip: IpAddr,
    pub source_port: u16,
    /// The gateway node that carried it.
    pub node: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub bytes_from_vendor: u64,
    pub bytes_to_vendor: u64,
    pub end_reason: Option<EndReason>,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEnd {
    pub id: SessionId,
    pub ended_at: DateTime<Utc>,
    pub bytes_from_vendor: u64,
    pub bytes_to_vendor: u64,
    pub end_reason: EndReason,
}

/// Filters of the session list; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    pub vendor_id: Option<VendorId>,
    pub device_id: Option<DeviceId>,
    pub window_id: Option<WindowId>,
    /// `Some(true)`: only live sessions; `Some(false)`: only ended ones.
    pub active: Option<bool>,
    /// Sessions started at or after.
    pub since: Option<DateTime<Utc>>,
    /// Sessions started before.
    pub until: Option<DateTime<Utc>>,
    pub limit: Option<u32>,
    /// With `active`: an open session counts as live only if its node has beaten
    /// at or after this instant (and has not stopped); a session whose node died
    /// is not live anywhere, whatever its record says until that node restarts.
    pub live_after: Option<DateTime<Utc>>,
}

/// Who holds a node name: one running process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    /// `gateway.node` in the configuration.
    pub name: String,
    /// Random per process start.
    pub instance_id: String,
    pub pid: u32,
    pub host: String,
    pub started_at: DateTime<Utc>,
}

/// A node as stored: who last held the name and when it last beat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    pub name: String,
    pub instance_id: String,
    pub pid: u32,
    pub host: String,
    pub started_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Set by a clean stop.
    pub stopped_at: Option<DateTime<Utc>>,
    /// Sessions recorded on this node and not ended.
    pub open_sessions: i64,
}

/// The outcome of claiming a node name at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeClaim {
    /// The name is ours. `previous_last_seen`: the previous holder's last
    /// heartbeat (or its clean stop): what it left open ended then.
    Claimed { previous_last_seen: Option<DateTime<Utc>> },
    /// Another live process holds the name.
    InUse {
        instance_id: String,
        pid: u32,
        host: String,
        last_seen: DateTime<Utc>,
    },
}

/// A node's periodic proof of life, with its live sessions' byte counts.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    pub node: NodeIdentity,
    pub at: DateTime<Utc>,
    /// (session, bytes from vendor, bytes to vendor) of each live session.
    pub checkpoints: Vec<(SessionId, u64, u64)>,
}

/// A durable gateway write; the journal groups many in one transaction.
#[derive(Debug, Clone)]
pub enum JournalEntry {
    /// A tunnel was admitted: its record and audit event, written before any byte flows.
    SessionStarted(Session, AuditEvent),
    /// A tunnel ended.
    SessionEnded(SessionEnd, AuditEvent),
    /// Any other event (denials…).
    Audit(AuditEvent),
    /// A notification that goes with no stored change (see
    /// [`crate::notify::Notifier::send`]), raised at the given time.
    Notice(super::Notice, DateTime<Utc>),
}

/// Filters of the audit trail.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Events with a sequence number above this.
    pub after_seq: Option<i64>,
    pub action: Option<String>,
    pub limit: Option<u32>,
    /// Newest first (the latest `limit` events) instead of oldest first.
    pub newest_first: bool,
}

/// An API account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub role: Role,
    pub vendor_id: Option<VendorId>,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
    /// The console language the account chose (`fr`, `en`); none: the browser's.
    pub lang: Option<String>,
    /// The person's e-mail address, if known.
    pub email: Option<String>,
    /// The last console sign-in.
    pub last_sign_in_at: Option<DateTime<Utc>>,
}

/// An API account to create; only the token's SHA-256 is stored.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub name: String,
    pub role: Role,
    pub vendor_id: Option<VendorId>,
    /// The SHA-256 of the account's first token (named "initial").
    pub token_sha256: String,
    /// Its first characters (see [`ApiToken::prefix`]).
    pub token_prefix: String,
    /// When the first token expires (`None`: never).
    pub token_expires_at: Option<DateTime<Utc>>,
    pub email: Option<String>,
}

/// A personal API token of an account. Only the SHA-256 of the secret is
/// stored, with its first characters (`prefix`) to tell tokens apart in lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApiToken {
    pub id: TokenId,
    pub user_id: UserId,
    pub name: String,
    /// The token's first characters (`ptk_` and 6 more; `ptk_` alone for a
    /// token from before version 0008, whose characters were never stored).
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    /// `None`: never expires (tokens from before expiry existed).
    pub expires_at: Option<DateTime<Utc>>,
    /// Noted at most once a minute.
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiToken {
    /// Whether the token authenticates at `now` (neither revoked nor expired).
    pub fn live_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

/// A token to store for an existing account.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    pub user_id: UserId,
    pub name: String,
    pub prefix: String,
    pub token_sha256: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A signed-in console session. Only the SHA-256 of its cookie is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    pub id_sha256: String,
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub source_ip: Option<String>,
}

/// The lockdown ("mise en sécurité") switch.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, utoipa::ToSchema)]
pub struct LockdownState {
    pub active: bool,
    pub reason: Option<String>,
    pub set_by: Option<String>,
    pub set_at: Option<DateTime<Utc>>,
}

/// An intervention report ("compte-rendu"), with its addenda.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Report {
    pub window_id: WindowId,
    pub vendor_id: VendorId,
    pub summary: String,
    pub actions: String,
    /// `success`, `partial` or `failed`.
    pub outcome: String,
    pub follow_up: Option<String>,
    pub filed_by: String,
    pub filed_at: DateTime<Utc>,
    /// Corrections filed afterwards; the report itself never changes.
    pub addenda: Vec<Addendum>,
}

/// A correction appended to a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Addendum {
    pub id: String,
    pub text: String,
    pub filed_by: String,
    pub filed_at: DateTime<Utc>,
}

/// A report to file.
#[derive(Debug, Clone)]
pub struct NewReport {
    pub window_id: WindowId,
    pub vendor_id: VendorId,
    pub summary: String,
    pub actions: String,
    pub outcome: String,
    pub follow_up: Option<String>,
    pub filed_by: String,
}

/// Filters of the report list.
#[derive(Debug, Clone, Default)]
pub struct ReportFilter {
    pub vendor_id: Option<VendorId>,
    /// Reports filed at or after.
    pub since: Option<DateTime<Utc>>,
    /// Reports filed before.
    pub until: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod token_tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_token_is_live_until_it_expires_or_is_revoked() {
        let t = |s: i64| Utc.timestamp_opt(1_700_000_000 + s, 0).single().unwrap();
        let token = |expires: Option<i64>, revoked: Option<i64>| ApiToken {
            id: TokenId("t".into()),
            user_id: UserId("u".into()),
            name: "n".into(),
            prefix: "ptk_abcdef".into(),
            created_at: t(0),
            expires_at: expires.map(t),
            last_used_at: None,
            revoked_at: revoked.map(t),
        };
        // (expires, revoked, now) -> live
        for (expires, revoked, now, live) in [
            (None, None, 1_000_000, true),
            (Some(10), None, 9, true),
            (Some(10), None, 10, false),
            (Some(10), None, 11, false),
            (None, Some(5), 6, false),
            (Some(10), Some(5), 1, false),
        ] {
            assert_eq!(
                token(expires, revoked).live_at(t(now)),
                live,
                "{expires:?} {revoked:?} {now}"
            );
        }
    }
}
