//! The read use cases: what each account may see, as the shells show it. Every
//! read is a method of [`Ops`](super::Ops) taking the [`Actor`](super::Actor) and
//! a typed query; the role checks and the vendor-visibility rule (a vendor
//! account sees its own vendor's objects only, and a 404 for the others) live
//! here, so the API and the console cannot drift. The views carry the facts that
//! depend on the clock or on other records (a window's lifecycle state, whether a
//! session is live, whether a report is overdue), computed once, here.

mod catalog;
mod dossier;
mod evidence;
mod incident;
mod oversight;
mod reports;
mod sessions;
mod windows;

pub use catalog::{LockdownStatus, NodeState, NodeView};
pub use evidence::{AuditPage, Denial, TimelineQuery, TimelineWindow, MAX_AUDIT_PAGE, MAX_DENIALS};
pub use incident::{IncidentEntry, IncidentQuery, IncidentTimeline, MAX_INCIDENT_DAYS, MAX_INCIDENT_ENTRIES};
pub use oversight::{LiveTunnel, PendingDecisions};
pub use reports::{ReportView, ReportsQuery};
pub use sessions::{SessionView, SessionsQuery};
pub use windows::{LifecycleState, WindowView, WindowsQuery};
