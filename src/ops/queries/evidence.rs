//! What auditors and security read as evidence: the audit trail and its
//! verification, the flow matrix, the latest tunnel denials, and the timeline
//! of a vendor's or a device's windows and sessions.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{SessionView, WindowView};
use crate::audit::{verify_store, AuditRecord, Verification};
use crate::domain::{DeviceId, TechnicianId, VendorId, WindowId};
use crate::events::Event;
use crate::flows::{self, Flow, NodeFlows};
use crate::ops::{Actor, Ops, OpsError, OpsResult};
use crate::rights::Function;
use crate::store::{AuditFilter, SessionFilter, StoreError, WindowFilter};

/// Most audit events one read returns.
pub const MAX_AUDIT_PAGE: u32 = 100_000;
/// Most denials [`Ops::recent_denials`] returns.
pub const MAX_DENIALS: u32 = 1_000;

/// A page of the audit trail, oldest first.
#[derive(Debug, Clone, Default)]
pub struct AuditPage {
    /// Events at or after.
    pub since: Option<DateTime<Utc>>,
    /// Events before.
    pub until: Option<DateTime<Utc>>,
    /// At most this many events (default and maximum [`MAX_AUDIT_PAGE`]).
    pub limit: Option<u32>,
    /// Events after this sequence number (for paging).
    pub after_seq: Option<i64>,
}

/// A tunnel the gateway refused, from its `admission.denied` audit event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Denial {
    /// The audit event's sequence number.
    pub seq: i64,
    pub at: DateTime<Utc>,
    /// The refused connection's id, as told to the client (`PORTIER DENIED <reason> <id>`).
    pub session_id: String,
    /// The policy's reason code (`no_active_window`, `source_ip_not_declared`…).
    pub reason: String,
    pub source_ip: Option<String>,
    pub source_port: Option<u16>,
    /// The device name the client asked for (bounded).
    pub sni: Option<String>,
    /// As far as the policy identified them before refusing.
    pub vendor_id: Option<VendorId>,
    pub technician_id: Option<TechnicianId>,
    pub device_id: Option<DeviceId>,
    pub certificate_subject: Option<String>,
    pub certificate_fingerprint: Option<String>,
    /// The node that refused it.
    pub node: Option<String>,
    /// Like denials from the same source for the same reason left out of the
    /// trail (budgeted) since the previous recorded one.
    pub suppressed_since_last: u64,
}

/// The details of an `admission.denied` event, as the gateway writes them.
#[derive(Debug, Deserialize)]
struct DenialDetails {
    reason: String,
    source_ip: Option<String>,
    source_port: Option<u16>,
    sni: Option<String>,
    vendor_id: Option<VendorId>,
    technician_id: Option<TechnicianId>,
    device_id: Option<DeviceId>,
    certificate_subject: Option<String>,
    certificate_fingerprint: Option<String>,
    node: Option<String>,
    #[serde(default)]
    suppressed_since_last: u64,
}

impl Denial {
    fn from_record(r: AuditRecord) -> Result<Self, StoreError> {
        // Written by the gateway: details that do not parse are a bug or tampering.
        let d: DenialDetails = serde_json::from_str(&r.details)
            .map_err(|e| StoreError::Corrupt(format!("details of audit event {}: {e}", r.seq)))?;
        Ok(Self {
            seq: r.seq,
            at: r.at,
            session_id: r.object,
            reason: d.reason,
            source_ip: d.source_ip,
            source_port: d.source_port,
            sni: d.sni,
            vendor_id: d.vendor_id,
            technician_id: d.technician_id,
            device_id: d.device_id,
            certificate_subject: d.certificate_subject,
            certificate_fingerprint: d.certificate_fingerprint,
            node: d.node,
            suppressed_since_last: d.suppressed_since_last,
        })
    }
}

/// The range and subject of a timeline.
#[derive(Debug, Clone)]
pub struct TimelineQuery {
    /// One vendor's windows (any if `None`).
    pub vendor_id: Option<VendorId>,
    /// Windows listing this device, and its sessions only (any if `None`).
    pub device_id: Option<DeviceId>,
    /// From (inclusive)…
    pub since: DateTime<Utc>,
    /// …to (exclusive).
    pub until: DateTime<Utc>,
}

/// One window of a timeline, with its sessions that overlap the range.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineWindow {
    pub window: WindowView,
    /// Oldest first.
    pub sessions: Vec<SessionView>,
}

