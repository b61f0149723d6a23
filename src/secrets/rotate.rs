//! `portier secrets rotate`: every secret at rest re-encrypted under a new
//! master key. Everything is decrypted first (with the current key or the new
//! one, chosen by the key id each envelope carries), so a wrong current key
//! changes nothing; then each file is replaced atomically and each database
//! row by compare-and-swap. An interrupted rotation is finished by running it
//! again: what is under the new key already is left alone. Secrets in clear
//! (no master key before) are encrypted: this is also how a setup made
//! without a master key is moved to one.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::audit::AuditEvent;
use crate::config::Settings;
use crate::events::Event;
use crate::store::Store;

use super::envelope::{self, Purpose, VALUE_PREFIX};
use super::key_file::{self, KeyFileState};
use super::master_key::{KeyId, MasterKey};
use super::totp::{self, TotpCounts};
use super::{config_secrets, AtRest, SecretsError};

/// What a rotation did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RotateReport {
    /// The new key's id.
    pub new_key: KeyId,
    /// Key files rewritten under the new key, with how each was stored before.
    pub key_files: Vec<(PathBuf, KeyFileState)>,
    /// Encrypted values of the configuration file rewritten.
    pub config_values: usize,
    /// Configuration secrets still in clear (to encrypt with `portier secrets encrypt`).
    pub clear_config_values: Vec<String>,
    /// The database's TOTP secrets.
    pub totp: Option<TotpCounts>,
}

/// The private key files of a setup, each once: those the configuration
/// names, then, beside them, the development server CA's key `init` writes
/// (which no node reads) and any `*.key` file already sealed by Portier —
/// never another service's key that happens to share the directory.
pub fn key_paths(settings: &Settings) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for p in [
        &settings.gateway.key,
        &settings.api.key,
        &settings.gateway.vendor_ca_key,
    ] {
        if !out.contains(p) {
            out.push(p.clone());
        }
    }
    let dirs: Vec<PathBuf> = out.iter().filter_map(|p| p.parent().map(Path::to_path_buf)).collect();
    let mut beside = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            let named_key = path.extension().is_some_and(|e| e == "key") && path.is_file();
            let ours = path.file_name().is_some_and(|n| n == INIT_SERVER_CA_KEY) || sealed_by_portier(&path);
            if named_key && ours && !out.contains(&path) && !beside.contains(&path) && holds_private_key(&path) {
                beside.push(path);
            }
        }
    }
    beside.sort();
    out.extend(beside);
    out
}

/// The file name of the development server CA's key (`pki::DevPkiPaths`).
const INIT_SERVER_CA_KEY: &str = "server-ca.key";

fn sealed_by_portier(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.contains(&format!("-----BEGIN {}-----", key_file::PEM_LABEL)))
}

fn holds_private_key(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| {
        t.contains(&format!("-----BEGIN {}-----", key_file::PEM_LABEL))
            || key_file::CLEAR_LABELS
                .iter()
                .any(|l| t.contains(&format!("-----BEGIN {l}-----")))
    })
}

