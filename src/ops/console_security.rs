//! TEMPORARY reads for the console's security home, until the read use cases of
//! branch h-reads (`live_tunnels`, `pending_decisions`, `unreviewed_emergencies`,
//! `recent_denials`, `lockdown_status`, `vendors`, `devices`) are merged; then
//! this file goes and the console calls those. Same shapes, `sec_` names so the
//! two cannot collide in the meantime.

use std::collections::HashMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{Actor, Ops, OpsResult};
use crate::domain::{DeviceId, Role, SessionId, TechnicianId, VendorId, WindowId, WindowState};
use crate::events::Event;
use crate::store::{AuditFilter, Device, LockdownState, SessionFilter, StoreError, Vendor, Window, WindowFilter};

/// A live tunnel: an open session on a node that is alive.
#[derive(Debug, Clone)]
pub struct LiveTunnel {
    pub session_id: SessionId,
    pub window_id: WindowId,
    pub node: String,
    /// Carried by this node: its byte counts are current.
    pub here: bool,
    pub technician_id: TechnicianId,
    pub technician_name: String,
    pub technician_subject: String,
    pub vendor_id: VendorId,
    pub vendor_name: String,
    pub device_id: DeviceId,
    pub device_name: String,
    pub source_ip: IpAddr,
    pub source_port: u16,
    pub started_at: DateTime<Utc>,
    pub bytes_from_vendor: u64,
    pub bytes_to_vendor: u64,
    pub window_ends_at: DateTime<Utc>,
    pub seconds_left: i64,
    pub extension_ends_at: Option<DateTime<Utc>>,
}

/// Windows waiting for a decision by security or an admin.
#[derive(Debug, Clone, Default)]
pub struct PendingDecisions {
    pub requests: Vec<Window>,
    pub extensions: Vec<Window>,
}

/// A tunnel the gateway refused, from its `admission.denied` audit event.
#[derive(Debug, Clone)]
pub struct Denial {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub session_id: String,
    pub reason: String,
    pub source_ip: Option<String>,
    pub sni: Option<String>,
    pub vendor_id: Option<VendorId>,
    pub certificate_subject: Option<String>,
    pub node: Option<String>,
    pub suppressed_since_last: u64,
}

#[derive(Debug, Deserialize)]
struct DenialDetails {
    reason: String,
    source_ip: Option<String>,
    sni: Option<String>,
    vendor_id: Option<VendorId>,
    certificate_subject: Option<String>,
    node: Option<String>,
    #[serde(default)]
    suppressed_since_last: u64,
}

/// The lockdown as this node applies it.
#[derive(Debug, Clone)]
pub struct LockdownStatus {
    pub state: LockdownState,
    /// Stored in the database (every node follows it).
    pub persisted: bool,
    /// `api` (held here, not stored yet) or `file` (this node's lockdown file).
    pub local: Option<&'static str>,
}

fn named<K: std::hash::Hash + Eq + std::fmt::Display>(names: &HashMap<K, String>, id: &K) -> String {
    names.get(id).cloned().unwrap_or_else(|| id.to_string())
}

impl Ops {
    /// The tunnels live now on every node, oldest first (security, admin).
    pub async fn sec_live_tunnels(&self, who: &Actor) -> OpsResult<Vec<LiveTunnel>> {
        who.require(&[Role::Security, Role::Admin])?;
        let mut sessions = self
            .store
            .list_sessions(&SessionFilter {
                active: Some(true),
                live_after: Some(self.now() - self.rules.node_stale),
                ..SessionFilter::default()
            })
            .await?;
        if sessions.is_empty() {
            return Ok(Vec::new());
        }
        sessions.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        let vendors: HashMap<VendorId, String> = self
            .store
            .list_vendors()
            .await?
            .into_iter()
            .map(|v| (v.id, v.name))
            .collect();
        let devices: HashMap<DeviceId, String> = self
            .store
            .list_devices()
            .await?
            .into_iter()
            .map(|d| (d.id, d.name.to_string()))
            .collect();
        let mut technicians: HashMap<TechnicianId, String> = HashMap::new();
        let mut windows = HashMap::new();
        for s in &sessions {
            if !technicians.contains_key(&s.technician_id) {
                for t in self.store.list_technicians(&s.vendor_id).await? {
                    technicians.insert(t.id, t.name);
                }
            }
            if !windows.contains_key(&s.window_id) {
                windows.insert(s.window_id.clone(), self.store.window(&s.window_id).await?);
            }
        }
        let here: HashMap<SessionId, (u64, u64)> = self
            .registry
            .byte_counts()
            .into_iter()
            .map(|(id, from, to)| (id, (from, to)))
            .collect();
        let now = self.now();
        let mut out = Vec::with_capacity(sessions.len());
        for s in sessions {
            let Some(w) = windows.get(&s.window_id) else {
                continue;
            };
            let (bytes_from_vendor, bytes_to_vendor) = here
                .get(&s.id)
                .copied()
                .unwrap_or((s.bytes_from_vendor, s.bytes_to_vendor));
            out.push(LiveTunnel {
                here: here.contains_key(&s.id),
                technician_name: named(&technicians, &s.technician_id),
                vendor_name: named(&vendors, &s.vendor_id),
                device_name: named(&devices, &s.device_id),
                window_ends_at: w.ends_at,
                seconds_left: (w.ends_at - now).num_seconds().max(0),
                extension_ends_at: w.extension_ends_at,
                session_id: s.id,
                window_id: s.window_id,
                node: s.node,
                technician_id: s.technician_id,
                technician_subject: s.technician_subject,
                vendor_id: s.vendor_id,
                device_id: s.device_id,
                source_ip: s.source_ip,
                source_port: s.source_port,
                started_at: s.started_at,
                bytes_from_vendor,
                bytes_to_vendor,
            });
        }
        Ok(out)
    }

