//! Console forms: a posted form with its CSRF token checked ([`Posted`]), the
//! errors shown next to their fields ([`FieldErrors`]), and labelled inputs.

use std::collections::BTreeMap;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, StatusCode};
use maud::{html, Markup};
use serde::de::DeserializeOwned;

use super::fail::Fail;
use super::i18n::Tr;
use super::session::{RestrictiveViewer, Viewer};
use crate::api::ApiState;
use crate::ops::OpsError;

/// Largest form accepted: a report at the API's longest (40,000 characters),
/// percent-encoded (up to 9 bytes per accented character), fits.
pub const MAX_FORM: usize = 512 * 1024;
/// The CSRF field of every form.
pub const CSRF_FIELD: &str = "_csrf";

/// A form posted by a signed-in viewer, from this console (its CSRF token
/// matches the session's, and the browser does not say it came from another
/// site), decoded into `T` (repeated keys become lists). With `RESTRICTIVE`
/// the viewer is accepted from this node's memory while the database is down.
#[derive(Debug)]
pub struct Posted<T, const RESTRICTIVE: bool = false> {
    pub viewer: Viewer,
    pub form: T,
}

impl<T: DeserializeOwned + Send, const RESTRICTIVE: bool> FromRequest<ApiState> for Posted<T, RESTRICTIVE> {
    type Rejection = Fail;

    async fn from_request(req: Request, state: &ApiState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let viewer = if RESTRICTIVE {
            RestrictiveViewer::from_request_parts(&mut parts, state).await?.0
        } else {
            Viewer::from_request_parts(&mut parts, state).await?
        };
        from_this_site(&parts.headers)?;
        let bytes = axum::body::to_bytes(body, MAX_FORM)
            .await
            .map_err(|_| Fail::Refused(StatusCode::PAYLOAD_TOO_LARGE, viewer.tr.t("error-too-large")))?;
        let form = decode(&bytes, &viewer.csrf)?;
        Ok(Self { viewer, form })
    }
}

/// Refuses a post the browser says came from another site (`Sec-Fetch-Site`),
/// or whose `Origin` is not this host. Browsers send both; their absence (an
/// old browser, a script) leaves the CSRF token as the check.
pub fn from_this_site(headers: &axum::http::HeaderMap) -> Result<(), Fail> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site == "cross-site" || site == "same-site" {
            return Err(Fail::Csrf);
        }
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    // Browsers send `Origin: null` on a form post from a page whose
    // Referrer-Policy is `no-referrer` (ours; Fetch standard, "append a request
    // `Origin` header"): it says nothing about the site, so it is left to
    // `Sec-Fetch-Site` and the CSRF token.
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| *o != "null");
    if let (Some(origin), Some(host)) = (origin, host) {
        let matches = origin
            .strip_prefix("https://")
            .is_some_and(|rest| rest.eq_ignore_ascii_case(host));
        if !matches {
            return Err(Fail::Csrf);
        }
    }
    Ok(())
}

/// Decodes a form after checking its CSRF token against `expected`. Browsers
/// send a text area's line breaks as CR LF; they become LF here, as the API's
/// text rules expect (a lone CR is still refused there).
pub fn decode<T: DeserializeOwned>(bytes: &[u8], expected: &str) -> Result<T, Fail> {
    let normalised = crlf_to_lf(bytes);
    let bytes = normalised.as_slice();
    let pairs: Vec<(String, String)> = serde_html_form::from_bytes(bytes).map_err(|e| Fail::BadForm(e.to_string()))?;
    let token = pairs.iter().find(|(k, _)| k == CSRF_FIELD).map(|(_, v)| v.as_str());
    if !token.is_some_and(|t| constant_time_eq(t.as_bytes(), expected.as_bytes())) {
        return Err(Fail::Csrf);
    }
    serde_html_form::from_bytes(bytes).map_err(|e| Fail::BadForm(e.to_string()))
}

/// `%0D%0A` (any case) to `%0A` in an encoded form.
fn crlf_to_lf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let next6 = bytes.get(i..i + 6);
        if next6.is_some_and(|w| w.eq_ignore_ascii_case(b"%0d%0a")) {
            out.extend_from_slice(b"%0A");
            i += 6;
        } else {
            out.push(b);
            i += 1;
        }
    }
    out
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The hidden CSRF field of a form.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(token); }
}

/// Errors of a form: per field, and for the form as a whole.
#[derive(Debug, Default, Clone)]
pub struct FieldErrors {
    pub fields: BTreeMap<String, String>,
    pub form: Option<String>,
}

