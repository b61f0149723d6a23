//! Local passwords, the second factor (TOTP, RFC 6238) and brute-force
//! protection (issue 11).
//!
//! A password sign-in goes through stages, each a row in `sign_in_pending`
//! keyed by the SHA-256 of a short-lived cookie (never a client-side flag): the
//! TOTP code (or a recovery code), then the change a reset forces, then the
//! enrolment the role requires; only then does a console session open.
//!
//! Failures count per account name (whether or not it exists) and per source
//! address, in the database so every node sees them: after `n` failures the
//! next attempt waits `2^(n-1)` seconds (at most a minute), and after
//! `[auth] lockout_after` failures within `[auth] lockout_minutes` the key is
//! locked for `lockout_minutes`. Every refusal answers the same message.

use std::net::IpAddr;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;

use crate::budget::AuditBudget;
use crate::domain::{Role, UserId};
use crate::events::Event;
use crate::store::{Credentials, Effects, PendingSignIn, User};

use super::{effects, Actor, Ops, OpsError, OpsResult, SignedIn};

/// The one answer to a refused sign-in: it does not say whether the account
/// exists, the password was wrong, or the key is locked.
pub const REFUSED: &str = "sign-in refused: wrong name, password or code, or too many attempts (wait and retry)";
/// The prefix of a pending sign-in's cookie.
const PENDING_PREFIX: &str = "psi_";
/// Length of the temporary password an admin's reset sets.
pub const TEMPORARY_PASSWORD_LEN: usize = 20;
/// Longest password hashed (argon2's cost grows with it; nobody types more).
const MAX_PASSWORD_LEN: usize = 1024;
/// TOTP: 30-second steps, 6 digits, HMAC-SHA-1 (what authenticator apps use).
const TOTP_STEP_SECS: i64 = 30;
const TOTP_DIGITS: u32 = 6;
/// Codes of the step before and after are accepted too (clock drift).
const TOTP_DRIFT_STEPS: i64 = 1;
/// A half-done sign-in expires after this long.
const PENDING_MINUTES: i64 = 5;
/// Recovery codes given at enrolment.
const RECOVERY_CODES: usize = 10;
/// Longest growing delay between attempts of one key.
const MAX_DELAY_SECS: i64 = 60;
/// Sign-in failures written to the trail per second, in all and per key.
const FAILURE_AUDITS_PER_SECOND: u64 = 20;
const FAILURE_AUDITS_PER_KEY_PER_SECOND: u64 = 2;
/// Longest name kept in a failure key or an audit event.
const MAX_NAME_CHARS: usize = 128;

/// What a correct password leads to.
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

/// A TOTP secret to enrol, shown once: base32 and as an `otpauth://` URI.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub secret: String,
    pub uri: String,
}

/// The sign-in failures audited: a flood cannot grow the trail faster than this.
fn failure_budget() -> &'static AuditBudget<String> {
    static BUDGET: OnceLock<AuditBudget<String>> = OnceLock::new();
    BUDGET.get_or_init(|| AuditBudget::new(FAILURE_AUDITS_PER_SECOND, FAILURE_AUDITS_PER_KEY_PER_SECOND))
}

/// Hashes a password with argon2id (the crate's default parameters, recorded
/// in the PHC string) and a random salt. CPU-bound: run off the async workers.
async fn hash_password(password: &str) -> OpsResult<String> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| OpsError::Unavailable(format!("password hashing failed: {e}")))
    })
    .await
    .map_err(|e| OpsError::Unavailable(format!("password hashing task failed: {e}")))?
}

/// Whether `password` matches `stored`. With no stored hash, a dummy one is
/// checked so an unknown account takes as long as a known one.
async fn verify_password(stored: Option<String>, password: &str) -> bool {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    let password = password.to_owned();
    let known = stored.is_some();
    let stored = stored.or_else(|| {
        DUMMY
            .get_or_init(|| {
                let salt = SaltString::generate(&mut rand::rngs::OsRng);
                Argon2::default()
                    .hash_password(b"portier-dummy-password", &salt)
                    .ok()
                    .map(|h| h.to_string())
            })
            .clone()
    });
    let checked = tokio::task::spawn_blocking(move || {
        let Some(stored) = stored else { return false };
        let Ok(parsed) = PasswordHash::new(&stored) else {
            tracing::error!("a stored password hash does not parse");
            return false;
        };
        Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()
    })
    .await
    .unwrap_or(false);
    known && checked
}