/// Re-encrypts every secret of the setup whose configuration file is
/// `config_path` (read into `settings`, not unsealed) under `new`; recorded in
/// the audit trail as `secrets.rotated` by `actor` when a store is given.
pub async fn rotate(
    config_path: &Path,
    settings: &Settings,
    current: &AtRest,
    new: &MasterKey,
    store: Option<&dyn Store>,
    actor: &str,
) -> Result<RotateReport, SecretsError> {
    let mut keys = current.keys();
    keys.push(new);

    // 1. Read everything; nothing is written unless all of it decrypts.
    let mut files = Vec::new();
    for path in key_paths(settings) {
        let was = key_file::state(&path)?;
        if was == KeyFileState::Absent {
            // The vendor CA key may be kept offline.
            tracing::info!(path = %path.display(), "no key file here; nothing to re-encrypt");
            continue;
        }
        let clear = key_file::read(&path, &keys)?;
        files.push((path, was, clear));
    }
    let config_text = std::fs::read_to_string(config_path).map_err(|err| SecretsError::Io {
        path: config_path.to_owned(),
        err,
    })?;
    let (new_config, config_values) = reseal_config_text(&config_text, &keys, new)?;
    let clear_config_values: Vec<String> = config_secrets(&mut settings.clone())
        .into_iter()
        .filter(|(_, v)| !envelope::is_sealed_value(v.expose()))
        .map(|(name, _)| name)
        .collect();
    if let Some(store) = store {
        totp::reseal(store, &keys, None).await?;
    }

    // 2. Write, each file atomically.
    let mut key_files = Vec::new();
    for (path, was, clear) in files {
        let sealed = key_file::seal_pem(new, &clear, &path)?;
        key_file::write_atomic(&path, &sealed)?;
        key_files.push((path, was));
    }
    if config_values > 0 {
        key_file::write_atomic(config_path, &new_config)?;
    }
    let totp = match store {
        Some(store) => Some(totp::reseal(store, &keys, Some(new)).await?),
        None => None,
    };
    let report = RotateReport {
        new_key: new.id(),
        key_files,
        config_values,
        clear_config_values,
        totp,
    };
    if let Some(store) = store {
        let details = serde_json::json!({
            "old_key": current.key().map(|k| k.id()),
            "new_key": report.new_key,
            "key_files": report.key_files.iter().map(|(p, _)| p.display().to_string()).collect::<Vec<_>>(),
            "config_values": report.config_values,
            "totp_secrets": report.totp.map(|t| t.encrypted),
        });
        let event = AuditEvent::new(
            crate::clock::Clock::now(&crate::clock::SystemClock),
            actor,
            Event::SecretsRotated,
            "secrets",
            "success",
            details,
        );
        store.append_audit(&event).await?;
    }
    Ok(report)
}

/// The configuration text with each `enc:v1:…` value re-encrypted under
/// `new` (the rest of the text, comments included, as it was), and how many
/// were rewritten. Rewritten textually since an encrypted value is a unique
/// run of base64 after its prefix.
fn reseal_config_text(text: &str, keys: &[&MasterKey], new: &MasterKey) -> Result<(String, usize), SecretsError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut count = 0;
    while let Some(at) = rest.find(VALUE_PREFIX) {
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        let len = VALUE_PREFIX.len()
            + from
                .get(VALUE_PREFIX.len()..)
                .unwrap_or_default()
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=')))
                .unwrap_or(from.len() - VALUE_PREFIX.len());
        let (token, after) = from.split_at(len);
        let name = || format!("configuration value {}…", token.get(..20).unwrap_or(token));
        let clear: Zeroizing<String> = envelope::open_value(keys, Purpose::ConfigValue, token)
            .map_err(|err| SecretsError::ConfigValue { name: name(), err })?;
        let resealed = envelope::seal_value(new, Purpose::ConfigValue, &clear)
            .map_err(|err| SecretsError::ConfigValue { name: name(), err })?;
        out.push_str(&resealed);
        count += 1;
        rest = after;
    }
    out.push_str(rest);
    Ok((out, count))
}

#[cfg(test)]
mod tests {
    use super::super::master_key::{generate, KeySource};
    use super::*;

    fn key() -> MasterKey {
        MasterKey::parse(&generate(), KeySource::File { path: "k".into() }).unwrap()
    }

    #[test]
    fn config_values_are_rewritten_in_place() {
        let (old, new) = (key(), key());
        let a = envelope::seal_value(&old, Purpose::ConfigValue, "first secret value").unwrap();
        let b = envelope::seal_value(&old, Purpose::ConfigValue, "second secret value").unwrap();
        let text = format!("# keep me\n[x]\nsecret = \"{a}\" # and me\nother = '{b}'\n");
        let (out, n) = reseal_config_text(&text, &[&old, &new], &new).unwrap();
        assert_eq!(n, 2);
        assert!(out.starts_with("# keep me\n[x]\nsecret = \"enc:v1:") && out.contains("\" # and me\nother = 'enc:v1:"));
        assert!(!out.contains(&a) && !out.contains(&b));
        let values: Vec<&str> = out.split(['"', '\'']).filter(|s| s.starts_with(VALUE_PREFIX)).collect();
        assert_eq!(values.len(), 2);
        assert_eq!(
            envelope::open_value(&[&new], Purpose::ConfigValue, values[1])
                .unwrap()
                .as_str(),
            "second secret value"
        );
        assert!(reseal_config_text(&text, &[&key()], &new).is_err());
    }
}
