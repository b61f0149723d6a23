//! Secrets at rest (DESIGN.md invariant 6, docs/secrets.md): private keys,
//! configuration secrets and TOTP secrets encrypted with AES-256-GCM under a
//! master key that is not stored beside them.
//!
//! - [`master_key`]: the key's format and where it is found;
//! - [`envelope`]: the one encryption (AES-256-GCM, purpose-bound);
//! - [`key_file`]: encrypted PEM key files, atomic rewrites;
//! - [`totp`]: the accounts' TOTP secrets in the database;
//! - [`rotate`]: re-encryption under a new master key;
//! - [`describe`]: what is encrypted, for the dossier.

pub mod describe;
pub mod envelope;
pub mod key_file;
pub mod master_key;
pub mod rotate;
pub mod totp;

use std::sync::Arc;

use zeroize::Zeroizing;

use crate::config::{ConfigError, Settings};
use crate::redact::Secret;
pub use describe::{describe, AtRestReport};
use envelope::{ConfigField, EnvelopeError, KeyRole, Purpose};
pub use master_key::{KeyId, KeySource, MasterKey, MasterKeyError};

/// What stops the node (or a command) because of secrets at rest.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error(transparent)]
    MasterKey(#[from] MasterKeyError),
    #[error("the configuration value {name} could not be decrypted: {err}")]
    ConfigValue { name: String, err: EnvelopeError },
    #[error(transparent)]
    KeyFile(#[from] key_file::KeyFileError),
    #[error("the TOTP secrets of {} account(s) ({}) could not be decrypted: {err}", accounts.len(), accounts.join(", "))]
    Totp { accounts: Vec<String>, err: EnvelopeError },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("database: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("{path}: {err}")]
    Io {
        path: std::path::PathBuf,
        err: std::io::Error,
    },
    // The line is not quoted: it may hold a secret.
    #[error("{}: not TOML (syntax error at line {line}, column {column})", path.display())]
    ConfigSyntax {
        path: std::path::PathBuf,
        line: usize,
        column: usize,
    },
    #[error(
        "refused: {} node(s) may be running on this database: {}. A running node keeps the old master key: \
         it would write TOTP secrets under it during the rotation and could not read what the rotation \
         re-encrypts. Stop every node first (systemctl stop portier), then run rotate again; a node that \
         died without a clean stop counts as running until database.node_stale_secs ({stale_secs} s) \
         have passed since its last heartbeat",
        nodes.len(),
        nodes.join(", ")
    )]
    NodesRunning { nodes: Vec<String>, stale_secs: u64 },
    #[error("refused before any change: {} cannot be replaced: {err}; fix it and run rotate again", path.display())]
    NotReplaceable {
        path: std::path::PathBuf,
        err: std::io::Error,
    },
    #[error(
        "{} changed since rotate read it (a renewed key, an edited configuration?): not overwritten",
        path.display()
    )]
    ChangedMeanwhile { path: std::path::PathBuf },
    #[error(
        "rotation incomplete: the files are under the new key, but the TOTP secrets of {} account(s) ({}) \
         are not (written during the rotation by a node that still had the old key?): keep both keys, stop \
         every node, and run `portier secrets rotate` again with the same current and new keys",
        accounts.len(),
        accounts.join(", ")
    )]
    TotpNotUnderNewKey { accounts: Vec<String> },
    #[error(
        "rotation incomplete: {} {} under the new key, {} not yet (still under the old key, or in clear); keep \
         both keys, fix the cause ({cause}), and run `portier secrets rotate` again with the same current and new \
         keys: it reads each secret with whichever of them it was sealed under and finishes",
        written.join(", "),
        if written.len() == 1 { "is" } else { "are" },
        pending.join(", ")
    )]
    Incomplete {
        written: Vec<String>,
        pending: Vec<String>,
        cause: Box<SecretsError>,
    },
}

/// `[secrets]`: where the master key is kept when it is neither a systemd
/// credential nor in `PORTIER_MASTER_KEY`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// A file holding the master key (base64 of 32 bytes), readable by the
    /// service's user only (refused otherwise). Relative to the configuration
    /// file's directory. Keep it off the disk or backup the keys are on.
    pub master_key_file: Option<std::path::PathBuf>,
}

