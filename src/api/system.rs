//! Health, readiness, metrics, `me` and account creation.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiJson;
use super::{ApiError, ApiResult, ApiState, Caller, ErrorBody};
use crate::domain::{Role, VendorId};
use crate::metrics::{Scrape, CONTENT_TYPE};
use crate::rights::Function;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(me))
        .routes(routes!(create_user))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", security(()), responses((status = 200, description = "alive")))]
async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

/// Readiness: the store answers *and* takes writes. Writes are what a tunnel
/// needs (its record is written before any byte flows), and a database can answer
/// reads while refusing writes (disk full, read-only): the last write's result
/// (journal, heartbeat, probe — at least every `database.heartbeat_secs`) decides.
/// A node that has not confirmed the change feed within `cluster.max_staleness_secs`
/// is not ready either.
#[utoipa::path(get, path = "/readyz", security(()), responses((status = 200, description = "ready"), (status = 503, body = ErrorBody)))]
async fn readyz(State(s): State<ApiState>) -> ApiResult<Json<serde_json::Value>> {
    // A node that cannot confirm it has seen every change refuses tunnels (docs/cluster.md).
    if let Some(stale) = s.cache.stale() {
        tracing::warn!(%stale, "not ready: stale");
        return Err(ApiError::unavailable(format!(
            "{stale}: tunnels are refused until it reads the change feed again"
        )));
    }
    let health = s.store.health().report();
    if !health.writable {
        tracing::warn!(error = ?health.last_error, down_for = ?health.down_for, "not ready: writes fail");
        return Err(ApiError::unavailable(
            "the database does not take writes; tunnels are refused until it does",
        ));
    }
    s.store.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "not ready");
        ApiError::unavailable("the database cannot be reached")
    })?;
    Ok(Json(serde_json::json!({"status": "ready"})))
}

/// How long `/metrics` waits for each value it reads from the database.
const SCRAPE_STORE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Prometheus metrics (bind the API where only monitoring and operators reach
/// it). The series and their labels are listed in the README ("Metrics").
#[utoipa::path(get, path = "/metrics", security(()), responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics(State(s): State<ApiState>) -> ApiResult<impl IntoResponse> {
    // The backlogs need the database; while it is down (or slow) their series
    // are left out rather than reported as zero.
    let (outbox, counts) = tokio::join!(
        tokio::time::timeout(SCRAPE_STORE_TIMEOUT, s.store.outbox_backlog()),
        tokio::time::timeout(SCRAPE_STORE_TIMEOUT, s.ops.waiting_counts()),
    );
    let outbox = match outbox {
        Ok(Ok(b)) => Some(b),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "outbox backlog unavailable for /metrics");
            None
        }
        Err(_) => None,
    };
    let counts = match counts {
        Ok(Ok(c)) => Some(c),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "waiting counts unavailable for /metrics");
            None
        }
        Err(_) => None,
    };
    let scrape = Scrape {
        now: s.clock.now(),
        live_tunnels: u64::try_from(s.registry.len()).unwrap_or(u64::MAX),
        store_writable: s.store.health().is_up(),
        journal_queued: u64::try_from(s.journal.queued()).unwrap_or(u64::MAX),
        feed_mismatches: s.cache.feed().mismatches(),
        outbox,
        counts,
    };
    let body = s
        .metrics
        .render(&scrape)
        .map_err(|e| ApiError::internal("encoding the metrics", &e))?;
    Ok(([(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)], body))
}

/// Who am I.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub vendor_id: Option<VendorId>,
}

/// The calling account.
#[utoipa::path(get, path = "/api/v1/me", responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
async fn me(caller: Caller) -> ApiResult<Json<Me>> {
    caller.may(Function::ReadOwnAccount)?;
    Ok(Json(Me {
        id: caller.id.0,
        name: caller.name,
        role: caller.role,
        vendor_id: caller.vendor_id,
    }))
}

/// An account to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub name: String,
    pub role: Role,
    /// Required for, and only for, the `vendor` role.
    pub vendor_id: Option<VendorId>,
    /// The person's e-mail address.
    pub email: Option<String>,
}

/// A created account, with its token (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedUser {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub vendor_id: Option<VendorId>,
    pub email: Option<String>,
    /// When the token expires.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The bearer token. Only its SHA-256 is stored: it cannot be shown again.
    pub token: String,
}

/// Create an account (admin) and its first token, named "initial", which
/// expires after `[auth] token_days`. A name already in use answers 409.
#[utoipa::path(post, path = "/api/v1/users", request_body = CreateUser,
    responses((status = 201, body = CreatedUser), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_user(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateUser>,
) -> ApiResult<(StatusCode, Json<CreatedUser>)> {
    let ttl = chrono::Duration::days(s.limits.token_days);
    let created = s
        .ops
        .create_account(&caller, &req.name, req.role, req.vendor_id, req.email.as_deref(), ttl)
        .await?;
    let user = created.user;
    Ok((
        StatusCode::CREATED,
        Json(CreatedUser {
            id: user.id.0,
            name: user.name,
            role: user.role,
            vendor_id: user.vendor_id,
            email: user.email,
            expires_at: created.expires_at,
            token: created.token,
        }),
    ))
}
