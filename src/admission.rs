//! The gateway's cached admission state. Reading the store on every connection
//! would cost a round of queries per tunnel; instead the last [`Snapshot`] is
//! kept and reloaded only when the store's [`Generation`] says a change that
//! affects admission was committed. The store bumps the generation before the
//! changing call returns, so the next admission after it always sees the change.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use crate::clock::SharedClock;
use crate::guard::LocalGuard;
use crate::policy::{PolicySettings, Snapshot};
use crate::store::{Generation, Store, StoreError, StoreHealth};

/// Reload at least this often, so windows that ended long ago leave memory.
const MAX_AGE: Duration = Duration::from_secs(60);

struct Loaded {
    generation: u64,
    loaded_at: Instant,
    snapshot: Arc<Snapshot>,
}

/// The admission snapshot, reloaded on change.
pub struct AdmissionCache {
    store: Arc<dyn Store>,
    generation: Arc<Generation>,
    health: Arc<StoreHealth>,
    settings: PolicySettings,
    clock: SharedClock,
    current: ArcSwapOption<Loaded>,
    reload: tokio::sync::Mutex<()>,
    /// This node's restrictions not (yet) in the store: they win over it.
    guard: Arc<LocalGuard>,
}

impl AdmissionCache {
    /// A cache over `store`, applying `settings` to every snapshot.
    pub fn new(store: Arc<dyn Store>, settings: PolicySettings, clock: SharedClock) -> Self {
        Self {
            generation: store.generation(),
            health: store.health(),
            store,
            settings,
            clock,
            current: ArcSwapOption::empty(),
            reload: tokio::sync::Mutex::new(()),
            guard: Arc::new(LocalGuard::default()),
        }
    }

    /// This node's local restrictions (lockdown, revocations held before they are stored).
    pub fn guard(&self) -> &Arc<LocalGuard> {
        &self.guard
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

    fn fresh(&self) -> Option<Arc<Snapshot>> {
        let cur = self.current.load();
        let cur = cur.as_ref()?;
        (cur.generation == self.generation.get() && cur.loaded_at.elapsed() < MAX_AGE).then(|| cur.snapshot.clone())
    }

    /// The stored state's snapshot; reloads it from the store if something changed.
    ///
    /// While the store's breaker is open this fails at once: no tunnel can be
    /// recorded then anyway, and the technician hears `store_unavailable` within
    /// moments instead of after a pool timeout (issue 8).
    pub async fn stored_snapshot(&self) -> Result<Arc<Snapshot>, StoreError> {
        if !self.health.is_up() {
            let why = self.health.report().last_error.unwrap_or_default();
            return Err(StoreError::Down(why));
        }
        if let Some(s) = self.fresh() {
            return Ok(s);
        }
        // One reload at a time; whoever waited finds it done.
        let _guard = self.reload.lock().await;
        if let Some(s) = self.fresh() {
            return Ok(s);
        }
        // Read the generation first: a change committed during the load bumps it
        // again and the next caller reloads.
        let generation = self.generation.get();
        let mut snapshot = match self.store.load_admission_snapshot(self.clock.now()).await {
            Ok(s) => s,
            Err(e) => {
                if matches!(e, StoreError::Unavailable(_)) {
                    self.health.mark_down(&e.to_string());
                }
                return Err(e);
            }
        };
        snapshot.settings = self.settings;
        let snapshot = Arc::new(snapshot);
        self.current.store(Some(Arc::new(Loaded {
            generation,
            loaded_at: Instant::now(),
            snapshot: snapshot.clone(),
        })));
        tracing::debug!(
            generation,
            devices = snapshot.devices.len(),
            "admission snapshot reloaded"
        );
        Ok(snapshot)
    }

    /// The lockdown flag of the snapshot in use, if one is loaded.
    pub fn cached_lockdown(&self) -> Option<bool> {
        self.current.load().as_ref().map(|l| l.snapshot.lockdown)
    }

    /// Brings the admission state up to every change committed so far (called
    /// right after a change is committed, before its caller hears it is done).
    pub async fn catch_up(&self) -> Result<(), StoreError> {
        self.invalidate();
        self.stored_snapshot().await.map(|_| ())
    }

    /// Forgets the snapshot (another node changed the shared database).
    pub fn invalidate(&self) {
        self.generation.bump();
    }
}