/// The master key this process has, if any: what encrypts and decrypts
/// secrets at rest. Cheap to clone; `Debug` shows the key's id and source only.
#[derive(Debug, Clone, Default)]
pub struct AtRest {
    key: Option<Arc<MasterKey>>,
}

impl AtRest {
    /// No master key: secrets stay in clear, encrypted ones cannot be read.
    pub fn none() -> Self {
        Self::default()
    }

    /// With this master key.
    pub fn with_key(key: MasterKey) -> Self {
        Self {
            key: Some(Arc::new(key)),
        }
    }

    /// Finds the master key as configured (systemd credential, environment, key file).
    pub fn locate(config: &SecretsConfig) -> Result<Self, MasterKeyError> {
        let key = master_key::locate(config.master_key_file.as_deref(), |n| std::env::var(n).ok())?;
        Ok(Self { key: key.map(Arc::new) })
    }

    /// The master key, if one is configured.
    pub fn key(&self) -> Option<&MasterKey> {
        self.key.as_deref()
    }

    /// The keys envelopes may be opened with (none or one).
    pub fn keys(&self) -> Vec<&MasterKey> {
        self.key().into_iter().collect()
    }

    /// A TOTP secret as stored: encrypted for `account` if a master key is
    /// configured, in clear otherwise.
    pub fn seal_totp(&self, account: &str, secret: &str) -> Result<String, EnvelopeError> {
        match self.key() {
            Some(k) => envelope::seal_value(k, Purpose::Totp(account), secret),
            None => Ok(secret.to_owned()),
        }
    }

    /// A stored TOTP secret in clear. A clear one is read only when no master
    /// key is configured: with one, every secret is encrypted at start (or by
    /// `portier secrets rotate`), so a clear one was written behind its back.
    pub fn open_totp(&self, account: &str, stored: &str) -> Result<Zeroizing<String>, EnvelopeError> {
        if envelope::is_sealed_value(stored) {
            return envelope::open_value(&self.keys(), Purpose::Totp(account), stored);
        }
        match self.key() {
            None => Ok(Zeroizing::new(stored.to_owned())),
            Some(_) => Err(EnvelopeError::Malformed),
        }
    }

    /// A private key file's clear PEM; an encrypted one must have been
    /// encrypted for `role`.
    pub fn read_key_file(
        &self,
        path: &std::path::Path,
        role: KeyRole,
    ) -> Result<Zeroizing<String>, key_file::KeyFileError> {
        key_file::read(path, role, &self.keys())
    }
}

/// The configuration's secret values: their name (with a webhook's index),
/// field, and value, for reading or rewriting.
pub fn config_secrets(settings: &mut Settings) -> Vec<(String, ConfigField, &mut Secret<String>)> {
    let mut out = Vec::new();
    for (i, hook) in settings.notify.webhooks.iter_mut().enumerate() {
        out.push((
            format!("notify.webhooks[{i}].secret"),
            ConfigField::WebhookSecret,
            &mut hook.secret,
        ));
    }
    if let Some(pw) = settings.auth.ldap.as_mut().and_then(|l| l.bind_password.as_mut()) {
        out.push(("auth.ldap.bind_password".to_owned(), ConfigField::BindPassword, pw));
    }
    out
}

/// The names of the configuration's secrets that are in clear.
pub fn clear_config_secrets(settings: &Settings) -> Vec<String> {
    config_secrets(&mut settings.clone())
        .into_iter()
        .filter(|(_, _, v)| !envelope::is_sealed_value(v.expose()))
        .map(|(name, _, _)| name)
        .collect()
}

/// The secrets of the setup still in the legacy format (`enc:v1:` values,
/// version 1 key files), which bind no purpose: the configuration fields by
/// name, then the key files by path. `portier secrets rotate` upgrades them.
pub fn legacy_secrets(settings: &Settings) -> Vec<String> {
    let mut out: Vec<String> = config_secrets(&mut settings.clone())
        .into_iter()
        .filter(|(_, _, v)| envelope::is_legacy_value(v.expose()))
        .map(|(name, _, _)| name)
        .collect();
    out.extend(
        rotate::key_paths(settings)
            .into_iter()
            .filter(|p| key_file::is_legacy(p))
            .map(|p| p.display().to_string()),
    );
    out
}