    /// Requested windows, and approved windows not ended with a pending
    /// extension (security, admin).
    pub async fn sec_pending_decisions(&self, who: &Actor) -> OpsResult<PendingDecisions> {
        who.require(&[Role::Security, Role::Admin])?;
        let now = self.now();
        let mut requests = self
            .store
            .list_windows(&WindowFilter {
                state: Some(WindowState::Requested),
                ..WindowFilter::default()
            })
            .await?;
        requests.sort_by(|a, b| (a.starts_at, &a.id).cmp(&(b.starts_at, &b.id)));
        let mut extensions: Vec<_> = self
            .store
            .list_windows(&WindowFilter {
                state: Some(WindowState::Approved),
                since: Some(now),
                ..WindowFilter::default()
            })
            .await?
            .into_iter()
            .filter(|w| w.extension_ends_at.is_some())
            .collect();
        extensions.sort_by(|a, b| (a.ends_at, &a.id).cmp(&(b.ends_at, &b.id)));
        Ok(PendingDecisions { requests, extensions })
    }

    /// Emergency grants not reviewed yet, oldest first (security, admin).
    pub async fn sec_unreviewed_emergencies(&self, who: &Actor) -> OpsResult<Vec<Window>> {
        who.require(&[Role::Security, Role::Admin])?;
        let mut list = self
            .store
            .list_windows(&WindowFilter {
                emergency: Some(true),
                reviewed: Some(false),
                ..WindowFilter::default()
            })
            .await?;
        list.sort_by(|a, b| (a.starts_at, &a.id).cmp(&(b.starts_at, &b.id)));
        Ok(list)
    }

    /// The latest tunnel denials of the last day, newest first, at most `limit`
    /// (security, admin, auditor).
    pub async fn sec_recent_denials(&self, who: &Actor, limit: usize) -> OpsResult<Vec<Denial>> {
        who.require(&[Role::Security, Role::Admin, Role::Auditor])?;
        let records = self
            .store
            .list_audit(&AuditFilter {
                action: Some(Event::AdmissionDenied.as_str().to_owned()),
                since: Some(self.now() - chrono::Duration::days(1)),
                ..AuditFilter::default()
            })
            .await?;
        let mut out = Vec::with_capacity(limit.min(records.len()));
        for r in records.into_iter().rev().take(limit) {
            let d: DenialDetails = serde_json::from_str(&r.details)
                .map_err(|e| StoreError::Corrupt(format!("details of audit event {}: {e}", r.seq)))?;
            out.push(Denial {
                seq: r.seq,
                at: r.at,
                session_id: r.object,
                reason: d.reason,
                source_ip: d.source_ip,
                sni: d.sni,
                vendor_id: d.vendor_id,
                certificate_subject: d.certificate_subject,
                node: d.node,
                suppressed_since_last: d.suppressed_since_last,
            });
        }
        Ok(out)
    }

    /// The lockdown state as this node applies it (any account).
    pub async fn sec_lockdown_status(&self, _who: &Actor) -> OpsResult<LockdownStatus> {
        let stored = self.store.lockdown().await;
        match self.guard().local_lockdown() {
            None => Ok(LockdownStatus {
                state: stored?,
                persisted: true,
                local: None,
            }),
            Some((local, source)) => {
                let persisted = stored.is_ok_and(|st| st.active && st.set_at == local.set_at);
                Ok(LockdownStatus {
                    state: local,
                    persisted,
                    local: Some(source),
                })
            }
        }
    }

    /// Vendors and devices, for the emergency grant form (security, admin).
    pub async fn sec_catalogue(&self, who: &Actor) -> OpsResult<(Vec<Vendor>, Vec<Device>)> {
        who.require(&[Role::Security, Role::Admin])?;
        Ok((self.store.list_vendors().await?, self.store.list_devices().await?))
    }
}
