//! Bearer tokens to callers, and the role checks handlers make. Any doubt —
//! no header, an unknown token, a store error — refuses.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderValue;

use super::error::ApiError;
use super::ApiState;
use crate::domain::{Role, UserId, VendorId};

/// The authenticated account making a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub id: UserId,
    pub name: String,
    pub role: Role,
    /// Set for `vendor` accounts: the only vendor they see.
    pub vendor_id: Option<VendorId>,
}

/// Proof that a role check passed; handlers that mutate take one.
#[derive(Debug, Clone, Copy)]
pub struct Granted(());

impl Caller {
    /// Passes if the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<Granted, ApiError> {
        if roles.contains(&self.role) {
            Ok(Granted(()))
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(ApiError::forbidden(format!(
                "this action needs the role {}; you are {}",
                names.join(" or "),
                self.role.as_str()
            )))
        }
    }

    /// Whether the caller may see this vendor's objects.
    pub fn sees_vendor(&self, vendor: &VendorId) -> bool {
        match self.role {
            Role::Vendor => self.vendor_id.as_ref() == Some(vendor),
            _ => true,
        }
    }

    /// The audit actor: the account id.
    pub fn actor(&self) -> &str {
        self.id.as_str()
    }
}

/// Longest token accepted; Portier's are 43 characters, so this only bounds work.
const MAX_TOKEN_LEN: usize = 256;

/// The token of an `Authorization: Bearer <token>` header. The scheme is
/// case-insensitive (RFC 9110 §11.1), so `bearer` and `BEARER` work too. The one
/// parser for both authentication and the audit of refused calls, so that a
/// caller is named the same way by both.
pub(crate) fn bearer_token(header: &HeaderValue) -> Option<&str> {
    let (scheme, token) = header.to_str().ok()?.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= MAX_TOKEN_LEN).then_some(token)
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthenticated("missing Authorization: Bearer <token> header"))?;
        let token = bearer_token(header)
            .ok_or_else(|| ApiError::unauthenticated("the Authorization header must be: Bearer <token>"))?;
        let user = state
            .store
            .user_by_token_hash(&crate::token::hash(token))
            .await?
            .ok_or_else(|| ApiError::unauthenticated("unknown or disabled token"))?;
        Ok(Caller {
            id: user.id,
            name: user.name,
            role: user.role,
            vendor_id: user.vendor_id,
        })
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
