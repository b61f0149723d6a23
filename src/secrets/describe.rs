//! What the security dossier says of secrets at rest, read from the setup as
//! it is (the files and the database), not from what it should be.

use serde::Serialize;

use crate::config::Settings;
use crate::store::Store;

use super::envelope::{self, ALGORITHM};
use super::key_file::{self, KeyFileState};
use super::master_key::{KeyId, KeySource};
use super::{config_secrets, AtRest, SecretsError};

/// How the master key is used: no derivation function, since it is random.
pub const KEY_DERIVATION: &str = "none: the master key is 32 random bytes (256 bits) used as the AES-256 key; \
     each secret has its own random nonce, and associated data naming what it is for (the key file's role, the \
     configuration field, the account of a TOTP secret)";

/// At-rest encryption as configured.
#[derive(Debug, Clone, Serialize)]
pub struct AtRestReport {
    /// The cipher (e.g. AES-256-GCM).
    pub algorithm: &'static str,
    /// How the encryption key comes from the master key.
    pub key_derivation: &'static str,
    /// The master key's source and id, if one is configured.
    pub master_key: Option<MasterKeyInfo>,
    /// Each secret and whether it is encrypted.
    pub secrets: Vec<SecretAtRest>,
    /// What is never stored in a recoverable form (hashes only).
    pub hashed_only: Vec<&'static str>,
}

/// The master key's public facts.
#[derive(Debug, Clone, Serialize)]
pub struct MasterKeyInfo {
    pub source: KeySource,
    pub id: KeyId,
}

/// One secret (or family of secrets) and how it is stored.
#[derive(Debug, Clone, Serialize)]
pub struct SecretAtRest {
    /// What it is, e.g. `private key`, `notify.webhooks[0].secret`, `TOTP secrets`.
    pub what: String,
    /// Where: a file path, `portier.toml`, `database`.
    pub location: String,
    pub state: SecretState,
    /// For a family (TOTP secrets): how many are in this state.
    pub count: Option<usize>,
    /// Encrypted in the legacy format (`enc:v1:`, bound to the kind of secret
    /// only, not to its field or role): `portier secrets rotate` upgrades it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub legacy: bool,
}

/// How a secret is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretState {
    Encrypted,
    Clear,
    Absent,
}

impl From<KeyFileState> for SecretState {
    fn from(s: KeyFileState) -> Self {
        match s {
            KeyFileState::Encrypted => Self::Encrypted,
            KeyFileState::Clear => Self::Clear,
            KeyFileState::Absent => Self::Absent,
        }
    }
}

/// Describes at-rest encryption of the setup: `settings` as read from the file
/// (not unsealed), the master key this process found, and the database if it
/// can be read (TOTP secrets).
pub async fn describe(
    settings: &Settings,
    at_rest: &AtRest,
    store: Option<&dyn Store>,
) -> Result<AtRestReport, SecretsError> {
    let mut secrets = Vec::new();
    let labels = [
        (&settings.gateway.key, "gateway private key"),
        (&settings.api.key, "API private key"),
        (&settings.gateway.vendor_ca_key, "vendor CA private key"),
    ];
    for path in super::rotate::key_paths(settings) {
        let named: Vec<&str> = labels.iter().filter(|(p, _)| **p == path).map(|(_, w)| *w).collect();
        let what = if named.is_empty() {
            "private key (not used by the node)".to_owned()
        } else {
            named.join(" and ")
        };
        let state = key_file::state(&path)?;
        secrets.push(SecretAtRest {
            what,
            location: path.display().to_string(),
            legacy: state == KeyFileState::Encrypted && key_file::is_legacy(&path),
            state: state.into(),
            count: None,
        });
    }
    for (name, _, value) in config_secrets(&mut settings.clone()) {
        let state = if envelope::is_sealed_value(value.expose()) {
            SecretState::Encrypted
        } else {
            SecretState::Clear
        };
        secrets.push(SecretAtRest {
            what: name,
            location: "configuration file".into(),
            state,
            count: None,
            legacy: envelope::is_legacy_value(value.expose()),
        });
    }
    if let Some(store) = store {
        let (mut enc, mut legacy, mut clear) = (0, 0, 0);
        for (_, c) in store.all_credentials().await? {
            match c.totp_secret {
                Some(s) if envelope::is_legacy_value(&s) => legacy += 1,
                Some(s) if envelope::is_sealed_value(&s) => enc += 1,
                Some(_) => clear += 1,
                None => {}
            }
        }
        for (state, is_legacy, n) in [
            (SecretState::Encrypted, false, enc),
            (SecretState::Encrypted, true, legacy),
            (SecretState::Clear, false, clear),
        ] {
            if n > 0 {
                secrets.push(SecretAtRest {
                    what: "TOTP secrets of accounts".into(),
                    location: "database (api_users.totp_secret)".into(),
                    state,
                    count: Some(n),
                    legacy: is_legacy,
                });
            }
        }
    }
    Ok(AtRestReport {
        algorithm: ALGORITHM,
        key_derivation: KEY_DERIVATION,
        master_key: at_rest.key().map(|k| MasterKeyInfo {
            source: k.source().clone(),
            id: k.id(),
        }),
        secrets,
        hashed_only: vec![
            "API tokens (SHA-256)",
            "local passwords (argon2id)",
            "recovery codes (SHA-256)",
            "console session ids (SHA-256)",
        ],
    })
}
