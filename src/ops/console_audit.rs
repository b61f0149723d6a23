//! The auditor console's reads, with the API handlers' role checks. Temporary:
//! the API's reads are moving into `ops` queries (branch h-reads); the console
//! switches to them once merged and this file goes away. No change here.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;

use super::{Actor, Ops, OpsError, OpsResult};
use crate::audit::{verify_store, AuditRecord, Verification};
use crate::domain::{DeviceId, Role, VendorId, WindowId};
use crate::export::{EvidenceArchive, ExportError, MAX_ARCHIVE_BYTES};
use crate::flows::{Flow, NodeFlows};
use crate::store::{AuditFilter, Device, Report, ReportFilter, Session, SessionFilter, Vendor, Window, WindowFilter};

/// Most rows a console page lists (the CSV export has them all, as the API's).
pub const MAX_ROWS: u32 = 500;
/// Audit events per page of the trail.
pub const TRAIL_PAGE: i64 = 50;
/// Longest period of one evidence download.
pub const MAX_EVIDENCE_DAYS: i64 = 366;
/// Evidence archives built at once on this node (each reads a whole period).
static EVIDENCE_BUILDS: Semaphore = Semaphore::const_new(2);

/// Filters of the session list, as the API's `GET /api/v1/sessions`.
#[derive(Debug, Clone, Default)]
pub struct AudSessions {
    pub vendor_id: Option<VendorId>,
    pub device_id: Option<DeviceId>,
    /// `Some(true)`: live sessions only.
    pub active: Option<bool>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// `None`: all of them (the CSV export).
    pub limit: Option<u32>,
}

/// A session and whether it is live now (not ended, on a node that beats).
#[derive(Debug, Clone)]
pub struct AudSession {
    pub session: Session,
    pub live: bool,
}

/// A window with its sessions, for the timeline and the reports.
#[derive(Debug, Clone)]
pub struct AudWindow {
    pub window: Window,
    pub sessions: Vec<AudSession>,
    /// Its report, if filed.
    pub report: Option<Report>,
    /// When its report is (or was) due.
    pub due_at: DateTime<Utc>,
    /// Due, with at least one session, and not filed (as the API's `overdue`).
    pub overdue: bool,
}

/// A page of the audit trail, newest first.
#[derive(Debug, Clone)]
pub struct AudTrail {
    pub events: Vec<AuditRecord>,
    /// The newest event's sequence number in the whole trail.
    pub head: Option<i64>,
}

const AUDIT_READERS: [Role; 2] = [Role::Security, Role::Auditor];

/// When a window ended: revocation time, or its planned end.
fn ended_at(w: &Window) -> DateTime<Utc> {
    w.closed_at.unwrap_or(w.ends_at)
}

impl Ops {
    fn aud_live_after(&self) -> DateTime<Utc> {
        self.now() - self.rules.node_stale
    }

    async fn aud_live_nodes(&self) -> OpsResult<Vec<String>> {
        Ok(self.store.live_nodes(self.aud_live_after()).await?)
    }

    /// Vendors for the filters (any account sees the vendors; a vendor its own).
    pub async fn aud_vendors(&self, who: &Actor) -> OpsResult<Vec<Vendor>> {
        let all = self.store.list_vendors().await?;
        Ok(all.into_iter().filter(|v| who.sees_vendor(&v.id)).collect())
    }

    /// Devices for the filters (a vendor account sees the devices assigned to it).
    pub async fn aud_devices(&self, who: &Actor) -> OpsResult<Vec<Device>> {
        let all = self.store.list_devices().await?;
        Ok(all
            .into_iter()
            .filter(|d| who.role != Role::Vendor || d.vendor_ids.iter().any(|v| who.sees_vendor(v)))
            .collect())
    }

    /// Session records (security, auditor), as the API lists them.
    pub async fn aud_sessions(&self, who: &Actor, q: &AudSessions) -> OpsResult<Vec<AudSession>> {
        who.require(&AUDIT_READERS)?;
        let filter = SessionFilter {
            vendor_id: q.vendor_id.clone(),
            device_id: q.device_id.clone(),
            window_id: None,
            active: q.active,
            since: q.since,
            until: q.until,
            limit: q.limit,
            live_after: Some(self.aud_live_after()),
        };
        let list = self.store.list_sessions(&filter).await?;
        let live = self.aud_live_nodes().await?;
        Ok(list
            .into_iter()
            .filter(|x| who.sees_vendor(&x.vendor_id))
            .map(|session| AudSession {
                live: session.ended_at.is_none() && live.contains(&session.node),
                session,
            })
            .collect())
    }

    async fn aud_window_sessions(&self, w: &Window, live: &[String]) -> OpsResult<Vec<AudSession>> {
        let sessions = self
            .store
            .list_sessions(&SessionFilter {
                window_id: Some(w.id.clone()),
                ..SessionFilter::default()
            })
            .await?;
        Ok(sessions
            .into_iter()
            .map(|session| AudSession {
                live: session.ended_at.is_none() && live.contains(&session.node),
                session,
            })
            .collect())
    }

    fn aud_window(&self, window: Window, sessions: Vec<AudSession>, report: Option<Report>) -> AudWindow {
        let ended = ended_at(&window);
        let overdue = report.is_none()
            && !window.emergency
            && !sessions.is_empty()
            && crate::policy::report_overdue(ended, self.rules.report_due, self.now());
        AudWindow {
            due_at: ended + self.rules.report_due,
            overdue,
            window,
            sessions,
            report,
        }
    }

