//! Reading session records, with whether each is live now.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{DeviceId, Role, SessionId, VendorId};
use crate::ops::{Actor, Ops, OpsError, OpsResult};
use crate::rights::Function;
use crate::store::{Session, SessionFilter};

/// Filters of the session list; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct SessionsQuery {
    /// Ignored for a vendor account, which sees its own vendor's sessions only.
    pub vendor_id: Option<VendorId>,
    pub device_id: Option<DeviceId>,
    /// true: live sessions only (not ended, on a node that is alive); false: the others.
    pub active: Option<bool>,
    /// Sessions started at or after.
    pub since: Option<DateTime<Utc>>,
    /// Sessions started before.
    pub until: Option<DateTime<Utc>>,
    /// At most this many, oldest first (a page's bound; none: all).
    pub limit: Option<u32>,
}

/// A session record, and whether it is live now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionView {
    #[serde(flatten)]
    pub session: Session,
    /// Not ended, and its node is alive (beats, has not stopped). An open record
    /// whose node crashed is live nowhere: it is closed when that node restarts
    /// (`gateway_restart`) or, once the node is lost, by a surviving node (`node_lost`).
    pub live: bool,
}

impl SessionView {
    /// `session`, live if open on one of `live_nodes`.
    pub fn new(session: Session, live_nodes: &[String]) -> Self {
        let live = session.ended_at.is_none() && live_nodes.contains(&session.node);
        Self { session, live }
    }
}

impl Ops {
    /// Nodes that beat at or after this instant are alive.
    pub(super) fn live_after(&self) -> DateTime<Utc> {
        self.now() - self.rules.node_stale
    }

    /// The names of the nodes alive now.
    pub(super) async fn live_nodes(&self) -> OpsResult<Vec<String>> {
        Ok(self.store.live_nodes(self.live_after()).await?)
    }

    /// Session records matching `q` (security, auditor; a vendor account sees its own).
    pub async fn sessions(&self, who: &Actor, q: &SessionsQuery) -> OpsResult<Vec<SessionView>> {
        who.may(Function::ListSessions)?;
        let vendor_id = match who.role {
            Role::Vendor => who.vendor_id.clone(),
            _ => q.vendor_id.clone(),
        };
        let filter = SessionFilter {
            vendor_id,
            device_id: q.device_id.clone(),
            window_id: None,
            active: q.active,
            since: q.since,
            until: q.until,
            limit: q.limit,
            // Live means: not ended, and its node still beats (a crashed node's
            // sessions are live nowhere, whatever their record says until it restarts).
            live_after: Some(self.live_after()),
        };
        let list: Vec<Session> = self
            .store
            .list_sessions(&filter)
            .await?
            .into_iter()
            .filter(|x| who.sees_vendor(&x.vendor_id))
            .collect();
        let live = self.live_nodes().await?;
        Ok(list.into_iter().map(|x| SessionView::new(x, &live)).collect())
    }

    /// One session record (security, auditor; a vendor account: its own, 404 otherwise).
    pub async fn session(&self, who: &Actor, id: &SessionId) -> OpsResult<SessionView> {
        who.may(Function::ReadSession)?;
        let session = self.store.session(id).await?;
        if !who.sees_vendor(&session.vendor_id) {
            return Err(OpsError::not_found("session"));
        }
        Ok(SessionView::new(session, &self.live_nodes().await?))
    }
}
