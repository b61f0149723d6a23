//! Who is viewing the console: the session cookie to a signed-in [`Viewer`],
//! the reader's language, and the CSRF token of the session.
//!
//! The cookie (`__Host-portier`, `HttpOnly; Secure; SameSite=Strict; Path=/`)
//! holds a random secret whose SHA-256 names the stored session. The CSRF token
//! of every form is derived from that secret (a hash the page can show but no
//! other site can compute, since it cannot read the cookie), so checking it
//! needs no lookup and works while the database is down.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};

use super::fail::Fail;
use super::i18n::{negotiate, Lang, Tr};
use crate::api::ApiState;
use crate::ops::{Actor, ConsoleUser};
use crate::store::LockdownState;

/// The session cookie.
pub const SESSION_COOKIE: &str = "__Host-portier";
/// The pre-sign-in cookie that the sign-in form's CSRF token is derived from.
pub const PRE_COOKIE: &str = "__Host-portier-pre";
/// Sent by the console script with its refreshes of live sections: not the
/// person's activity (see [`crate::ops::Ops::console_session`]).
pub const LIVE_HEADER: &str = "x-portier-live";
/// The language chosen in this browser (also stored on the account).
pub const LANG_COOKIE: &str = "portier-lang";

/// Where a script (or another client holding the session cookie) sends the
/// session's CSRF token with an API call that changes something.
pub const CSRF_HEADER: &str = "x-portier-csrf";

/// The console session's secret in the request's cookies, if any.
pub fn session_secret(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE)
}

/// A cookie of the request, by name.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// A `Set-Cookie` value for a console cookie: secure, script-proof, same-site.
pub fn set_cookie(name: &str, value: &str, max_age_secs: Option<i64>) -> String {
    let age = max_age_secs.map(|s| format!("; Max-Age={s}")).unwrap_or_default();
    format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict{age}")
}

/// The CSRF token of forms shown to the holder of `secret`.
pub fn csrf_token(secret: &str) -> String {
    crate::token::hash(&format!("portier-console-csrf:{secret}"))
}

/// The language of a request without a signed-in account: the browser's
/// remembered choice, else its `Accept-Language`.
pub fn request_lang(headers: &HeaderMap) -> Lang {
    cookie(headers, LANG_COOKIE)
        .and_then(Lang::parse)
        .unwrap_or_else(|| negotiate(headers))
}

/// A signed-in person.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub who: ConsoleUser,
    pub tr: Tr,
    /// This session's CSRF token, for the forms of the page.
    pub csrf: String,
    /// The lockdown in force, shown on every page.
    pub lockdown: Option<LockdownState>,
    /// The path viewed (for the menu and the language switch's return).
    pub path: String,
}

impl Viewer {
    pub fn actor(&self) -> &Actor {
        &self.who.actor
    }

    async fn extract(parts: &Parts, state: &ApiState, restrictive: bool) -> Result<Self, Fail> {
        let not_signed_in = || {
            if parts.method == Method::GET || parts.method == Method::HEAD {
                let next = parts.uri.path_and_query().map(|p| p.as_str().to_owned());
                Fail::SignIn {
                    next: next.filter(|n| safe_next(n)),
                }
            } else {
                Fail::Unauthenticated
            }
        };
        let secret = cookie(&parts.headers, SESSION_COOKIE).ok_or_else(not_signed_in)?;
        let who = state
            .ops
            .console_session(secret, !parts.headers.contains_key(LIVE_HEADER), restrictive)
            .await?
            .ok_or_else(not_signed_in)?;
        crate::api::note_caller(parts, &who.actor);
        let lang = who
            .user
            .lang
            .as_deref()
            .and_then(Lang::parse)
            .unwrap_or_else(|| request_lang(&parts.headers));
        Ok(Self {
            tr: Tr::new(lang, state.console.tz),
            csrf: csrf_token(secret),
            lockdown: state.ops.lockdown_in_force().await,
            path: parts.uri.path().to_owned(),
            who,
        })
    }
}

/// A `next` after sign-in: a console path on this site, nothing else.
pub fn safe_next(next: &str) -> bool {
    next.starts_with("/console/")
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.len() <= 512
        && next.bytes().all(|b| b.is_ascii_graphic())
}

impl FromRequestParts<ApiState> for Viewer {
    type Rejection = Fail;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        Viewer::extract(parts, state, false).await
    }
}

/// The viewer of a restrictive action (lockdown, terminate, revoke, disable):
/// accepted from this node's memory while the database is unreachable, like
/// the API's [`crate::api::RestrictiveCaller`] (invariant 7).
#[derive(Debug, Clone)]
pub struct RestrictiveViewer(pub Viewer);

impl FromRequestParts<ApiState> for RestrictiveViewer {
    type Rejection = Fail;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        Viewer::extract(parts, state, true).await.map(RestrictiveViewer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; __Host-portier=pcs_x; __Host-portier-pre=y".parse().unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("pcs_x"));
        assert_eq!(cookie(&h, PRE_COOKIE), Some("y"));
        assert_eq!(cookie(&h, "b"), None);
    }

    #[test]
    fn only_console_paths_are_followed_after_sign_in() {
        assert!(safe_next("/console/vendor"));
        for bad in [
            "https://evil.example/",
            "//evil.example/console/",
            "/api/v1/me",
            "/console\\..",
            "",
            "/console/\u{1}",
            "/console/a b",
        ] {
            assert!(!safe_next(bad), "{bad}");
        }
    }
}
