//! Bearer tokens to callers, and the role checks handlers make. Any doubt —
//! no header, an unknown token, a store error — refuses; the one exception is a
//! restrictive action by an account this node authenticated recently
//! ([`RestrictiveCaller`]), which must not wait for the database.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method};

use super::error::ApiError;
use super::ApiState;
use crate::domain::UserId;
use crate::store::{StoreError, User};

/// The authenticated account making a request: the use cases' actor.
pub use crate::ops::{Actor as Caller, Granted};

/// Who the request's extractors authenticated, for the audit of a refused call:
/// the middleware puts an empty slot in the request before the handler runs,
/// [`Caller`] and [`RestrictiveCaller`] fill it, and the middleware reads it after
/// the answer — so a refusal is attributed without a second token lookup, and
/// also when the account was accepted from this node's memory.
#[derive(Debug, Clone, Default)]
pub(crate) struct Authenticated(Arc<OnceLock<UserId>>);

impl Authenticated {
    /// The account the request was authenticated as, if any.
    pub(crate) fn account(&self) -> Option<&UserId> {
        self.0.get()
    }
}

/// Records `caller` in the request's [`Authenticated`] slot, if there is one
/// (the console's sign-in does it too, so its refusals are attributed).
pub fn note_caller(parts: &Parts, caller: &Caller) {
    note(parts, caller)
}

fn note(parts: &Parts, caller: &Caller) {
    if let Some(slot) = parts.extensions.get::<Authenticated>() {
        // A second extractor in the same request finds the same account.
        let _ = slot.0.set(caller.id.clone());
    }
}

/// Longest token accepted; Portier's are 43 characters, so this only bounds work.
const MAX_TOKEN_LEN: usize = 256;

/// The token of an `Authorization: Bearer <token>` header. The scheme is
/// case-insensitive (RFC 9110 §11.1), so `bearer` and `BEARER` work too.
fn bearer_token(header: &HeaderValue) -> Option<&str> {
    let (scheme, token) = header.to_str().ok()?.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= MAX_TOKEN_LEN).then_some(token)
}

/// The SHA-256 of the request's bearer token; 401 if there is none.
fn bearer_hash(parts: &Parts) -> Result<String, ApiError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthenticated("missing Authorization: Bearer <token> header"))?;
    let token = bearer_token(header)
        .ok_or_else(|| ApiError::unauthenticated("the Authorization header must be: Bearer <token>"))?;
    Ok(crate::token::hash(token))
}

/// Looks the token up; this node remembers the answer for restrictive calls
/// made while the store is unreachable.
async fn authenticate(state: &ApiState, hash: &str) -> Result<Option<User>, StoreError> {
    let guard = state.cache.guard();
    let user = state.store.user_by_token_hash(hash, state.clock.now()).await?;
    match &user {
        Some(u) => guard.remember_user(hash, u),
        None => guard.forget_user(hash),
    }
    Ok(user)
}

/// A console session standing in for a token: a browser signed in to the
/// console calls the API as the same person. Only without an `Authorization`
/// header; a call that changes something must carry the session's CSRF token
/// in `X-Portier-CSRF`, which no other site can compute (the cookie is
/// `SameSite=Strict` too). `None`: no session cookie, so a token is needed.
async fn session_caller(parts: &Parts, state: &ApiState, restrictive: bool) -> Result<Option<Caller>, ApiError> {
    if parts.headers.contains_key(AUTHORIZATION) {
        return Ok(None);
    }
    let Some(secret) = crate::console::session_secret(&parts.headers) else {
        return Ok(None);
    };
    let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let sent = parts
            .headers
            .get(crate::console::CSRF_HEADER)
            .and_then(|v| v.to_str().ok());
        if sent != Some(crate::console::csrf_token(secret).as_str()) {
            return Err(ApiError::forbidden(
                "a change made with the console's session cookie must carry its CSRF token in X-Portier-CSRF",
            ));
        }
    }
    match state.ops.console_session(secret, true, restrictive).await? {
        Some(who) => Ok(Some(who.actor)),
        None => Err(ApiError::unauthenticated(
            "the console session has ended (sign in again) and no Authorization: Bearer <token> header was sent",
        )),
    }
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        if let Some(caller) = session_caller(parts, state, false).await? {
            note(parts, &caller);
            return Ok(caller);
        }
        let hash = bearer_hash(parts)?;
        let user = authenticate(state, &hash)
            .await?
            .ok_or_else(|| ApiError::unauthenticated("unknown, expired, revoked or disabled token"))?;
        let caller = Caller::from(user);
        note(parts, &caller);
        Ok(caller)
    }
}

