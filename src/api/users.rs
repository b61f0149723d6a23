//! Accounts: list, disable and enable, and an admin's resets of a password or
//! a second factor (creation is in `system`, with the bootstrap).

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
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
        .routes(routes!(reset_password))
        .routes(routes!(reset_second_factor))
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

/// A temporary password, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemporaryPassword {
    pub user_id: UserId,
    /// Give it to the person by a channel of its own; it must be changed at
    /// the next sign-in, and only its argon2id hash is stored.
    pub temporary_password: String,
    pub must_change: bool,
}

/// Reset an account's local password (admin, not their own): a temporary
/// password, shown once, to be changed at the next sign-in; the account's
/// console sessions end. A directory account answers 409 (its password is the
/// directory's).
#[utoipa::path(post, path = "/api/v1/users/{id}/reset-password", params(("id" = String, Path)),
    responses((status = 200, body = TemporaryPassword), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn reset_password(State(s): State<ApiState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let id = UserId(id);
    let temporary_password = s.ops.reset_password(&caller, &id).await?;
    let mut response = Json(TemporaryPassword {
        user_id: id,
        temporary_password,
        must_change: true,
    })
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Remove an account's second factor (admin, not their own), e.g. after a lost
/// phone: its TOTP secret and recovery codes are deleted, its console sessions
/// end, and it enrols again at its next sign-in if its role requires one. An
/// account without a second factor answers 409.
#[utoipa::path(post, path = "/api/v1/users/{id}/reset-mfa", params(("id" = String, Path)),
    responses((status = 200, body = User), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn reset_second_factor(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<User>> {
    Ok(Json(s.ops.reset_second_factor(&caller, &UserId(id)).await?))
}
