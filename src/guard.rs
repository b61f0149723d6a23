//! Restrictive actions that hold on this node before they are stored (DESIGN.md
//! invariant 7). Lockdown, window revocation, technician revocation and vendor
//! disabling cut the live tunnels and are refused by admission *here* at once,
//! whether or not the database takes the change; what it did not take is kept
//! in memory and retried in the background until it is durable.
//!
//! A lockdown can also come from a file (`gateway.lockdown_file`, written by
//! `portier lockdown on`), so that it reaches a running node without the
//! database: the node reads it every [`FILE_POLL`].

use crate::events::Event;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::audit::AuditEvent;
use crate::domain::{DeviceId, EndReason, TechnicianId, VendorId, WindowId, WindowState};
use crate::gateway::Registry;
use crate::notify::Notifier;
use crate::policy::Snapshot;
use crate::store::{Change, Effects, LockdownState, Store, StoreError, User, WindowTransition};

/// How often the lockdown file is read (and a local lockdown re-cuts stragglers).
pub const FILE_POLL: Duration = Duration::from_millis(250);
/// A lockdown file is stored by the node if still unstored this long after it appeared.
const FILE_STORE_GRACE: Duration = Duration::from_secs(3);
/// First delay before retrying a change the database did not take; doubled up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// An account authenticated this recently may still make restrictive calls
/// (lockdown, revoke, terminate, disable) while the database cannot confirm it.
pub const OFFLINE_AUTH_TTL: Duration = Duration::from_secs(12 * 3600);
/// Accounts remembered for that at most (the least recently seen go first).
const OFFLINE_AUTH_MAX: usize = 1024;

/// The lockdown file's content, written by `portier lockdown on`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockdownFile {
    pub reason: String,
    pub set_by: String,
    pub set_at: DateTime<Utc>,
}

impl LockdownFile {
    /// The stored lockdown state it stands for.
    pub fn state(&self) -> LockdownState {
        LockdownState {
            active: true,
            reason: Some(self.reason.clone()),
            set_by: Some(self.set_by.clone()),
            set_at: Some(self.set_at),
        }
    }

    /// Writes it atomically (temporary file, then rename), readable by its owner only.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".lockdown.{}.tmp", std::process::id()));
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    }
}

/// What the lockdown file says, read once.
fn read_lockdown_file(path: &Path) -> Option<LockdownState> {
    match std::fs::read(path) {
        Ok(bytes) => match serde_json::from_slice::<LockdownFile>(&bytes) {
            Ok(f) => Some(f.state()),
            // Present but garbled: someone meant to lock down. Fail closed.
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "lockdown file unreadable: locked down");
                Some(LockdownState {
                    active: true,
                    reason: Some(format!("unreadable lockdown file {}", path.display())),
                    set_by: None,
                    set_at: None,
                })
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            tracing::error!(file = %path.display(), error = %e, "lockdown file unreadable: locked down");
            Some(LockdownState {
                active: true,
                reason: Some(format!("unreadable lockdown file {}", path.display())),
                set_by: None,
                set_at: None,
            })
        }
    }
}

/// Something admission refuses on this node until the store says so too.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Restriction {
    Window(WindowId),
    /// A technician of a vendor (both must match, so a mistyped pair cuts nothing else).
    Technician(VendorId, TechnicianId),
    Vendor(VendorId),
    Device(DeviceId),
}

/// A restrictive change the database has not taken yet.
#[derive(Debug, Clone)]
pub enum Pending {
    /// Lockdown set through the API.
    Lockdown {
        state: LockdownState,
        effects: Effects,
    },
    /// Lockdown set by the lockdown file; stored unless a later decision is.
    FileLockdown {
        state: LockdownState,
        node: String,
    },
    RevokeWindow {
        id: WindowId,
        transition: WindowTransition,
        effects: Effects,
    },
    RevokeTechnician {
        vendor: VendorId,
        id: TechnicianId,
        at: DateTime<Utc>,
        effects: Effects,
    },
    DisableVendor {
        id: VendorId,
        effects: Effects,
    },
    DisableDevice {
        id: DeviceId,
        effects: Effects,
    },
    /// Effects with no state change of their own (a termination).
    Record(Effects),
}

