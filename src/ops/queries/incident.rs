//! The incident timeline (`portier timeline`, `GET /api/v1/timeline`):
//! everything the audit trail holds about one vendor or one device over a
//! period, in time order — windows and their decisions, extensions, emergency
//! grants and reviews, sessions (with their stored bytes and end), admission
//! denials, reports — for post-incident analysis and reporting to the
//! authorities. Built from the trail, joined with the stored windows,
//! technicians and sessions that tell which events concern the subject, plus
//! the scheduled ends of approved windows, which no event marks.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::audit::AuditRecord;
use crate::domain::{DeviceId, SessionId, VendorId, WindowId, WindowState};
use crate::events::Event;
use crate::ops::{Actor, Ops, OpsError, OpsResult};
use crate::store::{AuditFilter, Session, StoreError, WindowFilter};

/// Most entries one timeline returns; a longer one is refused (narrow the period).
pub const MAX_INCIDENT_ENTRIES: usize = 10_000;
/// The period when `since` is not given: this many days before `until`.
pub const DEFAULT_INCIDENT_DAYS: i64 = 30;
/// The longest period one timeline covers (a year, leap day included); a
/// longer one is refused (400): split it.
pub const MAX_INCIDENT_DAYS: i64 = 366;
/// The entry of an approved window's scheduled end: no audit event marks it
/// (the window simply stops admitting), so it is taken from the window's record.
pub const WINDOW_ENDED: &str = "window.ended";
/// Audit events read per page while scanning the period.
const PAGE: u32 = 5_000;

/// Whose timeline, over which period.
#[derive(Debug, Clone, Default)]
pub struct IncidentQuery {
    /// One vendor (exactly one of `vendor_id` and `device_id`).
    pub vendor_id: Option<VendorId>,
    /// One device.
    pub device_id: Option<DeviceId>,
    /// From (inclusive); default [`DEFAULT_INCIDENT_DAYS`] before `until`.
    pub since: Option<DateTime<Utc>>,
    /// To (exclusive); default now.
    pub until: Option<DateTime<Utc>>,
    /// At most this many entries (default and maximum [`MAX_INCIDENT_ENTRIES`]).
    pub limit: Option<usize>,
}

/// One event of the timeline: an audit event, with the session it concerns as stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IncidentEntry {
    /// The audit event's sequence number (its hash is in the trail); `None`
    /// for a window's scheduled end ([`WINDOW_ENDED`]), read from its record.
    pub seq: Option<i64>,
    pub at: DateTime<Utc>,
    /// The event's dotted name (`window.approved`, `session.ended`, `admission.denied`…).
    pub event: String,
    /// Who: an account id, `gateway`, or `cli:<user>`.
    pub actor: String,
    /// The object's id (window, session, vendor, device, technician).
    pub object: String,
    pub outcome: String,
    /// The window concerned, when the event names one.
    pub window_id: Option<WindowId>,
    /// For session events: the session as stored now (device, technician,
    /// bytes each way, end and its reason).
    pub session: Option<Session>,
    /// The event's details as recorded.
    #[schema(value_type = Object)]
    pub details: Value,
}

/// A timeline, oldest first.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IncidentTimeline {
    pub vendor_id: Option<VendorId>,
    pub device_id: Option<DeviceId>,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub entries: Vec<IncidentEntry>,
}

/// The subject and what is known to belong to it.
struct Subject {
    vendor: Option<VendorId>,
    device: Option<DeviceId>,
    windows: HashSet<String>,
    technicians: HashSet<String>,
}

impl Subject {
    fn is(&self, id: &str) -> bool {
        self.vendor.as_ref().is_some_and(|v| v.as_str() == id) || self.device.as_ref().is_some_and(|d| d.as_str() == id)
    }

    /// Whether a stored session belongs to the subject.
    fn owns(&self, s: &Session) -> bool {
        self.vendor.as_ref().is_none_or(|v| *v == s.vendor_id) && self.device.as_ref().is_none_or(|d| *d == s.device_id)
    }

    /// Whether a stored window belongs to the subject.
    fn owns_window(&self, w: &crate::store::Window) -> bool {
        self.vendor.as_ref().is_none_or(|v| *v == w.vendor_id)
            && self.device.as_ref().is_none_or(|d| w.device_ids.contains(d))
    }