/// The settings with their encrypted values (`enc:v2:…`, legacy `enc:v1:…`)
/// decrypted, then validated again as the values in clear. A value that does
/// not decrypt is an error naming it; one encrypted for another field (moved
/// there) says so.
pub fn unseal_settings(settings: &Settings, at_rest: &AtRest) -> Result<Settings, SecretsError> {
    let mut out = settings.clone();
    let keys = at_rest.keys();
    for (name, field, value) in config_secrets(&mut out) {
        if envelope::is_sealed_value(value.expose()) {
            let clear = envelope::open_config_value(&keys, field, value.expose())
                .map_err(|err| SecretsError::ConfigValue { name, err })?;
            *value = Secret::new(clear.as_str().to_owned());
        }
    }
    out.validate()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MasterKey {
        MasterKey::parse(
            &master_key::generate(),
            KeySource::Environment {
                variable: "TEST".into(),
            },
        )
        .unwrap()
    }

    fn settings_with_hook(secret: &str) -> Settings {
        let text = format!(
            "[gateway]\nnode = \"n1\"\n[[notify.webhooks]]\nurl = \"https://hooks.example/x\"\nsecret = \"{secret}\"\n"
        );
        Settings::from_toml(&text, std::path::Path::new("/etc/portier"), std::iter::empty()).unwrap()
    }

    #[test]
    fn encrypted_config_values_decrypt_or_name_themselves() {
        let k = key();
        let sealed = envelope::seal_value(
            &k,
            Purpose::Config(ConfigField::WebhookSecret),
            "a webhook secret of some length",
        )
        .unwrap();
        let settings = settings_with_hook(&sealed);
        let open = unseal_settings(&settings, &AtRest::with_key(k)).unwrap();
        assert_eq!(
            open.notify.webhooks[0].secret.expose(),
            "a webhook secret of some length"
        );
        let err = unseal_settings(&settings, &AtRest::with_key(key()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("notify.webhooks[0].secret") && err.contains("wrong master key"),
            "{err}"
        );
        let err = unseal_settings(&settings, &AtRest::none()).unwrap_err().to_string();
        assert!(err.contains("no master key is configured"), "{err}");
    }

    #[test]
    fn a_sealed_bind_password_pasted_as_a_webhook_secret_is_refused_naming_the_field() {
        let k = key();
        let password = envelope::seal_value(
            &k,
            Purpose::Config(ConfigField::BindPassword),
            "a bind password of some length",
        )
        .unwrap();
        let settings = settings_with_hook(&password);
        let err = unseal_settings(&settings, &AtRest::with_key(k))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("notify.webhooks[0].secret could not be decrypted")
                && err.contains("encrypted for config:auth.ldap.bind_password"),
            "{err}"
        );
    }

    #[test]
    fn legacy_secrets_are_named() {
        let k = key();
        let v1 = envelope::seal_legacy_value(&k, Purpose::Config(ConfigField::WebhookSecret), "an old webhook secret");
        assert_eq!(legacy_secrets(&settings_with_hook(&v1)), ["notify.webhooks[0].secret"]);
        let v2 = envelope::seal_value(&k, Purpose::Config(ConfigField::WebhookSecret), "a new webhook secret").unwrap();
        assert!(legacy_secrets(&settings_with_hook(&v2)).is_empty());
    }

    #[test]
    fn clear_totp_secrets_are_read_only_without_a_master_key() {
        let k = AtRest::with_key(key());
        let sealed = k.seal_totp("u1", "JBSWY3DPEHPK3PXP").unwrap();
        assert_eq!(k.open_totp("u1", &sealed).unwrap().as_str(), "JBSWY3DPEHPK3PXP");
        assert!(k.open_totp("u2", &sealed).is_err());
        assert!(k.open_totp("u1", "JBSWY3DPEHPK3PXP").is_err());
        let none = AtRest::none();
        assert_eq!(none.seal_totp("u1", "JBSW").unwrap(), "JBSW");
        assert_eq!(none.open_totp("u1", "JBSW").unwrap().as_str(), "JBSW");
        assert!(none.open_totp("u1", &sealed).is_err());
    }
}
