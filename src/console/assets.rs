//! The console's stylesheet and its one script, compiled into the binary (no
//! build step, no third-party origin). Their paths carry the release so a new
//! version is fetched; the files themselves may be cached.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::api::ApiState;

const CSS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/console/console.css"));
const JS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/console/console.js"));

pub const CSS_PATH: &str = concat!("/console/static/console-", env!("CARGO_PKG_VERSION"), ".css");
pub const JS_PATH: &str = concat!("/console/static/console-", env!("CARGO_PKG_VERSION"), ".js");

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            CSS_PATH,
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/css; charset=utf-8"),
                        (header::CACHE_CONTROL, "max-age=86400"),
                    ],
                    CSS,
                )
                    .into_response()
            }),
        )
        .route(
            JS_PATH,
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (header::CACHE_CONTROL, "max-age=86400"),
                    ],
                    JS,
                )
                    .into_response()
            }),
        )
}
