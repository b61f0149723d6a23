//! The follower: reads the change feed from where it left off, applies each
//! change to the admission state and cuts what it forbids. It reads when woken
//! (a commit in this process bumps the store's generation; on PostgreSQL, a
//! `NOTIFY` from any node) and at least every `poll` (a notification missed
//! across a reconnect). Every `full_reload` it loads the state in full and
//! compares it with its own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::apply::{Indexed, Reread};
use super::compare::{differences, Skip};
use super::cuts;
use crate::clock::SharedClock;
use crate::domain::{EndReason, VendorId};
use crate::gateway::Registry;
use crate::policy::{PolicySettings, Snapshot};
use crate::store::{Change, ChangeRecord, Generation, Store, StoreError, StoreResult};

/// Feed entries read per query.
const BATCH: u32 = 1000;
/// Changes remembered between two full loads, to tell which objects changed
/// while a full load ran; past it, the next full load is taken under the lock.
const LOG_MAX: usize = 100_000;
/// Differences logged per comparison (all are counted).
const SHOWN_DIFFERENCES: usize = 20;
/// How often staleness is checked for `on_stale = "cut"`.
const STALE_TICK: Duration = Duration::from_millis(250);
/// Longest wait between two attempts to re-establish the `LISTEN` connection.
const LISTEN_RETRY_MAX: Duration = Duration::from_secs(5);

/// What a node does with its live tunnels while it is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnStale {
    /// Refuse new tunnels; live ones keep running to their deadline.
    #[default]
    Refuse,
    /// Refuse new tunnels and cut the live ones (`end_reason = node_stale`).
    Cut,
}

impl OnStale {
    /// The configured spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refuse => "refuse",
            Self::Cut => "cut",
        }
    }
}

/// How the follower works.
#[derive(Debug, Clone, Copy)]
pub struct FeedSettings {
    pub policy: PolicySettings,
    /// A node that has not confirmed the feed for longer refuses new tunnels.
    pub max_staleness: Duration,
    pub on_stale: OnStale,
    /// Read the feed at least this often.
    pub poll: Duration,
    /// Load the state in full and compare this often.
    pub full_reload: Duration,
}

impl Default for FeedSettings {
    fn default() -> Self {
        Self {
            policy: PolicySettings::default(),
            max_staleness: Duration::from_secs(5),
            on_stale: OnStale::Refuse,
            poll: Duration::from_millis(250),
            full_reload: Duration::from_secs(60),
        }
    }
}

/// A node that cannot confirm it has seen every change within the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stale {
    /// When its last successful read started (it has seen everything committed
    /// before); `None` if it never read the feed.
    pub since: Option<DateTime<Utc>>,
    /// How long ago that was.
    pub age: Duration,
    /// The bound it exceeds.
    pub bound: Duration,
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.since {
            Some(at) => write!(
                f,
                "this node has not confirmed the change feed since {} ({:.1} s, bound {} s)",
                at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                self.age.as_secs_f64(),
                self.bound.as_secs()
            ),
            None => write!(f, "this node has never read the change feed"),
        }
    }
}

/// The follower's own state, one reader or writer at a time.
struct Follow {
    state: Indexed,
    /// Every change up to this one is applied.
    last_seq: i64,
    /// Changes applied since `log_from` (with the vendor a window change touched),
    /// or `None` once more than [`LOG_MAX`].
    log: Option<Vec<(i64, Change, Option<VendorId>)>>,
    log_from: i64,
}

impl Follow {
    fn new(state: Indexed, last_seq: i64) -> Self {
        Self {
            state,
            last_seq,
            log: Some(Vec::new()),
            log_from: last_seq,
        }
    }

    fn remember(&mut self, seq: i64, change: Change, vendor: Option<VendorId>) {
        if let Some(log) = &mut self.log {
            if log.len() < LOG_MAX {
                log.push((seq, change, vendor));
            } else {
                self.log = None;
            }
        }
    }

    /// The objects changed after `seq`, if the log covers them all.
    fn changed_after(&self, seq: i64) -> Option<Skip> {
        let log = self.log.as_ref().filter(|_| self.log_from <= seq)?;
        let mut skip = Skip::default();
        for (_, change, vendor) in log.iter().filter(|(s, _, _)| *s > seq) {
            skip.add(change);
            if let Some(v) = vendor {
                skip.add_vendor(v);
            }
        }
        Some(skip)
    }
}

#[derive(Debug, Clone, Copy)]
struct Confirmed {
    at: Instant,
    wall: DateTime<Utc>,
}

