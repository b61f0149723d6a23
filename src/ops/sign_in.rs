//! Signing in with a password: the stages after it and brute-force
//! protection (issue 11).
//!
//! A password sign-in goes through stages, each a row in `sign_in_pending`
//! keyed by the SHA-256 of a short-lived cookie (never a client-side flag): the
//! TOTP code (or a recovery code), then the change a reset forces, then the
//! enrolment the role requires; only then does a console session open.
//!
//! Failures count per account name (whether or not it exists) and per source
//! address, in the database so every node sees them. After `n` failures of a
//! name the next attempt waits `2^(n-1)` seconds (at most a minute), and after
//! `[auth] lockout_after` failures within `[auth] lockout_minutes` the name is
//! locked for `lockout_minutes`. A source address gets the same treatment
//! counted from `lockout_after` and locked at `[auth] source_lockout_after`:
//! a whole site behind one NAT address must not lock itself out as fast as
//! one name. Every refusal answers the same message.

use std::net::IpAddr;
use std::sync::OnceLock;

use chrono::Duration;

use crate::budget::AuditBudget;
use crate::credentials::{as_totp, matching_step, recovery_sha256, verify_password, MAX_PASSWORD_LEN};
use crate::events::Event;
use crate::store::{Credentials, Effects, PendingSignIn, User};

use super::{effects, Actor, Ops, OpsError, OpsResult, SignedIn};

/// The one answer to a refused sign-in: it does not say whether the account
/// exists, the password was wrong, or the key is locked.
pub const REFUSED: &str = "sign-in refused: wrong name, password or code, or too many attempts (wait and retry)";
/// The prefix of a pending sign-in's cookie.
const PENDING_PREFIX: &str = "psi_";
/// A half-done sign-in expires after this long.
const PENDING_MINUTES: i64 = 5;
/// Longest growing delay between attempts of one key.
const MAX_DELAY_SECS: i64 = 60;
/// Sign-in failures written to the trail per second, in all and per key.
const FAILURE_AUDITS_PER_SECOND: u64 = 20;
const FAILURE_AUDITS_PER_KEY_PER_SECOND: u64 = 2;
/// Longest name kept in a failure key or an audit event.
const MAX_NAME_CHARS: usize = 128;
const ACCOUNT_KEY: &str = "account:";
const SOURCE_KEY: &str = "source:";

/// What signing in to the console started with. Either way the second factor
/// follows when one is enrolled or the role requires one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FirstFactor {
    /// A password (local, or the hospital's directory's).
    Password,
    /// A personal API token.
    Token,
}

impl FirstFactor {
    fn of(pending: &PendingSignIn) -> Self {
        if pending.after_token() {
            Self::Token
        } else {
            Self::Password
        }
    }
}

/// What a correct first factor leads to.
#[derive(Debug, Clone)]
pub enum PasswordSignIn {
    /// Done: a console session is open.
    SignedIn(Box<SignedIn>),
    /// A TOTP or recovery code is due (the cookie of the pending sign-in).
    NeedsSecondFactor(String),
    /// A reset forces a new password before anything else.
    MustChangePassword(String),
    /// The role requires a second factor and none is enrolled yet.
    MustEnrol(String),
}

/// The sign-in failures audited: a flood cannot grow the trail faster than this.
fn failure_budget() -> &'static AuditBudget<String> {
    static BUDGET: OnceLock<AuditBudget<String>> = OnceLock::new();
    BUDGET.get_or_init(|| AuditBudget::new(FAILURE_AUDITS_PER_SECOND, FAILURE_AUDITS_PER_KEY_PER_SECOND))
}

