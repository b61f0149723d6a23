//! The accounts' TOTP secrets in the database, encrypted for their account
//! (the account id is the envelope's associated data, so a secret copied to
//! another row does not decrypt).
//!
//! [`reseal`] is what the node runs at start and `portier secrets rotate` runs
//! with the new key: every stored secret must decrypt (fail closed), and those
//! in clear or under another key are rewritten under the key given. It is not
//! a use case of `ops`: no person acts, the secrets stay the same, and nothing
//! is audited per account.

use crate::store::Store;

use super::envelope::{self, is_sealed_value, Purpose};
use super::master_key::MasterKey;
use super::SecretsError;

/// What [`reseal`] found and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TotpCounts {
    /// Secrets stored encrypted (after the run).
    pub encrypted: usize,
    /// Secrets stored in clear (after the run; only without a master key).
    pub clear: usize,
    /// Secrets rewritten by this run.
    pub rewritten: usize,
}

/// Checks that every stored TOTP secret decrypts with one of `open_with` (or
/// is in clear), then, if `seal_with` is given, rewrites under it those in
/// clear or under another key, and with `upgrade_legacy` those in the legacy
/// format (`enc:v1:`; `rotate` does, a node's start does not, so that a node
/// of the previous version sharing the database still reads them). Nothing is
/// written unless every secret reads.
pub async fn reseal(
    store: &dyn Store,
    open_with: &[&MasterKey],
    seal_with: Option<&MasterKey>,
    upgrade_legacy: bool,
) -> Result<TotpCounts, SecretsError> {
    let mut failed = Vec::new();
    let mut first_err = None;
    let mut todo = Vec::new();
    let mut counts = TotpCounts::default();
    for (id, creds) in store.all_credentials().await? {
        let Some(stored) = creds.totp_secret else { continue };
        let clear = if is_sealed_value(&stored) {
            match envelope::open_value(open_with, Purpose::Totp(id.as_str()), &stored) {
                Ok(clear) => {
                    let current = envelope::value_envelope(&stored)
                        .and_then(|e| envelope::key_id_of(&e))
                        .ok();
                    let legacy = upgrade_legacy && envelope::is_legacy_value(&stored);
                    if seal_with.is_none_or(|k| Some(k.id()) == current && !legacy) {
                        counts.encrypted += 1;
                        continue;
                    }
                    clear
                }
                Err(e) => {
                    failed.push(id.to_string());
                    first_err.get_or_insert(e);
                    continue;
                }
            }
        } else if seal_with.is_none() {
            counts.clear += 1;
            continue;
        } else {
            zeroize::Zeroizing::new(stored.clone())
        };
        todo.push((id, stored, clear));
    }
    if let Some(err) = first_err {
        return Err(SecretsError::Totp { accounts: failed, err });
    }
    let Some(key) = seal_with else { return Ok(counts) };
    for (id, old, clear) in todo {
        let new = envelope::seal_value(key, Purpose::Totp(id.as_str()), &clear).map_err(|err| SecretsError::Totp {
            accounts: vec![id.to_string()],
            err,
        })?;
        // Changed meanwhile (a reset, a new enrolment): that write used the
        // running node's key already.
        if store.replace_totp_secret(&id, &old, &new).await? {
            counts.rewritten += 1;
            counts.encrypted += 1;
        } else {
            tracing::info!(account = %id, "TOTP secret changed during re-encryption; left as written");
        }
    }
    Ok(counts)
}

/// Checks that every stored TOTP secret opens with `key` alone: after
/// `rotate` re-sealed them, one that does not was written meanwhile under
/// another key (a node started during the rotation, with the old one).
pub async fn verify_under(store: &dyn Store, key: &MasterKey) -> Result<(), SecretsError> {
    let rows = store
        .all_credentials()
        .await?
        .into_iter()
        .filter_map(|(id, creds)| creds.totp_secret.map(|s| (id.to_string(), s)));
    let accounts = not_under(rows, key);
    if accounts.is_empty() {
        Ok(())
    } else {
        Err(SecretsError::TotpNotUnderNewKey { accounts })
    }
}

/// The accounts of `rows` (account id, stored TOTP secret) whose secret does
/// not open with `key` alone (under another key, in clear, damaged).
fn not_under(rows: impl IntoIterator<Item = (String, String)>, key: &MasterKey) -> Vec<String> {
    rows.into_iter()
        .filter(|(id, stored)| {
            !is_sealed_value(stored) || envelope::open_value(&[key], Purpose::Totp(id), stored).is_err()
        })
        .map(|(id, _)| id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::master_key::{generate, KeySource};
    use super::*;

    fn key() -> MasterKey {
        MasterKey::parse(&generate(), KeySource::File { path: "k".into() }).unwrap()
    }

    #[test]
    fn a_secret_not_under_the_new_key_is_named() {
        let (old, new) = (key(), key());
        let seal = |k: &MasterKey, id: &str| envelope::seal_value(k, Purpose::Totp(id), "JBSWY3DPEHPK3PXP").unwrap();
        let rows = vec![
            ("u1".to_owned(), seal(&new, "u1")),
            // Sealed by a node that still had the old key.
            ("u2".to_owned(), seal(&old, "u2")),
            // Written in clear behind the rotation's back.
            ("u3".to_owned(), "JBSWY3DPEHPK3PXP".to_owned()),
            // Copied from another account's row.
            ("u4".to_owned(), seal(&new, "u1")),
        ];
        assert_eq!(not_under(rows, &new), ["u2", "u3", "u4"]);
        assert!(not_under(vec![("u1".to_owned(), seal(&new, "u1"))], &new).is_empty());
    }
}