impl Pending {
    /// What it is, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Lockdown { .. } => "lockdown",
            Self::FileLockdown { .. } => "lockdown_file",
            Self::RevokeWindow { .. } => "window_revocation",
            Self::RevokeTechnician { .. } => "technician_revocation",
            Self::DisableVendor { .. } => "vendor_disabling",
            Self::DisableDevice { .. } => "device_disabling",
            Self::Record(_) => "audit_event",
        }
    }

    fn is_lockdown(&self) -> bool {
        matches!(self, Self::Lockdown { .. } | Self::FileLockdown { .. })
    }
}

#[derive(Default)]
struct Local {
    api_lockdown: Option<LockdownState>,
    file_lockdown: Option<LockdownState>,
    /// When the file's content last changed, and whether it was queued for storing.
    file_since: Option<Instant>,
    file_queued: bool,
    /// Counted: two calls restricting the same object each release their own.
    restrictions: HashMap<Restriction, u32>,
    pending: VecDeque<Pending>,
}

struct Derived {
    version: u64,
    base: Arc<Snapshot>,
    derived: Arc<Snapshot>,
}

struct KnownUser {
    user: User,
    seen: Instant,
}

/// What a stored attempt came to.
enum Step {
    /// Stored (with its audit event), or refused for good (logged).
    Done,
    /// The store is unavailable: keep it and retry later.
    Retry(String),
}

/// Why a lockdown could not be lifted.
#[derive(Debug, thiserror::Error)]
pub enum LiftError {
    /// A lockdown set during the outage is not stored yet.
    #[error("a lockdown set while the database was unreachable is not stored yet: {0}")]
    Pending(String),
    #[error(transparent)]
    Store(StoreError),
}

/// What the background persister needs.
pub struct GuardDeps {
    pub store: Arc<dyn Store>,
    pub registry: Arc<Registry>,
    pub notifier: Notifier,
    /// The lockdown file to watch, if any.
    pub lockdown_file: Option<PathBuf>,
    /// This node's name, recorded when it stores a file lockdown.
    pub node: String,
}

/// This node's local restrictions and the queue of changes to store.
pub struct LocalGuard {
    local: Mutex<Local>,
    /// Bumped when restrictions change, so derived snapshots are rebuilt.
    version: AtomicU64,
    derived: ArcSwapOption<Derived>,
    locked: Arc<Snapshot>,
    wake: Notify,
    /// One writer at a time: the persister, or an API call flushing the queue.
    persisting: tokio::sync::Mutex<()>,
    users: Mutex<HashMap<String, KnownUser>>,
    /// The lockdown file followed, once known.
    file: std::sync::OnceLock<PathBuf>,
}

impl Default for LocalGuard {
    fn default() -> Self {
        Self {
            local: Mutex::default(),
            version: AtomicU64::new(0),
            derived: ArcSwapOption::empty(),
            locked: Arc::new(Snapshot {
                lockdown: true,
                ..Snapshot::default()
            }),
            wake: Notify::new(),
            persisting: tokio::sync::Mutex::new(()),
            users: Mutex::default(),
            file: std::sync::OnceLock::new(),
        }
    }
}

impl LocalGuard {
    fn local(&self) -> MutexGuard<'_, Local> {
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this node is locked down locally (API override or lockdown file).
    pub fn locked(&self) -> bool {
        let l = self.local();
        l.api_lockdown.is_some() || l.file_lockdown.is_some()
    }

    /// The local lockdown in force, and where it comes from (`api` or `file`).
    pub fn local_lockdown(&self) -> Option<(LockdownState, &'static str)> {
        self.file_lockdown();
        let l = self.local();
        match (&l.file_lockdown, &l.api_lockdown) {
            (Some(f), _) => Some((f.clone(), "file")),
            (None, Some(a)) => Some((a.clone(), "api")),
            (None, None) => None,
        }
    }

    /// The lockdown file's state, if one is in force. Reads the file again, so
    /// that a `portier lockdown off` that just returned is seen at once.
    pub fn file_lockdown(&self) -> Option<LockdownState> {
        if let Some(path) = self.file.get() {
            if read_lockdown_file(path).is_none() {
                let mut l = self.local();
                if l.file_lockdown.take().is_some() {
                    tracing::warn!(file = %path.display(), "lockdown file removed");
                    l.file_since = Some(Instant::now());
                    l.file_queued = false;
                }
            }
        }
        self.local().file_lockdown.clone()
    }

