//! The answers every route can give by its shape, added to the OpenAPI document
//! in one place rather than copied into forty `responses(...)` lists; and the
//! guarantee that every error answer has the documented JSON body.
//!
//! Each handler still declares what only it can answer (its success, 403 when it
//! checks a role, 409 for state conflicts, 422 for references it cannot use).

use axum::extract::Request;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::ApiError;

/// What the structural answers mean.
const STRUCTURAL: [(&str, &str); 7] = [
    (
        "400",
        "Invalid request: malformed JSON, a field of the wrong type or value, an unknown field, or an invalid path or query parameter",
    ),
    ("401", "Missing, malformed or unknown bearer token"),
    ("404", "No such object, or one the caller may not see"),
    ("408", "Request not completed within 30 s (the API's request deadline)"),
    ("413", "Request body larger than 64 KiB"),
    ("415", "Request body not sent as application/json"),
    ("503", "The database cannot be reached; try again later"),
];

/// Adds to each operation of `doc` the answers its shape implies:
/// 401 and 503 when it needs a token (the token is looked up in the database),
/// 400 when it takes parameters or a body, 404 when it names an object in its
/// path, 413 and 415 when it takes a JSON body, and 408 for every operation
/// (the request deadline bounds them all). Answers a handler documents itself
/// are kept.
pub fn add_structural_responses(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for (method, op) in item.iter_mut() {
            if !matches!(method.as_str(), "get" | "put" | "post" | "delete" | "patch") {
                continue;
            }
            let public = op
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|reqs| reqs.iter().any(|r| r.as_object().is_some_and(|o| o.is_empty())));
            let in_path = path.contains('{');
            let has_query = op
                .get("parameters")
                .and_then(Value::as_array)
                .is_some_and(|ps| ps.iter().any(|p| p.get("in").and_then(Value::as_str) == Some("query")));
            let has_body = op.get("requestBody").is_some();
            let mut wanted = vec!["408"];
            if in_path || has_query || has_body {
                wanted.push("400");
            }
            if !public {
                wanted.extend(["401", "503"]);
            }
            if in_path {
                wanted.push("404");
            }
            if has_body {
                wanted.extend(["413", "415"]);
            }
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            for code in wanted {
                let description = STRUCTURAL.iter().find(|(c, _)| *c == code).map_or("Error", |(_, d)| d);
                responses
                    .entry(code.to_owned())
                    .or_insert_with(|| error_response(description));
            }
        }
    }
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

/// Longest error text kept from a framework rejection.
const MAX_REJECTION_TEXT: usize = 4096;

/// Error answers that the framework wrote as plain text (a path segment that
/// does not decode, a body read that fails) are rewritten in the API's error
/// format, so every error a client sees has the documented `ErrorBody` shape.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let text = match axum::body::to_bytes(response.into_body(), MAX_REJECTION_TEXT).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_owned(),
        Err(_) => String::new(),
    };
    let code = match status.as_u16() {
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        404 => "not_found",
        405 => "method_not_allowed",
        s if s >= 500 => "internal",
        _ => "invalid_request",
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    ApiError::new(status, code, message).into_response()
}
