//! Accounts: list and disable (creation is in `system`, with the bootstrap).

use axum::extract::{Path, State};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiResult, ApiState, Caller, ErrorBody, RestrictiveCaller};
use crate::domain::UserId;
use crate::store::User;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(disable_user))
}

/// Every account, with its role and whether it is disabled (admin). Tokens are
/// never shown: only their SHA-256 is stored.
#[utoipa::path(get, path = "/api/v1/users", responses((status = 200, body = Vec<User>), (status = 403, body = ErrorBody)))]
async fn list_users(State(s): State<ApiState>, caller: Caller) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(s.ops.users(&caller).await?))
}

/// Disable an account (admin): its token stops working at once on every node.
#[utoipa::path(post, path = "/api/v1/users/{id}/disable", params(("id" = String, Path)),
    responses((status = 200, body = User), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn disable_user(
    State(s): State<ApiState>,
    RestrictiveCaller(caller): RestrictiveCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<User>> {
    Ok(Json(s.ops.disable_user(&caller, &UserId(id)).await?))
}
