//! Reading the catalog (vendors, technicians, devices), the accounts, the nodes
//! and the lockdown state.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{DeviceId, Role, VendorId};
use crate::ops::{Actor, Ops, OpsError, OpsResult};
use crate::rights::Function;
use crate::store::{Device, LockdownState, NodeRecord, Technician, User, Vendor};

/// A node's state, as of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Beat within `database.node_stale_secs`.
    Alive,
    /// Released its name at a clean stop.
    Stopped,
    /// Silent for longer than `database.node_stale_secs` without a clean stop.
    Lost,
}

/// One node.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NodeView {
    /// `gateway.node` of the process.
    pub name: String,
    /// Random per process start: a restart under the same name changes it.
    pub instance_id: String,
    pub pid: u32,
    pub host: String,
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat (or its clean stop).
    pub last_seen: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub state: NodeState,
    /// Sessions recorded on this node and not ended yet.
    pub open_sessions: i64,
}

impl NodeView {
    fn new(n: NodeRecord, stale_before: DateTime<Utc>) -> Self {
        let state = if n.stopped_at.is_some() {
            NodeState::Stopped
        } else if n.last_seen < stale_before {
            NodeState::Lost
        } else {
            NodeState::Alive
        };
        Self {
            name: n.name,
            instance_id: n.instance_id,
            pid: n.pid,
            host: n.host,
            started_at: n.started_at,
            last_seen: n.last_seen,
            stopped_at: n.stopped_at,
            state,
            open_sessions: n.open_sessions,
        }
    }
}

/// The lockdown state as this node applies it.
#[derive(Debug, Clone)]
pub struct LockdownStatus {
    pub state: LockdownState,
    /// Whether this state is stored in the database (every node follows it).
    /// False while a lockdown holds on this node only: it is retried until stored.
    pub persisted: bool,
    /// Set when this node is locked down by itself: `api` (a lockdown not stored
    /// yet) or `file` (the node's lockdown file, `gateway.lockdown_file`).
    pub local: Option<&'static str>,
}

/// Whether the actor may see a device: vendors see the devices assigned to them.
fn sees_device(who: &Actor, d: &Device) -> bool {
    who.role != Role::Vendor || d.vendor_ids.iter().any(|v| who.sees_vendor(v))
}

impl Ops {
    /// Vendors (any account; a vendor account sees its own).
    pub async fn vendors(&self, who: &Actor) -> OpsResult<Vec<Vendor>> {
        who.may(Function::ListVendors)?;
        let all = self.store.list_vendors().await?;
        Ok(all.into_iter().filter(|v| who.sees_vendor(&v.id)).collect())
    }

    /// One vendor (404 if the actor may not see it: its existence is not revealed).
    pub async fn vendor(&self, who: &Actor, id: &VendorId) -> OpsResult<Vendor> {
        who.may(Function::ReadVendor)?;
        if !who.sees_vendor(id) {
            return Err(OpsError::not_found("vendor"));
        }
        Ok(self.store.vendor(id).await?)
    }

    /// A vendor's technicians (any account that sees the vendor).
    pub async fn technicians(&self, who: &Actor, vendor: &VendorId) -> OpsResult<Vec<Technician>> {
        who.may(Function::ListTechnicians)?;
        let vendor = self.vendor(who, vendor).await?;
        Ok(self.store.list_technicians(&vendor.id).await?)
    }

    /// Devices (any account; a vendor account sees the devices assigned to it).
    pub async fn devices(&self, who: &Actor) -> OpsResult<Vec<Device>> {
        who.may(Function::ListDevices)?;
        let all = self.store.list_devices().await?;
        Ok(all.into_iter().filter(|d| sees_device(who, d)).collect())
    }

    /// One device (404 if the actor may not see it).
    pub async fn device(&self, who: &Actor, id: &DeviceId) -> OpsResult<Device> {
        who.may(Function::ReadDevice)?;
        let d = self.store.device(id).await?;
        if !sees_device(who, &d) {
            return Err(OpsError::not_found("device"));
        }
        Ok(d)
    }

    /// Every account, with its role and whether it is disabled (admin).
    pub async fn users(&self, who: &Actor) -> OpsResult<Vec<User>> {
        who.may(Function::ListAccounts)?;
        Ok(self.store.list_users().await?)
    }

    /// Account names by id (admin, security, auditor): the pages show who asked,
    /// approved or reviewed by name rather than by account id.
    pub async fn account_names(&self, who: &Actor) -> OpsResult<std::collections::HashMap<String, String>> {
        who.may(Function::ReadAccountNames)?;
        Ok(self
            .store
            .list_users()
            .await?
            .into_iter()
            .map(|u| (u.id.0, u.name))
            .collect())
    }

    /// The gateway nodes sharing this database, alive, stopped or lost (admin,
    /// security, auditor).
    pub async fn nodes(&self, who: &Actor) -> OpsResult<Vec<NodeView>> {
        who.may(Function::ListNodes)?;
        let stale_before = self.live_after();
        let nodes = self.store.list_nodes().await?;
        Ok(nodes.into_iter().map(|n| NodeView::new(n, stale_before)).collect())
    }

    /// The lockdown state as this node applies it (any account). A lockdown this
    /// node holds by itself (not stored yet, or from its lockdown file) is
    /// answered even while the database is down.
    pub async fn lockdown_status(&self, who: &Actor) -> OpsResult<LockdownStatus> {
        who.may(Function::ReadLockdown)?;
        let stored = self.store.lockdown().await;
        match self.guard().local_lockdown() {
            None => Ok(LockdownStatus {
                state: stored?,
                persisted: true,
                local: None,
            }),
            Some((local, source)) => {
                let persisted = stored.is_ok_and(|st| st.active && st.set_at == local.set_at);
                Ok(LockdownStatus {
                    state: local,
                    persisted,
                    local: Some(source),
                })
            }
        }
    }
}