/// How long a restrictive call waits for the store to confirm a token this node
/// already knows before it acts on what it knows.
const OFFLINE_AUTH_WAIT: Duration = Duration::from_millis(500);

/// The caller of a restrictive action (lockdown, revoke, terminate, disable).
/// Cutting access must not wait for the database (invariant 7): an account the
/// store authenticated on this node within [`crate::guard::OFFLINE_AUTH_TTL`] is
/// accepted when the store is unavailable or has not answered within
/// [`OFFLINE_AUTH_WAIT`]. A token the store says is unknown is refused and forgotten.
#[derive(Debug, Clone)]
pub struct RestrictiveCaller(pub Caller);

impl FromRequestParts<ApiState> for RestrictiveCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        if let Some(caller) = session_caller(parts, state, true).await? {
            note(parts, &caller);
            return Ok(Self(caller));
        }
        let caller = Self::authenticate(parts, state).await?;
        note(parts, &caller.0);
        Ok(caller)
    }
}

impl RestrictiveCaller {
    async fn authenticate(parts: &Parts, state: &ApiState) -> Result<Self, ApiError> {
        let hash = bearer_hash(parts)?;
        let known = state.cache.guard().known_user(&hash);
        // A task of its own: a lookup that outlives the wait still updates what
        // this node remembers, and is never cancelled half-way.
        let mut lookup = tokio::spawn({
            let (state, hash) = (state.clone(), hash.clone());
            async move { authenticate(&state, &hash).await }
        });
        let answer = match &known {
            Some(user) => match tokio::time::timeout(OFFLINE_AUTH_WAIT, &mut lookup).await {
                Ok(joined) => joined,
                Err(_) => {
                    tracing::warn!(user = %user.id, "store slow or down: caller accepted from this node's memory for a restrictive action");
                    return Ok(Self(Caller::from(user.clone())));
                }
            },
            None => lookup.await,
        };
        let answer = answer.map_err(|e| {
            tracing::error!(error = %e, "token lookup task failed");
            ApiError::unavailable("the database cannot be reached; try again later")
        })?;
        match (answer, known) {
            (Ok(Some(user)), _) => Ok(Self(Caller::from(user))),
            (Ok(None), _) => Err(ApiError::unauthenticated("unknown, expired, revoked or disabled token")),
            (Err(e), Some(user)) if e.is_unavailable() => {
                tracing::warn!(user = %user.id, error = %e, "store unavailable: caller accepted from this node's memory for a restrictive action");
                Ok(Self(Caller::from(user)))
            }
            (Err(e), _) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_token;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let parse = |h: &'static str| bearer_token(&HeaderValue::from_static(h)).map(str::to_owned);
        for ok in ["Bearer abc", "bearer abc", "BEARER abc", "bEaReR  abc "] {
            assert_eq!(parse(ok).as_deref(), Some("abc"), "{ok:?}");
        }
        for bad in ["Basic abc", "Bearer", "Bearer ", "Bearerabc", "Token abc", ""] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        let long = HeaderValue::from_str(&format!("Bearer {}", "a".repeat(257))).unwrap();
        assert_eq!(bearer_token(&long), None);
    }
}