/// Waits for this node's earlier attempt on the same account name to finish:
/// the throttle reads the failures before the attempt and writes its own
/// after, so parallel attempts would all pass a check meant to let one
/// through (a burst of 64 guesses instead of 5). Nodes still race each
/// other, which multiplies the budget by the number of nodes at most.
async fn one_attempt_at_a_time(keys: &[String]) -> Option<tokio::sync::OwnedMutexGuard<()>> {
    type Turns = std::sync::Mutex<std::collections::HashMap<String, std::sync::Weak<tokio::sync::Mutex<()>>>>;
    static TURNS: OnceLock<Turns> = OnceLock::new();
    let key = keys.first()?;
    let lock = {
        let mut turns = TURNS.get_or_init(Turns::default).lock().ok()?;
        // Forget the names nobody is signing in as (bounded by attempts in flight).
        turns.retain(|_, weak| weak.strong_count() > 0);
        match turns.get(key).and_then(std::sync::Weak::upgrade) {
            Some(lock) => lock,
            None => {
                let lock = std::sync::Arc::new(tokio::sync::Mutex::new(()));
                turns.insert(key.clone(), std::sync::Arc::downgrade(&lock));
                lock
            }
        }
    };
    Some(lock.lock_owned().await)
}

/// The delay after `n` failures: 0, 1, 2, 4… seconds, at most a minute.
fn delay_after(n: i64) -> Duration {
    if n <= 0 {
        return Duration::zero();
    }
    let exp = u32::try_from((n - 1).min(16)).unwrap_or(16);
    Duration::seconds(2i64.pow(exp).min(MAX_DELAY_SECS))
}

fn refused() -> OpsError {
    OpsError::Unauthenticated(REFUSED.into())
}

/// The source a failure counts against: the address for IPv4, its /64 for
/// IPv6 (one subscriber's usual allocation: an attacker holding a /64 has 2^64
/// addresses, and would otherwise get a fresh budget from each).
fn source_prefix(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let net = ipnet::Ipv6Net::new(v6, 64).map(|n| n.trunc());
            net.map_or_else(|_| v6.to_string(), |n| n.to_string())
        }
    }
}

/// What the trail keeps of a typed name: the name of an account that exists,
/// nothing of any other — people type passwords into the name field, the
/// trail is kept for years and cannot be edited, and even a hash of a short
/// secret is found again by trying a dictionary.
fn audited_name(name: &str, known: bool) -> (String, serde_json::Value) {
    let name: String = name.trim().chars().take(MAX_NAME_CHARS).collect();
    if known {
        (format!("{ACCOUNT_KEY}{name}"), serde_json::Value::String(name))
    } else {
        (format!("{ACCOUNT_KEY}unknown"), serde_json::Value::Null)
    }
}

impl Ops {
    /// The failure keys of an attempt: the account name (existing or not) and
    /// the source address.
    fn failure_keys(name: &str, source: Option<IpAddr>) -> Vec<String> {
        let name: String = name.trim().to_lowercase().chars().take(MAX_NAME_CHARS).collect();
        let mut keys = vec![format!("{ACCOUNT_KEY}{name}")];
        if let Some(ip) = source {
            keys.push(format!("{SOURCE_KEY}{}", source_prefix(ip)));
        }
        keys
    }

    /// The failures of `key` that lock it, and the failures its delays start
    /// after.
    fn lockout_of(&self, key: &str) -> (i64, i64) {
        if key.starts_with(SOURCE_KEY) {
            (
                i64::from(self.rules.source_lockout_after),
                i64::from(self.rules.lockout_after),
            )
        } else {
            (i64::from(self.rules.lockout_after), 0)
        }
    }

