//! Personal API tokens: list, create (shown once), revoke.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiQuery};
use super::{ApiResult, ApiState, Caller, ErrorBody, RestrictiveCaller};
use crate::domain::{TokenId, UserId};
use crate::store::ApiToken;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

/// Whose tokens to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TokensQuery {
    /// Another account's tokens (admin); default: the caller's own.
    pub user_id: Option<String>,
}

/// The caller's tokens (admin: any account's with `?user_id=`), newest first,
/// by prefix with their last use and expiry; the secrets are never shown again.
#[utoipa::path(get, path = "/api/v1/tokens", params(TokensQuery),
    responses((status = 200, body = Vec<ApiToken>), (status = 403, body = ErrorBody)))]
async fn list_tokens(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<TokensQuery>,
) -> ApiResult<Json<Vec<ApiToken>>> {
    let of = q.user_id.map(UserId);
    Ok(Json(s.ops.tokens(&caller, of.as_ref()).await?))
}

/// A token to create for the calling account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// What the token is for (e.g. the script using it).
    pub name: String,
    /// Days until it expires: default `[auth] token_days` (90), at most `max_token_days`.
    pub expires_in_days: Option<i64>,
}

/// A created token, with its secret (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    pub id: TokenId,
    pub user_id: UserId,
    pub name: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The bearer token. Only its SHA-256 is stored: it cannot be shown again.
    pub token: String,
}

/// Create a personal token for the calling account (any role).
#[utoipa::path(post, path = "/api/v1/tokens", request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_token(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let created = s
        .ops
        .create_token(&caller, None, &req.name, req.expires_in_days)
        .await?;
    let t = created.token;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            id: t.id,
            user_id: t.user_id,
            name: t.name,
            prefix: t.prefix,
            created_at: t.created_at,
            expires_at: t.expires_at,
            token: created.secret,
        }),
    ))
}

/// Revoke a token (its owner, or an admin): it stops working at once on every node.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", params(("id" = String, Path)),
    responses((status = 200, body = ApiToken), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn revoke_token(
    State(s): State<ApiState>,
    RestrictiveCaller(caller): RestrictiveCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiToken>> {
    Ok(Json(s.ops.revoke_token(&caller, &TokenId(id)).await?))
}