    /// Whether the event may concern the subject, from its object and details
    /// alone (session events are then settled by their stored session).
    fn may_concern(&self, r: &AuditRecord, details: &Value) -> bool {
        let field = |k: &str| details.get(k).and_then(Value::as_str);
        self.is(&r.object)
            || self.windows.contains(&r.object)
            || self.technicians.contains(&r.object)
            || field("vendor_id").is_some_and(|v| self.vendor.as_ref().is_some_and(|x| x.as_str() == v))
            || field("device_id").is_some_and(|d| self.device.as_ref().is_some_and(|x| x.as_str() == d))
            || field("window_id").is_some_and(|w| self.windows.contains(w))
            || (is_session_event(&r.action) && field("vendor_id").is_none() && field("window_id").is_none())
    }
}

/// Whether the event is about one window (its object is the window id).
fn is_window_event(action: &str) -> bool {
    matches!(
        Event::parse(action),
        Some(
            Event::WindowRequested
                | Event::WindowApproved
                | Event::WindowRejected
                | Event::WindowCancelled
                | Event::WindowRevoked
                | Event::WindowExtensionRequested
                | Event::WindowExtensionRejected
                | Event::WindowExtended
                | Event::WindowEndingSoon
                | Event::EmergencyGranted
                | Event::EmergencyReviewed
                | Event::EmergencyReviewPending
                | Event::ReportFiled
                | Event::ReportAddendum
                | Event::ReportOverdue
        )
    )
}

/// Whether the event is about one session (its object is the session id).
fn is_session_event(action: &str) -> bool {
    matches!(
        Event::parse(action),
        Some(Event::SessionStarted | Event::SessionEnded | Event::SessionTerminated)
    )
}

fn too_many(limit: usize, since: DateTime<Utc>, until: DateTime<Utc>) -> OpsError {
    OpsError::unprocessable(format!(
        "more than {limit} events between {} and {}: narrow the period",
        since.to_rfc3339(),
        until.to_rfc3339()
    ))
}