    /// Whether an attempt under these keys must be refused now, unseen: a key
    /// locked, or its growing delay not over.
    async fn throttled(&self, keys: &[String]) -> OpsResult<bool> {
        let now = self.now();
        for key in keys {
            let (n, last) = self.store.sign_in_failures(key, now - self.rules.lockout).await?;
            let Some(last) = last else { continue };
            // Locked: the last failure (within the lockout) made `lockout_after`
            // within the lockout before it. Attempts while locked are not
            // counted, so the lockout ends `lockout_minutes` after it began.
            let (locks_at, free) = self.lockout_of(key);
            let (at_last, _) = self.store.sign_in_failures(key, last - self.rules.lockout).await?;
            if at_last >= locks_at {
                return Ok(true);
            }
            if now < last + delay_after(n - free) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Counts a failure under each key and audits it (and a lockout), within
    /// the budget. Always answers the one refusal.
    pub(super) async fn sign_in_failed(
        &self,
        keys: &[String],
        name: &str,
        known: bool,
        source: Option<IpAddr>,
        why: &str,
    ) -> OpsError {
        let now = self.now();
        // Kept twice the lockout: a lockout is judged on the lockout before its
        // last failure (see `throttled`).
        let forget = now - self.rules.lockout - self.rules.lockout;
        let counts = match self
            .store
            .add_sign_in_failure(keys, now, now - self.rules.lockout, forget)
            .await
        {
            Ok(c) => c,
            Err(e) => return e.into(),
        };
        let (account, name) = audited_name(name, known);
        let source_ip = source.map(|ip| ip.to_canonical().to_string());
        for (key, n) in keys.iter().zip(&counts) {
            let (action, outcome) = if *n == self.lockout_of(key).0 {
                (Event::AccountLocked, "locked")
            } else {
                (Event::SignInFailed, "denied")
            };
            if action == Event::SignInFailed && key != keys.first().map_or("", String::as_str) {
                // One failure event per attempt; lockouts of each key.
                continue;
            }
            let Some(suppressed) = failure_budget().admit(format!("{}:{key}", action.as_str()), now) else {
                continue;
            };
            let target = if key.starts_with(ACCOUNT_KEY) { &account } else { key };
            let event = crate::audit::AuditEvent::new(
                now,
                "unauthenticated",
                action,
                target,
                outcome,
                serde_json::json!({
                    "name": name, "source_ip": source_ip, "reason": why, "failures": n,
                    "lockout_minutes": self.rules.lockout.num_minutes(),
                    "suppressed_since_last": suppressed,
                }),
            );
            if let Err(e) = self.store.append_audit(&event).await {
                tracing::warn!(error = %e, "sign-in failure not audited");
            }
        }
        tracing::info!(source = ?source_ip, reason = why, "sign-in refused");
        refused()
    }

    /// First step of a password sign-in. Every refusal is [`REFUSED`].
    pub async fn sign_in_password(
        &self,
        name: &str,
        password: &str,
        source: Option<IpAddr>,
    ) -> OpsResult<PasswordSignIn> {
        let keys = Self::failure_keys(name, source);
        let _turn = one_attempt_at_a_time(&keys).await;
        if self.throttled(&keys).await? {
            return Err(refused());
        }
        if password.len() > MAX_PASSWORD_LEN || name.len() > 4 * MAX_NAME_CHARS {
            return Err(self.sign_in_failed(&keys, name, false, source, "too_long").await);
        }
        if name.chars().any(char::is_control) {
            // No account has such a name, and some databases refuse NUL in text.
            return Err(self
                .sign_in_failed(&keys, "", false, source, "control_characters")
                .await);
        }
        let found = self.store.user_by_name(name.trim()).await?;
        if let Some(cfg) = self.directory_for(found.as_ref()) {
            return self.sign_in_directory(&cfg, &keys, name, password, found, source).await;
        }
        let stored = found.as_ref().and_then(|(_, c)| c.password_hash.clone());
        let right = verify_password(stored, password).await;
        let known = found.is_some();
        let Some((user, creds)) = found.filter(|(u, _)| right && u.disabled_at.is_none()) else {
            return Err(self.sign_in_failed(&keys, name, known, source, "password").await);
        };
        self.advance(user, &creds, false, source, FirstFactor::Password).await
    }

    /// The next stage of a sign-in whose first factor (and `totp_done`)
    /// passed: a second factor due, a change a reset forces (after a password
    /// only), an enrolment the role requires; else the session.
    pub(super) async fn advance(
        &self,
        user: User,
        creds: &Credentials,
        totp_done: bool,
        source: Option<IpAddr>,
        first: FirstFactor,
    ) -> OpsResult<PasswordSignIn> {
        let stage = if creds.has_totp() && !totp_done {
            "totp"
        } else if creds.must_change_password && first != FirstFactor::Token {
            "change_password"
        } else if self.mfa_required(user.role) && !creds.has_totp() {
            "enrol"
        } else {
            let method = match (first, creds.has_totp()) {
                (FirstFactor::Token, true) => "token+totp",
                (FirstFactor::Token, false) => "token",
                (FirstFactor::Password, true) => "password+totp",
                (FirstFactor::Password, false) => "password",
            };
            // The name's failures are forgotten only once every factor has
            // passed: a right password alone must not reset the count that
            // wrong second-factor codes add to (or codes could be guessed
            // for ever, a password between every four).
            if let Some(account) = Self::failure_keys(&user.name, None).first() {
                self.store.clear_sign_in_failures(account).await?;
            }
            return Ok(PasswordSignIn::SignedIn(Box::new(
                self.open_console_session(user, source, method).await?,
            )));
        };
        let (cookie, id_sha256) = crate::token::generate_prefixed(PENDING_PREFIX);
        let now = self.now();
        let pending = PendingSignIn {
            id_sha256,
            user_id: user.id.clone(),
            stage: match first {
                FirstFactor::Token => format!("{stage}+token"),
                FirstFactor::Password => stage.to_owned(),
            },
            created_at: now,
            source_ip: source.map(|ip| ip.to_canonical().to_string()),
        };
        // Abandoned sign-ins are deleted as new ones begin.
        self.store
            .create_pending_sign_in(&pending, now - Duration::minutes(PENDING_MINUTES))
            .await?;
        Ok(match stage {
            "totp" => PasswordSignIn::NeedsSecondFactor(cookie),
            "change_password" => PasswordSignIn::MustChangePassword(cookie),
            _ => PasswordSignIn::MustEnrol(cookie),
        })
    }

    /// The pending sign-in of a cookie and its account, if still valid.
    pub async fn pending_sign_in(&self, cookie: &str) -> OpsResult<Option<(PendingSignIn, User)>> {
        if cookie.len() > 256 || !cookie.starts_with(PENDING_PREFIX) {
            return Ok(None);
        }
        let hash = crate::token::hash(cookie);
        let Some(pending) = self.store.pending_sign_in(&hash).await? else {
            return Ok(None);
        };
        if self.now() - pending.created_at > Duration::minutes(PENDING_MINUTES) {
            self.store.end_pending_sign_in(&hash).await?;
            return Ok(None);
        }
        let user = self.store.user(&pending.user_id).await?;
        if user.disabled_at.is_some() {
            self.store.end_pending_sign_in(&hash).await?;
            return Ok(None);
        }
        Ok(Some((pending, user)))
    }

    /// The pending sign-in of `cookie` at `stage`, or the refusal.
    async fn pending_at(&self, cookie: &str, stage: &str) -> OpsResult<(PendingSignIn, User)> {
        match self.pending_sign_in(cookie).await? {
            Some((p, u)) if p.due() == stage => Ok((p, u)),
            _ => Err(refused()),
        }
    }

    /// The second step: a TOTP code (accepted once) or a recovery code (spent).
    pub async fn sign_in_second_factor(
        &self,
        cookie: &str,
        code: &str,
        source: Option<IpAddr>,
    ) -> OpsResult<PasswordSignIn> {
        let (pending, user) = self.pending_at(cookie, "totp").await?;
        let keys = Self::failure_keys(&user.name, source);
        let _turn = one_attempt_at_a_time(&keys).await;
        if self.throttled(&keys).await? {
            return Err(refused());
        }
        let creds = self.store.credentials(&user.id).await?;
        let secret = match creds.totp_secret.as_deref() {
            // Fail closed: a secret that does not decrypt under the master key
            // (wrong key, moved row, clear while a key is configured) signs nobody in.
            Some(stored) => Some(self.rules.at_rest.open_totp(user.id.as_str(), stored).map_err(|e| {
                tracing::error!(account = %user.id, error = %e, "the account's TOTP secret cannot be decrypted");
                OpsError::Unavailable("the second factor cannot be checked".into())
            })?),
            None => None,
        };
        let now = self.now();
        let accepted = if let Some(totp) = as_totp(code) {
            match secret.as_deref().and_then(|s| matching_step(s, &totp, now)) {
                // Atomic: a code of a step already used (here or on another node) is refused.
                Some(step) => self.store.use_totp_step(&user.id, step).await?,
                None => false,
            }
        } else {
            let who = Actor::from(user.clone());
            let record = effects(|_: &()| {
                Effects::audit(self.event(
                    &who,
                    Event::RecoveryCodeUsed,
                    who.id.as_str(),
                    serde_json::json!({"source_ip": pending.source_ip}),
                ))
            });
            code.len() <= 64
                && self
                    .store
                    .use_recovery_code(&user.id, &recovery_sha256(code), now, &record)
                    .await?
        };
        if !accepted {
            return Err(self
                .sign_in_failed(&keys, &user.name, true, source, "second_factor")
                .await);
        }
        self.store.end_pending_sign_in(&pending.id_sha256).await?;
        self.advance(user, &creds, true, source, FirstFactor::of(&pending))
            .await
    }

    /// The password change a reset forces, before the session opens.
    pub async fn sign_in_change_password(
        &self,
        cookie: &str,
        new: &str,
        source: Option<IpAddr>,
    ) -> OpsResult<PasswordSignIn> {
        let (pending, user) = self.pending_at(cookie, "change_password").await?;
        self.check_password_policy(new)?;
        let creds = self.store.credentials(&user.id).await?;
        // The temporary password is no new password.
        if verify_password(creds.password_hash.clone(), new).await {
            return Err(OpsError::bad_request(
                "the new password must differ from the temporary one",
            ));
        }
        let who = Actor::from(user.clone());
        self.store_password(&who, &user.id, new, false, Event::PasswordChanged)
            .await?;
        self.store.end_pending_sign_in(&pending.id_sha256).await?;
        let creds = Credentials {
            must_change_password: false,
            ..creds
        };
        self.advance(user, &creds, true, source, FirstFactor::Password).await
    }

    /// The enrolment the role requires, before the session opens: returns the
    /// next stage and the recovery codes (shown once).
    pub async fn sign_in_enrol(
        &self,
        cookie: &str,
        secret: &str,
        code: &str,
        source: Option<IpAddr>,
    ) -> OpsResult<(PasswordSignIn, Vec<String>)> {
        let (pending, user) = self.pending_at(cookie, "enrol").await?;
        let who = Actor::from(user.clone());
        let codes = self.confirm_totp(&who, secret, code).await?;
        self.store.end_pending_sign_in(&pending.id_sha256).await?;
        let creds = self.store.credentials(&user.id).await?;
        let first = FirstFactor::of(&pending);
        Ok((self.advance(user, &creds, true, source, first).await?, codes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        assert_eq!(delay_after(0), Duration::zero());
        assert_eq!(delay_after(1), Duration::seconds(1));
        assert_eq!(delay_after(3), Duration::seconds(4));
        assert_eq!(delay_after(40), Duration::seconds(MAX_DELAY_SECS));
    }

    #[test]
    fn ipv6_sources_count_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(source_prefix(a), source_prefix(b));
        assert_ne!(source_prefix(a), source_prefix(c));
        assert_eq!(source_prefix("::ffff:192.0.2.7".parse().unwrap()), "192.0.2.7");
    }

    #[test]
    fn unknown_names_are_not_kept_in_the_trail() {
        let (target, name) = audited_name("Correct Horse Battery", false);
        assert!(!target.contains("orse"), "{target}");
        assert!(name.is_null());
        let (target, name) = audited_name("alice", true);
        assert_eq!(target, "account:alice");
        assert_eq!(name, "alice");
    }
}