    /// The windows of a vendor or a device that overlap `[since, until)`, by
    /// start, each with its sessions (auditor, security, admin).
    pub async fn aud_timeline(
        &self,
        who: &Actor,
        vendor_id: Option<VendorId>,
        device_id: Option<DeviceId>,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> OpsResult<Vec<AudWindow>> {
        // Windows are any account's to read; their sessions are the auditors'
        // and security's, and admins see them here as on the API's branch to come.
        who.require(&[Role::Auditor, Role::Security, Role::Admin])?;
        if until <= since {
            return Err(OpsError::bad_request("until: must be after since"));
        }
        let mut windows = self
            .store
            .list_windows(&WindowFilter {
                vendor_id,
                device_id,
                since: Some(since),
                until: Some(until),
                ..WindowFilter::default()
            })
            .await?;
        windows.retain(|w| who.sees_vendor(&w.vendor_id));
        windows.sort_by(|a, b| (a.starts_at, &a.id).cmp(&(b.starts_at, &b.id)));
        windows.truncate(MAX_ROWS as usize);
        let live = self.aud_live_nodes().await?;
        let mut out = Vec::with_capacity(windows.len());
        for w in windows {
            let mut sessions = self.aud_window_sessions(&w, &live).await?;
            sessions.sort_by_key(|a| a.session.started_at);
            out.push(self.aud_window(w, sessions, None));
        }
        Ok(out)
    }

    /// Filed reports of `[since, until)` with their sessions, and the windows
    /// whose report is overdue (auditor, security, admin: the API lets any
    /// account read reports).
    pub async fn aud_reports(
        &self,
        who: &Actor,
        vendor_id: Option<VendorId>,
        device_id: Option<DeviceId>,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> OpsResult<(Vec<AudWindow>, Vec<AudWindow>)> {
        who.require(&[Role::Auditor, Role::Security, Role::Admin])?;
        let on_device = |w: &Window| device_id.as_ref().is_none_or(|d| w.device_ids.contains(d));
        let live = self.aud_live_nodes().await?;
        let mut filed = Vec::new();
        let reports = self
            .store
            .list_reports(&ReportFilter {
                vendor_id: vendor_id.clone(),
                since,
                until,
            })
            .await?;
        let mut windows: HashMap<WindowId, Window> = HashMap::new();
        for r in reports.into_iter().take(MAX_ROWS as usize) {
            let w = match windows.remove(&r.window_id) {
                Some(w) => w,
                None => self.store.window(&r.window_id).await?,
            };
            if on_device(&w) && who.sees_vendor(&w.vendor_id) {
                let sessions = self.aud_window_sessions(&w, &live).await?;
                filed.push(self.aud_window(w, sessions, Some(r)));
            }
        }
        let mut overdue = Vec::new();
        let unreported = self
            .store
            .unreported_windows(
                vendor_id.as_ref(),
                crate::policy::overdue_if_ended_by(self.rules.report_due, self.now()),
            )
            .await?;
        for w in unreported.into_iter().take(MAX_ROWS as usize) {
            if on_device(&w) && who.sees_vendor(&w.vendor_id) {
                let sessions = self.aud_window_sessions(&w, &live).await?;
                let v = self.aud_window(w, sessions, None);
                if v.overdue {
                    overdue.push(v);
                }
            }
        }
        Ok((filed, overdue))
    }

    /// A page of the audit trail, newest first: the events before `before`
    /// (sequence number; the newest when `None`), at most [`TRAIL_PAGE`]
    /// (security, auditor).
    pub async fn aud_trail(&self, who: &Actor, before: Option<i64>) -> OpsResult<AudTrail> {
        who.require(&AUDIT_READERS)?;
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
                since: None,
                until: None,
                after_seq: Some(start - 1),
                action: None,
                limit: Some(u32::try_from(end - start).unwrap_or(0)),
            })
            .await?;
        events.retain(|e| e.seq < end);
        events.reverse();
        Ok(AudTrail { events, head })
    }

    /// Recomputes the whole hash chain (security, auditor).
    pub async fn aud_verify(&self, who: &Actor) -> OpsResult<Verification> {
        who.require(&AUDIT_READERS)?;
        Ok(verify_store(self.store.as_ref(), |_| {}).await?)
    }

    /// The flow matrix of the node `node` describes (admin, security, auditor).
    pub async fn aud_flows(&self, who: &Actor, node: &NodeFlows) -> OpsResult<Vec<Flow>> {
        who.require(&[Role::Admin, Role::Security, Role::Auditor])?;
        Ok(crate::flows::matrix(
            node,
            &self.store.list_vendors().await?,
            &self.store.list_devices().await?,
        ))
    }

    /// The evidence bundle of `[since, until)` as one archive under `tmp`
    /// (security, auditor: it holds the audit trail). At most two are built at
    /// once on a node; a period is at most [`MAX_EVIDENCE_DAYS`] long.
    pub async fn aud_evidence(
        &self,
        who: &Actor,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        tmp: &Path,
    ) -> OpsResult<EvidenceArchive> {
        who.require(&AUDIT_READERS)?;
        if until <= since {
            return Err(OpsError::bad_request("until: must be after since"));
        }
        if until - since > chrono::Duration::days(MAX_EVIDENCE_DAYS) {
            return Err(OpsError::bad_request(format!(
                "until: a download covers at most {MAX_EVIDENCE_DAYS} days; use `portier export` for longer"
            )));
        }
        let _permit = EVIDENCE_BUILDS.try_acquire().map_err(|_| {
            OpsError::conflict("other evidence archives are being built on this node: try again in a moment")
        })?;
        crate::export::export_archive(self.store.as_ref(), since, until, tmp, MAX_ARCHIVE_BYTES)
            .await
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