impl Ops {
    /// The incident timeline of a vendor or a device (security, auditor, admin).
    pub async fn incident_timeline(&self, who: &Actor, q: &IncidentQuery) -> OpsResult<IncidentTimeline> {
        who.may(crate::rights::Function::IncidentTimeline)?;
        let until = q.until.unwrap_or_else(|| self.now());
        let since = q
            .since
            .unwrap_or_else(|| until - chrono::Duration::days(DEFAULT_INCIDENT_DAYS));
        if until <= since {
            return Err(OpsError::bad_request("until must be after since"));
        }
        if until - since > chrono::Duration::days(MAX_INCIDENT_DAYS) {
            return Err(OpsError::bad_request(format!(
                "the period from {} to {} is longer than {MAX_INCIDENT_DAYS} days: ask for one year at most at a time",
                since.to_rfc3339(),
                until.to_rfc3339()
            )));
        }
        let limit = q.limit.unwrap_or(MAX_INCIDENT_ENTRIES).clamp(1, MAX_INCIDENT_ENTRIES);
        let mut subject = match (&q.vendor_id, &q.device_id) {
            (Some(v), None) => {
                self.store
                    .vendor(v)
                    .await
                    .map_err(|e| OpsError::unless_found(e, || OpsError::not_found("vendor")))?;
                let technicians = self.store.list_technicians(v).await?;
                Subject {
                    vendor: Some(v.clone()),
                    device: None,
                    windows: HashSet::new(),
                    technicians: technicians.into_iter().map(|t| t.id.0).collect(),
                }
            }
            (None, Some(d)) => {
                self.store
                    .device(d)
                    .await
                    .map_err(|e| OpsError::unless_found(e, || OpsError::not_found("device")))?;
                Subject {
                    vendor: None,
                    device: Some(d.clone()),
                    windows: HashSet::new(),
                    technicians: HashSet::new(),
                }
            }
            _ => return Err(OpsError::bad_request("name exactly one vendor or one device")),
        };
        // The subject's windows that overlap the period (ending at or after
        // `since`: the store's bound is exclusive). Windows outside it whose
        // events fall in the period (requested ahead, reported or reviewed
        // later) are looked up one by one as their events are met, below.
        let windows = self
            .store
            .list_windows(&WindowFilter {
                vendor_id: subject.vendor.clone(),
                device_id: subject.device.clone(),
                since: Some(since - chrono::Duration::microseconds(1)),
                until: Some(until),
                ..WindowFilter::default()
            })
            .await?;
        subject.windows = windows.iter().map(|w| w.id.0.clone()).collect();
        // Approved windows that ran to their end within the period (a revoked
        // or cancelled one has its own event).
        let now = self.now();
        let mut entries: Vec<IncidentEntry> = windows
            .into_iter()
            .filter(|w| w.state == WindowState::Approved && w.ends_at >= since && w.ends_at < until && w.ends_at <= now)
            .map(|w| IncidentEntry {
                seq: None,
                at: w.ends_at,
                event: WINDOW_ENDED.to_owned(),
                actor: String::new(),
                object: w.id.0.clone(),
                outcome: "success".to_owned(),
                details: serde_json::json!({"vendor_id": w.vendor_id, "device_ids": w.device_ids, "starts_at": w.starts_at, "emergency": w.emergency}),
                window_id: Some(w.id),
                session: None,
            })
            .collect();
        if entries.len() > limit {
            return Err(too_many(limit, since, until));
        }

        let mut sessions: HashMap<String, Option<Session>> = HashMap::new();
        // Windows met in events and found not to be the subject's.
        let mut foreign: HashSet<String> = HashSet::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .list_audit(&AuditFilter {
                    since: Some(since),
                    until: Some(until),
                    after_seq: after,
                    limit: Some(PAGE),
                    ..AuditFilter::default()
                })
                .await?;
            for r in &page {
                let details: Value = serde_json::from_str(&r.details)
                    .map_err(|e| StoreError::Corrupt(format!("details of audit event {}: {e}", r.seq)))?;
                let window = if is_window_event(&r.action) {
                    Some(r.object.as_str())
                } else {
                    details.get("window_id").and_then(Value::as_str)
                };
                if let Some(w) = window.filter(|w| !subject.windows.contains(*w) && !foreign.contains(*w)) {
                    match self.store.window(&WindowId(w.to_owned())).await {
                        Ok(found) if subject.owns_window(&found) => subject.windows.insert(w.to_owned()),
                        Ok(_) | Err(StoreError::NotFound(_)) => foreign.insert(w.to_owned()),
                        Err(e) => return Err(e.into()),
                    };
                }
                if !subject.may_concern(r, &details) {
                    continue;
                }
                let session = if is_session_event(&r.action) {
                    let stored = match sessions.get(&r.object) {
                        Some(s) => s.clone(),
                        None => {
                            let s = match self.store.session(&SessionId(r.object.clone())).await {
                                Ok(s) => Some(s),
                                Err(StoreError::NotFound(_)) => None,
                                Err(e) => return Err(e.into()),
                            };
                            sessions.insert(r.object.clone(), s.clone());
                            s
                        }
                    };
                    match stored {
                        Some(s) if subject.owns(&s) => Some(s),
                        _ => continue,
                    }
                } else {
                    None
                };
                if entries.len() >= limit {
                    return Err(too_many(limit, since, until));
                }
                let window_id = session
                    .as_ref()
                    .map(|s| s.window_id.clone())
                    .or_else(|| subject.windows.contains(&r.object).then(|| WindowId(r.object.clone())))
                    .or_else(|| {
                        details
                            .get("window_id")
                            .and_then(Value::as_str)
                            .map(|w| WindowId(w.to_owned()))
                    });
                entries.push(IncidentEntry {
                    seq: Some(r.seq),
                    at: r.at,
                    event: r.action.clone(),
                    actor: r.actor.clone(),
                    object: r.object.clone(),
                    outcome: r.outcome.clone(),
                    window_id,
                    session,
                    details,
                });
            }
            match page.last() {
                Some(last) if page.len() == PAGE as usize => after = Some(last.seq),
                _ => break,
            }
        }
        // The trail is in commit order; nodes' clocks may interleave slightly.
        // A window's end sorts after the events of the same instant.
        entries.sort_by_key(|e| (e.at, e.seq.unwrap_or(i64::MAX)));
        Ok(IncidentTimeline {
            vendor_id: subject.vendor,
            device_id: subject.device,
            since,
            until,
            entries,
        })
    }
}
