//! Whether the store can take writes right now: a circuit breaker shared by the
//! journal (which opens it on a failed write and closes it on a successful one),
//! the admission cache (which refuses at once while it is open) and `/readyz`.
//!
//! While the breaker is open, nothing that a technician waits for touches the
//! database: a refusal takes microseconds instead of a pool timeout. Only the
//! background probe (the node's heartbeat, or the journal's own retry of queued
//! entries) tries the database, and its first success closes the breaker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::Notify;

/// The breaker's state, as readiness reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    /// Writes succeed (the breaker is closed).
    pub writable: bool,
    /// Why the last write failed, while the breaker is open.
    pub last_error: Option<String>,
    /// How long the breaker has been open.
    pub down_for: Option<std::time::Duration>,
}

#[derive(Debug, Default)]
struct Down {
    since: Option<Instant>,
    error: Option<String>,
}

/// The store's write health (see the module documentation).
#[derive(Debug)]
pub struct StoreHealth {
    up: AtomicBool,
    down: Mutex<Down>,
    recovered: Notify,
}

impl Default for StoreHealth {
    fn default() -> Self {
        Self {
            up: AtomicBool::new(true),
            down: Mutex::new(Down::default()),
            recovered: Notify::new(),
        }
    }
}

impl StoreHealth {
    /// Whether writes are expected to succeed (breaker closed).
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// A write failed because the database is unreachable, full or read-only.
    pub fn mark_down(&self, error: &str) {
        let mut d = self.down.lock().unwrap_or_else(|p| p.into_inner());
        if self.up.swap(false, Ordering::AcqRel) {
            tracing::error!(error, "store unavailable: failing fast until a probe succeeds");
            d.since = Some(Instant::now());
        }
        d.error = Some(error.to_owned());
    }

    /// A write succeeded.
    pub fn mark_up(&self) {
        if !self.up.swap(true, Ordering::AcqRel) {
            let mut d = self.down.lock().unwrap_or_else(|p| p.into_inner());
            let down_for = d.since.map(|s| s.elapsed());
            *d = Down::default();
            tracing::warn!(?down_for, "store available again");
            self.recovered.notify_waiters();
        }
    }

    /// Completes when the breaker closes (or at once if it is closed).
    pub async fn wait_up(&self) {
        loop {
            let notified = self.recovered.notified();
            if self.is_up() {
                return;
            }
            notified.await;
        }
    }

    /// The current state, for `/readyz`.
    pub fn report(&self) -> HealthReport {
        let d = self.down.lock().unwrap_or_else(|p| p.into_inner());
        let writable = self.is_up();
        HealthReport {
            writable,
            last_error: if writable { None } else { d.error.clone() },
            down_for: if writable { None } else { d.since.map(|s| s.elapsed()) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_and_closes() {
        let h = std::sync::Arc::new(StoreHealth::default());
        assert!(h.is_up());
        h.mark_down("disk full");
        assert!(!h.is_up());
        assert_eq!(h.report().last_error.as_deref(), Some("disk full"));
        let waiter = tokio::spawn({
            let h = h.clone();
            async move { h.wait_up().await }
        });
        tokio::task::yield_now().await;
        h.mark_up();
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(h.report().last_error, None);
    }
}
