//! The auditor pages.

use axum::Router;

use crate::api::ApiState;

pub fn routes() -> Router<ApiState> {
    Router::new()
}
