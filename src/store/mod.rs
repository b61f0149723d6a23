//! Persistence. [`Store`] names what Portier does with its data; the SQL behind it
//! lives in one implementation per backend: [`SqliteStore`] (the embedded default)
//! and [`PgStore`] (several gateway nodes sharing one database).

mod effects;
mod feed;
mod health;
mod identity;
mod journal;
mod outbox;
mod postgres;
mod records;
mod retention;
mod sqlite;

use crate::events::Event;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ipnet::IpNet;

use crate::audit::{AuditEvent, AuditRecord};
use crate::domain::{DeviceId, SessionId, TechnicianId, TokenId, UserId, VendorId, WindowId};
use crate::policy::Snapshot;

pub use effects::{Change, ChangeRecord, Effects, Notice, Record, CHANGES_CHANNEL};
pub use feed::{AdmissionReads, ChangeListener, DeviceAdmission, TechnicianAdmission, WindowAdmission};
pub use health::{HealthReport, StoreHealth};
pub use identity::{Credentials, PendingSignIn};
pub use journal::{Durability, Journal, JournalError, JournalSettings};
pub use outbox::{OutboxBacklog, OutboxItem, OutboxPurge};
pub use postgres::PgStore;
pub use records::*;
pub use retention::{AuditAnchor, PurgeCounts, PurgeRequest, ERASED, ERASED_IP};
pub use sqlite::SqliteStore;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or refused the operation (read-only, full, down).
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// No such object.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness rule or a state transition forbids the change.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database refuses a value the caller sent, whatever the state (PostgreSQL
    /// stores no NUL character in text): the caller's mistake, not an outage.
    #[error("value refused by the database: {0}")]
    Invalid(&'static str),
    /// A stored value that does not parse (a bug, or tampering).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// The breaker is open: a recent write failed and no probe has succeeded since,
    /// so the database is not even tried (fail fast).
    #[error("database unavailable (failing fast): {0}")]
    Down(String),
    /// Applying the migrations failed.
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The database URL is not one Portier supports.
    #[error("unsupported database url {0:?}: expected sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound("row"),
            sqlx::Error::Database(db)
                if db.is_unique_violation() || db.is_foreign_key_violation() || db.is_check_violation() =>
            {
                // The database's own text names tables and columns: it is logged,
                // and the caller gets the rule in the product's words.
                let shown = constraint_message(db.as_ref());
                tracing::debug!(database_message = db.message(), constraint = ?db.constraint(), shown, "constraint refused a change");
                StoreError::Conflict(shown.to_owned())
            }
            // character_not_in_repertoire: a NUL in a text parameter (an id in a
            // path or body); reported as the input's fault, not as "unreachable".
            sqlx::Error::Database(db) if db.code().as_deref() == Some("22021") => {
                StoreError::Invalid("text holding a NUL character")
            }
            _ => StoreError::Unavailable(e),
        }
    }
}

impl StoreError {
    /// Whether the error says the database cannot take the operation at all (down,
    /// full, read-only), as opposed to refusing this particular change.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Down(_))
    }
}

/// What a violated constraint means, in the product's words. SQLite names the
/// column in its message (`UNIQUE constraint failed: vendors.name`), PostgreSQL
/// names the constraint (`vendors_name_key`): both are matched.
fn constraint_message(db: &dyn sqlx::error::DatabaseError) -> &'static str {
    const KNOWN: [(&str, &str, &str); 11] = [
        (
            "vendors.name",
            "vendors_name_key",
            "a vendor with this name already exists",
        ),
        (
            "devices.name",
            "devices_name_key",
            "a device with this name already exists",
        ),
        (
            "technicians.fingerprint_sha256",
            "technicians_fingerprint_sha256_key",
            "this certificate is already registered for a technician",
        ),
        (
            "api_users.name",
            "api_users_name_key",
            "an account with this name already exists",
        ),
        (
            "api_users.token_sha256",
            "api_users_token_sha256_key",
            "token collision: try again",
        ),
        (
            "api_tokens.token_sha256",
            "api_tokens_token_sha256_key",
            "token collision: try again",
        ),
        ("reports.window_id", "reports_pkey", "this window already has a report"),
        (
            "vendor_networks.",
            "vendor_networks_pkey",
            "a network is declared twice",
        ),
        ("device_vendors.", "device_vendors_pkey", "a vendor is assigned twice"),
        ("window_devices.", "window_devices_pkey", "a device is listed twice"),
        (
            "window_extra_networks.",
            "window_extra_networks_pkey",
            "a network is listed twice",
        ),
    ];
    let message = db.message();
    let constraint = db.constraint().unwrap_or("");
    if db.is_unique_violation() {
        KNOWN
            .iter()
            .find(|(column, name, _)| message.contains(column) || constraint == *name)
            .map_or("an object with the same identity already exists", |(_, _, shown)| shown)
    } else if db.is_foreign_key_violation() {
        "the change refers to a vendor, device, window or technician that does not exist"
    } else {
        "the change breaks a rule of the stored record (for example, a window must end after it starts)"
    }
}

