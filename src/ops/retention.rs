//! Secure disposal: `portier purge` and `POST /api/v1/purge` (admin). What goes
//! and what stays is documented in docs/retention.md; the SQL is the store's
//! (`Store::purge_personal_data`).

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Actor, Ops, OpsError, OpsResult};
use crate::audit::AuditEvent;
use crate::events::Event;
use crate::store::{Effects, PurgeCounts, PurgeRequest, StoreError};

/// A purge as asked.
#[derive(Debug, Clone)]
pub struct PurgeInput {
    /// Personal data older than this goes.
    pub before: DateTime<Utc>,
    /// Count only: nothing changes and nothing is recorded.
    pub dry_run: bool,
}

impl Ops {
    /// Erases or deletes the personal data older than `before` (admin), keeping
    /// the audit chain verifiable, and records a `data.purged` event with the
    /// counts, the cut-off and the new anchor. Refused for a cut-off in the
    /// future or younger than `[retention] min_days`, and (409) when the audit
    /// events it would delete do not verify: deleting them would erase the
    /// evidence of tampering.
    #[tracing::instrument(skip(self, who), fields(actor = %who.name))]
    pub async fn purge(&self, who: &Actor, input: &PurgeInput) -> OpsResult<PurgeCounts> {
        who.may(crate::rights::Function::PurgeData)?;
        let now = self.now();
        if input.before > now {
            return Err(OpsError::bad_request(format!(
                "the cut-off {} is in the future",
                input.before.to_rfc3339()
            )));
        }
        let latest = now - chrono::Duration::days(self.rules.min_retention_days);
        if input.before > latest {
            return Err(OpsError::unprocessable(format!(
                "the cut-off {} is within the minimum retention of {} days ([retention] min_days): the latest allowed is {}",
                input.before.to_rfc3339(),
                self.rules.min_retention_days,
                latest.to_rfc3339()
            )));
        }
        let req = PurgeRequest {
            before: input.before,
            at: now,
            dry_run: input.dry_run,
        };
        let record = |c: &PurgeCounts| {
            Effects::audit(self.event(
                who,
                Event::DataPurged,
                "retention",
                json!({
                    "before": input.before,
                    "min_retention_days": self.rules.min_retention_days,
                    "sessions": c.sessions,
                    "windows": c.windows,
                    "reports": c.reports,
                    "report_addenda": c.report_addenda,
                    "console_sessions": c.console_sessions,
                    "sign_in_records": c.sign_in_records,
                    "notifications": c.notifications,
                    "audit_events": c.audit_events,
                    "audit_anchor": c.audit_anchor,
                    "prefix_verified": c.prefix_verified,
                }),
            ))
            .notice(
                Event::DataPurged,
                json!({"before": input.before, "audit_events": c.audit_events, "by": who.name}),
            )
        };
        let counts = match self.store.purge_personal_data(&req, &record).await {
            Ok(c) => c,
            // The prefix to delete does not verify: the store's message names
            // the first invalid event (409, printed as is by the CLI). The
            // refusal is itself evidence of tampering: recorded and announced.
            Err(StoreError::Conflict(m)) => {
                let refused = Effects::audit(AuditEvent::new(
                    now,
                    who.actor(),
                    Event::DataPurgeRefused,
                    "retention",
                    "denied",
                    json!({"before": input.before, "dry_run": input.dry_run, "reason": m}),
                ))
                .notice(
                    Event::DataPurgeRefused,
                    json!({"before": input.before, "by": who.name, "reason": m}),
                );
                if let Err(e) = self.store.record(&refused).await {
                    tracing::error!(error = %e, "refused purge not recorded in the audit trail");
                }
                return Err(OpsError::conflict(m));
            }
            Err(e) => return Err(e.into()),
        };
        tracing::info!(dry_run = input.dry_run, before = %input.before, ?counts, "purge");
        Ok(counts)
    }
}
