//! The live-session registry: every open tunnel with its deadline and a handle
//! that cuts it. Revocation, termination, lockdown and window end all go through
//! here. The lock is never held across an `.await`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::domain::{DeviceId, EndReason, SessionId, TechnicianId, VendorId, WindowId};

/// One open tunnel, as the registry knows it.
#[derive(Debug)]
pub struct LiveSession {
    pub id: SessionId,
    pub window_id: WindowId,
    pub vendor_id: VendorId,
    pub technician_id: TechnicianId,
    pub device_id: DeviceId,
    pub started_at: DateTime<Utc>,
    /// The technician's address (the one the declared-network rule admitted), if known.
    pub source_ip: Option<IpAddr>,
    /// When the tunnel ends: its window's end, never later than `certificate_not_after`.
    deadline: watch::Sender<DateTime<Utc>>,
    /// The technician certificate's `not_after`, if known: a hard ceiling on the deadline.
    certificate_not_after: Option<DateTime<Utc>>,
    cut: CancellationToken,
    cut_reason: OnceLock<EndReason>,
    /// Bytes relayed so far, published by the pump for periodic checkpoints.
    bytes_from_vendor: AtomicU64,
    bytes_to_vendor: AtomicU64,
}

impl LiveSession {
    /// A live session ending at `deadline` unless cut earlier.
    pub fn new(
        id: SessionId,
        window_id: WindowId,
        vendor_id: VendorId,
        technician_id: TechnicianId,
        device_id: DeviceId,
        started_at: DateTime<Utc>,
        deadline: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            window_id,
            vendor_id,
            technician_id,
            device_id,
            started_at,
            source_ip: None,
            deadline: watch::channel(deadline).0,
            certificate_not_after: None,
            cut: CancellationToken::new(),
            cut_reason: OnceLock::new(),
            bytes_from_vendor: AtomicU64::new(0),
            bytes_to_vendor: AtomicU64::new(0),
        }
    }

    /// Bounds the tunnel by its technician's certificate: the deadline never passes
    /// `not_after`, whatever extension is approved later.
    #[must_use]
    pub fn with_certificate_expiry(self, not_after: DateTime<Utc>) -> Self {
        self.deadline.send_modify(|d| *d = (*d).min(not_after));
        Self {
            certificate_not_after: Some(not_after),
            ..self
        }
    }

    /// Records the address the tunnel was admitted from, so that a change of
    /// its vendor's networks can cut it (canonical form: IPv4-mapped as IPv4).
    #[must_use]
    pub fn with_source(self, ip: IpAddr) -> Self {
        Self {
            source_ip: Some(ip.to_canonical()),
            ..self
        }
    }

    /// Why the tunnel ends when its deadline comes: `certificate_expired` when the
    /// deadline is the certificate's `not_after` (also when the window ends at the
    /// same instant: the technician could not reconnect either), else `window_ended`.
    pub fn deadline_reason(&self) -> EndReason {
        match self.certificate_not_after {
            Some(na) if self.deadline() >= na => EndReason::CertificateExpired,
            _ => EndReason::WindowEnded,
        }
    }

    /// Publishes the byte counts relayed so far.
    pub fn set_bytes(&self, from_vendor: u64, to_vendor: u64) {
        self.bytes_from_vendor.store(from_vendor, Ordering::Relaxed);
        self.bytes_to_vendor.store(to_vendor, Ordering::Relaxed);
    }

    /// Bytes relayed so far: (from the vendor, to the vendor).
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.bytes_from_vendor.load(Ordering::Relaxed),
            self.bytes_to_vendor.load(Ordering::Relaxed),
        )
    }

    /// Cuts the tunnel; the first reason given is the one recorded.
    pub fn cut(&self, reason: EndReason) {
        let _ = self.cut_reason.set(reason);
        self.cut.cancel();
    }

    /// Why it was cut, if it was.
    pub fn cut_reason(&self) -> Option<EndReason> {
        self.cut_reason.get().copied()
    }

    /// Completes when the tunnel is cut.
    pub async fn cut_requested(&self) {
        self.cut.cancelled().await;
    }

    /// The current deadline.
    pub fn deadline(&self) -> DateTime<Utc> {
        *self.deadline.borrow()
    }

    /// Watches the deadline (an approved extension moves it).
    pub fn watch_deadline(&self) -> watch::Receiver<DateTime<Utc>> {
        self.deadline.subscribe()
    }

    /// Moves the deadline (an approved extension); never past the certificate's `not_after`.
    pub fn set_deadline(&self, at: DateTime<Utc>) {
        let at = self.certificate_not_after.map_or(at, |na| at.min(na));
        self.deadline.send_replace(at);
    }
}

/// A live session, as listed.
#[derive(Debug, Clone, Serialize)]
pub struct LiveInfo {
    pub id: SessionId,
    pub window_id: WindowId,
    pub vendor_id: VendorId,
    pub technician_id: TechnicianId,
    pub device_id: DeviceId,
    pub started_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
}