impl FieldErrors {
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.form.is_none()
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.fields.entry(field.to_owned()).or_insert_with(|| message.into());
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }

    /// A refusal from a use case, placed next to its field when its message
    /// names one of `fields` (`reason: must not be empty`), else above the form.
    /// Failures that are not about the input (forbidden, unavailable) stay failures.
    pub fn from_ops(e: OpsError, tr: &Tr, fields: &[&str]) -> Result<Self, Fail> {
        let (raw, message) = match e {
            OpsError::Invalid(m) | OpsError::Unprocessable(m) => {
                let shown = tr.ta("error-refused", &[("message", &m)]);
                (m, shown)
            }
            OpsError::Conflict(m) => {
                let shown = tr.ta("error-conflict", &[("message", &m)]);
                (m, shown)
            }
            other => return Err(other.into()),
        };
        let mut errors = FieldErrors::default();
        // The use cases' messages start with the field they are about (`reason: …`).
        let field = fields
            .iter()
            .find(|f| raw.starts_with(&format!("{f}:")) || raw.starts_with(&format!("{f} ")));
        match field {
            Some(f) => errors.add(f, message),
            None => errors.form = Some(message),
        }
        Ok(errors)
    }

    /// The summary shown above a form with errors.
    pub fn summary(&self, tr: &Tr) -> Markup {
        html! {
            @if !self.is_empty() {
                div.form-errors role="alert" {
                    p { (tr.t("form-errors")) }
                    @if let Some(m) = &self.form { p.error { (m) } }
                }
            }
        }
    }
}

/// A labelled input with its help and error. `kind` is the input type.
pub fn input(
    name: &str,
    label: &str,
    kind: &str,
    value: &str,
    required: bool,
    errors: &FieldErrors,
    help: Option<&str>,
) -> Markup {
    let id = format!("f-{name}");
    let error = errors.get(name);
    let described = match (help.is_some(), error.is_some()) {
        (true, true) => Some(format!("{id}-help {id}-error")),
        (true, false) => Some(format!("{id}-help")),
        (false, true) => Some(format!("{id}-error")),
        (false, false) => None,
    };
    html! {
        div.field.invalid[error.is_some()] {
            label for=(id) { (label) }
            input id=(id) name=(name) type=(kind) value=(value) required[required]
                aria-invalid=[error.map(|_| "true")] aria-describedby=[described];
            @if let Some(h) = help { small id=(format!("{id}-help")) { (h) } }
            @if let Some(e) = error { p.error id=(format!("{id}-error")) { (e) } }
        }
    }
}

/// A labelled multi-line text field.
pub fn textarea(name: &str, label: &str, value: &str, required: bool, errors: &FieldErrors) -> Markup {
    let id = format!("f-{name}");
    let error = errors.get(name);
    html! {
        div.field.invalid[error.is_some()] {
            label for=(id) { (label) }
            textarea id=(id) name=(name) rows="4" required[required]
                aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| format!("{id}-error"))] { (value) }
            @if let Some(e) = error { p.error id=(format!("{id}-error")) { (e) } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct F {
        reason: String,
        #[serde(default)]
        devices: Vec<String>,
    }

    #[test]
    fn a_form_needs_its_csrf_token() {
        let ok: F = decode(b"_csrf=abc&reason=x&devices=a&devices=b", "abc").unwrap();
        assert_eq!(ok.reason, "x");
        assert_eq!(ok.devices, ["a", "b"]);
        assert!(matches!(decode::<F>(b"reason=x", "abc"), Err(Fail::Csrf)));
        assert!(matches!(decode::<F>(b"_csrf=abd&reason=x", "abc"), Err(Fail::Csrf)));
        assert!(matches!(decode::<F>(b"_csrf=abc", "abc"), Err(Fail::BadForm(_))));
        let lines: F = decode(b"_csrf=abc&reason=a%0D%0Ab%0d%0ac%0Dd", "abc").unwrap();
        assert_eq!(lines.reason, "a\nb\nc\rd");
    }

    #[test]
    fn cross_site_posts_are_refused() {
        let mut h = axum::http::HeaderMap::new();
        h.insert(header::HOST, "portier.example:8443".parse().unwrap());
        assert!(from_this_site(&h).is_ok());
        h.insert(header::ORIGIN, "https://portier.example:8443".parse().unwrap());
        assert!(from_this_site(&h).is_ok());
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(matches!(from_this_site(&h), Err(Fail::Csrf)));
        // What a browser sends under `Referrer-Policy: no-referrer`.
        h.insert(header::ORIGIN, "null".parse().unwrap());
        assert!(from_this_site(&h).is_ok());
        h.insert("sec-fetch-site", "same-origin".parse().unwrap());
        assert!(from_this_site(&h).is_ok());
        h.remove(header::ORIGIN);
        h.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(matches!(from_this_site(&h), Err(Fail::Csrf)));
    }
}
