//! The admin API: axum over HTTPS, bearer tokens, JSON. One module per resource,
//! each exposing `routes()`; the OpenAPI document is collected from the same
//! route registrations, so it always matches what is served.

mod access;
mod auth;
mod conn;
mod devices;
mod dossier;
mod emergency;
mod error;
mod evidence;
mod extract;
mod lockdown;
mod nodes;
mod openapi;
mod reports;
mod retention;
mod sessions;
mod system;
mod tokens;
mod users;
mod vendors;
mod windows;

use crate::events::Event;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use rustls::server::danger::ClientCertVerifier;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::admission::AdmissionCache;
use crate::audit::AuditEvent;
use crate::budget::{bounded, AuditBudget};
use crate::clock::SharedClock;
use crate::conn_limit::ConnLimiter;
use crate::gateway::Registry;
use crate::pki::CertAuthority;
use crate::store::{Journal, JournalEntry, Store};

pub use access::TARGET as ACCESS_LOG_TARGET;
pub use auth::{note_caller, Caller, Granted, RestrictiveCaller};
pub use conn::ConnSettings;
pub(crate) use devices::parse_address;
pub(crate) use dossier::document_response;
pub use error::{ApiError, ApiResult, ErrorBody};
pub use sessions::sessions_csv;
pub(crate) use vendors::parse_networks;

/// Request bodies above this are refused with 413.
pub const MAX_BODY: usize = 64 * 1024;
/// A request (body included) must be handled within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Limits the API enforces on windows and certificates: the use cases' rules.
pub type ApiLimits = crate::ops::Rules;

/// What technician registration needs: the vendor CA to sign CSRs with, and a
/// verifier to check that a pinned certificate will pass the gateway's handshake.
pub struct TechnicianPki {
    pub signer: Option<CertAuthority>,
    pub verifier: Arc<dyn ClientCertVerifier>,
}

/// Shared state of the handlers.
#[derive(Clone)]
pub struct ApiState {
    /// Every change goes through here.
    pub ops: crate::ops::Ops,
    /// Reads only.
    pub store: Arc<dyn Store>,
    pub registry: Arc<Registry>,
    pub cache: Arc<AdmissionCache>,
    pub journal: Journal,
    pub clock: SharedClock,
    pub pki: Arc<TechnicianPki>,
    pub limits: ApiLimits,
    pub notifier: crate::notify::Notifier,
    /// This node's listeners and sinks, for the flow matrix.
    pub node: Arc<crate::flows::NodeFlows>,
    /// The web console's settings.
    pub console: Arc<crate::console::ConsoleSettings>,
    /// This node's metrics (`/metrics`).
    pub metrics: crate::metrics::Metrics,
    /// The security dossier of this deployment.
    pub dossier: Arc<crate::dossier::Served>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Portier admin API", description = "Vendors, devices, maintenance windows and sessions of the Portier telemaintenance gateway."),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The router and its OpenAPI document.
pub fn router(state: ApiState) -> Router {
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(system::routes())
        .merge(users::routes())
        .merge(tokens::routes())
        .merge(vendors::routes())
        .merge(devices::routes())
        .merge(windows::routes())
        .merge(sessions::routes())
        .merge(nodes::routes())
        .merge(emergency::routes())
        .merge(lockdown::routes())
        .merge(reports::routes())
        .merge(evidence::routes())
        .merge(dossier::routes())
        .merge(retention::routes())
        .split_for_parts();
    let doc = Arc::new(document(&openapi));
    let api = router
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        doc.as_str().to_owned(),
                    )
                }
            }),
        )
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
        })
        .layer(axum::middleware::from_fn(openapi::json_errors))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(access::log))
        .with_state(state.clone());
    // The console answers its own paths (HTML); everything else is the API's.
    // Each router logs its own requests (inside routing: the matched route is known).
    crate::console::router()
        .route_layer(axum::middleware::from_fn(access::log))
        .fallback_service(api)
        .layer(axum::middleware::from_fn_with_state(
            (state.clone(), Arc::new(RefusalBudgets::default())),
            audit_refusals,
        ))
        .layer(axum::middleware::from_fn(request_deadline))
        .with_state(state)
}

/// Refused API calls written to the audit trail per second, in all and per
/// source address (unauthenticated callers) or per account (authenticated ones);
/// the rest are counted and reported in the next event's `suppressed_since_last`.
const REFUSAL_AUDITS_PER_SECOND: u64 = 20;
/// See [`REFUSAL_AUDITS_PER_SECOND`].
const REFUSAL_AUDITS_PER_KEY_PER_SECOND: u64 = 5;
/// Characters of a refused call's path kept in the trail.
const AUDIT_PATH_CHARS: usize = 200;
/// Characters of a refused call's method kept in the trail (methods can be custom).
const AUDIT_METHOD_CHARS: usize = 16;