    /// Locks down on this node now, whatever the store says.
    pub fn lock_locally(&self, state: LockdownState) {
        self.local().api_lockdown = Some(state);
        tracing::warn!("lockdown in force on this node");
    }

    /// Refuses `r` on this node until released (once per call to `restrict`).
    pub fn restrict(&self, r: Restriction) {
        let mut l = self.local();
        let count = l.restrictions.entry(r).or_insert(0);
        *count += 1;
        if *count == 1 {
            self.version.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The store holds it now (or it refers to nothing): the stored state decides again.
    pub fn release(&self, r: &Restriction) {
        let mut l = self.local();
        let Some(count) = l.restrictions.get_mut(r) else {
            return;
        };
        *count = count.saturating_sub(1);
        if *count == 0 {
            l.restrictions.remove(r);
            self.version.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Changes waiting for the database.
    pub fn pending(&self) -> usize {
        self.local().pending.len()
    }

    /// Queues a change the database did not take; the persister retries it.
    pub fn defer(&self, p: Pending) {
        tracing::warn!(change = p.kind(), "change kept in memory until the database takes it");
        self.local().pending.push_back(p);
        self.wake.notify_one();
    }

    /// The snapshot admission decides on: a locked one during a local lockdown
    /// (no store needed), else `base` with the local restrictions applied.
    pub fn apply(&self, base: Arc<Snapshot>) -> Arc<Snapshot> {
        let version = self.version.load(Ordering::Acquire);
        let restrictions: Vec<Restriction> = {
            let l = self.local();
            if l.restrictions.is_empty() {
                return base;
            }
            l.restrictions.keys().cloned().collect()
        };
        if let Some(d) = self.derived.load().as_ref() {
            if d.version == version && Arc::ptr_eq(&d.base, &base) {
                return d.derived.clone();
            }
        }
        let mut snap = Snapshot::clone(&base);
        for r in &restrictions {
            match r {
                Restriction::Window(id) => {
                    for list in snap.windows.values_mut() {
                        list.retain(|w| &w.id != id);
                    }
                }
                Restriction::Technician(vendor, id) => {
                    for t in snap.technicians.values_mut() {
                        if &t.id == id && &t.vendor_id == vendor {
                            t.revoked = true;
                        }
                    }
                }
                Restriction::Vendor(id) => {
                    if let Some(v) = snap.vendors.get_mut(id) {
                        v.enabled = false;
                    }
                }
                Restriction::Device(id) => {
                    for d in snap.devices.values_mut() {
                        if &d.id == id {
                            d.enabled = false;
                        }
                    }
                }
            }
        }
        let derived = Arc::new(snap);
        self.derived.store(Some(Arc::new(Derived {
            version,
            base,
            derived: derived.clone(),
        })));
        derived
    }

    /// The snapshot used while locked down locally.
    pub fn locked_snapshot(&self) -> Arc<Snapshot> {
        self.locked.clone()
    }

    /// Remembers an account the store just authenticated.
    pub fn remember_user(&self, token_sha256: &str, user: &User) {
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        if users.len() >= OFFLINE_AUTH_MAX && !users.contains_key(token_sha256) {
            let oldest = users.iter().min_by_key(|(_, u)| u.seen).map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                users.remove(&k);
            }
        }
        users.insert(
            token_sha256.to_owned(),
            KnownUser {
                user: user.clone(),
                seen: Instant::now(),
            },
        );
    }

    /// Forgets a token the store no longer knows (disabled, removed).
    pub fn forget_user(&self, token_sha256: &str) {
        self.users
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token_sha256);
    }

    /// An account the store authenticated within [`OFFLINE_AUTH_TTL`].
    pub fn known_user(&self, token_sha256: &str) -> Option<User> {
        let users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        users
            .get(token_sha256)
            .filter(|u| u.seen.elapsed() < OFFLINE_AUTH_TTL)
            .map(|u| u.user.clone())
    }

    /// An account the store authenticated within `within` (and within
    /// [`OFFLINE_AUTH_TTL`]): for console sessions, whose idle limit is shorter.
    pub fn known_user_within(&self, token_sha256: &str, within: Duration) -> Option<User> {
        let users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        users
            .get(token_sha256)
            .filter(|u| u.seen.elapsed() < within.min(OFFLINE_AUTH_TTL))
            .map(|u| u.user.clone())
    }

    /// Forgets every remembered credential of an account (its console sessions
    /// and tokens): after "sign out everywhere", none is accepted offline.
    pub fn forget_account(&self, id: &crate::domain::UserId) {
        self.users
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, u| u.user.id != *id);
    }

    /// Stores a lockdown set through the API now: the state, then its audit event.
    /// On failure the change is queued and the local lockdown stays in force.
    pub async fn persist_lockdown(
        &self,
        store: &dyn Store,
        state: LockdownState,
        effects: Effects,
    ) -> Result<(), String> {
        let _one = self.persisting.lock().await;
        let p = Pending::Lockdown { state, effects };
        match self.attempt(store, p.clone()).await {
            Step::Done => Ok(()),
            Step::Retry(e) => {
                self.defer(p);
                Err(e)
            }
        }
    }

    /// Lifts the lockdown: the queued lockdowns are stored first (so none lands
    /// after the lift), then `state`; the local API lockdown ends with it.
    pub async fn lift_lockdown(
        &self,
        store: &dyn Store,
        state: &LockdownState,
        effects: Effects,
    ) -> Result<(), LiftError> {
        let _one = self.persisting.lock().await;
        self.drain(store, Pending::is_lockdown)
            .await
            .map_err(LiftError::Pending)?;
        store
            .set_lockdown(state, &|_| effects.clone())
            .await
            .map_err(LiftError::Store)?;
        self.local().api_lockdown = None;
        Ok(())
    }

    /// Tries each queued change matching `which`, in order, with its follow-ups;
    /// stops at the first the store cannot take (the store is likely down, and
    /// the order of the audit trail is kept).
    async fn drain(&self, store: &dyn Store, which: fn(&Pending) -> bool) -> Result<(), String> {
        let mut from = 0;
        loop {
            let next = {
                let l = self.local();
                l.pending
                    .iter()
                    .enumerate()
                    .skip(from)
                    .find(|(_, p)| which(p))
                    .map(|(at, p)| (at, p.clone()))
            };
            let Some((at, item)) = next else {
                return Ok(());
            };
            from = at;
            match self.attempt(store, item).await {
                Step::Done => {
                    self.local().pending.remove(at);
                }
                Step::Retry(e) => return Err(e),
            }
        }
    }

    /// One attempt at storing `p`.
    /// What a stored attempt at a restrictive change came to: the local
    /// restriction is released once the store has the change or refuses it for
    /// good; kept (and retried) while the store is unavailable.
    fn settle<T>(&self, r: &Restriction, stored: Result<T, StoreError>) -> Step {
        match stored {
            Ok(_) => {
                self.release(r);
                Step::Done
            }
            Err(e) if e.is_unavailable() => Step::Retry(e.to_string()),
            Err(e) => {
                self.release(r);
                tracing::error!(error = %e, "queued change refused by the store: dropped");
                Step::Done
            }
        }
    }

    async fn attempt(&self, store: &dyn Store, p: Pending) -> Step {
        let unavailable = |e: StoreError| match e {
            e if e.is_unavailable() => Step::Retry(e.to_string()),
            other => {
                tracing::error!(error = %other, "queued change refused by the store: dropped");
                Step::Done
            }
        };
        // Each change is stored with its effects (audit event, feed entry,
        // notifications) in one transaction, so a retry never duplicates them.
        match p {
            Pending::Lockdown { state, effects } => match store.set_lockdown(&state, &|_| effects.clone()).await {
                Ok(()) => {
                    let mut l = self.local();
                    if l.api_lockdown.as_ref().is_some_and(|a| a.set_at == state.set_at) {
                        l.api_lockdown = None;
                    }
                    Step::Done
                }
                Err(e) => unavailable(e),
            },
            Pending::FileLockdown { state, node } => {
                let stored = match store.lockdown().await {
                    Ok(s) => s,
                    Err(e) => return unavailable(e),
                };
                // A later decision stored meanwhile (or this one, by the CLI) wins.
                if stored.set_at.is_some() && stored.set_at >= state.set_at {
                    return Step::Done;
                }
                let effects = Effects::audit(AuditEvent::new(
                    state.set_at.unwrap_or_else(Utc::now),
                    state.set_by.as_deref().unwrap_or("cli"),
                    Event::LockdownOn,
                    "lockdown",
                    "success",
                    serde_json::json!({"reason": state.reason, "via": "lockdown_file", "stored_by_node": node}),
                ))
                .change(Change::Lockdown);
                match store.set_lockdown(&state, &|_| effects.clone()).await {
                    Ok(()) => Step::Done,
                    Err(e) => unavailable(e),
                }
            }
            Pending::RevokeWindow {
                id,
                transition,
                effects,
            } => {
                let r = Restriction::Window(id.clone());
                match store.transition_window(&id, &transition, &|_| effects.clone()).await {
                    Ok(_) => {
                        self.release(&r);
                        Step::Done
                    }
                    Err(StoreError::Conflict(_)) => {
                        // Maybe an earlier attempt was stored after all (with its effects).
                        match store.window(&id).await {
                            Ok(w) => {
                                if w.state != WindowState::Revoked {
                                    tracing::warn!(window = %id, state = w.state.as_str(), "queued revocation no longer applies");
                                }
                                self.release(&r);
                                Step::Done
                            }
                            Err(e) if e.is_unavailable() => Step::Retry(e.to_string()),
                            Err(e) => {
                                self.release(&r);
                                unavailable(e)
                            }
                        }
                    }
                    Err(e) if e.is_unavailable() => Step::Retry(e.to_string()),
                    Err(e) => {
                        self.release(&r);
                        unavailable(e)
                    }
                }
            }
            Pending::RevokeTechnician {
                vendor,
                id,
                at,
                effects,
            } => {
                let stored = store.revoke_technician(&vendor, &id, at, &|_| effects.clone()).await;
                self.settle(&Restriction::Technician(vendor, id), stored)
            }
            Pending::DisableVendor { id, effects } => {
                let stored = store.set_vendor_enabled(&id, false, &|_| effects.clone()).await;
                self.settle(&Restriction::Vendor(id), stored)
            }
            Pending::DisableDevice { id, effects } => {
                let stored = store.set_device_enabled(&id, false, &|_| effects.clone()).await;
                self.settle(&Restriction::Device(id), stored)
            }
            Pending::Record(effects) => match store.record(&effects).await {
                Ok(_) => Step::Done,
                Err(e) => unavailable(e),
            },
        }
    }

    /// Watches the lockdown file, re-cuts while locked down locally, and stores
    /// the queued changes, until `shutdown`.
    pub async fn run(self: Arc<Self>, deps: GuardDeps, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(FILE_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut delay = RETRY_FIRST;
        let mut next_try = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    let left: Vec<&str> = self.local().pending.iter().map(Pending::kind).collect();
                    if !left.is_empty() {
                        // Held in memory only: the operator must redo them once the database is back.
                        tracing::error!(changes = ?left, "stopping with restrictive changes not stored in the database");
                    }
                    return;
                }
                _ = tick.tick() => {}
                _ = self.wake.notified() => { next_try = Instant::now(); }
            }
            if let Some(path) = &deps.lockdown_file {
                self.follow_file(path, &deps);
            } else if self.locked() {
                // A tunnel admitted just before the lockdown registers after the cut.
                deps.registry.cut_all(EndReason::Lockdown);
            }
            if self.pending() == 0 || Instant::now() < next_try {
                continue;
            }
            let stored = {
                let _one = self.persisting.lock().await;
                self.drain(deps.store.as_ref(), |_| true).await
            };
            if let Err(e) = &stored {
                tracing::warn!(error = %e, pending = self.pending(), "changes kept in memory, not stored yet");
            }
            if stored.is_ok() && self.pending() == 0 {
                tracing::info!("changes kept during the outage are stored");
                delay = RETRY_FIRST;
            } else {
                delay = (delay * 2).min(RETRY_MAX);
                next_try = Instant::now() + delay;
            }
        }
    }

    /// Reads the lockdown file and follows it (locks down, or lifts the file's lockdown).
    pub fn follow_file(&self, path: &Path, deps: &GuardDeps) {
        let _ = self.file.set(path.to_owned());
        let now = read_lockdown_file(path);
        let mut l = self.local();
        if l.file_lockdown != now {
            match &now {
                Some(state) => {
                    tracing::warn!(file = %path.display(), reason = ?state.reason, "lockdown file present: locked down");
                    deps.notifier.send(
                        Event::LockdownOn,
                        serde_json::json!({"reason": state.reason, "by": state.set_by, "via": "lockdown_file", "node": deps.node}),
                    );
                }
                None => tracing::warn!(file = %path.display(), "lockdown file removed"),
            }
            l.file_lockdown = now;
            l.file_since = Some(Instant::now());
            l.file_queued = false;
        }
        // The CLI stores the lockdown itself when it can; the node does it after a
        // grace period, so that both do not record it.
        let due = l.file_since.is_some_and(|t| t.elapsed() >= FILE_STORE_GRACE);
        if let (Some(state), false, true) = (&l.file_lockdown, l.file_queued, due) {
            if state.set_at.is_some() {
                let p = Pending::FileLockdown {
                    state: state.clone(),
                    node: deps.node.clone(),
                };
                l.pending.push_back(p);
                self.wake.notify_one();
            }
            l.file_queued = true;
        }
        let locked = l.file_lockdown.is_some() || l.api_lockdown.is_some();
        drop(l);
        if locked {
            deps.registry.cut_all(EndReason::Lockdown);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{TechnicianEntry, VendorEntry, WindowEntry};

    fn snapshot() -> Arc<Snapshot> {
        let mut s = Snapshot::default();
        let w = |id: &str| WindowEntry {
            id: id.into(),
            vendor_id: "v".into(),
            starts_at: Utc::now(),
            ends_at: Utc::now(),
            emergency: false,
            extra_networks: vec![],
        };
        s.windows.insert("d".into(), vec![w("w1"), w("w2")]);
        s.vendors.insert(
            "v".into(),
            VendorEntry {
                enabled: true,
                networks: vec![],
                oldest_unreported_end: None,
            },
        );
        s.technicians.insert(
            crate::domain::Fingerprint::of_der(b"t"),
            TechnicianEntry {
                id: "t".into(),
                vendor_id: "v".into(),
                subject: "CN=t".into(),
                revoked: false,
                not_before: Some(chrono::DateTime::<chrono::Utc>::MIN_UTC),
                not_after: chrono::DateTime::<chrono::Utc>::MAX_UTC,
            },
        );
        Arc::new(s)
    }

    #[test]
    fn restrictions_apply_until_released() {
        let g = LocalGuard::default();
        let base = snapshot();
        assert!(Arc::ptr_eq(&g.apply(base.clone()), &base));
        g.restrict(Restriction::Window("w1".into()));
        g.restrict(Restriction::Technician("other".into(), "t".into()));
        let d = g.apply(base.clone());
        let ids: Vec<_> = d
            .windows_for(&"d".into())
            .iter()
            .map(|w| w.id.as_str().to_owned())
            .collect();
        assert_eq!(ids, ["w2"]);
        // Another vendor's technician id does not revoke this one.
        assert!(d.technicians.values().all(|t| !t.revoked));
        assert!(Arc::ptr_eq(&g.apply(base.clone()), &d), "derived once per change");
        g.restrict(Restriction::Technician("v".into(), "t".into()));
        g.restrict(Restriction::Vendor("v".into()));
        // Restricted twice, released twice.
        g.restrict(Restriction::Vendor("v".into()));
        g.release(&Restriction::Vendor("v".into()));
        let d = g.apply(base.clone());
        assert!(d.technicians.values().all(|t| t.revoked));
        assert!(d.vendors.values().all(|v| !v.enabled));
        for r in [
            Restriction::Window("w1".into()),
            Restriction::Technician("other".into(), "t".into()),
            Restriction::Technician("v".into(), "t".into()),
            Restriction::Vendor("v".into()),
        ] {
            g.release(&r);
        }
        assert!(Arc::ptr_eq(&g.apply(base.clone()), &base));
    }

    #[test]
    fn a_garbled_lockdown_file_locks_down() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lockdown");
        assert_eq!(read_lockdown_file(&path), None);
        std::fs::write(&path, "not json").unwrap();
        assert!(read_lockdown_file(&path).is_some_and(|s| s.active));
        let f = LockdownFile {
            reason: "ransomware".into(),
            set_by: "cli:root".into(),
            set_at: crate::audit::truncate_micros(Utc::now()),
        };
        f.write(&path).unwrap();
        assert_eq!(read_lockdown_file(&path), Some(f.state()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
