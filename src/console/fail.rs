//! Why a console request failed, and its page. Handlers return [`Fail`]; the
//! [`render`] middleware turns it into a full HTML page in the reader's language
//! (which the handler may not know: the failure can come before sign-in).

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::i18n::Tr;
use super::session::request_lang;
use crate::ops::OpsError;

/// A failed console request.
#[derive(Debug, Clone)]
pub enum Fail {
    /// Not signed in, on a page: go to the sign-in page, then come back.
    SignIn {
        next: Option<String>,
    },
    /// Not signed in, on a form post.
    Unauthenticated,
    /// The role does not allow it (the use case's message).
    Forbidden(String),
    NotFound,
    /// A form without this session's CSRF token, or from another site.
    Csrf,
    /// The form could not be read.
    BadForm(String),
    /// Refused by a rule (400, 409, 422), with the use case's message.
    Refused(StatusCode, String),
    /// The database cannot be reached now.
    Unavailable,
    /// A bug or an unexpected store error (logged where it happened).
    Internal,
}

impl From<OpsError> for Fail {
    fn from(e: OpsError) -> Self {
        match e {
            OpsError::Invalid(m) => Fail::Refused(StatusCode::BAD_REQUEST, m),
            OpsError::Unauthenticated(_) => Fail::Unauthenticated,
            OpsError::Forbidden(m) => Fail::Forbidden(m),
            OpsError::NotFound(_) => Fail::NotFound,
            OpsError::Conflict(m) => Fail::Refused(StatusCode::CONFLICT, m),
            OpsError::Unprocessable(m) => Fail::Refused(StatusCode::UNPROCESSABLE_ENTITY, m),
            OpsError::Unavailable(_) => Fail::Unavailable,
            OpsError::Internal(_) => Fail::Internal,
            OpsError::Store(e) if e.is_unavailable() => Fail::Unavailable,
            OpsError::Store(crate::store::StoreError::NotFound(_)) => Fail::NotFound,
            OpsError::Store(crate::store::StoreError::Conflict(m)) => Fail::Refused(StatusCode::CONFLICT, m),
            OpsError::Store(e) => {
                tracing::error!(error = %e, "console request failed");
                Fail::Internal
            }
        }
    }
}

impl Fail {
    pub fn status(&self) -> StatusCode {
        match self {
            Fail::SignIn { .. } => StatusCode::SEE_OTHER,
            Fail::Unauthenticated => StatusCode::UNAUTHORIZED,
            Fail::Forbidden(_) | Fail::Csrf => StatusCode::FORBIDDEN,
            Fail::NotFound => StatusCode::NOT_FOUND,
            Fail::BadForm(_) => StatusCode::BAD_REQUEST,
            Fail::Refused(status, _) => *status,
            Fail::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Fail::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        // Rendered by `render`, which knows the reader's language.
        let mut response = self.status().into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// Longest framework rejection text kept for the error page.
const MAX_REJECTION_TEXT: usize = 2048;

/// A client error the framework wrote as plain text (a query parameter that does
/// not parse, a path segment that does not decode) becomes a [`Fail::BadForm`].
async fn framework_rejection(response: Response) -> Result<Fail, Response> {
    let status = response.status();
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if !(status.is_client_error() && status != StatusCode::NOT_FOUND && plain) {
        return Err(response);
    }
    let text = match axum::body::to_bytes(response.into_body(), MAX_REJECTION_TEXT).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_owned(),
        Err(_) => String::new(),
    };
    Ok(match status {
        StatusCode::METHOD_NOT_ALLOWED | StatusCode::PAYLOAD_TOO_LARGE => Fail::Refused(status, text),
        _ => Fail::BadForm(text),
    })
}

/// Renders a [`Fail`] answer as a page in the reader's language.
pub async fn render(req: Request, next: Next) -> Response {
    let lang = request_lang(req.headers());
    let tz = chrono_tz::UTC;
    let response = next.run(req).await;
    let fail = match response.extensions().get::<Fail>().cloned() {
        Some(fail) => fail,
        None => match framework_rejection(response).await {
            Ok(fail) => fail,
            Err(response) => return response,
        },
    };
    let tr = Tr::new(lang, tz);
    if let Fail::SignIn { next } = &fail {
        let to = match next {
            Some(n) => format!(
                "/console/sign-in?next={}",
                url::form_urlencoded::byte_serialize(n.as_bytes()).collect::<String>()
            ),
            None => "/console/sign-in".to_owned(),
        };
        return Redirect::to(&to).into_response();
    }
    let (title, message) = match &fail {
        Fail::SignIn { .. } | Fail::Unauthenticated => (tr.t("signin-title"), tr.t("signin-expired")),
        Fail::Forbidden(m) => (
            tr.t("error-forbidden-title"),
            format!("{} ({m})", tr.t("error-forbidden")),
        ),
        Fail::NotFound => (tr.t("error-not-found-title"), tr.t("error-not-found")),
        Fail::Csrf => (tr.t("error-forbidden-title"), tr.t("error-csrf")),
        Fail::BadForm(m) => (tr.t("error-title"), format!("{} ({m})", tr.t("error-invalid-form"))),
        Fail::Refused(StatusCode::CONFLICT, m) => (tr.t("error-title"), tr.ta("error-conflict", &[("message", m)])),
        Fail::Refused(_, m) => (tr.t("error-title"), tr.ta("error-refused", &[("message", m)])),
        Fail::Unavailable => (tr.t("error-title"), tr.t("error-unavailable")),
        Fail::Internal => (tr.t("error-title"), tr.t("error-internal")),
    };
    let body = html! {
        h1 { (title) }
        p.error role="alert" { (message) }
        @if matches!(fail, Fail::Unauthenticated) {
            p { a href="/console/sign-in" { (tr.t("signin-title")) } }
        } @else {
            p { a href="/console/" { (tr.t("back")) } }
        }
    };
    let page = super::layout::bare(&tr, &title, body);
    let mut answer = (fail.status(), page).into_response();
    answer
        .headers_mut()
        .insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    answer
}
