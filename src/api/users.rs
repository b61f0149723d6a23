//! Accounts: list, disable and enable (creation is in `system`, with the bootstrap).

use axum::extract::{Path, State};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiResult, ApiState, Caller, ErrorBody, RestrictiveCaller};
use crate::domain::UserId;
use crate::ops::AccountView;
use crate::store::User;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(disable_user))
        .routes(routes!(enable_user))
}

/// Every account, with its role, e-mail, state, last sign-in and number of live
/// tokens (admin). Tokens are listed by `GET /api/v1/tokens?user_id=`.
#[utoipa::path(get, path = "/api/v1/users", responses((status = 200, body = Vec<AccountView>), (status = 403, body = ErrorBody)))]
async fn list_users(State(s): State<ApiState>, caller: Caller) -> ApiResult<Json<Vec<AccountView>>> {
    Ok(Json(s.ops.accounts(&caller).await?))
}

/// Disable an account (admin): its tokens and console sessions stop working at
/// once on every node.
#[utoipa::path(post, path = "/api/v1/users/{id}/disable", params(("id" = String, Path)),
    responses((status = 200, body = User), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn disable_user(
    State(s): State<ApiState>,
    RestrictiveCaller(caller): RestrictiveCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<User>> {
    Ok(Json(s.ops.disable_user(&caller, &UserId(id)).await?))
}

/// Enable a disabled account (admin): its tokens that are neither revoked nor
/// expired work again.
#[utoipa::path(post, path = "/api/v1/users/{id}/enable", params(("id" = String, Path)),
    responses((status = 200, body = User), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn enable_user(State(s): State<ApiState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<User>> {
    Ok(Json(s.ops.enable_user(&caller, &UserId(id)).await?))
}
