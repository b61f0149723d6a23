//! Persistence. [`Store`] names what Portier does with its data; the SQL behind it
//! lives in one implementation per backend: [`SqliteStore`] (the embedded default)
//! and [`PgStore`] (several gateway nodes sharing one database).

mod journal;
mod postgres;
mod records;
mod sqlite;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ipnet::IpNet;

use crate::audit::{AuditEvent, AuditRecord};
use crate::domain::{DeviceId, SessionId, TechnicianId, VendorId, WindowId};
use crate::policy::Snapshot;

pub use journal::{Journal, JournalError};
pub use postgres::PgStore;
pub use records::*;
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
    /// A stored value that does not parse (a bug, or tampering).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
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
            _ => StoreError::Unavailable(e),
        }
    }
}

/// What a violated constraint means, in the product's words. SQLite names the
/// column in its message (`UNIQUE constraint failed: vendors.name`), PostgreSQL
/// names the constraint (`vendors_name_key`): both are matched.
fn constraint_message(db: &dyn sqlx::error::DatabaseError) -> &'static str {
    const KNOWN: [(&str, &str, &str); 10] = [
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
#[derive(Debug, Default)]
pub struct Generation(AtomicU64);

impl Generation {
    /// The current count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
    /// Marks the admission state as changed.
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

/// Everything Portier keeps. Methods are named for what they do; none exposes SQL.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies the pending migrations of this backend.
    async fn migrate(&self) -> StoreResult<()>;
    /// Checks that the database answers.
    async fn ping(&self) -> StoreResult<()>;
    /// The admission-state change counter (see [`Generation`]).
    fn generation(&self) -> Arc<Generation>;

    // --- vendors ---
    async fn create_vendor(&self, v: &NewVendor, at: DateTime<Utc>) -> StoreResult<Vendor>;
    async fn vendor(&self, id: &VendorId) -> StoreResult<Vendor>;
    async fn list_vendors(&self) -> StoreResult<Vec<Vendor>>;
    async fn replace_vendor_networks(&self, id: &VendorId, networks: &[IpNet]) -> StoreResult<Vendor>;
    async fn set_vendor_enabled(&self, id: &VendorId, enabled: bool) -> StoreResult<Vendor>;

    // --- technicians ---
    async fn add_technician(&self, t: &NewTechnician, at: DateTime<Utc>) -> StoreResult<Technician>;
    async fn technician(&self, id: &TechnicianId) -> StoreResult<Technician>;
    async fn list_technicians(&self, vendor: &VendorId) -> StoreResult<Vec<Technician>>;
    async fn revoke_technician(
        &self,
        vendor: &VendorId,
        id: &TechnicianId,
        at: DateTime<Utc>,
    ) -> StoreResult<Technician>;

    // --- devices ---
    async fn create_device(&self, d: &NewDevice, at: DateTime<Utc>) -> StoreResult<Device>;
    async fn device(&self, id: &DeviceId) -> StoreResult<Device>;
    async fn list_devices(&self) -> StoreResult<Vec<Device>>;
    async fn set_device_enabled(&self, id: &DeviceId, enabled: bool) -> StoreResult<Device>;

    // --- windows ---
    async fn create_window(&self, w: &NewWindow, at: DateTime<Utc>) -> StoreResult<Window>;
    async fn window(&self, id: &WindowId) -> StoreResult<Window>;
    async fn list_windows(&self, f: &WindowFilter) -> StoreResult<Vec<Window>>;
    /// Moves a window from one state to another; `Conflict` if it is no longer in `from`.
    async fn transition_window(&self, id: &WindowId, t: &WindowTransition) -> StoreResult<Window>;
    /// Records the retrospective review of an emergency grant, once.
    async fn review_window(
        &self,
        id: &WindowId,
        verdict: &str,
        comment: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<Window>;
    /// Records an extension request on an approved window (one pending at a time).
    async fn request_extension(
        &self,
        id: &WindowId,
        ends_at: DateTime<Utc>,
        reason: &str,
        by: &str,
    ) -> StoreResult<Window>;
    /// Approves (moving the window's end) or rejects the pending extension.
    async fn decide_extension(&self, id: &WindowId, approve: bool, by: &str, at: DateTime<Utc>) -> StoreResult<Window>;
    /// Windows that had a session, are not emergency grants, have no report, and
    /// ended (or were revoked) at or before `ended_before`.
    async fn unreported_windows(
        &self,
        vendor: Option<&VendorId>,
        ended_before: DateTime<Utc>,
    ) -> StoreResult<Vec<Window>>;

    // --- reports ---
    /// Files the report of a window; `Conflict` if it already has one.
    async fn file_report(&self, r: &NewReport, at: DateTime<Utc>) -> StoreResult<Report>;
    async fn report(&self, window: &WindowId) -> StoreResult<Report>;
    async fn list_reports(&self, f: &ReportFilter) -> StoreResult<Vec<Report>>;
    /// Appends a correction to a filed report.
    async fn add_report_addendum(
        &self,
        window: &WindowId,
        text: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<Report>;

    // --- sessions ---
    async fn session(&self, id: &SessionId) -> StoreResult<Session>;
    async fn list_sessions(&self, f: &SessionFilter) -> StoreResult<Vec<Session>>;
    /// Closes the sessions a previous run of this node left open (crash, kill -9).
    async fn close_orphan_sessions(&self, node: &str, at: DateTime<Utc>) -> StoreResult<u64>;

    // --- journal: durable gateway writes, grouped in one transaction ---
    /// Writes every entry in one transaction (group commit), audit events chained.
    async fn write_journal(&self, entries: &[JournalEntry]) -> StoreResult<()>;

    // --- audit ---
    async fn list_audit(&self, f: &AuditFilter) -> StoreResult<Vec<AuditRecord>>;
    /// The last event's sequence number and hash (the head of the chain).
    async fn audit_head(&self) -> StoreResult<Option<(i64, String)>>;
    /// Appends one audit event outside the journal (CLI and admin actions).
    async fn append_audit(&self, e: &AuditEvent) -> StoreResult<AuditRecord>;

    // --- API users ---
    async fn create_user(&self, u: &NewUser, at: DateTime<Utc>) -> StoreResult<User>;
    async fn user_by_token_hash(&self, token_sha256: &str) -> StoreResult<Option<User>>;

    // --- lockdown ---
    async fn lockdown(&self) -> StoreResult<LockdownState>;
    async fn set_lockdown(&self, state: &LockdownState) -> StoreResult<()>;

    // --- admission ---
    /// Everything the policy needs, for windows not ended at `now`.
    async fn load_admission_snapshot(&self, now: DateTime<Utc>) -> StoreResult<Snapshot>;
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

/// Source address as stored: IPv4-mapped IPv6 addresses are stored as IPv4.
pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}
