//! Personal API tokens (for scripts) and the account lifecycle. A token has a
//! name and an expiry, is shown once and listed by its first characters; its
//! owner or an admin revokes it. Tokens are looked up on every call, so a
//! revoked or expired token, or a disabled account's, stops at once on every node.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{effects, Actor, Ops, OpsError, OpsResult};
use crate::domain::{Role, TokenId, UserId};
use crate::events::Event;
use crate::rights::Function;
use crate::store::{ApiToken, Effects, NewApiToken, User};

/// A token just created: the secret is shown once (only its SHA-256 is stored).
#[derive(Debug, Clone)]
pub struct CreatedToken {
    pub token: ApiToken,
    pub secret: String,
}

/// An account as the accounts list shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccountView {
    pub id: UserId,
    pub name: String,
    pub role: Role,
    pub vendor_id: Option<crate::domain::VendorId>,
    pub email: Option<String>,
    /// `active` or `disabled`.
    pub state: &'static str,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
    /// Tokens neither revoked nor expired.
    pub live_tokens: u64,
    /// How the person signs in to the console: `directory` (the hospital's
    /// directory password), `password` (a local one), or `none` (tokens only).
    pub sign_in: &'static str,
    /// Whether a second factor (TOTP) is enrolled.
    pub mfa: bool,
    /// Whether a reset requires a new password at the next sign-in.
    pub must_change_password: bool,
    /// The console language the account chose.
    pub lang: Option<String>,
}

impl Ops {
    /// Creates a personal token for `owner` (`None`: the caller's own account;
    /// another account's: admin only) expiring in `days` (default
    /// `[auth] token_days`, at most `max_token_days`).
    pub async fn create_token(
        &self,
        who: &Actor,
        owner: Option<&UserId>,
        name: &str,
        days: Option<i64>,
    ) -> OpsResult<CreatedToken> {
        let owner = owner.unwrap_or(&who.id);
        who.may(if *owner != who.id {
            Function::CreateTokenForOthers
        } else {
            Function::CreateOwnToken
        })?;
        let name = crate::domain::one_line("name", name, 100)?;
        let days = days.unwrap_or(self.rules.token_days);
        if days < 1 || days > self.rules.max_token_days {
            return Err(OpsError::unprocessable(format!(
                "a token expires in 1 to {} days ([auth] max_token_days)",
                self.rules.max_token_days
            )));
        }
        let account = self
            .store
            .user(owner)
            .await
            .map_err(|e| OpsError::unless_found(e, || OpsError::not_found("account")))?;
        if account.disabled_at.is_some() {
            return Err(OpsError::conflict("this account is disabled: enable it first"));
        }
        let now = self.now();
        let (secret, token_sha256) = crate::token::generate();
        let new = NewApiToken {
            user_id: account.id.clone(),
            name,
            prefix: crate::token::shown_prefix(&secret),
            token_sha256,
            expires_at: Some(now + chrono::Duration::days(days)),
        };
        let record = effects(|t: &ApiToken| {
            Effects::audit(self.event(
                who,
                Event::TokenCreated,
                t.id.as_str(),
                serde_json::json!({"user_id": t.user_id, "name": t.name, "prefix": t.prefix, "expires_at": t.expires_at}),
            ))
        });
        let token = self.store.create_api_token(&new, now, &record).await?;
        Ok(CreatedToken { token, secret })
    }

    /// The tokens of `of` (`None`: the caller's own; another account's: admin only).
    pub async fn tokens(&self, who: &Actor, of: Option<&UserId>) -> OpsResult<Vec<ApiToken>> {
        let of = of.unwrap_or(&who.id);
        who.may(if *of != who.id {
            Function::ListTokensOfOthers
        } else {
            Function::ListOwnTokens
        })?;
        Ok(self.store.list_api_tokens(Some(of)).await?)
    }

    /// Every account's tokens (admin; the command line).
    pub async fn all_tokens(&self, who: &Actor) -> OpsResult<Vec<ApiToken>> {
        who.may(Function::ListTokensOfOthers)?;
        Ok(self.store.list_api_tokens(None).await?)
    }

    /// Revokes a token (its owner, or an admin): it stops at once on every node.
    pub async fn revoke_token(&self, who: &Actor, id: &TokenId) -> OpsResult<ApiToken> {
        let token = self
            .store
            .api_token(id)
            .await
            .map_err(|e| OpsError::unless_found(e, || OpsError::not_found("token")))?;
        who.may(if token.user_id != who.id {
            Function::RevokeTokenOfOthers
        } else {
            Function::RevokeOwnToken
        })?;
        if token.revoked_at.is_some() {
            return Err(OpsError::conflict("this token is already revoked"));
        }
        let record = effects(|t: &ApiToken| {
            Effects::audit(self.event(
                who,
                Event::TokenRevoked,
                t.id.as_str(),
                serde_json::json!({"user_id": t.user_id, "name": t.name, "prefix": t.prefix}),
            ))
        });
        let revoked = self.store.revoke_api_token(id, self.now(), &record).await?;
        // Nothing this node remembers of the owner is accepted offline any more;
        // its other live credentials are remembered again at their next use.
        self.guard().forget_account(&revoked.user_id);
        Ok(revoked)
    }

    /// Enables a disabled account (admin): its live tokens work again.
    pub async fn enable_user(&self, who: &Actor, id: &UserId) -> OpsResult<User> {
        who.may(Function::EnableAccount)?;
        let record = effects(|u: &User| {
            Effects::audit(self.event(
                who,
                Event::UserEnabled,
                u.id.as_str(),
                serde_json::json!({"name": u.name, "role": u.role}),
            ))
        });
        Ok(self.store.set_user_disabled(id, None, &record).await?)
    }

    /// Every account with its state, last sign-in and live tokens (admin).
    pub async fn accounts(&self, who: &Actor) -> OpsResult<Vec<AccountView>> {
        who.may(Function::ListAccounts)?;
        let users = self.store.list_users().await?;
        let tokens = self.store.list_api_tokens(None).await?;
        let credentials: std::collections::HashMap<UserId, crate::store::Credentials> =
            self.store.all_credentials().await?.into_iter().collect();
        let now = self.now();
        let mut live = std::collections::HashMap::<&UserId, u64>::new();
        for t in tokens.iter().filter(|t| t.live_at(now)) {
            *live.entry(&t.user_id).or_default() += 1;
        }
        Ok(users
            .iter()
            .map(|u| {
                let creds = credentials.get(&u.id);
                AccountView {
                    id: u.id.clone(),
                    name: u.name.clone(),
                    role: u.role,
                    vendor_id: u.vendor_id.clone(),
                    email: u.email.clone(),
                    state: if u.disabled_at.is_some() { "disabled" } else { "active" },
                    created_at: u.created_at,
                    disabled_at: u.disabled_at,
                    last_sign_in_at: u.last_sign_in_at,
                    live_tokens: live.get(&u.id).copied().unwrap_or(0),
                    sign_in: match creds {
                        Some(c) if c.directory_dn.is_some() => "directory",
                        Some(c) if c.password_hash.is_some() => "password",
                        _ => "none",
                    },
                    mfa: creds.is_some_and(crate::store::Credentials::has_totp),
                    must_change_password: creds.is_some_and(|c| c.must_change_password),
                    lang: u.lang.clone(),
                }
            })
            .collect())
    }
}