/// All open tunnels of this node.
#[derive(Debug, Default)]
pub struct Registry {
    sessions: Mutex<HashMap<SessionId, Arc<LiveSession>>>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<SessionId, Arc<LiveSession>>> {
        // A panic elsewhere while holding the lock leaves a usable map.
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a tunnel.
    pub fn insert(&self, s: Arc<LiveSession>) {
        self.lock().insert(s.id.clone(), s);
    }

    /// Removes a tunnel that has ended.
    pub fn remove(&self, id: &SessionId) {
        self.lock().remove(id);
    }

    /// Number of open tunnels.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no tunnel is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The open tunnels.
    pub fn list(&self) -> Vec<LiveInfo> {
        self.lock()
            .values()
            .map(|s| LiveInfo {
                id: s.id.clone(),
                window_id: s.window_id.clone(),
                vendor_id: s.vendor_id.clone(),
                technician_id: s.technician_id.clone(),
                device_id: s.device_id.clone(),
                started_at: s.started_at,
                deadline: s.deadline(),
            })
            .collect()
    }

    /// (session, bytes from vendor, bytes to vendor) of every open tunnel.
    pub fn byte_counts(&self) -> Vec<(SessionId, u64, u64)> {
        self.lock()
            .values()
            .map(|s| {
                let (up, down) = s.bytes();
                (s.id.clone(), up, down)
            })
            .collect()
    }

    /// Cuts every tunnel matching `pred`; returns how many.
    pub fn cut_where(&self, reason: EndReason, pred: impl Fn(&LiveSession) -> bool) -> usize {
        let hit: Vec<Arc<LiveSession>> = self.lock().values().filter(|s| pred(s)).cloned().collect();
        for s in &hit {
            s.cut(reason);
        }
        if !hit.is_empty() {
            tracing::info!(count = hit.len(), reason = reason.as_str(), "tunnels cut");
        }
        hit.len()
    }

    /// Cuts one session.
    pub fn cut_session(&self, id: &SessionId, reason: EndReason) -> bool {
        self.cut_where(reason, |s| &s.id == id) > 0
    }

    /// Cuts the tunnels of a window (revoked).
    pub fn cut_window(&self, id: &WindowId, reason: EndReason) -> usize {
        self.cut_where(reason, |s| &s.window_id == id)
    }

    /// Cuts a technician's tunnels (revoked).
    pub fn cut_technician(&self, id: &TechnicianId, reason: EndReason) -> usize {
        self.cut_where(reason, |s| &s.technician_id == id)
    }

    /// Cuts a vendor's tunnels (disabled).
    pub fn cut_vendor(&self, id: &VendorId, reason: EndReason) -> usize {
        self.cut_where(reason, |s| &s.vendor_id == id)
    }

    /// Cuts the tunnels to a device (disabled).
    pub fn cut_device(&self, id: &DeviceId, reason: EndReason) -> usize {
        self.cut_where(reason, |s| &s.device_id == id)
    }

    /// The open tunnels themselves, to check each against a changed state.
    pub fn sessions(&self) -> Vec<Arc<LiveSession>> {
        self.lock().values().cloned().collect()
    }

    /// Cuts everything (lockdown, shutdown).
    pub fn cut_all(&self, reason: EndReason) -> usize {
        self.cut_where(reason, |_| true)
    }

    /// Moves the deadline of a window's tunnels (approved extension); each stays
    /// bounded by its certificate's `not_after`.
    pub fn move_window_deadline(&self, id: &WindowId, deadline: DateTime<Utc>) -> usize {
        let hit: Vec<Arc<LiveSession>> = self.lock().values().filter(|s| &s.window_id == id).cloned().collect();
        for s in &hit {
            s.set_deadline(deadline);
        }
        hit.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(id: &str, window: &str, vendor: &str) -> Arc<LiveSession> {
        Arc::new(LiveSession::new(
            id.into(),
            window.into(),
            vendor.into(),
            "t".into(),
            "d".into(),
            Utc::now(),
            Utc::now(),
        ))
    }

    #[test]
    fn cuts_by_predicate_and_keeps_the_first_reason() {
        let r = Registry::default();
        let (a, b) = (live("a", "w1", "v1"), live("b", "w2", "v1"));
        r.insert(a.clone());
        r.insert(b.clone());
        assert_eq!(r.cut_window(&"w1".into(), EndReason::WindowRevoked), 1);
        assert_eq!(a.cut_reason(), Some(EndReason::WindowRevoked));
        assert_eq!(b.cut_reason(), None);
        assert_eq!(r.cut_vendor(&"v1".into(), EndReason::VendorDisabled), 2);
        assert_eq!(a.cut_reason(), Some(EndReason::WindowRevoked));
        assert_eq!(b.cut_reason(), Some(EndReason::VendorDisabled));
        r.remove(&"a".into());
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn an_extension_never_passes_the_certificate_expiry() {
        let now = Utc::now();
        let h = chrono::Duration::hours;
        let s = Arc::new(
            LiveSession::new(
                "s".into(),
                "w".into(),
                "v".into(),
                "t".into(),
                "d".into(),
                now,
                now + h(1),
            )
            .with_certificate_expiry(now + h(2)),
        );
        assert_eq!(
            (s.deadline(), s.deadline_reason()),
            (now + h(1), EndReason::WindowEnded)
        );
        let r = Registry::default();
        r.insert(s.clone());
        assert_eq!(r.move_window_deadline(&"w".into(), now + h(5)), 1);
        assert_eq!(s.deadline(), now + h(2), "capped at not_after");
        assert_eq!(s.deadline_reason(), EndReason::CertificateExpired);
        assert_eq!(r.list().first().map(|l| l.deadline), Some(now + h(2)));
        // A certificate ending before the window bounds the tunnel from the start.
        let early = LiveSession::new(
            "e".into(),
            "w".into(),
            "v".into(),
            "t".into(),
            "d".into(),
            now,
            now + h(3),
        )
        .with_certificate_expiry(now + h(1));
        assert_eq!(
            (early.deadline(), early.deadline_reason()),
            (now + h(1), EndReason::CertificateExpired)
        );
    }
}