/// The change-feed follower of one node (see the module documentation).
pub struct Feed {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    clock: SharedClock,
    settings: FeedSettings,
    generation: Arc<Generation>,
    follow: tokio::sync::Mutex<Option<Follow>>,
    published: ArcSwapOption<Snapshot>,
    /// The store's generation when the last successful read started.
    applied_generation: AtomicU64,
    confirmed: Mutex<Option<Confirmed>>,
    created: Instant,
    last_full: Mutex<Instant>,
    reload_forced: AtomicBool,
    /// The follower task runs: staleness is enforced (without it, admission
    /// reads the feed itself when its last read is older than `poll`).
    following: AtomicBool,
    wake: Notify,
    mismatches: AtomicU64,
}

impl Feed {
    /// A follower of `store`'s feed, cutting `registry`'s tunnels.
    pub fn new(store: Arc<dyn Store>, registry: Arc<Registry>, clock: SharedClock, settings: FeedSettings) -> Self {
        Self {
            generation: store.generation(),
            store,
            registry,
            clock,
            settings,
            follow: tokio::sync::Mutex::new(None),
            published: ArcSwapOption::empty(),
            applied_generation: AtomicU64::new(0),
            confirmed: Mutex::new(None),
            created: Instant::now(),
            last_full: Mutex::new(Instant::now()),
            reload_forced: AtomicBool::new(false),
            following: AtomicBool::new(false),
            wake: Notify::new(),
            mismatches: AtomicU64::new(0),
        }
    }

    /// How it works.
    pub fn settings(&self) -> &FeedSettings {
        &self.settings
    }

    /// The admission snapshot as last published (`None` before the first load).
    pub fn published(&self) -> Option<Arc<Snapshot>> {
        self.published.load_full()
    }

    fn confirmed(&self) -> MutexGuard<'_, Option<Confirmed>> {
        self.confirmed.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn last_full(&self) -> MutexGuard<'_, Instant> {
        self.last_full.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether admission must read the feed before deciding: nothing loaded
    /// yet, a change committed by this process since the last read (its caller
    /// must see it on return), a reload asked for, or — no follower running —
    /// the last read is older than `poll`.
    pub fn needs_read(&self) -> bool {
        self.published.load().is_none()
            || self.generation.get() != self.applied_generation.load(Ordering::Acquire)
            || self.reload_forced.load(Ordering::Acquire)
            || (!self.following.load(Ordering::Acquire)
                && self.confirmed().is_none_or(|c| c.at.elapsed() >= self.settings.poll))
    }

    /// Whether this node is stale (only while the follower runs).
    pub fn stale(&self) -> Option<Stale> {
        if !self.following.load(Ordering::Acquire) {
            return None;
        }
        let confirmed = *self.confirmed();
        let (since, age) = match confirmed {
            Some(c) => (Some(c.wall), c.at.elapsed()),
            None => (None, self.created.elapsed()),
        };
        (age > self.settings.max_staleness).then_some(Stale {
            since,
            age,
            bound: self.settings.max_staleness,
        })
    }

    /// Differences found between the incremental state and full loads, in all.
    pub fn mismatches(&self) -> u64 {
        self.mismatches.load(Ordering::Relaxed)
    }

    /// Makes the next read load the state in full.
    pub fn force_reload(&self) {
        self.reload_forced.store(true, Ordering::Release);
    }

    /// Wakes the follower now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Reads and applies every change committed so far: on return, admission
    /// on this node decides on a state that includes them (and what they forbid
    /// is cut). Fails, without waiting longer than `max_staleness`, if the
    /// database cannot be read. Nothing to do while no state is loaded (a
    /// command-line process): the first admission loads it whole.
    pub async fn catch_up(&self) -> StoreResult<()> {
        if self.published.load().is_none() {
            return Ok(());
        }
        self.read().await
    }

    /// Loads the state if it is not loaded, then reads and applies every change
    /// committed so far (see [`Feed::catch_up`]).
    pub async fn read(&self) -> StoreResult<()> {
        let bound = self.settings.max_staleness;
        match tokio::time::timeout(bound, async {
            let mut follow = self.follow.lock().await;
            self.catch_up_locked(&mut follow).await
        })
        .await
        {
            Ok(r) => r,
            Err(_) => Err(StoreError::Down(format!(
                "the change feed could not be read within {} s",
                bound.as_secs_f64()
            ))),
        }
    }

