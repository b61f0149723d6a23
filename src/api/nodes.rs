//! Nodes: every gateway process that claimed a name on this database, with
//! whether it is alive, stopped cleanly or lost (silent past
//! `database.node_stale_secs`; a surviving node closes its sessions as `node_lost`).

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiResult, ApiState, Caller, ErrorBody};
use crate::domain::Role;
use crate::store::NodeRecord;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(list_nodes))
}

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
#[derive(Debug, Serialize, ToSchema)]
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

/// List the gateway nodes sharing this database (admin, security, auditor).
#[utoipa::path(get, path = "/api/v1/nodes",
    responses((status = 200, body = Vec<NodeView>), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn list_nodes(State(s): State<ApiState>, caller: Caller) -> ApiResult<Json<Vec<NodeView>>> {
    caller.require(&[Role::Admin, Role::Security, Role::Auditor])?;
    let stale_before = s.clock.now() - s.limits.node_stale;
    let nodes = s.store.list_nodes().await?;
    Ok(Json(
        nodes.into_iter().map(|n| NodeView::new(n, stale_before)).collect(),
    ))
}
