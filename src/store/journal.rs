//! Group commit for the gateway's durable writes. Tunnels hand their session
//! records and audit events to one writer task, which commits whatever is queued
//! in a single transaction: under a burst, one fsync serves many tunnels. Each
//! caller still waits until its own entry is durable (invariant 2).
//!
//! During a database outage (issue 8):
//! - a session *start* is refused at once while the store's breaker is open
//!   ([`StoreHealth`]): a technician hears `store_unavailable` without waiting for
//!   a pool timeout, however many others are refused at the same time;
//! - every other entry (session ends, denials, API audit events) is kept in a
//!   retry queue and written, in order, as soon as a write succeeds again; the
//!   caller is told it is [`Durability::Queued`] instead of waiting;
//! - while the breaker is open the writer probes the database once per
//!   `probe_every` (with the queued entries themselves, or a one-row write), and
//!   the first success closes the breaker.
//!
//! Memory stays bounded: session ends are always kept (there can be no more than
//! the tunnels that were live when the outage began, since none can start during
//! it), other events up to `retry_capacity`; beyond that they are counted, logged
//! as errors, and the count is written to the trail (`journal.events_dropped`)
//! once the store is back. Entries still queued when the process stops are lost,
//! and logged as such; the session ends among them are recovered at the next
//! start from the heartbeat and byte checkpoints (`gateway_restart`).

use crate::events::Event;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{JournalEntry, Store, StoreHealth};
use crate::audit::AuditEvent;
use crate::clock::{Clock, SystemClock};

/// Entries committed together at most.
const MAX_BATCH: usize = 256;
/// Entries waiting at most; beyond, callers wait for room (back-pressure).
const QUEUE: usize = 4096;
/// Default [`JournalSettings::end_delay`]: long enough for the next tunnel's
/// start to come along under load, short beside the heartbeat that would
/// recover an end lost in a crash meanwhile.
const END_DELAY: Duration = Duration::from_millis(20);

/// Tunables of the journal.
#[derive(Debug, Clone)]
pub struct JournalSettings {
    /// Audit events (other than session ends) kept for retry during an outage.
    pub retry_capacity: usize,
    /// While the store is down, try it this often.
    pub probe_every: Duration,
    /// Where commit durations and batch sizes are observed.
    pub metrics: crate::metrics::Metrics,
    /// How long a batch holding only session ends may wait for other entries
    /// to share its commit (see [`Writer::gather_ends`]).
    pub end_delay: Duration,
}

impl Default for JournalSettings {
    fn default() -> Self {
        Self {
            retry_capacity: 10_000,
            probe_every: Duration::from_secs(1),
            metrics: crate::metrics::Metrics::default(),
            end_delay: END_DELAY,
        }
    }
}

/// Why a journal write did not become durable.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    /// The store refused the transaction.
    #[error("store refused the write: {0}")]
    Store(String),
    /// The store is known to be down: not even tried (fail fast).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The writer task has stopped.
    #[error("journal writer stopped")]
    Closed,
}

/// What became of a write that did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Committed.
    Durable,
    /// The store is down: kept in memory and retried until it is committed.
    Queued,
}

struct Request {
    entry: JournalEntry,
    done: oneshot::Sender<Result<Durability, JournalError>>,
}

/// Sizes of the group-commit batches written so far (for metrics): how many
/// callers one commit serves.
#[derive(Debug, Default)]
pub struct BatchStats {
    batches: AtomicU64,
    entries: AtomicU64,
    last: AtomicUsize,
    max: AtomicUsize,
}

impl BatchStats {
    fn record(&self, size: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.entries.fetch_add(size as u64, Ordering::Relaxed);
        self.last.store(size, Ordering::Relaxed);
        self.max.fetch_max(size, Ordering::Relaxed);
    }

    /// Batches committed (or attempted) so far.
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Entries in those batches: `entries / batches` is the mean batch size.
    pub fn entries(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }

    /// Entries in the latest batch.
    pub fn last(&self) -> usize {
        self.last.load(Ordering::Relaxed)
    }

    /// Entries in the largest batch so far.
    pub fn max(&self) -> usize {
        self.max.load(Ordering::Relaxed)
    }
}

