//! Security headers on every console answer: no script, style, frame or form
//! target from anywhere but this origin, never framed, no referrer, HTTPS only.

use axum::extract::Request;
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The console's Content-Security-Policy: `default-src 'self'` (no inline script
/// or style), and nothing may frame it or receive its forms.
pub const CSP: &str =
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";

pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    // A sandboxed document keeps its own policy (the dossier's: no script,
    // its own style only); every other answer gets the console's.
    let sandboxed = h
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("sandbox"));
    if !sandboxed {
        set(h, header::CONTENT_SECURITY_POLICY, CSP);
    }
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, HeaderName::from_static("cross-origin-opener-policy"), "same-origin");
    set(
        h,
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        // Pages show personal and live data: never kept by a cache.
        set(h, header::CACHE_CONTROL, "no-store");
    }
    response
}
