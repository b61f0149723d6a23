//! Two auditor reads the console needs and the API has no route for: the audit
//! trail newest first by pages, and the evidence bundle as one archive. The
//! role checks are the API's for the same data (security, auditor).

use std::path::Path;

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;

use super::{Actor, Ops, OpsError, OpsResult};
use crate::audit::AuditRecord;
use crate::export::{EvidenceArchive, ExportError, MAX_ARCHIVE_BYTES};
use crate::rights::Function;
use crate::store::AuditFilter;

/// Audit events per page of the trail.
pub const TRAIL_PAGE: i64 = 50;
/// Longest period of one evidence download.
pub const MAX_EVIDENCE_DAYS: i64 = 366;
/// Evidence archives built at once on this node (each reads a whole period).
static EVIDENCE_BUILDS: Semaphore = Semaphore::const_new(2);

/// A page of the audit trail, newest first.
#[derive(Debug, Clone)]
pub struct AudTrail {
    pub events: Vec<AuditRecord>,
    /// The newest event's sequence number in the whole trail.
    pub head: Option<i64>,
}

impl Ops {
    /// A page of the audit trail, newest first: the events before `before`
    /// (sequence number; the newest when `None`), at most [`TRAIL_PAGE`]
    /// (security, auditor).
    pub async fn audit_trail_page(&self, who: &Actor, before: Option<i64>) -> OpsResult<AudTrail> {
        who.may(Function::ReadAudit)?;
        let head = self.store.audit_head().await?.map(|(seq, _)| seq);
        let Some(newest) = head else {
            return Ok(AudTrail {
                events: Vec::new(),
                head,
            });
        };
        // Sequence numbers are contiguous (the chain checks it): a page is a range.
        let end = before.map_or(newest + 1, |b| b.clamp(1, newest + 1));
        let start = (end - TRAIL_PAGE).max(1);
        let mut events = self
            .store
            .list_audit(&AuditFilter {
                after_seq: Some(start - 1),
                limit: Some(u32::try_from(end - start).unwrap_or(0)),
                ..AuditFilter::default()
            })
            .await?;
        events.retain(|e| e.seq < end);
        events.reverse();
        Ok(AudTrail { events, head })
    }

    /// The evidence bundle of `[since, until)` as one archive under `tmp`
    /// (security, auditor: it holds the audit trail). At most two are built at
    /// once on a node; a period is at most [`MAX_EVIDENCE_DAYS`] long.
    pub async fn evidence_archive(
        &self,
        who: &Actor,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        tmp: &Path,
    ) -> OpsResult<EvidenceArchive> {
        who.may(Function::ExportEvidence)?;
        if until <= since {
            return Err(OpsError::bad_request("until: must be after since"));
        }
        if until - since > chrono::Duration::days(MAX_EVIDENCE_DAYS) {
            return Err(OpsError::bad_request(format!(
                "until: a download covers at most {MAX_EVIDENCE_DAYS} days; use `portier export` for longer"
            )));
        }
        let permit = EVIDENCE_BUILDS.try_acquire().map_err(|_| {
            OpsError::conflict("other evidence archives are being built on this node: try again in a moment")
        })?;
        // A task of its own, holding the permit: a client that goes away (or a
        // request deadline) does not stop a build half-way with its files left
        // behind, nor free the permit while the build still runs. The archive
        // it returns is removed when dropped.
        let (store, tmp) = (self.store.clone(), tmp.to_owned());
        tokio::spawn(async move {
            let _permit = permit;
            crate::export::export_archive(store.as_ref(), since, until, &tmp, MAX_ARCHIVE_BYTES).await
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "evidence archive task failed");
            OpsError::unavailable("the evidence archive could not be built on this node (see its log)")
        })?
        .map_err(|e| match e {
            ExportError::Store(e) => OpsError::from(e),
            ExportError::TooLarge { .. } => OpsError::unprocessable(e.to_string()),
            other => {
                // A local disk problem: logged in full, answered as "not now".
                tracing::error!(error = %other, "evidence archive not built");
                OpsError::unavailable("the evidence archive could not be written on this node (see its log)")
            }
        })
    }
}