/// Handle to the journal writer; cheap to clone.
#[derive(Clone)]
pub struct Journal {
    tx: mpsc::Sender<Request>,
    health: Arc<StoreHealth>,
    queued: Arc<AtomicUsize>,
    batches: Arc<BatchStats>,
}

impl Journal {
    /// Starts the writer task with default settings. It ends when every handle is dropped.
    pub fn start(store: Arc<dyn Store>) -> (Self, tokio::task::JoinHandle<()>) {
        Self::start_with(store, JournalSettings::default())
    }

    /// Starts the writer task.
    pub fn start_with(store: Arc<dyn Store>, settings: JournalSettings) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let health = store.health();
        let queued = Arc::new(AtomicUsize::new(0));
        let batches = Arc::new(BatchStats::default());
        let writer = Writer {
            batches: batches.clone(),
            queued: queued.clone(),
            health: health.clone(),
            store,
            settings,
            retry: VecDeque::new(),
            queued_audits: 0,
            dropped: 0,
        };
        let task = tokio::spawn(writer.run(rx));
        (
            Self {
                tx,
                health,
                queued,
                batches,
            },
            task,
        )
    }

    /// Entries waiting for the store to come back (for metrics).
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Sizes of the batches of new entries committed together (for metrics).
    pub fn batch_stats(&self) -> &BatchStats {
        &self.batches
    }

    /// Writes `entry`. A session start returns once it is committed, or fails (at
    /// once while the store is known down). Other entries return `Queued` instead
    /// of failing when the store is down: they are retried until durable.
    pub async fn write(&self, entry: JournalEntry) -> Result<Durability, JournalError> {
        if must_be_durable_now(&entry) && !self.health.is_up() {
            let why = self
                .health
                .report()
                .last_error
                .unwrap_or_else(|| "a recent write failed".to_owned());
            return Err(JournalError::Unavailable(why));
        }
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Request { entry, done })
            .await
            .map_err(|_| JournalError::Closed)?;
        wait.await.map_err(|_| JournalError::Closed)?
    }
}

/// A session start is useless later: the tunnel it admits is refused instead.
fn must_be_durable_now(e: &JournalEntry) -> bool {
    matches!(e, JournalEntry::SessionStarted(..))
}

/// Entries kept for retry only up to `retry_capacity` during an outage: plain
/// audit events and notices (session ends are always kept).
fn bounded(e: &JournalEntry) -> bool {
    matches!(e, JournalEntry::Audit(_) | JournalEntry::Notice(..))
}