/// The TOTP code of `secret` (raw bytes) at `step`.
fn totp_at(secret: &[u8], step: i64) -> Option<u32> {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).ok()?;
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest.get(19)? & 0x0f);
    let bytes: [u8; 4] = digest.get(offset..offset + 4)?.try_into().ok()?;
    let value = u32::from_be_bytes(bytes) & 0x7fff_ffff;
    Some(value % 10u32.pow(TOTP_DIGITS))
}

/// The 30-second step of `at`.
pub fn totp_step(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(TOTP_STEP_SECS)
}

/// The code an authenticator app shows for a base32 `secret` at `at`
/// (public for tests and tools).
pub fn totp_code(secret_b32: &str, at: DateTime<Utc>) -> Option<String> {
    let secret = decode_secret(secret_b32)?;
    totp_at(&secret, totp_step(at)).map(|c| format!("{c:06}"))
}

fn decode_secret(secret_b32: &str) -> Option<Vec<u8>> {
    let cleaned: String = secret_b32
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    data_encoding::BASE32_NOPAD.decode(cleaned.as_bytes()).ok()
}

/// The step whose code `code` is, within the drift allowed around `at`.
fn matching_step(secret_b32: &str, code: &str, at: DateTime<Utc>) -> Option<i64> {
    let secret = decode_secret(secret_b32)?;
    let code: u32 = code.parse().ok()?;
    let now = totp_step(at);
    (now - TOTP_DRIFT_STEPS..=now + TOTP_DRIFT_STEPS).find(|s| totp_at(&secret, *s) == Some(code))
}

