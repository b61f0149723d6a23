//! Reading intervention reports: what the vendor declared, next to what the
//! gateway observed (the window's sessions), and which reports are overdue.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{DeviceId, Role, VendorId, WindowId};
use crate::ops::{Actor, Ops, OpsResult};
use crate::rights::Function;
use crate::store::{Report, ReportFilter, Session, SessionFilter, StoreError, Window};

/// Filters of the report list; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct ReportsQuery {
    /// Ignored for a vendor account, which sees its own vendor's reports only.
    pub vendor_id: Option<VendorId>,
    pub device_id: Option<DeviceId>,
    /// true: the windows whose report is overdue (none filed yet) instead of filed reports.
    pub overdue: bool,
    /// Filed (or, with `overdue`, ended) at or after.
    pub since: Option<DateTime<Utc>>,
    /// Filed (or, with `overdue`, ended) before.
    pub until: Option<DateTime<Utc>>,
}

/// A window's report (if filed) with the sessions observed during it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportView {
    pub window_id: WindowId,
    pub vendor_id: VendorId,
    pub device_ids: Vec<DeviceId>,
    pub window_starts_at: DateTime<Utc>,
    pub window_ends_at: DateTime<Utc>,
    pub emergency: bool,
    /// When the report is (or was) due.
    pub due_at: DateTime<Utc>,
    /// Due, with at least one session, and not filed.
    pub overdue: bool,
    pub report: Option<Report>,
    pub sessions: Vec<Session>,
}

/// When a window ended: revocation time, or its planned end.
fn ended_at(w: &Window) -> DateTime<Utc> {
    w.closed_at.unwrap_or(w.ends_at)
}

impl Ops {
    /// `w`'s report view, with its sessions. The caller has checked that the actor sees `w`.
    async fn report_view(&self, w: Window, report: Option<Report>) -> OpsResult<ReportView> {
        let sessions = self
            .store
            .list_sessions(&SessionFilter {
                window_id: Some(w.id.clone()),
                ..SessionFilter::default()
            })
            .await?;
        let due_at = ended_at(&w) + self.rules.report_due;
        let overdue = crate::policy::report_overdue(ended_at(&w), self.rules.report_due, self.now());
        Ok(ReportView {
            overdue: report.is_none() && !w.emergency && !sessions.is_empty() && overdue,
            window_id: w.id,
            vendor_id: w.vendor_id,
            device_ids: w.device_ids,
            window_starts_at: w.starts_at,
            window_ends_at: w.ends_at,
            emergency: w.emergency,
            due_at,
            report,
            sessions,
        })
    }

    /// A window's report (if filed) with its sessions (any account; a vendor
    /// account: its own windows, 404 otherwise).
    pub async fn report(&self, who: &Actor, id: &WindowId) -> OpsResult<ReportView> {
        who.may(Function::ReadReport)?;
        let w = self.visible_window(who, id).await?;
        let report = match self.store.report(&w.id).await {
            Ok(r) => Some(r),
            Err(StoreError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        self.report_view(w, report).await
    }

    /// The windows (of `vendor`, or all) whose report is overdue now, oldest end first.
    pub(crate) async fn overdue_report_windows(&self, vendor: Option<&VendorId>) -> OpsResult<Vec<Window>> {
        Ok(self
            .store
            .unreported_windows(
                vendor,
                crate::policy::overdue_if_ended_by(self.rules.report_due, self.now()),
            )
            .await?)
    }

    /// Filed reports, or the windows whose report is overdue (any account; a
    /// vendor account sees its own).
    pub async fn reports(&self, who: &Actor, q: &ReportsQuery) -> OpsResult<Vec<ReportView>> {
        who.may(Function::ListReports)?;
        let vendor_id = match who.role {
            Role::Vendor => who.vendor_id.clone(),
            _ => q.vendor_id.clone(),
        };
        let in_period = |t: DateTime<Utc>| q.since.is_none_or(|s| t >= s) && q.until.is_none_or(|u| t < u);
        let on_device = |w: &Window| q.device_id.as_ref().is_none_or(|d| w.device_ids.contains(d));
        let mut out = Vec::new();
        if q.overdue {
            let windows = self.overdue_report_windows(vendor_id.as_ref()).await?;
            for w in windows {
                if in_period(ended_at(&w)) && on_device(&w) && who.sees_vendor(&w.vendor_id) {
                    out.push(self.report_view(w, None).await?);
                }
            }
        } else {
            let reports = self
                .store
                .list_reports(&ReportFilter {
                    vendor_id,
                    since: q.since,
                    until: q.until,
                })
                .await?;
            for r in reports {
                let w = self.store.window(&r.window_id).await?;
                if on_device(&w) && who.sees_vendor(&w.vendor_id) {
                    out.push(self.report_view(w, Some(r)).await?);
                }
            }
        }
        Ok(out)
    }
}
