//! Bearer tokens to callers, and the role checks handlers make. Any doubt —
//! no header, an unknown token, a store error — refuses.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

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

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthenticated("missing Authorization: Bearer <token> header"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or_else(|| ApiError::unauthenticated("the Authorization header must be: Bearer <token>"))?;
        let hash = crate::token::hash(token);
        let guard = state.cache.guard();
        let user = match state.store.user_by_token_hash(&hash).await? {
            Some(user) => {
                guard.remember_user(&hash, &user);
                user
            }
            None => {
                guard.forget_user(&hash);
                return Err(ApiError::unauthenticated("unknown or disabled token"));
            }
        };
        Ok(Caller::from(user))
    }
}

impl From<crate::store::User> for Caller {
    fn from(user: crate::store::User) -> Self {
        Caller {
            id: user.id,
            name: user.name,
            role: user.role,
            vendor_id: user.vendor_id,
        }
    }
}

/// The caller of a restrictive action (lockdown, revoke, terminate, disable).
/// While the store cannot be reached, an account it authenticated on this node
/// within [`crate::guard::OFFLINE_AUTH_TTL`] is still accepted: cutting access
/// must not wait for the database (invariant 7). Any other error refuses.
#[derive(Debug, Clone)]
pub struct RestrictiveCaller(pub Caller);

impl FromRequestParts<ApiState> for RestrictiveCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        match Caller::from_request_parts(parts, state).await {
            Ok(c) => Ok(Self(c)),
            Err(e) if e.status == axum::http::StatusCode::SERVICE_UNAVAILABLE => {
                let known = parts
                    .headers
                    .get(AUTHORIZATION)
                    .and_then(|h| h.to_str().ok())
                    .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
                    .map(|t| crate::token::hash(t.trim()))
                    .and_then(|h| state.cache.guard().known_user(&h));
                match known {
                    Some(user) => {
                        tracing::warn!(user = %user.id, "database unreachable: caller accepted from this node's memory for a restrictive action");
                        Ok(Self(Caller::from(user)))
                    }
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }
}
