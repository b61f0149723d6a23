//! The gateway's admission state. Reading the store on every connection would
//! cost a round of queries per tunnel; instead the node keeps a [`Snapshot`],
//! kept current by the change-feed follower ([`Feed`]): each committed change,
//! from this node or another, is applied to it one object at a time. A change
//! committed by this process bumps the store's [`crate::store::Generation`]
//! before the changing call returns, and admission reads the feed before
//! deciding if it moved, so the next admission after a change always sees it.

use std::sync::Arc;

use crate::clock::SharedClock;
use crate::cluster::{Feed, FeedSettings, Stale};
use crate::gateway::Registry;
use crate::guard::LocalGuard;
use crate::policy::{PolicySettings, Snapshot};
use crate::store::{Store, StoreError, StoreHealth};

/// The admission snapshot, following the change feed.
pub struct AdmissionCache {
    feed: Arc<Feed>,
    health: Arc<StoreHealth>,
    /// This node's restrictions not (yet) in the store: they win over it.
    guard: Arc<LocalGuard>,
}

impl AdmissionCache {
    /// A cache over `store`, applying `settings` to every snapshot, with no
    /// live tunnels to cut (benchmarks, tools). A node uses [`AdmissionCache::following`].
    pub fn new(store: Arc<dyn Store>, settings: PolicySettings, clock: SharedClock) -> Self {
        let feed = FeedSettings {
            policy: settings,
            ..FeedSettings::default()
        };
        Self::following(store, Arc::new(Registry::default()), clock, feed)
    }

    /// A node's cache: its follower cuts `registry`'s tunnels when a change
    /// forbids them. Start the follower with [`Feed::run`] on [`AdmissionCache::feed`].
    pub fn following(store: Arc<dyn Store>, registry: Arc<Registry>, clock: SharedClock, settings: FeedSettings) -> Self {
        Self {
            health: store.health(),
            feed: Arc::new(Feed::new(store, registry, clock, settings)),
            guard: Arc::new(LocalGuard::default()),
        }
    }

    /// This node's local restrictions (lockdown, revocations held before they are stored).
    pub fn guard(&self) -> &Arc<LocalGuard> {
        &self.guard
    }

    /// The change-feed follower.
    pub fn feed(&self) -> &Arc<Feed> {
        &self.feed
    }

    /// The snapshot admission decides on: the stored one with this node's local
    /// restrictions applied. A local lockdown needs no store at all, so it refuses
    /// with `lockdown` even while the database is down.
    pub async fn snapshot(&self) -> Result<Arc<Snapshot>, StoreError> {
        if self.guard.locked() {
            return Ok(self.guard.locked_snapshot());
        }
        let stored = self.stored_snapshot().await?;
        Ok(self.guard.apply(stored))
    }

    /// The stored state's snapshot, as of every change committed before the call
    /// by this process, and every change committed anywhere up to `max_staleness` ago.
    ///
    /// While the store's breaker is open this fails at once: no tunnel can be
    /// recorded then anyway, and the technician hears `store_unavailable` within
    /// moments instead of after a pool timeout (issue 8). A stale node (it has
    /// not confirmed the feed within `cluster.max_staleness_secs`) fails too.
    pub async fn stored_snapshot(&self) -> Result<Arc<Snapshot>, StoreError> {
        if !self.health.is_up() {
            let why = self.health.report().last_error.unwrap_or_default();
            return Err(StoreError::Down(why));
        }
        if let Some(stale) = self.feed.stale() {
            return Err(StoreError::Down(stale.to_string()));
        }
        if self.feed.needs_read() {
            if let Err(e) = self.feed.read().await {
                if matches!(e, StoreError::Unavailable(_)) {
                    self.health.mark_down(&e.to_string());
                }
                return Err(e);
            }
        }
        self.feed
            .published()
            .ok_or_else(|| StoreError::Down("the admission state is not loaded".into()))
    }

    /// Reads and applies every change committed so far (see [`Feed::catch_up`]):
    /// after a commit, the next admission on this node sees it.
    pub async fn catch_up(&self) -> Result<(), StoreError> {
        self.feed.catch_up().await
    }

    /// Whether this node is stale (see [`Feed::stale`]).
    pub fn stale(&self) -> Option<Stale> {
        self.feed.stale()
    }

    /// The lockdown flag of the snapshot in use, if one is loaded.
    pub fn cached_lockdown(&self) -> Option<bool> {
        self.feed.published().map(|s| s.lockdown)
    }

    /// Makes the next admission load the stored state in full.
    pub fn invalidate(&self) {
        self.feed.force_reload();
    }
}
