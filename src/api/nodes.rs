//! Nodes: every gateway process that claimed a name on this database, with
//! whether it is alive, stopped cleanly or lost (silent past
//! `database.node_stale_secs`; a surviving node closes its sessions as `node_lost`).

use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiResult, ApiState, Caller, ErrorBody};
use crate::ops::NodeView;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(list_nodes))
}

/// List the gateway nodes sharing this database (admin, security, auditor).
#[utoipa::path(get, path = "/api/v1/nodes",
    responses((status = 200, body = Vec<NodeView>), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn list_nodes(State(s): State<ApiState>, caller: Caller) -> ApiResult<Json<Vec<NodeView>>> {
    Ok(Json(s.ops.nodes(&caller).await?))
}