struct Writer {
    batches: Arc<BatchStats>,
    /// `retry.len()`, published for [`Journal::queued`].
    queued: Arc<AtomicUsize>,
    store: Arc<dyn Store>,
    health: Arc<StoreHealth>,
    settings: JournalSettings,
    /// Entries not yet durable, oldest first.
    retry: VecDeque<JournalEntry>,
    /// How many of them are plain audit events or notices (the bounded kinds).
    queued_audits: usize,
    /// Audit events given up since the last report, for lack of room.
    dropped: u64,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        let mut entries = Vec::with_capacity(MAX_BATCH);
        let mut waiters = Vec::with_capacity(MAX_BATCH);
        // One deadline across iterations, so a steady stream of entries cannot
        // postpone the probe forever.
        let mut next_probe = tokio::time::Instant::now() + self.settings.probe_every;
        loop {
            let pending = !self.retry.is_empty() || self.dropped > 0;
            let down = !self.health.is_up();
            if !down && !pending {
                next_probe = tokio::time::Instant::now() + self.settings.probe_every;
            }
            tokio::select! {
                biased;
                r = rx.recv() => {
                    let Some(first) = r else { break };
                    entries.push(first.entry);
                    waiters.push(first.done);
                }
                // Someone else's write (the heartbeat) succeeded: flush at once.
                _ = self.health.wait_up(), if down && pending => {
                    self.flush().await;
                    self.publish();
                    continue;
                }
                _ = tokio::time::sleep_until(next_probe), if down || pending => {
                    next_probe = tokio::time::Instant::now() + self.settings.probe_every;
                    if pending {
                        self.flush().await;
                    } else {
                        self.probe().await;
                    }
                    self.publish();
                    continue;
                }
            }
            while entries.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(r) => {
                        entries.push(r.entry);
                        waiters.push(r.done);
                    }
                    Err(_) => break,
                }
            }
            let open = self.gather_ends(&mut rx, &mut entries, &mut waiters).await;
            if self.health.is_up() && !self.retry.is_empty() {
                // Older entries first, so the trail keeps their order.
                self.flush().await;
            }
            self.batches.record(entries.len());
            tracing::debug!(batch = entries.len(), "journal group commit");
            self.commit(&mut entries, &mut waiters).await;
            self.publish();
            if !open {
                break;
            }
        }
        if !self.retry.is_empty() || self.dropped > 0 {
            tracing::error!(
                queued = self.retry.len(),
                dropped = self.dropped,
                "journal stopped with entries never written; open sessions among them are closed as gateway_restart at the next start"
            );
        }
    }

    /// A batch of session ends only waits up to `end_delay` for another entry
    /// to commit with: nobody is held up by an end (the technician's connection
    /// is already closed), and under a steady stream of tunnels the next start
    /// comes within milliseconds, so each tunnel costs one commit instead of
    /// two. An end lost in a crash meanwhile is recovered at the next start
    /// like any entry not yet written (`gateway_restart`, from the heartbeat).
    /// Returns `false` once every sender is gone.
    async fn gather_ends(
        &self,
        rx: &mut mpsc::Receiver<Request>,
        entries: &mut Vec<JournalEntry>,
        waiters: &mut Vec<oneshot::Sender<Result<Durability, JournalError>>>,
    ) -> bool {
        let only_ends = |e: &[JournalEntry]| e.iter().all(|e| matches!(e, JournalEntry::SessionEnded(..)));
        if self.settings.end_delay.is_zero() || !self.health.is_up() || !only_ends(entries) {
            return true;
        }
        let until = tokio::time::Instant::now() + self.settings.end_delay;
        while entries.len() < MAX_BATCH && only_ends(entries) {
            tokio::select! {
                r = rx.recv() => match r {
                    Some(r) => {
                        entries.push(r.entry);
                        waiters.push(r.done);
                    }
                    None => return false,
                },
                () = tokio::time::sleep_until(until) => break,
            }
        }
        true
    }

    /// Commits one batch of new entries and answers their callers.
    async fn commit(
        &mut self,
        entries: &mut Vec<JournalEntry>,
        waiters: &mut Vec<oneshot::Sender<Result<Durability, JournalError>>>,
    ) {
        if !self.health.is_up() || !self.retry.is_empty() {
            // Down (or still catching up): nothing new overtakes the queue.
            let why = self.health.report().last_error.unwrap_or_default();
            for (entry, w) in entries.drain(..).zip(waiters.drain(..)) {
                let _ = w.send(self.defer(entry, &why));
            }
            return;
        }
        match self
            .settings
            .metrics
            .journal_commit(entries.len(), self.store.write_journal(entries))
            .await
        {
            Ok(()) => {
                self.health.mark_up();
                for w in waiters.drain(..) {
                    let _ = w.send(Ok(Durability::Durable));
                }
                entries.clear();
            }
            Err(e) if e.is_unavailable() => {
                let why = e.to_string();
                self.health.mark_down(&why);
                for (entry, w) in entries.drain(..).zip(waiters.drain(..)) {
                    let _ = w.send(self.defer(entry, &why));
                }
            }
            Err(e) if entries.len() == 1 => {
                tracing::error!(error = %e, "journal write failed");
                entries.clear();
                for w in waiters.drain(..) {
                    let _ = w.send(Err(JournalError::Store(e.to_string())));
                }
            }
            Err(e) => {
                // One bad entry must not sink the others: retry them one by one.
                tracing::warn!(error = %e, batch = entries.len(), "group commit failed, retrying entries one by one");
                for (entry, w) in entries.drain(..).zip(waiters.drain(..)) {
                    let r = if self.health.is_up() {
                        match self.store.write_journal(std::slice::from_ref(&entry)).await {
                            Ok(()) => Ok(Durability::Durable),
                            Err(e) if e.is_unavailable() => {
                                self.health.mark_down(&e.to_string());
                                self.defer(entry, &e.to_string())
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "journal write failed");
                                Err(JournalError::Store(e.to_string()))
                            }
                        }
                    } else {
                        self.defer(entry, "store unavailable")
                    };
                    let _ = w.send(r);
                }
            }
        }
    }

    /// An entry that could not be written now: refused if it is a session start,
    /// queued for retry otherwise.
    fn defer(&mut self, entry: JournalEntry, why: &str) -> Result<Durability, JournalError> {
        match entry {
            JournalEntry::SessionStarted(..) => Err(JournalError::Unavailable(why.to_owned())),
            // Bounded by the tunnels live when the outage began: always kept.
            e @ JournalEntry::SessionEnded(..) => {
                self.retry.push_back(e);
                Ok(Durability::Queued)
            }
            e @ (JournalEntry::Audit(_) | JournalEntry::Notice(..)) => {
                if self.queued_audits < self.settings.retry_capacity {
                    self.queued_audits += 1;
                    self.retry.push_back(e);
                    Ok(Durability::Queued)
                } else {
                    self.dropped += 1;
                    if self.dropped == 1 || self.dropped % 1000 == 0 {
                        tracing::error!(
                            dropped = self.dropped,
                            capacity = self.settings.retry_capacity,
                            "journal retry queue full during a store outage: audit event dropped (counted, reported when the store is back)"
                        );
                    }
                    Err(JournalError::Unavailable(format!("{why} (retry queue full)")))
                }
            }
        }
    }

    /// Writes the queued entries, oldest first, while the store takes them.
    async fn flush(&mut self) {
        while !self.retry.is_empty() {
            let n = self.retry.len().min(MAX_BATCH);
            let batch: Vec<JournalEntry> = self.retry.iter().take(n).cloned().collect();
            match self.store.write_journal(&batch).await {
                Ok(()) => {
                    self.health.mark_up();
                    self.take_front(n);
                    tracing::info!(written = n, left = self.retry.len(), "queued journal entries written");
                }
                Err(e) if e.is_unavailable() => {
                    self.health.mark_down(&e.to_string());
                    return;
                }
                Err(e) => {
                    // Not an outage: one entry is refused for good. Keep the others.
                    tracing::warn!(error = %e, "queued batch refused, writing entries one by one");
                    for entry in self.take_front(n) {
                        match self.store.write_journal(std::slice::from_ref(&entry)).await {
                            Ok(()) => {}
                            Err(e) if e.is_unavailable() => {
                                self.health.mark_down(&e.to_string());
                                if bounded(&entry) {
                                    self.queued_audits += 1;
                                }
                                self.retry.push_front(entry);
                                return;
                            }
                            Err(e) => tracing::error!(error = %e, "queued journal entry refused by the store: dropped"),
                        }
                    }
                }
            }
        }
        if self.dropped > 0 && self.health.is_up() {
            let event = AuditEvent::new(
                SystemClock.now(),
                crate::audit::GATEWAY_ACTOR,
                Event::JournalEventsDropped,
                "journal",
                "failure",
                serde_json::json!({
                    "dropped": self.dropped,
                    "reason": "the store was unavailable and the retry queue was full",
                }),
            );
            match self.store.write_journal(&[JournalEntry::Audit(event)]).await {
                Ok(()) => self.dropped = 0,
                Err(e) => tracing::error!(error = %e, "could not record the count of dropped audit events"),
            }
        }
    }

    fn publish(&self) {
        self.queued.store(self.retry.len(), Ordering::Relaxed);
    }

    /// Removes the `n` oldest queued entries.
    fn take_front(&mut self, n: usize) -> Vec<JournalEntry> {
        let taken: Vec<JournalEntry> = self.retry.drain(..n.min(self.retry.len())).collect();
        let audits = taken.iter().filter(|e| bounded(e)).count();
        self.queued_audits = self.queued_audits.saturating_sub(audits);
        taken
    }

    /// Tries one cheap write while the store is down and nothing is queued.
    async fn probe(&mut self) {
        match self.store.probe_write(SystemClock.now()).await {
            Ok(()) => self.health.mark_up(),
            Err(e) if e.is_unavailable() => self.health.mark_down(&e.to_string()),
            Err(e) => tracing::warn!(error = %e, "store probe failed"),
        }
    }
}
