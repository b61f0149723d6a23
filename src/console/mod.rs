//! The web console: server-rendered pages for on-call security, vendors,
//! auditors and administrators, in French and English, on the admin API's
//! listener (same TLS). Pages are HTML from `maud` templates; forms post back
//! (progressive enhancement: everything works without script, and one small
//! script of our own refreshes the live sections). Every change goes through
//! the use-case layer ([`crate::ops`]) like the API's, as the signed-in person,
//! so nothing the API forbids is possible here. See docs/console.md.

mod account;
mod assets;
mod fail;
mod form;
mod headers;
pub mod i18n;
mod layout;
mod session;
mod signin;

mod admin;
mod auditor;
mod security;
mod vendor;

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::api::ApiState;
use crate::domain::Role;

pub use fail::Fail;
pub use form::{FieldErrors, Posted};
pub use i18n::{Lang, Tr};
pub use layout::{page, Nav};
pub use session::{csrf_token, session_secret, RestrictiveViewer, Viewer, CSRF_HEADER};

/// The console's settings (`[console]`).
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    /// The hospital's time zone: times are shown and entered in it.
    pub tz: chrono_tz::Tz,
}

/// The console's routes, under `/console/`. Unknown console paths answer an
/// HTML 404; everything else is left to the API.
pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(home))
        .merge(assets::routes())
        .merge(signin::routes())
        .merge(account::routes())
        .merge(security::routes())
        .merge(vendor::routes())
        .merge(auditor::routes())
        .merge(admin::routes())
        .route("/console/{*rest}", axum::routing::any(|| async { Fail::NotFound }))
        .method_not_allowed_fallback(|| async {
            Fail::Refused(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed here".into(),
            )
        })
        .layer(axum::middleware::from_fn(fail::render))
        .layer(axum::middleware::from_fn(headers::security_headers))
}

/// The home of each role.
pub fn home_of(role: Role) -> &'static str {
    match role {
        Role::Security => "/console/security",
        Role::Vendor => "/console/vendor",
        Role::Auditor => "/console/audit",
        Role::Admin => "/console/admin",
    }
}

async fn home(State(_): State<ApiState>, v: Viewer) -> Response {
    Redirect::to(home_of(v.actor().role)).into_response()
}
