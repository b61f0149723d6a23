//! The access log: one `tracing` event per API or console request, target
//! [`TARGET`], at INFO, with the method, the route template (so ids do not
//! make every line unique), the status, the duration and the account.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

use super::auth::Authenticated;
use crate::budget::bounded;

/// The `tracing` target of access lines (filter them with `portier::access=info`).
pub const TARGET: &str = "portier::access";

/// Characters of a path kept when no route matched (the path is the client's).
const RAW_PATH_CHARS: usize = 120;

/// Logs the request once its response is ready. Added as a layer of each
/// router, inside routing, where the matched route is known; the account is
/// the one the handler's extractor authenticated (the [`Authenticated`] slot
/// the outer `audit_refusals` layer puts in every request).
pub(super) async fn log(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let (route, matched) = match req.extensions().get::<MatchedPath>() {
        Some(m) => (m.as_str().to_owned(), true),
        None => (bounded(req.uri().path(), RAW_PATH_CHARS), false),
    };
    let authenticated = req.extensions().get::<Authenticated>().cloned();
    let response = next.run(req).await;
    let account = authenticated.as_ref().and_then(|a| a.account()).map(|id| id.as_str());
    // Microsecond resolution, in milliseconds.
    let duration_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
    // Debug-formatted route: an unmatched path is the client's, escaped so it
    // cannot forge log lines.
    tracing::info!(
        target: TARGET,
        method = method.as_str(),
        route = ?route,
        matched,
        status = response.status().as_u16(),
        duration_ms,
        account = account.unwrap_or("-"),
        "request"
    );
    response
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// One line per request, with the route template rather than the id, and
    /// the raw path (bounded) when no route matched.
    #[tokio::test]
    async fn one_line_per_request_with_the_route_template() {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = Router::new()
            .route("/api/v1/windows/{id}", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn(log));
        let get = |uri: &str| Request::builder().uri(uri).body(Body::empty()).unwrap();
        let r = app.clone().oneshot(get("/api/v1/windows/w-123")).await.unwrap();
        assert_eq!(r.status(), 200);
        let r = app.oneshot(get(&format!("/nope/{}", "x".repeat(300)))).await.unwrap();
        assert_eq!(r.status(), 404);

        let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let first = lines.first().unwrap();
        assert!(first.contains(TARGET), "{first}");
        assert!(
            first.contains("method=\"GET\"") || first.contains("method=GET"),
            "{first}"
        );
        assert!(first.contains("route=\"/api/v1/windows/{id}\""), "{first}");
        assert!(first.contains("matched=true"), "{first}");
        assert!(first.contains("status=200"), "{first}");
        assert!(first.contains("duration_ms="), "{first}");
        assert!(
            first.contains("account=\"-\"") || first.contains("account=-"),
            "{first}"
        );
        assert!(!first.contains("w-123"), "{first}");
        let second = lines.get(1).unwrap();
        assert!(second.contains("matched=false"), "{second}");
        assert!(second.contains("status=404"), "{second}");
        assert!(second.contains("truncated"), "{second}");
    }
}
