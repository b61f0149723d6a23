//! Console sign-in, sessions and preferences. A session is a random cookie whose
//! SHA-256 is stored (see [`ConsoleSession`]); it ends when idle for
//! `console.idle_minutes`, `console.absolute_hours` after sign-in, at sign-out,
//! at "sign out everywhere", or at once when its account is disabled.

use std::net::IpAddr;

use crate::domain::UserId;
use crate::events::Event;
use crate::rights::Function;
use crate::store::{ConsoleSession, Effects, LockdownState, User};

use super::sign_in::{FirstFactor, PasswordSignIn};
use super::{effects, Actor, Ops, OpsError, OpsResult};

/// Activity is written back at most this often per session (the idle timeout
/// is coarse; a write per page view is not needed).
const TOUCH_EVERY_SECS: i64 = 60;

/// Longest sign-in token accepted; Portier's are 68 characters.
const MAX_TOKEN_LEN: usize = 256;

/// A console language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Fr,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Fr, Lang::En];

    pub const fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    /// `fr`, `en`, or a tag starting with them (`fr-FR`, `en-GB`).
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "fr" => Some(Lang::Fr),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

/// A new console session: the cookie to set (shown once, never stored).
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub cookie: String,
    pub user: User,
    pub session: ConsoleSession,
}

/// The account behind a valid console session.
#[derive(Debug, Clone)]
pub struct ConsoleUser {
    pub user: User,
    pub session_sha256: String,
    pub actor: Actor,
}

