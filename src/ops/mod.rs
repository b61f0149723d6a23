//! The use-case layer: the one place where Portier's state changes. Each change
//! is one method of [`Ops`] that takes the authenticated [`Actor`] and parsed
//! input, checks the role and the separation-of-duties rules, commits the change
//! with its audit event, feed entry and notifications in one transaction (see
//! [`Effects`]), cuts what it forbids on this node, and returns the stored
//! result. The reads are methods too ([`queries`]): the role checks and the
//! vendor-visibility rule of what each account may see. The API, the console and
//! the CLI only parse, call and render, so they cannot drift.

mod access;
mod actor;
mod catalog;
mod console;
mod console_audit;
mod directory;
mod error;
mod identity;
pub mod queries;
mod reports;
mod retention;
mod sessions;
mod sign_in;
mod tokens;
mod windows;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::admission::AdmissionCache;
use crate::audit::AuditEvent;
use crate::clock::SharedClock;
use crate::domain::NetworkBreadth;
use crate::events::Event;
use crate::gateway::Registry;
use crate::guard::LocalGuard;
use crate::policy::OverdueMode;
use crate::store::{Effects, Store, StoreError, Window};

pub use crate::credentials::{totp_code, totp_step};
pub use access::{LockdownOutcome, NewToken};
pub use actor::{Actor, Granted};
pub use console::{ConsoleUser, Lang, SignedIn};
pub use console_audit::{AudTrail, MAX_EVIDENCE_DAYS, TRAIL_PAGE};
pub use error::{OpsError, OpsResult};
pub use identity::{Enrolment, TEMPORARY_PASSWORD_LEN};
pub use queries::{
    AuditPage, Denial, LifecycleState, LiveTunnel, LockdownStatus, NodeState, NodeView, PendingDecisions, ReportView,
    ReportsQuery, SessionView, SessionsQuery, TimelineQuery, TimelineWindow, WindowView, WindowsQuery, MAX_AUDIT_PAGE,
    MAX_DENIALS,
};
pub use queries::{IncidentEntry, IncidentQuery, IncidentTimeline, MAX_INCIDENT_DAYS, MAX_INCIDENT_ENTRIES};
pub use reports::ReportInput;
pub use retention::PurgeInput;
pub use sessions::Terminated;
pub use sign_in::{PasswordSignIn, REFUSED};
pub use tokens::{AccountView, CreatedToken};
pub use windows::{EmergencyGrant, WindowRequest, MAX_PAST_START};

/// The rules the use cases enforce, from the configuration.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Longest window that may be requested.
    pub max_window: chrono::Duration,
    /// How far ahead a window may start.
    pub max_horizon: chrono::Duration,
    /// Validity of certificates signed from technicians' CSRs.
    pub technician_cert_days: i64,
    /// Longest emergency grant.
    pub max_emergency: chrono::Duration,
    /// A report is due this long after its window ends.
    pub report_due: chrono::Duration,
    /// Whether an overdue report blocks new requests.
    pub on_overdue: OverdueMode,
    /// A node silent this long is dead: its open sessions are live nowhere.
    pub node_stale: chrono::Duration,
    /// The broadest networks that may be declared without an admin's consent.
    pub networks: NetworkBreadth,
    /// A console session unused for this long ends.
    pub console_idle: chrono::Duration,
    /// A console session ends this long after sign-in.
    pub console_absolute: chrono::Duration,
    /// Shortest local password accepted (`[auth] password_min_length`).
    pub password_min_length: usize,
    /// Roles that must sign in with a second factor (`[auth] require_mfa`).
    pub require_mfa: Vec<crate::domain::Role>,
    /// Failed sign-ins of one account name before a lockout.
    pub lockout_after: u32,
    /// Failed sign-ins from one source address before a lockout of it.
    pub source_lockout_after: u32,
    /// How long a lockout lasts (`[auth] lockout_minutes`).
    pub lockout: chrono::Duration,
    /// A personal token expires after this many days unless asked otherwise.
    pub token_days: i64,
    /// The longest expiry a personal token may be given, in days.
    pub max_token_days: i64,
    /// The bootstrap admin token printed by `init` expires after this long.
    pub bootstrap_token: chrono::Duration,
    /// The hospital's directory (`[auth.ldap]`), if staff sign in with it.
    pub directory: Option<std::sync::Arc<crate::config::LdapConfig>>,
    /// The master key TOTP secrets are encrypted under (none: stored in clear).
    pub at_rest: crate::secrets::AtRest,
    /// A purge's cut-off is at least this many days old (`[retention] min_days`).
    pub min_retention_days: i64,
}

/// Everything the use cases need. Cheap to clone.
#[derive(Clone)]
pub struct Ops {
    pub store: Arc<dyn Store>,
    /// This node's live tunnels (empty in the CLI).
    pub registry: Arc<Registry>,
    /// This node's admission state, refreshed after each change.
    pub cache: Arc<AdmissionCache>,
    pub clock: SharedClock,
    pub rules: Rules,
}

impl Ops {
    /// This node's local restrictions (held while the store cannot take them).
    fn guard(&self) -> &Arc<LocalGuard> {
        self.cache.guard()
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// An audit event by `who`, now.
    fn event(&self, who: &Actor, action: Event, object: &str, details: serde_json::Value) -> AuditEvent {
        AuditEvent::new(self.now(), who.actor(), action, object, "success", details)
    }

    /// After a commit: this node's admission state follows the change before
    /// the caller hears it is done, so its next tunnel is decided on it.
    async fn changed(&self) {
        if let Err(e) = self.cache.catch_up().await {
            tracing::warn!(error = %e, "admission state not refreshed after a change; the feed retries");
        }
    }

    /// The overdue-report rule, in one place: the oldest window of `vendor` whose
    /// report is overdue at `now`, if overdue reports block (`policy.on_overdue_report`).
    pub async fn overdue_report(&self, vendor: &crate::domain::VendorId) -> OpsResult<Option<Window>> {
        if self.rules.on_overdue != OverdueMode::Block {
            return Ok(None);
        }
        let overdue = self
            .store
            .unreported_windows(
                Some(vendor),
                crate::policy::overdue_if_ended_by(self.rules.report_due, self.now()),
            )
            .await?;
        Ok(overdue.into_iter().next())
    }
}

/// Builds the effects of a change from its stored result.
fn effects<T>(f: impl Fn(&T) -> Effects + Send + Sync) -> impl Fn(&T) -> Effects + Send + Sync {
    f
}

/// Whether a store error means "not taken now, retry later" rather than "refused".
fn unavailable(e: &StoreError) -> bool {
    e.is_unavailable()
}
