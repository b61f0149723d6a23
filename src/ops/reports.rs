//! Intervention reports and their addenda.

use super::{effects, Actor, Ops, OpsError, OpsResult};
use crate::domain::{WindowId, WindowState};
use crate::events::Event;
use crate::rights::Function;
use crate::store::{Change, Effects, NewReport, Report, SessionFilter};

/// A report to file; texts already checked.
#[derive(Debug, Clone)]
pub struct ReportInput {
    pub summary: String,
    pub actions: String,
    /// `success`, `partial` or `failed`.
    pub outcome: String,
    pub follow_up: Option<String>,
}

impl Ops {
    /// Files the report of a window (its vendor), once the window is over or
    /// its sessions are. Filing may lift an overdue-report block on every node.
    pub async fn file_report(&self, who: &Actor, id: &WindowId, input: ReportInput) -> OpsResult<Report> {
        who.may(Function::FileReport)?;
        let w = self.visible_window(who, id).await?;
        if !["success", "partial", "failed"].contains(&input.outcome.as_str()) {
            return Err(OpsError::bad_request("outcome must be success, partial or failed"));
        }
        let now = self.now();
        let finished = match w.state {
            WindowState::Revoked => true,
            WindowState::Approved if now >= w.ends_at => true,
            WindowState::Approved => {
                // Early: allowed once the vendor has worked and no tunnel is open.
                let sessions = self
                    .store
                    .list_sessions(&SessionFilter {
                        window_id: Some(w.id.clone()),
                        ..SessionFilter::default()
                    })
                    .await?;
                !sessions.is_empty() && sessions.iter().all(|x| x.ended_at.is_some())
            }
            _ => false,
        };
        if !finished {
            return Err(OpsError::conflict(
                "the report is filed after the window has ended (or been revoked), or once its sessions are over",
            ));
        }
        let new = NewReport {
            window_id: w.id.clone(),
            vendor_id: w.vendor_id.clone(),
            summary: input.summary,
            actions: input.actions,
            outcome: input.outcome,
            follow_up: input.follow_up,
            filed_by: who.id.0.clone(),
        };
        let record = effects(|r: &Report| {
            Effects::audit(self.event(
                who,
                Event::ReportFiled,
                r.window_id.as_str(),
                serde_json::json!({"outcome": r.outcome}),
            ))
            .change(Change::Reports(r.vendor_id.clone()))
            .notice(
                Event::ReportFiled,
                serde_json::json!({"window_id": r.window_id, "vendor_id": r.vendor_id, "outcome": r.outcome}),
            )
        });
        let report = self.store.file_report(&new, now, &record).await?;
        self.changed().await;
        Ok(report)
    }

    /// Appends a correction to a filed report (its vendor). The report itself never changes.
    pub async fn add_report_addendum(&self, who: &Actor, id: &WindowId, text: String) -> OpsResult<Report> {
        who.may(Function::AddReportAddendum)?;
        let w = self.visible_window(who, id).await?;
        let record = effects(|r: &Report| {
            Effects::audit(self.event(
                who,
                Event::ReportAddendum,
                r.window_id.as_str(),
                serde_json::json!({"addenda": r.addenda.len()}),
            ))
        });
        Ok(self
            .store
            .add_report_addendum(&w.id, &text, who.id.as_str(), self.now(), &record)
            .await?)
    }
}