impl Ops {
    /// Signs in to the console with an API token as the first factor: the
    /// second factor follows as after a password (the code if one is enrolled,
    /// the enrolment if the role requires one), so a token never opens a
    /// privileged console without it. Refused tokens answer the same whatever
    /// the reason (unknown, expired, revoked, disabled).
    pub async fn console_sign_in_with_token(&self, token: &str, source: Option<IpAddr>) -> OpsResult<PasswordSignIn> {
        let token = token.trim();
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(OpsError::Unauthenticated(
                "unknown, expired, revoked or disabled token".into(),
            ));
        }
        let user = self
            .store
            .user_by_token_hash(&crate::token::hash(token), self.now())
            .await?
            .ok_or_else(|| OpsError::Unauthenticated("unknown, expired, revoked or disabled token".into()))?;
        let creds = self.store.credentials(&user.id).await?;
        if creds.must_change_password {
            // The reset's new password is set at a password sign-in, by the
            // person who received the temporary one, not by a token's holder.
            return Err(OpsError::conflict(
                "an admin reset this account's password: sign in with the temporary password to choose a new one",
            ));
        }
        self.advance(user, &creds, false, source, FirstFactor::Token).await
    }

    pub(super) async fn open_console_session(
        &self,
        user: User,
        source: Option<IpAddr>,
        method: &str,
    ) -> OpsResult<SignedIn> {
        let (cookie, id_sha256) = crate::token::generate_prefixed(crate::token::SESSION_PREFIX);
        let now = self.now();
        let session = ConsoleSession {
            id_sha256,
            user_id: user.id.clone(),
            created_at: now,
            last_seen_at: now,
            source_ip: source.map(|ip| ip.to_canonical().to_string()),
        };
        let who = Actor::from(user.clone());
        let record = effects(|s: &ConsoleSession| {
            Effects::audit(self.event(
                &who,
                Event::ConsoleSignedIn,
                who.id.as_str(),
                serde_json::json!({
                    "method": method,
                    "source_ip": s.source_ip,
                    // Enough to tell sessions apart in the trail, useless to replay.
                    "session": s.id_sha256.get(..12),
                }),
            ))
        });
        let session = self.store.create_console_session(&session, &record).await?;
        Ok(SignedIn { cookie, user, session })
    }

    /// The account of a console session cookie, if the session is valid now.
    /// An expired session is deleted. A request the person made (`activity`)
    /// restarts the idle timeout; the live sections' polls do not, so an
    /// unattended page still ends idle. For a restrictive action (`restrictive`),
    /// a session this node validated recently is accepted while the store is
    /// unreachable, as the API accepts a known token (invariant 7).
    pub async fn console_session(
        &self,
        cookie: &str,
        activity: bool,
        restrictive: bool,
    ) -> OpsResult<Option<ConsoleUser>> {
        if cookie.len() > MAX_TOKEN_LEN || !cookie.starts_with(crate::token::SESSION_PREFIX) {
            return Ok(None);
        }
        let hash = crate::token::hash(cookie);
        let found = match self.store.console_session(&hash).await {
            Ok(found) => found,
            Err(e) if restrictive && e.is_unavailable() => {
                let idle = self.rules.console_idle.to_std().unwrap_or_default();
                return Ok(self.guard().known_user_within(&hash, idle).map(|user| {
                    tracing::warn!(user = %user.id, "store unavailable: console session accepted from this node's memory for a restrictive action");
                    ConsoleUser {
                        actor: Actor::from(user.clone()),
                        user,
                        session_sha256: hash,
                    }
                }));
            }
            Err(e) => return Err(e.into()),
        };
        let Some((session, user)) = found else {
            self.guard().forget_user(&hash);
            return Ok(None);
        };
        let now = self.now();
        let idle = now - session.last_seen_at > self.rules.console_idle;
        let old = now - session.created_at > self.rules.console_absolute;
        if idle || old {
            self.guard().forget_user(&hash);
            let why = if old { "absolute_timeout" } else { "idle_timeout" };
            self.end_sessions(&Actor::from(user), Some(&hash), why).await?;
            return Ok(None);
        }
        if activity && (now - session.last_seen_at).num_seconds() >= TOUCH_EVERY_SECS {
            self.store.touch_console_session(&hash, now).await?;
        }
        if activity {
            // What this node may accept while the store is down: sessions in use.
            self.guard().remember_user(&hash, &user);
        }
        Ok(Some(ConsoleUser {
            actor: Actor::from(user.clone()),
            user,
            session_sha256: hash,
        }))
    }

    /// Ends this console session, or every console session of the account
    /// (`everywhere`, on every node: sessions are looked up at each request).
    pub async fn console_sign_out(&self, who: &ConsoleUser, everywhere: bool) -> OpsResult<u64> {
        if everywhere {
            self.guard().forget_account(&who.actor.id);
        } else {
            self.guard().forget_user(&who.session_sha256);
        }
        let only = (!everywhere).then_some(who.session_sha256.as_str());
        let why = if everywhere { "sign_out_everywhere" } else { "sign_out" };
        self.end_sessions(&who.actor, only, why).await
    }

    async fn end_sessions(&self, who: &Actor, only: Option<&str>, why: &str) -> OpsResult<u64> {
        self.end_sessions_of(who, &who.id, only, why).await
    }

    /// Ends the console sessions of `of` (one, or all), on `who`'s authority.
    pub(super) async fn end_sessions_of(
        &self,
        who: &Actor,
        of: &UserId,
        only: Option<&str>,
        why: &str,
    ) -> OpsResult<u64> {
        let record = effects(|n: &u64| {
            Effects::audit(self.event(
                who,
                Event::ConsoleSignedOut,
                of.as_str(),
                serde_json::json!({"reason": why, "sessions": n, "session": only.and_then(|h| h.get(..12))}),
            ))
        });
        Ok(self.store.end_console_sessions(of, only, &record).await?)
    }

    /// Sets the console language of the actor's own account.
    pub async fn set_language(&self, who: &Actor, lang: Option<Lang>) -> OpsResult<User> {
        who.may(Function::ManageOwnAccount)?;
        let code = lang.map(Lang::code);
        let record = effects(|u: &User| {
            Effects::audit(self.event(
                who,
                Event::UserLanguageChanged,
                u.id.as_str(),
                serde_json::json!({"lang": code}),
            ))
        });
        let id: &UserId = &who.id;
        Ok(self.store.set_user_lang(id, code, &record).await?)
    }

    /// The lockdown in force, for the banner on every console page: this node's
    /// own (held even while the database is down) first, else the stored one.
    pub async fn lockdown_in_force(&self) -> Option<LockdownState> {
        if let Some((local, _)) = self.guard().local_lockdown() {
            return Some(local);
        }
        // The snapshot this node admits on says whether one is stored.
        if self.cache.cached_lockdown() == Some(false) {
            return None;
        }
        match self.store.lockdown().await {
            Ok(state) => state.active.then_some(state),
            Err(e) => {
                tracing::warn!(error = %e, "lockdown state unknown for the console banner");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Lang;

    #[test]
    fn languages_parse_from_tags() {
        assert_eq!(Lang::parse("fr-FR"), Some(Lang::Fr));
        assert_eq!(Lang::parse("EN_gb"), Some(Lang::En));
        assert_eq!(Lang::parse("en"), Some(Lang::En));
        assert_eq!(Lang::parse("de"), None);
        assert_eq!(Lang::parse(""), None);
    }
}
