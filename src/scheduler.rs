//! Background duties of a node: warn vendors before their windows end, and
//! remind everyone of overdue reports and unreviewed emergency grants. (The
//! stored lockdown switch, set by the CLI or another node, reaches the node
//! through the change feed: see `cluster`.)

use crate::events::Event;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::domain::{WindowId, WindowState};
use crate::gateway::Registry;
use crate::notify::Notifier;
use crate::store::{Store, WindowFilter};

/// The scheduler's tick.
const TICK: Duration = Duration::from_secs(1);
/// How often (in ticks) windows and reports are looked at.
const SWEEP_EVERY: u32 = 10;
/// Change-feed entries are kept this long: a node further behind reloads in full.
const CHANGES_KEPT: chrono::Duration = chrono::Duration::hours(1);
/// Unreviewed emergency grants are recalled this often.
const REVIEW_REMINDER: chrono::Duration = chrono::Duration::hours(1);

/// What the scheduler works with.
pub struct Scheduler {
    pub store: Arc<dyn Store>,
    pub registry: Arc<Registry>,
    pub notifier: Notifier,
    pub clock: SharedClock,
    /// Warn the vendor this long before a window ends (e.g. 15 and 2 minutes).
    pub ending_soon: Vec<chrono::Duration>,
    pub report_due: chrono::Duration,
    /// Anchor the audit chain's head this often (None: never).
    pub anchor_every: Option<Duration>,
    /// This node's name, and how long a silent node is still counted live:
    /// reminders and anchors come from one node only (see [`Scheduler::leads`]).
    pub node: String,
    pub node_stale: chrono::Duration,
    /// Console sessions idle this long, or this old, are deleted.
    pub console_idle: chrono::Duration,
    pub console_absolute: chrono::Duration,
}

impl Scheduler {
    /// Runs until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut warned: HashSet<(WindowId, DateTime<Utc>, i64)> = HashSet::new();
        let mut overdue_told: HashSet<WindowId> = HashSet::new();
        let mut review_told: std::collections::HashMap<WindowId, DateTime<Utc>> = Default::default();
        let mut tick: u32 = 0;
        let mut last_anchor = tokio::time::Instant::now();
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = interval.tick() => {}
            }
            let due_anchor = self.anchor_every.is_some_and(|every| last_anchor.elapsed() >= every);
            tick = tick.wrapping_add(1);
            let due_sweep = tick % SWEEP_EVERY == 1;
            if !(due_anchor || due_sweep) || !self.leads().await {
                continue;
            }
            if due_anchor {
                last_anchor = tokio::time::Instant::now();
                self.anchor().await;
            }
            if due_sweep {
                if let Err(e) = self.sweep(&mut warned, &mut overdue_told, &mut review_told).await {
                    tracing::warn!(error = %e, "scheduler sweep failed");
                }
            }
        }
    }

    /// Whether this node sends the reminders and anchors: the first live node by
    /// name. Every node runs a scheduler; were each to send them, receivers would
    /// get every reminder once per node. If the leader dies, the next one takes
    /// over once it is no longer counted live; a node that cannot tell stays quiet.
    async fn leads(&self) -> bool {
        match self.store.live_nodes(self.clock.now() - self.node_stale).await {
            Ok(live) => live.iter().min().is_none_or(|first| *first == self.node),
            Err(e) => {
                tracing::debug!(error = %e, "cannot tell which node sends reminders");
                false
            }
        }
    }

    /// Publishes the chain's head outside the database.
    async fn anchor(&self) {
        match self.store.audit_head().await {
            Ok(Some((seq, hash))) => {
                tracing::info!(seq, hash = %hash, "audit anchor");
                self.notifier
                    .send(Event::AuditAnchor, serde_json::json!({"seq": seq, "hash": hash}));
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "audit anchor failed"),
        }
    }

    async fn sweep(
        &self,
        warned: &mut HashSet<(WindowId, DateTime<Utc>, i64)>,
        overdue_told: &mut HashSet<WindowId>,
        review_told: &mut std::collections::HashMap<WindowId, DateTime<Utc>>,
    ) -> Result<(), crate::store::StoreError> {
        let now = self.clock.now();
        match self.store.prune_changes(now - CHANGES_KEPT).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(pruned = n, "old change-feed entries deleted"),
            Err(e) => tracing::warn!(error = %e, "old change-feed entries not deleted; retried at the next sweep"),
        }
        // Expired sessions are refused when used; this only keeps the table small.
        match self
            .store
            .prune_console_sessions(now - self.console_idle, now - self.console_absolute)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::debug!(pruned = n, "expired console sessions deleted"),
            Err(e) => tracing::warn!(error = %e, "expired console sessions not deleted; retried at the next sweep"),
        }
        let open = self
            .store
            .list_windows(&WindowFilter {
                state: Some(WindowState::Approved),
                since: Some(now),
                until: Some(now),
                ..WindowFilter::default()
            })
            .await?;
        for w in &open {
            for before in &self.ending_soon {
                let key = (w.id.clone(), w.ends_at, before.num_minutes());
                if w.ends_at - now <= *before && !warned.contains(&key) {
                    self.notifier.send(
                        Event::WindowEndingSoon,
                        serde_json::json!({"window_id": w.id, "vendor_id": w.vendor_id, "ends_at": w.ends_at, "minutes_left": (w.ends_at - now).num_minutes(), "live_tunnels": self.registry.list().iter().filter(|s| s.window_id == w.id).count()}),
                    );
                    warned.insert(key);
                }
            }
        }
        for w in self
            .store
            .unreported_windows(None, crate::policy::overdue_if_ended_by(self.report_due, now))
            .await?
        {
            if overdue_told.insert(w.id.clone()) {
                self.notifier.send(Event::ReportOverdue, serde_json::json!({"window_id": w.id, "vendor_id": w.vendor_id, "ended_at": w.closed_at.unwrap_or(w.ends_at)}));
            }
        }
        let pending = self
            .store
            .list_windows(&WindowFilter {
                emergency: Some(true),
                reviewed: Some(false),
                ..WindowFilter::default()
            })
            .await?;
        for w in pending {
            let due = review_told.get(&w.id).is_none_or(|last| now - *last >= REVIEW_REMINDER);
            if due {
                self.notifier.send(Event::EmergencyReviewPending, serde_json::json!({"window_id": w.id, "vendor_id": w.vendor_id, "granted_by": w.approved_by, "granted_at": w.created_at}));
                review_told.insert(w.id.clone(), now);
            }
        }
        Ok(())
    }
}