/// The budgets of `api.refused` events. Unauthenticated callers and accounts have
/// separate budgets, so a flood of anonymous calls cannot hide an account's refusals.
#[derive(Debug)]
struct RefusalBudgets {
    unauthenticated: AuditBudget<Option<IpAddr>>,
    accounts: AuditBudget<String>,
}

impl Default for RefusalBudgets {
    fn default() -> Self {
        Self {
            unauthenticated: AuditBudget::new(REFUSAL_AUDITS_PER_SECOND, REFUSAL_AUDITS_PER_KEY_PER_SECOND),
            accounts: AuditBudget::new(REFUSAL_AUDITS_PER_SECOND, REFUSAL_AUDITS_PER_KEY_PER_SECOND),
        }
    }
}

/// The served OpenAPI document: the collected one, with the answers each
/// route's shape implies (see [`openapi::add_structural_responses`]).
fn document(collected: &utoipa::openapi::OpenApi) -> String {
    let encoded = serde_json::to_value(collected).and_then(|mut doc| {
        openapi::add_structural_responses(&mut doc);
        serde_json::to_string_pretty(&doc)
    });
    match encoded {
        Ok(text) => text,
        Err(e) => {
            tracing::error!(error = %e, "the OpenAPI document cannot be encoded");
            "{}".to_owned()
        }
    }
}

/// Refused attempts to change something (401, 403) go to the audit trail too:
/// an auditor wants to see who tried what, not only what was done. Anyone can
/// cause one, so they are budgeted and every stored field is bounded.
async fn audit_refusals(
    axum::extract::State((s, budgets)): axum::extract::State<(ApiState, Arc<RefusalBudgets>)>,
    mut req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let mutating = !matches!(
        method,
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    let authenticated = auth::Authenticated::default();
    req.extensions_mut().insert(authenticated.clone());
    let source = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical());
    let path = req.uri().path().to_owned();
    let response = next.run(req).await;
    let status = response.status();
    if mutating && (status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN) {
        // Whom the handler's extractor authenticated: no second lookup (which
        // would cost a read per refusal and fail when the store is down).
        let account = authenticated.account().map(|id| id.as_str().to_owned());
        let now = s.clock.now();
        let admitted = match &account {
            Some(id) => budgets.accounts.admit(id.clone(), now),
            None => budgets.unauthenticated.admit(source, now),
        };
        let Some(suppressed) = admitted else {
            tracing::debug!(
                ?source,
                status = status.as_u16(),
                "refused API call not audited: over budget"
            );
            return response;
        };
        let event = AuditEvent::new(
            now,
            account.as_deref().unwrap_or("unauthenticated"),
            Event::ApiRefused,
            &bounded(&path, AUDIT_PATH_CHARS),
            "denied",
            serde_json::json!({
                "method": bounded(method.as_str(), AUDIT_METHOD_CHARS),
                "status": status.as_u16(),
                "source_ip": source.map(|ip| ip.to_string()),
                "path_bytes": path.len(),
                "suppressed_since_last": suppressed,
            }),
        );
        if let Err(e) = s.journal.write(JournalEntry::Audit(event)).await {
            tracing::error!(error = %e, "refused API call not recorded");
        }
    }
    response
}

async fn request_deadline(req: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            "request not completed within 30 s",
        )
        .into_response(),
    }
}

/// Serves `app` over TLS on `listener` until `shutdown`. Each connection must
/// pass `limits` right after `accept` (before the TLS handshake) and is then
/// bounded by the deadlines in `settings`.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    settings: ConnSettings,
    limits: Arc<ConnLimiter>,
    shutdown: CancellationToken,
) {
    let acceptor = TlsAcceptor::from(tls);
    let tasks = TaskTracker::new();
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "admin API listening");
    }
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "API accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Beyond a limit the connection is dropped here, closed at once.
        let Some(permit) = limits.admit(peer) else {
            continue;
        };
        let (acceptor, app, shutdown) = (acceptor.clone(), app.clone(), shutdown.clone());
        tasks.spawn(async move {
            conn::serve_one(tcp, peer, acceptor, app, settings, shutdown).await;
            drop(permit);
        });
    }
    tasks.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tasks.wait()).await;
}