/// A six-digit code as typed (spaces allowed).
fn as_totp(code: &str) -> Option<String> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    (digits.len() == TOTP_DIGITS as usize && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// A recovery code as stored: lower case, without separators.
fn recovery_sha256(code: &str) -> String {
    let cleaned: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    crate::token::hash(&format!("portier-recovery:{cleaned}"))
}

/// Random text from an alphabet without look-alike characters.
fn random_text(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut bytes = vec![0u8; len];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| char::from(ALPHABET.get(usize::from(*b) % ALPHABET.len()).copied().unwrap_or(b'a')))
        .collect()
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

impl Ops {
    fn check_password_policy(&self, password: &str) -> OpsResult<()> {
        let n = password.chars().count();
        if n < self.rules.password_min_length {
            return Err(OpsError::bad_request(format!(
                "a password has at least {} characters",
                self.rules.password_min_length
            )));
        }
        if password.len() > MAX_PASSWORD_LEN {
            return Err(OpsError::bad_request(format!(
                "a password has at most {MAX_PASSWORD_LEN} bytes"
            )));
        }
        Ok(())
    }

    fn mfa_required(&self, role: Role) -> bool {
        self.rules.require_mfa.contains(&role)
    }

    /// Sets the actor's own password. If one is set, `current` must match it.
    pub async fn change_own_password(&self, who: &Actor, current: Option<&str>, new: &str) -> OpsResult<User> {
        self.check_password_policy(new)?;
        let creds = self.store.credentials(&who.id).await?;
        if creds.password_hash.is_some() && !verify_password(creds.password_hash.clone(), current.unwrap_or("")).await {
            return Err(OpsError::Unauthenticated("the current password is not right".into()));
        }
        self.store_password(who, &who.id, new, false, Event::PasswordChanged)
            .await
    }

    async fn store_password(
        &self,
        who: &Actor,
        id: &UserId,
        password: &str,
        must_change: bool,
        event: Event,
    ) -> OpsResult<User> {
        let hash = hash_password(password).await?;
        let record = effects(|u: &User| {
            Effects::audit(self.event(
                who,
                event,
                u.id.as_str(),
                serde_json::json!({"must_change": must_change}),
            ))
        });
        Ok(self.store.set_password(id, &hash, must_change, &record).await?)
    }

    /// An admin's reset: a temporary password (returned, shown once) that must
    /// be changed at the next sign-in.
    pub async fn reset_password(&self, who: &Actor, id: &UserId) -> OpsResult<String> {
        who.require(&[Role::Admin])?;
        let temporary = random_text(TEMPORARY_PASSWORD_LEN);
        self.store_password(who, id, &temporary, true, Event::PasswordReset)
            .await?;
        Ok(temporary)
    }

    /// A new TOTP secret for `user`, to show once. Nothing is stored until a
    /// first valid code confirms it ([`Ops::confirm_totp`]).
    pub fn new_totp(&self, user: &User) -> Enrolment {
        let mut raw = [0u8; 20];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        Self::enrolment_of(user, data_encoding::BASE32_NOPAD.encode(&raw))
    }

    /// The enrolment of a given secret (to show it again with a form's errors).
    pub fn enrolment_of(user: &User, secret: String) -> Enrolment {
        let label: String = url::form_urlencoded::byte_serialize(format!("Portier:{}", user.name).as_bytes()).collect();
        let uri = format!(
            "otpauth://totp/{label}?secret={secret}&issuer=Portier&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP_SECS}"
        );
        Enrolment { secret, uri }
    }

    /// Confirms an enrolment with a first valid code of `secret`; returns the
    /// recovery codes (shown once, stored hashed). An account that has a second
    /// factor already keeps it (an admin's reset comes first).
    pub async fn confirm_totp(&self, who: &Actor, secret: &str, code: &str) -> OpsResult<Vec<String>> {
        let creds = self.store.credentials(&who.id).await?;
        if creds.has_totp() {
            return Err(OpsError::conflict("a second factor is enrolled already"));
        }
        let now = self.now();
        let step = as_totp(code)
            .and_then(|c| matching_step(secret, &c, now))
            .ok_or_else(|| OpsError::bad_request("the code does not match the secret"))?;
        let codes: Vec<String> = (0..RECOVERY_CODES)
            .map(|_| {
                let c = random_text(10);
                format!("{}-{}", c.get(..5).unwrap_or_default(), c.get(5..).unwrap_or_default())
            })
            .collect();
        let hashed: Vec<String> = codes.iter().map(|c| recovery_sha256(c)).collect();
        let record = effects(|u: &User| {
            Effects::audit(self.event(
                who,
                Event::MfaEnrolled,
                u.id.as_str(),
                serde_json::json!({"method": "totp", "recovery_codes": RECOVERY_CODES}),
            ))
        });
        self.store
            .set_totp(&who.id, Some(secret), Some(now), Some(step), &hashed, &record)
            .await?;
        Ok(codes)
    }

    /// The failure keys of an attempt: the account name (existing or not) and
    /// the source address.
    fn failure_keys(name: &str, source: Option<IpAddr>) -> Vec<String> {
        let name: String = name.trim().to_lowercase().chars().take(MAX_NAME_CHARS).collect();
        let mut keys = vec![format!("account:{name}")];
        if let Some(ip) = source {
            keys.push(format!("source:{}", ip.to_canonical()));
        }
        keys
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
            let (at_last, _) = self.store.sign_in_failures(key, last - self.rules.lockout).await?;
            if at_last >= i64::from(self.rules.lockout_after) {
                return Ok(true);
            }
            if now < last + delay_after(n) {
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
        let name: String = name.chars().take(MAX_NAME_CHARS).collect();
        let source_ip = source.map(|ip| ip.to_canonical().to_string());
        let limit = i64::from(self.rules.lockout_after);
        for (key, n) in keys.iter().zip(&counts) {
            let (action, outcome) = if *n == limit {
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
            let event = crate::audit::AuditEvent::new(
                now,
                "unauthenticated",
                action,
                key,
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
        if self.throttled(&keys).await? {
            return Err(refused());
        }
        if password.len() > MAX_PASSWORD_LEN || name.len() > 4 * MAX_NAME_CHARS {
            return Err(self.sign_in_failed(&keys, name, source, "too_long").await);
        }
        let found = self.store.user_by_name(name.trim()).await?;
        if let Some(cfg) = self.directory_for(found.as_ref()) {
            return self.sign_in_directory(&cfg, &keys, name, password, found, source).await;
        }
        let stored = found.as_ref().and_then(|(_, c)| c.password_hash.clone());
        let right = verify_password(stored, password).await;
        let Some((user, creds)) = found.filter(|(u, _)| right && u.disabled_at.is_none()) else {
            return Err(self.sign_in_failed(&keys, name, source, "password").await);
        };
        if let Some(account) = keys.first() {
            self.store.clear_sign_in_failures(account).await?;
        }
        self.advance(user, &creds, false, source).await
    }

    /// The next stage of a sign-in whose password (and `totp_done`) passed.
    pub(super) async fn advance(
        &self,
        user: User,
        creds: &Credentials,
        totp_done: bool,
        source: Option<IpAddr>,
    ) -> OpsResult<PasswordSignIn> {
        let stage = if creds.has_totp() && !totp_done {
            "totp"
        } else if creds.must_change_password {
            "change_password"
        } else if self.mfa_required(user.role) && !creds.has_totp() {
            "enrol"
        } else {
            let method = if creds.has_totp() { "password+totp" } else { "password" };
            return Ok(PasswordSignIn::SignedIn(Box::new(
                self.open_console_session(user, source, method).await?,
            )));
        };
        let (cookie, id_sha256) = crate::token::generate_prefixed(PENDING_PREFIX);
        let now = self.now();
        let pending = PendingSignIn {
            id_sha256,
            user_id: user.id.clone(),
            stage: stage.to_owned(),
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
            Some((p, u)) if p.stage == stage => Ok((p, u)),
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
        if self.throttled(&keys).await? {
            return Err(refused());
        }
        let creds = self.store.credentials(&user.id).await?;
        let now = self.now();
        let accepted = if let Some(totp) = as_totp(code) {
            match creds.totp_secret.as_deref().and_then(|s| matching_step(s, &totp, now)) {
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
            return Err(self.sign_in_failed(&keys, &user.name, source, "second_factor").await);
        }
        self.store.end_pending_sign_in(&pending.id_sha256).await?;
        if let Some(account) = keys.first() {
            self.store.clear_sign_in_failures(account).await?;
        }
        self.advance(user, &creds, true, source).await
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
        self.advance(user, &creds, true, source).await
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
        Ok((self.advance(user, &creds, true, source).await?, codes))
    }

    /// Whether the account has a local password and a confirmed second factor.
    pub async fn sign_in_methods(&self, id: &UserId) -> OpsResult<(bool, bool)> {
        let c = self.store.credentials(id).await?;
        Ok((c.password_hash.is_some(), c.has_totp()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totp_matches_rfc_6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA-1, secret "12345678901234567890" (8 digits
        // there; the last 6 here).
        let secret = b"12345678901234567890";
        for (t, code8) in [
            (59, 94_287_082u32),
            (1_111_111_109, 7_081_804),
            (2_000_000_000, 69_279_037),
        ] {
            assert_eq!(totp_at(secret, t / 30), Some(code8 % 1_000_000), "t={t}");
        }
    }

    #[test]
    fn delays_grow_and_are_capped() {
        assert_eq!(delay_after(0), Duration::zero());
        assert_eq!(delay_after(1), Duration::seconds(1));
        assert_eq!(delay_after(3), Duration::seconds(4));
        assert_eq!(delay_after(40), Duration::seconds(MAX_DELAY_SECS));
    }

    #[test]
    fn recovery_codes_ignore_case_and_separators() {
        assert_eq!(recovery_sha256("abcde-fghij"), recovery_sha256(" ABCDE FGHIJ "));
    }
}
