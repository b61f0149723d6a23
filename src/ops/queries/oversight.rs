//! What security watches and decides on now: the live tunnels, the requests and
//! extensions waiting for a decision, the emergency grants awaiting review.

use std::collections::HashMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::WindowView;
use crate::domain::{DeviceId, SessionId, TechnicianId, VendorId, WindowId, WindowState};
use crate::metrics::StoreCounts;
use crate::ops::{Actor, Ops, OpsResult};
use crate::rights::Function;
use crate::store::{SessionFilter, Window, WindowFilter};

/// A live tunnel: an open session on a node that is alive.
#[derive(Debug, Clone, Serialize)]
pub struct LiveTunnel {
    pub session_id: SessionId,
    pub window_id: WindowId,
    /// The node carrying it.
    pub node: String,
    /// Carried by this node: its byte counts are current; otherwise they are as
    /// of its node's last heartbeat.
    pub here: bool,
    pub technician_id: TechnicianId,
    pub technician_name: String,
    /// The subject of the certificate it presented.
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
    /// The window's end: the tunnel is cut then (unless it is extended).
    pub window_ends_at: DateTime<Utc>,
    /// Seconds until the window's end (0 once passed).
    pub seconds_left: i64,
    /// An extension is pending: the end asked for.
    pub extension_ends_at: Option<DateTime<Utc>>,
}

/// Windows waiting for a decision by security or an admin.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PendingDecisions {
    /// Requested windows, by start.
    pub requests: Vec<WindowView>,
    /// Approved windows, not ended, with a pending extension, by current end.
    pub extensions: Vec<WindowView>,
}

/// The name of `id`; its id if it has none (a record removed since: shown, not hidden).
fn named<K: std::hash::Hash + Eq + std::fmt::Display>(names: &HashMap<K, String>, id: &K) -> String {
    names.get(id).cloned().unwrap_or_else(|| id.to_string())
}

impl Ops {
    /// The tunnels live now on every node, oldest first (security, admin).
    pub async fn live_tunnels(&self, who: &Actor) -> OpsResult<Vec<LiveTunnel>> {
        who.may(Function::LiveTunnels)?;
        let mut sessions = self
            .store
            .list_sessions(&SessionFilter {
                active: Some(true),
                live_after: Some(self.live_after()),
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
        // This node's counters are current; the records' as of the last heartbeat.
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
    /// extension (security, admin): what waits for a decision.
    pub async fn pending_decisions(&self, who: &Actor) -> OpsResult<PendingDecisions> {
        who.may(Function::PendingDecisions)?;
        let now = self.now();
        let (mut requests, mut extensions) = self.pending_windows(now).await?;
        requests.sort_by(|a, b| (a.starts_at, &a.id).cmp(&(b.starts_at, &b.id)));
        extensions.sort_by(|a, b| (a.ends_at, &a.id).cmp(&(b.ends_at, &b.id)));
        Ok(PendingDecisions {
            requests: requests.into_iter().map(|w| WindowView::new(w, now)).collect(),
            extensions: extensions.into_iter().map(|w| WindowView::new(w, now)).collect(),
        })
    }

    /// Requested windows, and approved windows not ended at `now` with a pending extension.
    async fn pending_windows(&self, now: DateTime<Utc>) -> OpsResult<(Vec<Window>, Vec<Window>)> {
        let requests = self
            .store
            .list_windows(&WindowFilter {
                state: Some(WindowState::Requested),
                ..WindowFilter::default()
            })
            .await?;
        let extensions = self
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
        Ok((requests, extensions))
    }

    /// Emergency grants not reviewed yet, oldest first (security, admin).
    pub async fn unreviewed_emergencies(&self, who: &Actor) -> OpsResult<Vec<WindowView>> {
        who.may(Function::UnreviewedEmergencies)?;
        let mut list = self.unreviewed_emergency_windows().await?;
        list.sort_by(|a, b| (a.starts_at, &a.id).cmp(&(b.starts_at, &b.id)));
        let now = self.now();
        Ok(list.into_iter().map(|w| WindowView::new(w, now)).collect())
    }

    async fn unreviewed_emergency_windows(&self) -> OpsResult<Vec<Window>> {
        Ok(self
            .store
            .list_windows(&WindowFilter {
                emergency: Some(true),
                reviewed: Some(false),
                ..WindowFilter::default()
            })
            .await?)
    }

    /// How much waits on people, for the operators' metrics: the same lists as
    /// [`Ops::pending_decisions`], [`Ops::unreviewed_emergencies`] and the
    /// overdue [`Ops::reports`], counted. Numbers only, no names: no role needed.
    pub async fn waiting_counts(&self) -> OpsResult<StoreCounts> {
        let (requests, extensions) = self.pending_windows(self.now()).await?;
        let emergencies = self.unreviewed_emergency_windows().await?;
        let overdue = self.overdue_report_windows(None).await?;
        let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        Ok(StoreCounts {
            window_requests: n(requests.len()),
            extension_requests: n(extensions.len()),
            unreviewed_emergencies: n(emergencies.len()),
            overdue_reports: n(overdue.len()),
        })
    }
}
