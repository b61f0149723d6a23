//! Local passwords and the second factor of an account (issue 11): the
//! person's own changes and enrolment, and an admin's resets. Signing in with
//! them is in `sign_in`; the primitives (argon2id, TOTP) in `crate::credentials`.

use crate::credentials::{
    as_totp, hash_password, matching_step, new_recovery_code, new_totp_secret, random_text, recovery_sha256,
    valid_totp_secret, verify_password, MAX_PASSWORD_LEN, TOTP_DIGITS, TOTP_STEP_SECS,
};
use crate::domain::{Role, UserId};
use crate::events::Event;
use crate::rights::Function;
use crate::store::{Effects, User};

use super::{effects, Actor, Ops, OpsError, OpsResult};

/// Length of the temporary password an admin's reset sets.
pub const TEMPORARY_PASSWORD_LEN: usize = 20;
/// Recovery codes given at enrolment.
const RECOVERY_CODES: usize = 10;

/// A TOTP secret to enrol, shown once: base32 and as an `otpauth://` URI.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub secret: String,
    pub uri: String,
}

impl Ops {
    pub(super) fn check_password_policy(&self, password: &str) -> OpsResult<()> {
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

    pub(super) fn mfa_required(&self, role: Role) -> bool {
        self.rules.require_mfa.contains(&role)
    }

    /// Sets the actor's own password. If one is set, `current` must match it.
    pub async fn change_own_password(&self, who: &Actor, current: Option<&str>, new: &str) -> OpsResult<User> {
        who.may(Function::ManageOwnAccount)?;
        self.check_password_policy(new)?;
        let creds = self.store.credentials(&who.id).await?;
        if creds.directory_dn.is_some() {
            // A local password would outlive the directory's say (a person
            // removed there could still sign in here if `[auth.ldap]` went).
            return Err(OpsError::conflict(
                "this account signs in with the hospital's directory: its password is changed there",
            ));
        }
        if creds.password_hash.is_some() && !verify_password(creds.password_hash.clone(), current.unwrap_or("")).await {
            return Err(OpsError::Unauthenticated("the current password is not right".into()));
        }
        self.store_password(who, &who.id, new, false, Event::PasswordChanged)
            .await
    }

    pub(super) async fn store_password(
        &self,
        who: &Actor,
        id: &UserId,
        password: &str,
        must_change: bool,
        event: Event,
    ) -> OpsResult<User> {
        let hash = hash_password(password)
            .await
            .map_err(|e| OpsError::Unavailable(e.to_string()))?;
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
    /// be changed at the next sign-in. The account's console sessions end (a
    /// reset often follows a suspected theft); its tokens stay. Directory
    /// accounts' passwords are the directory's, and an admin resets another
    /// admin's or a person's password, never their own (they change it).
    pub async fn reset_password(&self, who: &Actor, id: &UserId) -> OpsResult<String> {
        who.may(Function::ResetPassword)?;
        self.check_resettable(who, id, "password").await?;
        let temporary = random_text(TEMPORARY_PASSWORD_LEN);
        self.store_password(who, id, &temporary, true, Event::PasswordReset)
            .await?;
        self.end_sessions_of(who, id, None, "password_reset").await?;
        self.guard().forget_account(id);
        Ok(temporary)
    }

    /// An admin's reset of a lost second factor: the TOTP secret and the
    /// recovery codes are removed, the account's console sessions end, and its
    /// next sign-in enrols again if its role requires a second factor.
    pub async fn reset_second_factor(&self, who: &Actor, id: &UserId) -> OpsResult<User> {
        who.may(Function::ResetSecondFactor)?;
        let creds = self.check_resettable(who, id, "second factor").await?;
        if !creds.has_totp() {
            return Err(OpsError::conflict("this account has no second factor to reset"));
        }
        let record = effects(|u: &User| {
            Effects::audit(self.event(
                who,
                Event::MfaReset,
                u.id.as_str(),
                serde_json::json!({"name": u.name, "role": u.role}),
            ))
        });
        let user = self.store.set_totp(id, None, None, None, &[], &record).await?;
        self.end_sessions_of(who, id, None, "second_factor_reset").await?;
        self.guard().forget_account(id);
        Ok(user)
    }

    /// The credentials of an account an admin may reset (`what`, for the refusal).
    async fn check_resettable(&self, who: &Actor, id: &UserId, what: &str) -> OpsResult<crate::store::Credentials> {
        if *id == who.id {
            return Err(OpsError::Forbidden(format!(
                "an admin does not reset their own {what}: another admin does (or change it on your account page)"
            )));
        }
        let creds = self.store.credentials(id).await?;
        if creds.directory_dn.is_some() && what == "password" {
            return Err(OpsError::conflict(
                "this account signs in with the hospital's directory: its password is changed there",
            ));
        }
        Ok(creds)
    }

    /// A new TOTP secret for `user`, to show once. Nothing is stored until a
    /// first valid code confirms it ([`Ops::confirm_totp`]).
    pub fn new_totp(&self, user: &User) -> Enrolment {
        Self::enrolment_of(user, new_totp_secret())
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
        who.may(Function::ManageOwnAccount)?;
        let creds = self.store.credentials(&who.id).await?;
        if creds.has_totp() {
            return Err(OpsError::conflict("a second factor is enrolled already"));
        }
        if !valid_totp_secret(secret) {
            return Err(OpsError::bad_request(
                "this secret is not one Portier made: start the enrolment again",
            ));
        }
        let now = self.now();
        let step = as_totp(code)
            .and_then(|c| matching_step(secret, &c, now))
            .ok_or_else(|| OpsError::bad_request("the code does not match the secret"))?;
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
        let hashed: Vec<String> = codes.iter().map(|c| recovery_sha256(c)).collect();
        let record = effects(|u: &User| {
            Effects::audit(self.event(
                who,
                Event::MfaEnrolled,
                u.id.as_str(),
                serde_json::json!({"method": "totp", "recovery_codes": RECOVERY_CODES}),
            ))
        });
        let stored = self.rules.at_rest.seal_totp(who.id.as_str(), secret).map_err(|e| {
            tracing::error!(error = %e, "a TOTP secret could not be encrypted");
            OpsError::Unavailable("the second factor could not be stored".into())
        })?;
        self.store
            .set_totp(&who.id, Some(&stored), Some(now), Some(step), &hashed, &record)
            .await?;
        Ok(codes)
    }

    /// Whether the account has a local password and a confirmed second factor.
    pub async fn sign_in_methods(&self, id: &UserId) -> OpsResult<(bool, bool)> {
        let c = self.store.credentials(id).await?;
        Ok((c.password_hash.is_some(), c.has_totp()))
    }
}