    async fn catch_up_locked(&self, slot: &mut Option<Follow>) -> StoreResult<()> {
        let started = Instant::now();
        let wall = self.clock.now();
        let generation = self.generation.get();
        let forced = self.reload_forced.swap(false, Ordering::AcqRel);
        if forced || slot.is_none() {
            match self.load().await {
                Ok(f) => {
                    self.publish(&f.state);
                    cuts::sweep(&self.registry, &f.state, self.clock.now());
                    *slot = Some(f);
                }
                Err(e) => {
                    if forced {
                        self.reload_forced.store(true, Ordering::Release);
                    }
                    return Err(e);
                }
            }
        }
        let Some(f) = slot.as_mut() else {
            return Ok(());
        };
        loop {
            let batch = self.store.changes_since(f.last_seq, BATCH).await?;
            let full = batch.len() >= BATCH as usize;
            if batch.first().is_some_and(|rec| rec.seq > f.last_seq + 1) {
                // Entries this node never saw were pruned (it was behind for
                // longer than the feed keeps them): only a full load is exact.
                tracing::warn!(
                    from = f.last_seq,
                    to = batch.first().map(|r| r.seq),
                    "change feed entries missed (pruned): admission state reloaded in full"
                );
                let mut fresh = self.load().await?;
                self.publish(&fresh.state);
                cuts::sweep(&self.registry, &fresh.state, self.clock.now());
                fresh.log_from = fresh.last_seq;
                *f = fresh;
                continue;
            }
            for rec in batch {
                self.apply_record(f, rec).await?;
            }
            if !full {
                break;
            }
        }
        *self.confirmed() = Some(Confirmed { at: started, wall });
        self.applied_generation.store(generation, Ordering::Release);
        Ok(())
    }

    /// Loads the state in full; the changes after the returned `last_seq` are
    /// applied on top (again, for those the load already saw: harmless).
    async fn load(&self) -> StoreResult<Follow> {
        let last_seq = self.store.last_change_seq().await?;
        let state = self.load_state().await?;
        *self.last_full() = Instant::now();
        Ok(Follow::new(state, last_seq))
    }

    async fn load_state(&self) -> StoreResult<Indexed> {
        let mut snapshot = self.store.load_admission_snapshot(self.clock.now()).await?;
        snapshot.settings = self.settings.policy;
        Ok(Indexed::new(snapshot))
    }

    fn publish(&self, state: &Indexed) {
        // Cheap: the snapshot's maps share their storage with the follower's.
        self.published.store(Some(Arc::new(state.snapshot().clone())));
    }

    async fn apply_record(&self, f: &mut Follow, rec: ChangeRecord) -> StoreResult<()> {
        let Some(change) = rec.change else {
            tracing::warn!(
                seq = rec.seq,
                "change of a kind this version does not know: admission state reloaded in full"
            );
            let mut fresh = self.load().await?;
            // Changes after this one are applied again, on top of the load.
            fresh.last_seq = rec.seq;
            fresh.log_from = rec.seq;
            self.publish(&fresh.state);
            cuts::sweep(&self.registry, &fresh.state, self.clock.now());
            *f = fresh;
            return Ok(());
        };
        let now = self.clock.now();
        let reread = self.reread(&change, now).await?;
        f.state.apply(&reread);
        f.last_seq = rec.seq;
        let vendor = match &reread {
            Reread::Window { window: Some(w), .. } => Some(w.vendor_id.clone()),
            _ => None,
        };
        f.remember(rec.seq, change, vendor);
        // Published before cutting: a tunnel that registers after the cut was
        // admitted on this state, or re-checks against it.
        self.publish(&f.state);
        cuts::enforce(&self.registry, &f.state, &reread, now);
        Ok(())
    }

    /// The changed object as the store holds it now.
    async fn reread(&self, change: &Change, now: DateTime<Utc>) -> StoreResult<Reread> {
        let s = &self.store;
        Ok(match change {
            Change::Window(id) => {
                let window = s.admission_window(id, now).await?;
                let vendor = match &window {
                    Some(w) => s.admission_vendor(&w.vendor_id).await?,
                    None => None,
                };
                Reread::Window {
                    id: id.clone(),
                    window,
                    vendor,
                }
            }
            Change::Technician(id) => Reread::Technician {
                id: id.clone(),
                technician: s.admission_technician(id).await?,
            },
            Change::Vendor(id) => Reread::Vendor {
                id: id.clone(),
                vendor: s.admission_vendor(id).await?,
            },
            Change::Reports(id) => Reread::Reports {
                id: id.clone(),
                vendor: s.admission_vendor(id).await?,
            },
            Change::Device(id) => Reread::Device {
                id: id.clone(),
                device: s.admission_device(id).await?,
            },
            Change::Lockdown => Reread::Lockdown(s.lockdown().await?.active),
            Change::Terminate(id) => Reread::Terminate(id.clone()),
        })
    }

