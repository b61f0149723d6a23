//! Reads for the vendor's console pages. TEMPORARY: the API's reads are moving
//! into `Ops` query methods (branch h-reads); once merged, the console uses them
//! and this file goes. The rules are the API handlers' own: a vendor account
//! sees its own vendor's devices, windows, reports and sessions only, and a
//! window of another vendor is answered as not found.

use super::{Actor, Ops, OpsResult};
use crate::domain::{Role, WindowId};
use crate::store::{Device, Report, ReportFilter, Session, SessionFilter, StoreError, Window, WindowFilter};

/// A window with its report (if filed) and the sessions observed during it.
#[derive(Debug, Clone)]
pub struct VendorWindow {
    pub window: Window,
    pub report: Option<Report>,
    pub sessions: Vec<Session>,
}

impl Ops {
    /// The devices assigned to the vendor of a vendor account.
    pub async fn console_vendor_devices(&self, who: &Actor) -> OpsResult<Vec<Device>> {
        who.require(&[Role::Vendor])?;
        let all = self.store.list_devices().await?;
        Ok(all
            .into_iter()
            .filter(|d| d.vendor_ids.iter().any(|v| who.sees_vendor(v)))
            .collect())
    }

    /// The windows of the vendor of a vendor account.
    pub async fn console_vendor_windows(&self, who: &Actor) -> OpsResult<Vec<Window>> {
        who.require(&[Role::Vendor])?;
        let Some(vendor_id) = who.vendor_id.clone() else {
            return Ok(Vec::new());
        };
        let filter = WindowFilter {
            vendor_id: Some(vendor_id),
            ..WindowFilter::default()
        };
        let list = self.store.list_windows(&filter).await?;
        Ok(list.into_iter().filter(|w| who.sees_vendor(&w.vendor_id)).collect())
    }

    /// The reports filed by the vendor of a vendor account.
    pub async fn console_vendor_reports(&self, who: &Actor) -> OpsResult<Vec<Report>> {
        who.require(&[Role::Vendor])?;
        let Some(vendor_id) = who.vendor_id.clone() else {
            return Ok(Vec::new());
        };
        let list = self
            .store
            .list_reports(&ReportFilter {
                vendor_id: Some(vendor_id),
                since: None,
                until: None,
            })
            .await?;
        Ok(list.into_iter().filter(|r| who.sees_vendor(&r.vendor_id)).collect())
    }

    /// The windows of the vendor of a vendor account whose report is overdue
    /// (whether or not `policy.on_overdue_report` makes them block), oldest first.
    pub async fn console_vendor_overdue(&self, who: &Actor) -> OpsResult<Vec<Window>> {
        who.require(&[Role::Vendor])?;
        let Some(vendor_id) = who.vendor_id.clone() else {
            return Ok(Vec::new());
        };
        let list = self
            .store
            .unreported_windows(
                Some(&vendor_id),
                crate::policy::overdue_if_ended_by(self.rules.report_due, self.now()),
            )
            .await?;
        Ok(list.into_iter().filter(|w| who.sees_vendor(&w.vendor_id)).collect())
    }

    /// One window of the vendor of a vendor account (not found otherwise), with
    /// its report and the sessions observed during it.
    pub async fn console_vendor_window(&self, who: &Actor, id: &WindowId) -> OpsResult<VendorWindow> {
        who.require(&[Role::Vendor])?;
        let window = self.visible_window(who, id).await?;
        let report = match self.store.report(&window.id).await {
            Ok(r) => Some(r),
            Err(StoreError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let sessions = self
            .store
            .list_sessions(&SessionFilter {
                window_id: Some(window.id.clone()),
                ..SessionFilter::default()
            })
            .await?
            .into_iter()
            .filter(|s| who.sees_vendor(&s.vendor_id))
            .collect();
        Ok(VendorWindow {
            window,
            report,
            sessions,
        })
    }
}
