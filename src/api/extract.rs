//! Body and query extractors whose rejections speak the API's error format.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON body; request types carry `deny_unknown_fields`.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(r: &JsonRejection) -> ApiError {
    match r {
        JsonRejection::JsonSyntaxError(e) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("malformed JSON: {}", inner(e)),
        ),
        JsonRejection::JsonDataError(e) => ApiError::bad_request(format!("invalid request body: {}", inner(e))),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body is larger than 64 KiB",
        ),
        other => ApiError::bad_request(other.body_text()),
    }
}

/// The innermost message of an error chain (serde's, with the field name and position).
fn inner(e: &dyn std::error::Error) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Query-string parameters.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                Err(ApiError::bad_request(format!("invalid query: {}", inner(&e))))
            }
            Err(other) => Err(ApiError::bad_request(other.body_text())),
        }
    }
}

/// Instants in requests: RFC 3339 with an explicit offset, and a message that
/// says so (chrono's own is a parser position, e.g. "premature end of input").
pub mod rfc3339 {
    use std::fmt;

    use chrono::{DateTime, Utc};
    use serde::de::{self, Deserializer, Visitor};

    /// What an instant must look like.
    pub const EXPECTED: &str =
        "an RFC 3339 time with an offset, e.g. 2026-12-01T08:00:00+01:00 or 2026-12-01T07:00:00Z";

    struct Rfc3339;

    impl Visitor<'_> for Rfc3339 {
        type Value = DateTime<Utc>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(EXPECTED)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            DateTime::parse_from_rfc3339(v.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| E::custom(format!("expected {EXPECTED}, got {v:?}")))
        }
    }

    /// `#[serde(deserialize_with = "rfc3339::required")]`
    pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        d.deserialize_str(Rfc3339)
    }

    struct MaybeRfc3339;

    impl<'de> Visitor<'de> for MaybeRfc3339 {
        type Value = Option<DateTime<Utc>>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(EXPECTED)
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            required(d).map(Some)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Rfc3339.visit_str(v).map(Some)
        }
    }

    /// `#[serde(default, deserialize_with = "rfc3339::optional")]`
    pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        d.deserialize_option(MaybeRfc3339)
    }

    #[cfg(test)]
    mod tests {
        use chrono::{DateTime, Utc};
        use serde::Deserialize;

        #[derive(Debug, Deserialize)]
        struct T {
            #[serde(deserialize_with = "super::required")]
            at: DateTime<Utc>,
            #[serde(default, deserialize_with = "super::optional")]
            since: Option<DateTime<Utc>>,
        }

        #[test]
        fn offsets_are_required_and_named_in_the_message() {
            let ok: T = serde_json::from_str(r#"{"at": "2026-12-01T08:00:00+01:00"}"#).unwrap();
            assert_eq!(ok.at.to_rfc3339(), "2026-12-01T07:00:00+00:00");
            assert!(ok.since.is_none());
            let ok: T = serde_json::from_str(r#"{"at": "2026-12-01T07:00:00Z", "since": null}"#).unwrap();
            assert!(ok.since.is_none());
            for bad in [
                r#"{"at": "2026-12-01T08:00:00"}"#,
                r#"{"at": "tomorrow"}"#,
                r#"{"at": 5}"#,
                r#"{"at": "2026-12-01T08:00:00Z", "since": "2026-12-01"}"#,
            ] {
                let e = serde_json::from_str::<T>(bad).unwrap_err().to_string();
                assert!(e.contains("RFC 3339 time with an offset"), "{bad}: {e}");
            }
            let q: T =
                serde_urlencoded::from_str("at=2026-12-01T07%3A00%3A00Z&since=2026-11-01T00%3A00%3A00%2B01%3A00")
                    .unwrap();
            assert!(q.since.is_some());
            let e = serde_urlencoded::from_str::<T>("at=2026-12-01T07:00:00")
                .unwrap_err()
                .to_string();
            assert!(e.contains("RFC 3339"), "{e}");
        }
    }
}