/// Result of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// Counts changes that affect admission, so the gateway's cached [`Snapshot`] can
/// tell it is stale. Bumped after the change is committed, before the call returns.
#[derive(Debug)]
pub struct Generation {
    count: AtomicU64,
    /// Wakes the change-feed follower of this process at once.
    changed: tokio::sync::watch::Sender<u64>,
}

impl Default for Generation {
    fn default() -> Self {
        Self {
            count: AtomicU64::new(0),
            changed: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl Generation {
    /// The current count.
    pub fn get(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }
    /// Marks the admission state as changed.
    pub fn bump(&self) {
        let n = self.count.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
        self.changed.send_replace(n);
    }
    /// Watches the count: `changed()` completes after each [`Generation::bump`]
    /// since the last look, however many.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// Everything Portier keeps. Methods are named for what they do; none exposes SQL.
/// The per-object reads of the change-feed follower are in [`AdmissionReads`].
#[async_trait]
pub trait Store: AdmissionReads + Send + Sync + 'static {
    /// Applies the pending migrations of this backend.
    async fn migrate(&self) -> StoreResult<()>;
    /// Checks that the database answers.
    async fn ping(&self) -> StoreResult<()>;
    /// The admission-state change counter (see [`Generation`]).
    fn generation(&self) -> Arc<Generation>;
    /// The write breaker shared by everything using this store (see [`StoreHealth`]).
    fn health(&self) -> Arc<StoreHealth>;
    /// A cheap real write (one row rewritten), to learn whether writes succeed again.
    async fn probe_write(&self, at: DateTime<Utc>) -> StoreResult<()>;

    // --- nodes ---
    /// Claims `claim.name` for this process. Refused (`NodeClaim::InUse`) while
    /// another instance holding the name has beaten since `stale_before` and has
    /// not stopped cleanly.
    async fn claim_node(&self, claim: &NodeIdentity, stale_before: DateTime<Utc>) -> StoreResult<NodeClaim>;
    /// Records that the node is alive and checkpoints its live sessions' byte
    /// counts, in one transaction. `false`: another instance now holds the name.
    async fn node_heartbeat(&self, beat: &Heartbeat) -> StoreResult<bool>;
    /// Frees the name at a clean stop.
    async fn release_node(&self, node: &NodeIdentity, at: DateTime<Utc>) -> StoreResult<()>;
    /// Names of the nodes that beat at or after `after` and have not stopped.
    async fn live_nodes(&self, after: DateTime<Utc>) -> StoreResult<Vec<String>>;
    /// Every node that ever claimed a name on this database, by name.
    async fn list_nodes(&self) -> StoreResult<Vec<NodeRecord>>;

    // --- vendors ---
    async fn create_vendor(&self, v: &NewVendor, at: DateTime<Utc>, record: Record<'_, Vendor>) -> StoreResult<Vendor>;
    async fn vendor(&self, id: &VendorId) -> StoreResult<Vendor>;
    async fn list_vendors(&self) -> StoreResult<Vec<Vendor>>;
    async fn replace_vendor_networks(
        &self,
        id: &VendorId,
        networks: &[IpNet],
        record: Record<'_, Vendor>,
    ) -> StoreResult<Vendor>;
    async fn set_vendor_enabled(&self, id: &VendorId, enabled: bool, record: Record<'_, Vendor>)
        -> StoreResult<Vendor>;

    // --- technicians ---
    async fn add_technician(
        &self,
        t: &NewTechnician,
        at: DateTime<Utc>,
        record: Record<'_, Technician>,
    ) -> StoreResult<Technician>;
    async fn technician(&self, id: &TechnicianId) -> StoreResult<Technician>;
    async fn list_technicians(&self, vendor: &VendorId) -> StoreResult<Vec<Technician>>;
    async fn revoke_technician(
        &self,
        vendor: &VendorId,
        id: &TechnicianId,
        at: DateTime<Utc>,
        record: Record<'_, Technician>,
    ) -> StoreResult<Technician>;

    // --- devices ---
    async fn create_device(&self, d: &NewDevice, at: DateTime<Utc>, record: Record<'_, Device>) -> StoreResult<Device>;
    async fn device(&self, id: &DeviceId) -> StoreResult<Device>;
    async fn list_devices(&self) -> StoreResult<Vec<Device>>;
    async fn set_device_enabled(&self, id: &DeviceId, enabled: bool, record: Record<'_, Device>)
        -> StoreResult<Device>;

    // --- windows ---
    async fn create_window(&self, w: &NewWindow, at: DateTime<Utc>, record: Record<'_, Window>) -> StoreResult<Window>;
    async fn window(&self, id: &WindowId) -> StoreResult<Window>;
    async fn list_windows(&self, f: &WindowFilter) -> StoreResult<Vec<Window>>;
    /// Moves a window from one state to another; `Conflict` if it is no longer in `from`.
    async fn transition_window(
        &self,
        id: &WindowId,
        t: &WindowTransition,
        record: Record<'_, Window>,
    ) -> StoreResult<Window>;
    /// Records the retrospective review of an emergency grant, once.
    async fn review_window(
        &self,
        id: &WindowId,
        verdict: &str,
        comment: &str,
        by: &str,
        at: DateTime<Utc>,
        record: Record<'_, Window>,
    ) -> StoreResult<Window>;
    /// Records an extension request on an approved window (one pending at a time).
    async fn request_extension(
        &self,
        id: &WindowId,
        ends_at: DateTime<Utc>,
        reason: &str,
        by: &str,
        record: Record<'_, Window>,
    ) -> StoreResult<Window>;
    /// Approves (moving the window's end) or rejects the pending extension, only if
    /// it still asks for `pending` (the end the decider checked); `Conflict` otherwise.
    async fn decide_extension(
        &self,
        id: &WindowId,
        pending: DateTime<Utc>,
        approve: bool,
        by: &str,
        at: DateTime<Utc>,
        record: Record<'_, Window>,
    ) -> StoreResult<Window>;
    /// Windows that had a session, are not emergency grants, have no report, and
    /// ended (or were revoked) at or before `ended_before`.
    async fn unreported_windows(
        &self,
        vendor: Option<&VendorId>,
        ended_before: DateTime<Utc>,
    ) -> StoreResult<Vec<Window>>;

    // --- reports ---
    /// Files the report of a window; `Conflict` if it already has one.
    async fn file_report(&self, r: &NewReport, at: DateTime<Utc>, record: Record<'_, Report>) -> StoreResult<Report>;
    async fn report(&self, window: &WindowId) -> StoreResult<Report>;
    async fn list_reports(&self, f: &ReportFilter) -> StoreResult<Vec<Report>>;
    /// Appends a correction to a filed report.
    async fn add_report_addendum(
        &self,
        window: &WindowId,
        text: &str,
        by: &str,
        at: DateTime<Utc>,
        record: Record<'_, Report>,
    ) -> StoreResult<Report>;

    // --- sessions ---
    async fn session(&self, id: &SessionId) -> StoreResult<Session>;
    async fn list_sessions(&self, f: &SessionFilter) -> StoreResult<Vec<Session>>;
    /// Closes the sessions a previous run of this node left open (crash, kill -9),
    /// as `gateway_restart`, each with a `session.ended` audit event. `last_alive`
    /// is the last instant the previous run was known alive (its last heartbeat);
    /// a session's end is the latest of that, its last byte checkpoint and its
    /// start, and its byte counts are the last checkpointed ones.
    async fn close_orphan_sessions(&self, node: &str, last_alive: DateTime<Utc>) -> StoreResult<u64>;
    /// Closes, as `node_lost`, the open sessions of every other node whose last
    /// heartbeat is older than `stale_before` (a lost node), each with one
    /// `session.ended` event; `closed_by` is this node's name. Ends are dated as
    /// in [`Store::close_orphan_sessions`] by the lost node's last heartbeat.
    /// Exactly once when several nodes sweep at once, and never racing the lost
    /// node's own restart (which closes them as `gateway_restart` instead).
    async fn close_lost_node_sessions(&self, closed_by: &str, stale_before: DateTime<Utc>) -> StoreResult<u64>;

    // --- journal: durable gateway writes, grouped in one transaction ---
    /// Writes every entry in one transaction (group commit), audit events chained.
    async fn write_journal(&self, entries: &[JournalEntry]) -> StoreResult<()>;

    // --- audit ---
    async fn list_audit(&self, f: &AuditFilter) -> StoreResult<Vec<AuditRecord>>;
    /// The last event's sequence number and hash (the head of the chain).
    async fn audit_head(&self) -> StoreResult<Option<(i64, String)>>;
    /// Appends one audit event outside the journal.
    async fn append_audit(&self, e: &AuditEvent) -> StoreResult<AuditRecord>;
    /// Commits effects that go with no stored state change (a termination
    /// request: its audit event and the feed entry that cuts the session).
    async fn record(&self, effects: &Effects) -> StoreResult<AuditRecord>;

    // --- the change feed (see [`Change`]) ---
    /// Feed entries with `seq > after`, oldest first, at most `limit`.
    async fn changes_since(&self, after: i64, limit: u32) -> StoreResult<Vec<ChangeRecord>>;
    /// The last feed entry's `seq` (0 when empty).
    async fn last_change_seq(&self) -> StoreResult<i64>;
    /// Deletes feed entries older than `before`, always keeping the newest one.
    /// A node further behind than that finds a gap and reloads in full.
    async fn prune_changes(&self, before: DateTime<Utc>) -> StoreResult<u64>;

    // --- API users ---
    async fn create_user(&self, u: &NewUser, at: DateTime<Utc>, record: Record<'_, User>) -> StoreResult<User>;
    async fn user(&self, id: &UserId) -> StoreResult<User>;
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    /// Disables (`disabled_at` set, once) or re-enables an account.
    async fn set_user_disabled(
        &self,
        id: &UserId,
        disabled_at: Option<DateTime<Utc>>,
        record: Record<'_, User>,
    ) -> StoreResult<User>;
    /// The account a token authenticates at `now`: the token is neither revoked
    /// nor expired and the account is enabled. Notes the token's use (at most
    /// once a minute per token, so a script's calls do not each write).
    async fn user_by_token_hash(&self, token_sha256: &str, now: DateTime<Utc>) -> StoreResult<Option<User>>;
    /// Stores a new token of an existing account.
    async fn create_api_token(
        &self,
        t: &NewApiToken,
        at: DateTime<Utc>,
        record: Record<'_, ApiToken>,
    ) -> StoreResult<ApiToken>;
    async fn api_token(&self, id: &TokenId) -> StoreResult<ApiToken>;
    /// The tokens of one account (`Some`) or of every account, newest first.
    async fn list_api_tokens(&self, user: Option<&UserId>) -> StoreResult<Vec<ApiToken>>;
    /// Revokes a token (once: revoking again keeps the first instant).
    async fn revoke_api_token(
        &self,
        id: &TokenId,
        at: DateTime<Utc>,
        record: Record<'_, ApiToken>,
    ) -> StoreResult<ApiToken>;
    /// Sets the console language an account chose (`None`: the browser's).
    async fn set_user_lang(&self, id: &UserId, lang: Option<&str>, record: Record<'_, User>) -> StoreResult<User>;

    // --- console sessions (see [`ConsoleSession`]) ---
    async fn create_console_session(
        &self,
        session: &ConsoleSession,
        record: Record<'_, ConsoleSession>,
    ) -> StoreResult<ConsoleSession>;
    /// The session with this cookie hash and its account, if both exist and the
    /// account is not disabled.
    async fn console_session(&self, id_sha256: &str) -> StoreResult<Option<(ConsoleSession, User)>>;
    /// Notes activity on a session (its idle timeout starts again).
    async fn touch_console_session(&self, id_sha256: &str, at: DateTime<Utc>) -> StoreResult<()>;
    /// Ends one session of `user` (`only`) or all of them; returns how many ended.
    async fn end_console_sessions(
        &self,
        user: &UserId,
        only: Option<&str>,
        record: Record<'_, u64>,
    ) -> StoreResult<u64>;
    /// Deletes sessions idle since `idle_before` or created before `created_before`.
    async fn prune_console_sessions(
        &self,
        idle_before: DateTime<Utc>,
        created_before: DateTime<Utc>,
    ) -> StoreResult<u64>;

    // --- local passwords and second factor (see [`Credentials`]) ---
    /// The account of this name (disabled or not) and its credentials.
    async fn user_by_name(&self, name: &str) -> StoreResult<Option<(User, Credentials)>>;
    async fn credentials(&self, id: &UserId) -> StoreResult<Credentials>;
    /// Every account's credentials (for the list of accounts' sign-in methods).
    async fn all_credentials(&self) -> StoreResult<Vec<(UserId, Credentials)>>;
    /// Links an account to the hospital's directory (`dn`) and sets the role
    /// its groups give.
    async fn set_directory_account(
        &self,
        id: &UserId,
        dn: &str,
        role: crate::domain::Role,
        record: Record<'_, User>,
    ) -> StoreResult<User>;
    /// Sets the password hash (a PHC string) and whether it must be changed.
    async fn set_password(
        &self,
        id: &UserId,
        password_hash: &str,
        must_change: bool,
        record: Record<'_, User>,
    ) -> StoreResult<User>;
    /// Sets the TOTP secret (`None`: no second factor), when it was confirmed and
    /// the step of the confirming code, and replaces the recovery codes.
    async fn set_totp(
        &self,
        id: &UserId,
        secret: Option<&str>,
        enabled_at: Option<DateTime<Utc>>,
        last_step: Option<i64>,
        recovery_sha256: &[String],
        record: Record<'_, User>,
    ) -> StoreResult<User>;
    /// Replaces the stored form of an account's TOTP secret (its encryption at
    /// rest) if it is still `old`: false if it changed meanwhile. Nothing else
    /// of the account changes, and no audit event is written (the secret is
    /// the same).
    async fn replace_totp_secret(&self, id: &UserId, old: &str, new: &str) -> StoreResult<bool>;
    /// Accepts a TOTP step once: true if `step` is later than the last one
    /// accepted (atomically, so two nodes cannot both accept a code).
    async fn use_totp_step(&self, id: &UserId, step: i64) -> StoreResult<bool>;
    /// Spends a recovery code: true (and recorded) if it existed unused.
    async fn use_recovery_code(
        &self,
        id: &UserId,
        code_sha256: &str,
        at: DateTime<Utc>,
        record: Record<'_, ()>,
    ) -> StoreResult<bool>;
    /// Records a failed sign-in under each key, forgets every key's failures
    /// before `forget_before`, and returns each key's count since `count_since`.
    async fn add_sign_in_failure(
        &self,
        keys: &[String],
        at: DateTime<Utc>,
        count_since: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> StoreResult<Vec<i64>>;
    /// A key's failures since `since` and the last one's time.
    async fn sign_in_failures(&self, key: &str, since: DateTime<Utc>) -> StoreResult<(i64, Option<DateTime<Utc>>)>;
    async fn clear_sign_in_failures(&self, key: &str) -> StoreResult<()>;
    /// Stores a pending sign-in, and deletes those created before `expired_before`.
    async fn create_pending_sign_in(&self, p: &PendingSignIn, expired_before: DateTime<Utc>) -> StoreResult<()>;
    async fn pending_sign_in(&self, id_sha256: &str) -> StoreResult<Option<PendingSignIn>>;
    async fn end_pending_sign_in(&self, id_sha256: &str) -> StoreResult<()>;

    // --- lockdown ---
    async fn lockdown(&self) -> StoreResult<LockdownState>;
    async fn set_lockdown(&self, state: &LockdownState, record: Record<'_, LockdownState>) -> StoreResult<()>;

    // --- admission ---
    /// Everything the policy needs, for windows not ended at `now`.
    async fn load_admission_snapshot(&self, now: DateTime<Utc>) -> StoreResult<Snapshot>;

    // --- the notification outbox (see [`OutboxItem`]) ---
    /// Queues notices that go with no stored change (a tunnel's start and end,
    /// the scheduler's reminders), in one transaction, due at once.
    async fn enqueue_notices(&self, notices: &[Notice], at: DateTime<Utc>) -> StoreResult<()>;
    /// Claims for `node`, until `until`, at most `limit` notices due at `now`
    /// (neither delivered nor given up, next attempt reached, unclaimed or
    /// claim expired), oldest first, counting the attempt. Two nodes never hold
    /// the same notice at the same time.
    async fn claim_outbox(
        &self,
        node: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxItem>>;
    /// Frees the claims `node` holds. Called as its delivery starts: any claim
    /// it still holds was left by its previous run, stopped mid-delivery.
    async fn release_outbox_claims(&self, node: &str) -> StoreResult<u64>;
    /// Marks a notice delivered (to every sink that wants it).
    async fn outbox_delivered(&self, seq: i64, at: DateTime<Utc>) -> StoreResult<()>;
    /// Schedules the next attempt of a notice `node` holds, with the error of
    /// this one and the sinks that have accepted it so far. Nothing happens if
    /// `node` no longer holds it (its claim expired and another node took it).
    async fn outbox_retry(
        &self,
        seq: i64,
        node: &str,
        next_attempt_at: DateTime<Utc>,
        error: &str,
        sinks_done: &[String],
    ) -> StoreResult<()>;
    /// Gives up a notice `node` holds, retried for the whole horizon.
    async fn outbox_failed(
        &self,
        seq: i64,
        node: &str,
        at: DateTime<Utc>,
        error: &str,
        sinks_done: &[String],
    ) -> StoreResult<()>;
    /// Deletes the notices settled (delivered or given up) that were created
    /// before `settled_before`, and gives up, as of `at`, the unclaimed pending
    /// ones created before `expire_before` (nobody delivered them within the
    /// horizon: no node has a sink, or none ran).
    async fn purge_outbox(
        &self,
        settled_before: DateTime<Utc>,
        expire_before: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> StoreResult<OutboxPurge>;
    /// How many notices wait, and since when.
    async fn outbox_backlog(&self) -> StoreResult<OutboxBacklog>;

    // --- secure disposal (see [`PurgeRequest`]) ---
    /// Erases or deletes, in one transaction, the personal data older than
    /// `req.before` (never an open session, a pending window, an unreviewed
    /// emergency grant or a window whose report is due), deletes the audit
    /// events older than it as a whole prefix of the chain, and moves the
    /// [`AuditAnchor`] to the last one deleted. The purge's own event (built
    /// by `record` from the counts) is chained before the deletion, so the
    /// trail is never empty. A dry run counts, rolls back and records nothing.
    async fn purge_personal_data(
        &self,
        req: &PurgeRequest,
        record: Record<'_, PurgeCounts>,
    ) -> StoreResult<PurgeCounts>;
    /// Where verification of the trail starts (`None`: at the genesis).
    async fn audit_anchor(&self) -> StoreResult<Option<AuditAnchor>>;
}

/// Opens the store a URL designates (`sqlite://PATH[?mode=ro]` or `postgres://…`).
/// Does not migrate: call [`Store::migrate`].
pub async fn connect(url: &str) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(crate::redact::redact_url(url)))
    }
}

/// The validity period of a stored technician certificate, for rows registered
/// before `not_before` was recorded. `None` (logged) if the PEM cannot be read:
/// the row then stays unknown and admission refuses it.
pub(crate) fn stored_certificate_validity(id: &str, pem: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    match crate::pki::CertInfo::from_pem(pem) {
        Ok(info) => Some((info.not_before, info.not_after)),
        Err(e) => {
            tracing::warn!(technician = id, error = %e, "stored certificate unreadable: the technician will be refused");
            None
        }
    }
}

/// Source address as stored: IPv4-mapped IPv6 addresses are stored as IPv4.
pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// When a session a crashed run left open ended, as best known: the latest of the
/// node's last heartbeat, the session's last byte checkpoint and its start.
pub(crate) fn orphan_end(
    last_alive: DateTime<Utc>,
    started_at: DateTime<Utc>,
    checkpoint_at: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    let mut end = last_alive.max(started_at);
    if let Some(c) = checkpoint_at {
        end = end.max(c);
    }
    end
}

/// Who closes a session its node left open.
#[derive(Debug, Clone, Copy)]
pub(crate) enum OrphanCloser<'a> {
    /// The node itself, at its next start (`gateway_restart`).
    Restart,
    /// Another node, once the node's heartbeat went stale (`node_lost`).
    Survivor(&'a str),
}

/// The `session.ended` event of a session closed after its node stopped
/// without recording the end.
#[allow(clippy::too_many_arguments)]
pub(crate) fn orphan_event(
    id: &str,
    ended_at: DateTime<Utc>,
    window_id: String,
    vendor_id: String,
    bytes_from_vendor: i64,
    bytes_to_vendor: i64,
    node: &str,
    closer: OrphanCloser<'_>,
) -> AuditEvent {
    let mut details = serde_json::json!({
        "bytes_from_vendor": bytes_from_vendor,
        "bytes_to_vendor": bytes_to_vendor,
        "window_id": window_id,
        "vendor_id": vendor_id,
        "node": node,
    });
    let (reason, detail, closed_by) = match closer {
        OrphanCloser::Restart => (
            crate::domain::EndReason::GatewayRestart,
            "the node stopped without recording the end: ended_at is its last heartbeat or byte checkpoint, bytes are the last checkpointed",
            None,
        ),
        OrphanCloser::Survivor(by) => (
            crate::domain::EndReason::NodeLost,
            "the node stopped beating and another node closed the session: ended_at is the lost node's last heartbeat or byte checkpoint, bytes are the last checkpointed",
            Some(by),
        ),
    };
    if let Some(obj) = details.as_object_mut() {
        obj.insert("end_reason".into(), reason.as_str().into());
        obj.insert("detail".into(), detail.into());
        if let Some(by) = closed_by {
            obj.insert("closed_by".into(), by.into());
        }
    }
    AuditEvent::new(
        ended_at,
        crate::audit::GATEWAY_ACTOR,
        Event::SessionEnded,
        id,
        "success",
        details,
    )
}

/// The stored holder of a node name.
pub(crate) struct NodeHolder {
    pub instance_id: String,
    pub pid: u32,
    pub host: String,
    pub last_seen: DateTime<Utc>,
    pub stopped: bool,
}

impl NodeHolder {
    /// `Some(InUse)` if this holder is another process that may still be alive.
    pub fn refuses(&self, me: &NodeIdentity, stale_before: DateTime<Utc>) -> Option<NodeClaim> {
        let gone = self.instance_id == me.instance_id
            || self.stopped
            || self.last_seen < stale_before
            // A crashed process on this very host is known dead without waiting.
            || (self.host == me.host && self.pid != me.pid && !process_exists(self.pid));
        (!gone).then(|| NodeClaim::InUse {
            instance_id: self.instance_id.clone(),
            pid: self.pid,
            host: self.host.clone(),
            last_seen: self.last_seen,
        })
    }
}

/// Whether a process with this id runs on this host (assumed so where `/proc` is absent).
pub(crate) fn process_exists(pid: u32) -> bool {
    let proc = std::path::Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + s, 0).single().unwrap()
    }

    #[test]
    fn an_orphan_ends_at_the_latest_known_instant() {
        // (last heartbeat, started, checkpoint) -> end
        for (alive, started, checkpoint, end) in [
            (10, 0, None, 10),
            (10, 0, Some(8), 10),
            (10, 0, Some(12), 12),
            (10, 11, None, 11),
        ] {
            assert_eq!(orphan_end(t(alive), t(started), checkpoint.map(t)), t(end));
        }
    }

    fn me() -> NodeIdentity {
        NodeIdentity {
            name: "a".into(),
            instance_id: "mine".into(),
            pid: std::process::id(),
            host: "h1".into(),
            started_at: t(100),
        }
    }

    fn holder(instance: &str, pid: u32, host: &str, last_seen: i64, stopped: bool) -> NodeHolder {
        NodeHolder {
            instance_id: instance.into(),
            pid,
            host: host.into(),
            last_seen: t(last_seen),
            stopped,
        }
    }

    #[test]
    fn a_name_is_refused_only_while_another_live_process_holds_it() {
        let stale_before = t(90);
        let alive_pid = std::process::id();
        // Another host, recent beat: refused.
        assert!(holder("other", 1, "h2", 95, false)
            .refuses(&me(), stale_before)
            .is_some());
        // Same host, same pid (a second node in this very process): refused.
        assert!(holder("other", alive_pid, "h1", 95, false)
            .refuses(&me(), stale_before)
            .is_some());
        // Stopped cleanly, stale, ourselves: free.
        assert!(holder("other", 1, "h2", 95, true)
            .refuses(&me(), stale_before)
            .is_none());
        assert!(holder("other", 1, "h2", 80, false)
            .refuses(&me(), stale_before)
            .is_none());
        assert!(holder("mine", 1, "h2", 95, false)
            .refuses(&me(), stale_before)
            .is_none());
        // Same host, its pid is gone (crashed): free at once, where /proc tells.
        if std::path::Path::new("/proc").is_dir() {
            assert!(holder("other", u32::MAX - 1, "h1", 95, false)
                .refuses(&me(), stale_before)
                .is_none());
        }
    }
}