impl Ops {
    /// A page of the audit trail, with each event's hash so an export is
    /// verifiable on its own (security, auditor).
    pub async fn audit(&self, who: &Actor, q: &AuditPage) -> OpsResult<Vec<AuditRecord>> {
        who.may(Function::ReadAudit)?;
        let limit = q.limit.unwrap_or(MAX_AUDIT_PAGE).min(MAX_AUDIT_PAGE);
        Ok(self
            .store
            .list_audit(&AuditFilter {
                since: q.since,
                until: q.until,
                after_seq: q.after_seq,
                limit: Some(limit),
                ..AuditFilter::default()
            })
            .await?)
    }

    /// Recomputes the whole hash chain (security, auditor).
    pub async fn verify_audit(&self, who: &Actor) -> OpsResult<Verification> {
        who.may(Function::VerifyAudit)?;
        Ok(verify_store(self.store.as_ref(), |_| {}).await?)
    }

    /// The network flow matrix of the node described by `node`, from the live
    /// configuration (admin, security, auditor).
    pub async fn flow_matrix(&self, who: &Actor, node: &NodeFlows) -> OpsResult<Vec<Flow>> {
        who.may(Function::ReadFlows)?;
        Ok(flows::matrix(
            node,
            &self.store.list_vendors().await?,
            &self.store.list_devices().await?,
        ))
    }

    /// The latest tunnel denials with their reasons, newest first, at most
    /// `limit` (1 to [`MAX_DENIALS`]) (security, admin, auditor). Denials the
    /// gateway left out of the trail over its budget are counted in
    /// `suppressed_since_last` of the next recorded one.
    pub async fn recent_denials(&self, who: &Actor, limit: u32) -> OpsResult<Vec<Denial>> {
        who.may(Function::RecentDenials)?;
        let records = self
            .store
            .list_audit(&AuditFilter {
                action: Some(Event::AdmissionDenied.as_str().to_owned()),
                limit: Some(limit.clamp(1, MAX_DENIALS)),
                newest_first: true,
                ..AuditFilter::default()
            })
            .await?;
        Ok(records.into_iter().map(Denial::from_record).collect::<Result<_, _>>()?)
    }

    /// The windows of a vendor or a device that overlap `[since, until)`, in
    /// every state, by start, each with its sessions that overlap the range, by
    /// start (auditor, security, admin).
    pub async fn timeline(&self, who: &Actor, q: &TimelineQuery) -> OpsResult<Vec<TimelineWindow>> {
        who.may(Function::ReadTimeline)?;
        if q.until <= q.since {
            return Err(OpsError::bad_request("until must be after since"));
        }
        let mut windows = self
            .store
            .list_windows(&WindowFilter {
                vendor_id: q.vendor_id.clone(),
                device_id: q.device_id.clone(),
                since: Some(q.since),
                until: Some(q.until),
                ..WindowFilter::default()
            })
            .await?;
        windows.sort_by(|a, b| (a.starts_at, &a.id).cmp(&(b.starts_at, &b.id)));
        let Some(first) = windows.first().map(|w| w.starts_at) else {
            return Ok(Vec::new());
        };
        // A session starts within its window: one read from the earliest start
        // covers every listed window's sessions.
        let sessions = self
            .store
            .list_sessions(&SessionFilter {
                vendor_id: q.vendor_id.clone(),
                device_id: q.device_id.clone(),
                since: Some(first),
                until: Some(q.until),
                ..SessionFilter::default()
            })
            .await?;
        let live = self.live_nodes().await?;
        let mut by_window: HashMap<WindowId, Vec<SessionView>> = HashMap::new();
        for s in sessions {
            // Open sessions overlap everything after their start.
            if s.ended_at.is_none_or(|end| end >= q.since) {
                by_window
                    .entry(s.window_id.clone())
                    .or_default()
                    .push(SessionView::new(s, &live));
            }
        }
        let now = self.now();
        Ok(windows
            .into_iter()
            .map(|w| {
                let mut sessions = by_window.remove(&w.id).unwrap_or_default();
                sessions
                    .sort_by(|a, b| (a.session.started_at, &a.session.id).cmp(&(b.session.started_at, &b.session.id)));
                TimelineWindow {
                    window: WindowView::new(w, now),
                    sessions,
                }
            })
            .collect())
    }
}
