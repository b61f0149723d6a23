//! Records of local passwords, second factors and sign-in attempts (issue 11).

use chrono::{DateTime, Utc};

use crate::domain::UserId;

/// What proves an account's identity at sign-in. Never shown, never logged
/// (its `Debug` says only what is set).
#[derive(Clone, Default)]
pub struct Credentials {
    /// A PHC string (argon2id with its parameters); none: no local password.
    pub password_hash: Option<String>,
    /// Set by an admin's reset: the next sign-in must change the password.
    pub must_change_password: bool,
    /// The TOTP secret in base32 (issue 13 encrypts it at rest).
    pub totp_secret: Option<String>,
    /// When the enrolment was confirmed by a first valid code.
    pub totp_enabled_at: Option<DateTime<Utc>>,
    /// The step of the last code accepted (codes of it or earlier are refused).
    pub totp_last_step: Option<i64>,
    /// The directory DN of an account of the hospital's directory (none: local).
    pub directory_dn: Option<String>,
}

impl Credentials {
    /// Whether a confirmed second factor is enrolled.
    pub fn has_totp(&self) -> bool {
        self.totp_secret.is_some() && self.totp_enabled_at.is_some()
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("password", &self.password_hash.is_some())
            .field("must_change_password", &self.must_change_password)
            .field("totp", &self.has_totp())
            .field("directory_dn", &self.directory_dn)
            .finish()
    }
}

/// A sign-in half done: the password was right, a second factor (or a new
/// password, or an enrolment) is still due. Keyed by the SHA-256 of a cookie,
/// stored so that any node can finish it and nothing client-side is trusted.
#[derive(Debug, Clone)]
pub struct PendingSignIn {
    pub id_sha256: String,
    pub user_id: UserId,
    /// What is due: `totp`, `change_password`, `enrol`; with `+token` when the
    /// first factor was an API token rather than a password.
    pub stage: String,
    pub created_at: DateTime<Utc>,
    pub source_ip: Option<String>,
}

impl PendingSignIn {
    /// The stage due, without the first factor.
    pub fn due(&self) -> &str {
        self.stage.split('+').next().unwrap_or_default()
    }

    /// Whether the first factor was an API token.
    pub fn after_token(&self) -> bool {
        self.stage.ends_with("+token")
    }
}