    /// Loads the state in full (without holding up the follower), compares it
    /// with the incremental state and replaces that with it.
    pub async fn reload_and_compare(&self) -> StoreResult<()> {
        let now = self.clock.now();
        let seq = self.store.last_change_seq().await?;
        let mut fresh = self.load_state().await?;
        let mut follow = self.follow.lock().await;
        self.catch_up_locked(&mut follow).await?;
        let Some(f) = follow.as_mut() else {
            return Ok(());
        };
        let Some(skip) = f.changed_after(seq) else {
            // Which objects changed during the load is unknown: load again, holding the lock.
            tracing::info!(
                "admission state reloaded in full without comparison (too many changes since the last load)"
            );
            *f = self.load().await?;
            self.publish(&f.state);
            return self.catch_up_locked(&mut follow).await;
        };
        let (shown, count) = differences(f.state.snapshot(), fresh.snapshot(), now, &skip, SHOWN_DIFFERENCES);
        if count > 0 {
            self.mismatches.fetch_add(count as u64, Ordering::Relaxed);
            tracing::error!(
                count,
                differences = ?shown,
                "the admission state kept from the change feed differs from the stored state: a change reached no feed entry, or was applied wrong; the stored state replaces it"
            );
        } else {
            tracing::debug!("admission state checked against a full load: identical");
        }
        // What changed during the load is newer in the incremental state.
        fresh.merge_from(&f.state, &skip);
        f.state = fresh;
        f.log = Some(Vec::new());
        f.log_from = f.last_seq;
        *self.last_full() = Instant::now();
        self.publish(&f.state);
        cuts::sweep(&self.registry, &f.state, self.clock.now());
        Ok(())
    }

    /// Follows the feed until `shutdown`: the reads, the `LISTEN` connection,
    /// the periodic full loads and the staleness bound, in one task.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        self.following.store(true, Ordering::Release);
        tokio::join!(
            self.follow_loop(&shutdown),
            self.listen_loop(&shutdown),
            self.reload_loop(&shutdown),
            self.stale_loop(&shutdown),
        );
    }

    async fn follow_loop(&self, shutdown: &CancellationToken) {
        let mut generation = self.generation.watch();
        let mut failing = false;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
                changed = generation.changed() => {
                    if changed.is_err() {
                        // The store is gone (cannot happen while `self` holds it): poll only.
                        generation = tokio::sync::watch::channel(0).1;
                    }
                }
                _ = tokio::time::sleep(self.settings.poll) => {}
            }
            match self.read().await {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!("change feed read again");
                }
                Ok(()) => {}
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "cannot read the change feed; retrying");
                    }
                    failing = true;
                }
            }
        }
    }

    async fn reload_loop(&self, shutdown: &CancellationToken) {
        loop {
            let due = *self.last_full() + self.settings.full_reload;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep_until(due.into()) => {}
            }
            if Instant::now() < *self.last_full() + self.settings.full_reload {
                continue;
            }
            if let Err(e) = self.reload_and_compare().await {
                tracing::warn!(error = %e, "periodic full load of the admission state failed");
                // Not again at once: at the next period.
                *self.last_full() = Instant::now();
            }
        }
    }

    async fn listen_loop(&self, shutdown: &CancellationToken) {
        let mut delay = self.settings.poll;
        let mut failing = false;
        loop {
            let listener = tokio::select! {
                _ = shutdown.cancelled() => return,
                l = self.store.change_listener() => l,
            };
            match listener {
                // Nothing to listen to: this process makes every change.
                Ok(None) => return,
                Ok(Some(mut l)) => {
                    if failing {
                        tracing::info!("listening to the change feed's notifications again");
                        failing = false;
                    }
                    delay = self.settings.poll;
                    // Announcements sent before LISTEN took effect are lost: read now.
                    self.wake();
                    loop {
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            r = l.changed() => match r {
                                Ok(()) => self.wake(),
                                Err(e) => {
                                    tracing::warn!(error = %e, "change feed notifications lost; reconnecting (the feed is polled meanwhile)");
                                    break;
                                }
                            },
                        }
                    }
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "cannot listen to the change feed's notifications; retrying (the feed is polled meanwhile)");
                    }
                    failing = true;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(LISTEN_RETRY_MAX);
        }
    }

    async fn stale_loop(&self, shutdown: &CancellationToken) {
        let mut was_stale = false;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(STALE_TICK) => {}
            }
            match self.stale() {
                Some(stale) => {
                    if !was_stale {
                        tracing::error!(
                            stale = %stale,
                            on_stale = self.settings.on_stale.as_str(),
                            "node stale: new tunnels are refused until the change feed is read again"
                        );
                        was_stale = true;
                    }
                    if self.settings.on_stale == OnStale::Cut {
                        self.registry.cut_all(EndReason::NodeStale);
                    }
                }
                None if was_stale => {
                    tracing::warn!("change feed confirmed again: node no longer stale");
                    was_stale = false;
                }
                None => {}
            }
        }
    }
}
