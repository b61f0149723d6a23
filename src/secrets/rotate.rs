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

use super::envelope::{self, ConfigField, KeyRole, Purpose};
use super::key_file::{self, KeyFileState};
use super::master_key::{KeyId, MasterKey};
use super::totp::{self, TotpCounts};
use super::{AtRest, SecretsError};

/// What a rotation did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RotateReport {
    /// The new key's id.
    pub new_key: KeyId,
    /// Key files rewritten under the new key, with how each was stored before.
    pub key_files: Vec<(PathBuf, KeyFileState)>,
    /// Encrypted values of the configuration file rewritten.
    pub config_values: usize,
    /// Configuration secrets still in clear (to encrypt with `portier secrets encrypt --field NAME`).
    pub clear_config_values: Vec<String>,
    /// The database's TOTP secrets.
    pub totp: Option<TotpCounts>,
}

/// A private key file of the setup and what it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPath {
    pub path: PathBuf,
    pub role: KeyRole,
    /// Named by the configuration (the node reads it as `role`); otherwise a
    /// key found beside them, which no node reads.
    pub named: bool,
}

impl KeyPath {
    /// The roles an encrypted file here may have been encrypted for: its own
    /// for a file the configuration names (any other is a key moved there);
    /// for one beside them, its own first and then any (it is only re-encrypted).
    fn roles(&self) -> Vec<KeyRole> {
        let mut out = vec![self.role];
        if !self.named {
            out.extend(KeyRole::ALL.into_iter().filter(|r| *r != self.role));
        }
        out
    }
}

/// The paths of [`key_files`].
pub fn key_paths(settings: &Settings) -> Vec<PathBuf> {
    key_files(settings).into_iter().map(|k| k.path).collect()
}

/// Whether two paths name one file (`certs/x.key` and `/etc/portier/certs/x.key`
/// alike): listed twice, the second would be "changed meanwhile" by the first
/// rewrite.
fn same_file(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

/// The private key files of a setup, each once: those the configuration
/// names, then, beside them, the development server CA's key `init` writes
/// (which no node reads) and any `*.key` file already sealed by Portier —
/// never another service's key that happens to share the directory.
pub fn key_files(settings: &Settings) -> Vec<KeyPath> {
    let mut out: Vec<KeyPath> = Vec::new();
    for (p, role) in [
        (&settings.gateway.key, KeyRole::TlsServer),
        (&settings.api.key, KeyRole::TlsServer),
        (&settings.gateway.vendor_ca_key, KeyRole::VendorCa),
    ] {
        if !out.iter().any(|k| same_file(&k.path, p)) {
            out.push(KeyPath {
                path: p.clone(),
                role,
                named: true,
            });
        }
    }
    let dirs: Vec<PathBuf> = out
        .iter()
        .filter_map(|k| k.path.parent().map(Path::to_path_buf))
        .collect();
    let mut beside: Vec<KeyPath> = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            let named_key = path.extension().is_some_and(|e| e == "key") && path.is_file();
            let server_ca = path.file_name().is_some_and(|n| n == INIT_SERVER_CA_KEY);
            let ours = server_ca || sealed_by_portier(&path);
            let known = out.iter().chain(&beside).any(|k| same_file(&k.path, &path));
            if named_key && ours && !known && holds_private_key(&path) {
                let role = if server_ca { KeyRole::ServerCa } else { KeyRole::Other };
                beside.push(KeyPath {
                    path,
                    role,
                    named: false,
                });
            }
        }
    }
    beside.sort_by(|a, b| a.path.cmp(&b.path));
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

/// Refuses while a node may be running on this database: it holds the old
/// key, so it would seal a TOTP enrolment with it during the rotation, and
/// fail to read what the rotation re-encrypted.
async fn refuse_running_nodes(store: &dyn Store, settings: &Settings) -> Result<(), SecretsError> {
    let stale = chrono::Duration::from_std(settings.heartbeat_settings().stale_after).unwrap_or(chrono::Duration::MAX);
    let now = crate::clock::Clock::now(&crate::clock::SystemClock);
    let running = crate::node::running(store.list_nodes().await?, now, stale);
    if running.is_empty() {
        return Ok(());
    }
    let nodes = running
        .iter()
        .map(|n| {
            format!(
                "{} (pid {} on {}, last seen {})",
                n.name,
                n.pid,
                n.host,
                n.last_seen.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )
        })
        .collect();
    Err(SecretsError::NodesRunning {
        nodes,
        stale_secs: settings.database.node_stale_secs,
    })
}

/// Re-encrypts every secret of the setup whose configuration file is
/// `config_path` (read into `settings`, not unsealed) under `new`, in the
/// current format (legacy envelopes are upgraded); recorded in the audit trail
/// as `secrets.rotated` by `actor` when a store is given. Refused while a node
/// runs on the store's database.
pub async fn rotate(
    config_path: &Path,
    settings: &Settings,
    current: &AtRest,
    new: &MasterKey,
    store: Option<&dyn Store>,
    actor: &str,
) -> Result<RotateReport, SecretsError> {
    if let Some(store) = store {
        refuse_running_nodes(store, settings).await?;
    }
    let mut keys = current.keys();
    keys.push(new);

    // 1. Read everything; nothing is written unless all of it decrypts.
    let mut rewrites = Vec::new();
    let mut states = Vec::new();
    for key_path in key_files(settings) {
        let path = &key_path.path;
        let was = key_file::state(path)?;
        if was == KeyFileState::Absent {
            // The vendor CA key may be kept offline.
            tracing::info!(path = %path.display(), "no key file here; nothing to re-encrypt");
            continue;
        }
        let text = key_file::read_text(path)?;
        let (clear, opened) = key_file::open_pem_as(&keys, &key_path.roles(), &text, path)?;
        // Under the new key already (an interrupted rotation run again): left alone.
        if was == KeyFileState::Encrypted && !opened.legacy && key_file::key_id(&text) == Some(new.id()) {
            continue;
        }
        let sealed = key_file::seal_pem(new, opened.role, &clear, path)?;
        rewrites.push(Rewrite {
            path: key_path.path.clone(),
            read: text,
            new: Zeroizing::new(sealed),
        });
        states.push((key_path.path, was));
    }
    let config_text = key_file::read_text(config_path)?;
    let (new_config, config_values) = reseal_config_text(&config_text, &keys, new).map_err(|e| match e {
        SecretsError::ConfigSyntax { line, column, .. } => SecretsError::ConfigSyntax {
            path: config_path.to_owned(),
            line,
            column,
        },
        other => other,
    })?;
    if config_values > 0 {
        rewrites.push(Rewrite {
            path: config_path.to_owned(),
            read: config_text,
            new: Zeroizing::new(new_config),
        });
    }
    let clear_config_values = super::clear_config_secrets(settings);
    if let Some(store) = store {
        totp::reseal(store, &keys, None, false).await?;
        // A node started while this one read: still refused before any write.
        refuse_running_nodes(store, settings).await?;
    }

    // 2. Write, each file atomically, once every one is known replaceable. The
    // trail hears of it first: a rotation cut short leaves a trace of which
    // key was replacing which, and none starts unrecorded.
    if let Some(store) = store {
        let started = AuditEvent::new(
            crate::clock::Clock::now(&crate::clock::SystemClock),
            actor,
            Event::SecretsRotationStarted,
            "secrets",
            "success",
            serde_json::json!({
                "old_key": current.key().map(|k| k.id()),
                "new_key": new.id(),
                "files": rewrites.iter().map(|r| r.path.display().to_string()).collect::<Vec<_>>(),
            }),
        );
        store.append_audit(&started).await?;
    }
    write_all(&rewrites, store.is_some())?;
    let totp = match store {
        Some(store) => Some(
            totp::reseal(store, &keys, Some(new), true)
                .await
                .map_err(|cause| incomplete(&rewrites, &[], true, cause))?,
        ),
        None => None,
    };
    if let Some(store) = store {
        totp::verify_under(store, new).await?;
    }
    let key_files = states;
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

/// A file `rotate` replaces: its text as read, and what replaces it.
struct Rewrite {
    path: PathBuf,
    read: Zeroizing<String>,
    new: Zeroizing<String>,
}

/// Replaces each file of `rewrites`: every one is first checked replaceable
/// (nothing is written otherwise), and each is read again just before it is
/// replaced, left alone if it changed since it was first read. An error after
/// the first write says which files are under which key (`totp`: the
/// database's TOTP secrets are still to do).
fn write_all(rewrites: &[Rewrite], totp: bool) -> Result<(), SecretsError> {
    for r in rewrites {
        key_file::check_replaceable(&r.path).map_err(|e| match e {
            key_file::KeyFileError::Io { err, .. } => SecretsError::NotReplaceable {
                path: r.path.clone(),
                err,
            },
            other => other.into(),
        })?;
    }
    for (done, r) in rewrites.iter().enumerate() {
        // Every error from here on goes through `incomplete`: once one file
        // is written, the operator must hear which key each one is under.
        let step = key_file::read_text(&r.path)
            .map_err(SecretsError::from)
            .and_then(|unchanged| {
                if *unchanged == *r.read {
                    key_file::write_atomic(&r.path, &r.new).map_err(SecretsError::from)
                } else {
                    Err(SecretsError::ChangedMeanwhile { path: r.path.clone() })
                }
            });
        if let Err(cause) = step {
            let (written, pending) = rewrites.split_at(done);
            return Err(incomplete(written, pending, totp, cause));
        }
    }
    Ok(())
}

/// `cause`, said to have stopped a rotation once `written` were replaced,
/// `pending` (and, with `totp`, the TOTP secrets) not yet; as is if nothing
/// was written.
fn incomplete(written: &[Rewrite], pending: &[Rewrite], totp: bool, cause: SecretsError) -> SecretsError {
    if written.is_empty() {
        return cause;
    }
    let name = |r: &Rewrite| r.path.display().to_string();
    let mut pending: Vec<String> = pending.iter().map(name).collect();
    if totp {
        pending.push("the database's TOTP secrets".to_owned());
    }
    SecretsError::Incomplete {
        written: written.iter().map(name).collect(),
        pending,
        cause: Box::new(cause),
    }
}

/// The configuration text with each encrypted secret value re-encrypted under
/// `new` for its field, and how many were rewritten. Edited as a TOML document
/// (`toml_edit`), so that only the values of the secret fields change: the
/// comments (even one quoting an `enc:v1:` value), the layout, the quoting and
/// every other value stay byte for byte. A value already in the current format
/// under `new` (an interrupted rotation run again) is left alone.
fn reseal_config_text(text: &str, keys: &[&MasterKey], new: &MasterKey) -> Result<(String, usize), SecretsError> {
    use toml_edit::{DocumentMut, Item, Value};
    // Where, not what: the error's own text quotes the line, which may hold a secret.
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        let before = text.get(..e.span().map_or(0, |s| s.start)).unwrap_or_default();
        SecretsError::ConfigSyntax {
            path: PathBuf::new(),
            line: before.matches('\n').count() + 1,
            column: before.rsplit('\n').next().unwrap_or_default().chars().count() + 1,
        }
    })?;
    let mut count = 0;
    let mut reseal = |name: String, field: ConfigField, value: &mut Value| -> Result<(), SecretsError> {
        let Some(stored) = value.as_str().filter(|s| envelope::is_sealed_value(s)) else {
            return Ok(());
        };
        let current = !envelope::is_legacy_value(stored)
            && envelope::value_envelope(stored)
                .and_then(|e| envelope::key_id_of(&e))
                .is_ok_and(|id| id == new.id());
        let config_err = |err| SecretsError::ConfigValue {
            name: name.clone(),
            err,
        };
        let clear = envelope::open_config_value(keys, field, stored).map_err(config_err)?;
        if current {
            return Ok(());
        }
        let sealed = envelope::seal_value(new, Purpose::Config(field), &clear).map_err(config_err)?;
        // The same quoting as before (base64 needs no escape in either).
        let literal = matches!(value, Value::String(f) if f.as_repr().and_then(|r| r.as_raw().as_str()).is_some_and(|r| r.starts_with('\'')));
        let quoted = if literal {
            format!("'{sealed}'")
        } else {
            format!("\"{sealed}\"")
        };
        let mut replacement: Value = quoted.parse().map_err(|_| config_err(envelope::EnvelopeError::Seal))?;
        *replacement.decor_mut() = value.decor().clone();
        *value = replacement;
        count += 1;
        Ok(())
    };
    if let Some(hooks) = doc.get_mut("notify").and_then(|n| n.get_mut("webhooks")) {
        let name = |i: usize| format!("notify.webhooks[{i}].secret");
        match hooks {
            Item::ArrayOfTables(tables) => {
                for (i, t) in tables.iter_mut().enumerate() {
                    if let Some(v) = t.get_mut("secret").and_then(Item::as_value_mut) {
                        reseal(name(i), ConfigField::WebhookSecret, v)?;
                    }
                }
            }
            Item::Value(Value::Array(list)) => {
                for (i, hook) in list.iter_mut().enumerate() {
                    if let Some(v) = hook.as_inline_table_mut().and_then(|t| t.get_mut("secret")) {
                        reseal(name(i), ConfigField::WebhookSecret, v)?;
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(v) = doc
        .get_mut("auth")
        .and_then(|a| a.get_mut("ldap"))
        .and_then(|l| l.get_mut("bind_password"))
        .and_then(Item::as_value_mut)
    {
        reseal("auth.ldap.bind_password".to_owned(), ConfigField::BindPassword, v)?;
    }
    Ok((doc.to_string(), count))
}

#[cfg(test)]
mod tests {
    use super::super::master_key::{generate, KeySource};
    use super::*;

    fn key() -> MasterKey {
        MasterKey::parse(&generate(), KeySource::File { path: "k".into() }).unwrap()
    }

    /// A copy of `key` (`MasterKey` is not `Clone`, by design).
    fn copy(key: &MasterKey) -> AtRest {
        let text = zeroize::Zeroizing::new(base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            key.bytes(),
        ));
        AtRest::with_key(MasterKey::parse(&text, KeySource::File { path: "k".into() }).unwrap())
    }

    const HOOK: Purpose<'static> = Purpose::Config(ConfigField::WebhookSecret);
    const BIND: Purpose<'static> = Purpose::Config(ConfigField::BindPassword);

    #[test]
    fn only_the_secret_values_change_comments_and_layout_stay() {
        let (old, new) = (key(), key());
        // Legacy values (`enc:v1:`) are upgraded as they are re-encrypted.
        let a = envelope::seal_legacy_value(&old, HOOK, "first secret value");
        let b = envelope::seal_value(&old, BIND, "second secret value").unwrap();
        let in_comment = envelope::seal_legacy_value(&old, HOOK, "an old value kept in a comment");
        let head = format!("# keep me, even the old value {in_comment} here\n[[notify.webhooks]]\nurl = \"https://h.example/\"\nsecret = \"");
        let middle = format!("\" # and me {in_comment}\n\n[auth.ldap]\n  bind_password   =   '");
        let tail = "'   # spaced\nurl = \"ldaps://dir.example\"\n";
        let text = format!("{head}{a}{middle}{b}{tail}");
        let (out, n) = reseal_config_text(&text, &[&old, &new], &new).unwrap();
        assert_eq!(n, 2);
        // Everything but the two values, byte for byte.
        let rest = out.strip_prefix(&head).unwrap();
        let (hook, rest) = rest.split_once('"').unwrap();
        let rest = rest.strip_prefix(&middle[1..]).unwrap();
        let (bind, rest) = rest.split_once('\'').unwrap();
        assert_eq!(format!("'{rest}"), tail);
        assert!(out.contains(&in_comment), "the comment's value is not a value: {out}");
        assert!(!out.contains(&a) && !out.contains(&b));
        // The values, re-encrypted under the new key for their field.
        assert!(hook.starts_with(envelope::VALUE_PREFIX) && bind.starts_with(envelope::VALUE_PREFIX));
        assert_eq!(
            envelope::open_config_value(&[&new], ConfigField::WebhookSecret, hook)
                .unwrap()
                .as_str(),
            "first secret value"
        );
        assert_eq!(
            envelope::open_config_value(&[&new], ConfigField::BindPassword, bind)
                .unwrap()
                .as_str(),
            "second secret value"
        );
        // Run again: nothing left to do.
        let (again, n) = reseal_config_text(&out, &[&old, &new], &new).unwrap();
        assert_eq!((again.as_str(), n), (out.as_str(), 0));
        // A wrong key changes nothing.
        assert!(reseal_config_text(&text, &[&key()], &new).is_err());
    }

    /// A setup in a temporary directory: the server and vendor CA keys
    /// encrypted under `old`, a webhook secret too; its settings.
    fn site(old: &MasterKey) -> (tempfile::TempDir, Settings) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("certs")).unwrap();
        for (name, role) in [("server.key", KeyRole::TlsServer), ("vendor-ca.key", KeyRole::VendorCa)] {
            let path = dir.path().join("certs").join(name);
            let clear = rcgen::KeyPair::generate().unwrap().serialize_pem();
            key_file::write_atomic(&path, &key_file::seal_pem(old, role, &clear, &path).unwrap()).unwrap();
        }
        let hook = envelope::seal_value(old, HOOK, "a webhook secret").unwrap();
        let text = format!(
            "[gateway]\nnode = \"n1\"\n[[notify.webhooks]]\nurl = \"https://h.example/\"\nsecret = \"{hook}\"\n"
        );
        std::fs::write(dir.path().join("portier.toml"), &text).unwrap();
        let settings = Settings::from_toml(&text, dir.path(), std::iter::empty()).unwrap();
        (dir, settings)
    }

    fn read(dir: &Path, name: &str) -> String {
        std::fs::read_to_string(dir.join(name)).unwrap()
    }

    #[tokio::test]
    async fn a_target_that_cannot_be_replaced_stops_the_rotation_before_any_write() {
        let (old, new) = (key(), key());
        let (dir, settings) = site(&old);
        let d = dir.path();
        let before = [read(d, "certs/server.key"), read(d, "certs/vendor-ca.key")];
        // The configuration file replaced by a symbolic link to its content.
        std::fs::rename(d.join("portier.toml"), d.join("real.toml")).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(d.join("real.toml"), d.join("portier.toml")).unwrap();
        let current = copy(&old);
        let err = rotate(&d.join("portier.toml"), &settings, &current, &new, None, "test")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("refused before any change") && err.contains("portier.toml") && err.contains("symbolic link"),
            "{err}"
        );
        assert_eq!([read(d, "certs/server.key"), read(d, "certs/vendor-ca.key")], before);
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(d.join("certs")).unwrap().count(), 2);
    }

    /// A file gone (or unreadable) after the first write: the operator still
    /// hears which files are under which key.
    #[test]
    fn a_file_unreadable_after_the_first_write_still_says_incomplete() {
        let old = key();
        let (dir, _) = site(&old);
        let d = dir.path();
        let rewrites = [
            Rewrite {
                path: d.join("certs/server.key"),
                read: Zeroizing::new(read(d, "certs/server.key")),
                new: Zeroizing::new("rewritten\n".to_owned()),
            },
            Rewrite {
                path: d.join("certs/gone.key"),
                read: Zeroizing::new("was here\n".to_owned()),
                new: Zeroizing::new("rewritten\n".to_owned()),
            },
        ];
        let err = write_all(&rewrites, false).unwrap_err().to_string();
        assert!(
            err.starts_with("rotation incomplete: ") && err.contains("certs/server.key is under the new key"),
            "{err}"
        );
    }

    /// One file named two ways is listed once.
    #[test]
    fn a_key_file_named_two_ways_is_listed_once() {
        let old = key();
        let (dir, mut settings) = site(&old);
        settings.api.key = dir.path().join("certs/../certs/server.key");
        let server: Vec<_> = key_files(&settings)
            .into_iter()
            .filter(|k| k.path.ends_with("server.key"))
            .collect();
        assert_eq!(
            server.len(),
            1,
            "{:?}",
            server.iter().map(|k| &k.path).collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn a_file_changed_after_the_read_is_not_overwritten_and_a_second_run_finishes() {
        let (old, new) = (key(), key());
        let (dir, settings) = site(&old);
        let d = dir.path();
        let current = copy(&old);
        let rewrite = |name: &str, text: String| Rewrite {
            path: d.join(name),
            read: Zeroizing::new(text),
            new: Zeroizing::new(format!("rewritten {name}\n")),
        };
        // The vendor CA key renewed between the read and the write.
        let rewrites = [
            rewrite("certs/server.key", read(d, "certs/server.key")),
            rewrite("certs/vendor-ca.key", "as first read".to_owned()),
            rewrite("portier.toml", read(d, "portier.toml")),
        ];
        let renewed = read(d, "certs/vendor-ca.key");
        let err = write_all(&rewrites, true).unwrap_err().to_string();
        assert!(
            err.starts_with("rotation incomplete: ")
                && err.contains("certs/server.key is under the new key")
                && err.contains("certs/vendor-ca.key, ")
                && err.contains("portier.toml, the database's TOTP secrets not yet")
                && err.contains("vendor-ca.key changed since rotate read it")
                && err.contains("keep both keys")
                && err.contains("run `portier secrets rotate` again"),
            "{err}"
        );
        assert_eq!(read(d, "certs/server.key"), "rewritten certs/server.key\n");
        assert_eq!(read(d, "certs/vendor-ca.key"), renewed);
        // The same change before any write: nothing written, no "incomplete".
        let err = write_all(&rewrites[1..], false).unwrap_err().to_string();
        assert!(
            err.contains("changed since rotate read it") && !err.contains("incomplete"),
            "{err}"
        );

        // Interrupted for real: the server key under the new key, the rest
        // under the old. Run again with both keys, it finishes, leaving the
        // server key alone.
        let server = d.join("certs/server.key");
        let clear = rcgen::KeyPair::generate().unwrap().serialize_pem();
        let done = key_file::seal_pem(&new, KeyRole::TlsServer, &clear, &server).unwrap();
        key_file::write_atomic(&server, &done).unwrap();
        let report = rotate(&d.join("portier.toml"), &settings, &current, &new, None, "test")
            .await
            .unwrap();
        assert_eq!(read(d, "certs/server.key"), done);
        let written: Vec<_> = report.key_files.iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(written, [d.join("certs/vendor-ca.key")]);
        assert_eq!(report.config_values, 1);
        let only_new = copy(&new);
        only_new
            .read_key_file(&d.join("certs/vendor-ca.key"), KeyRole::VendorCa)
            .unwrap();
        let again = Settings::load(&d.join("portier.toml")).unwrap();
        super::super::unseal_settings(&again, &only_new).unwrap();
    }

    #[test]
    fn a_syntax_error_names_the_line_and_column_but_does_not_quote_it() {
        let (old, new) = (key(), key());
        let text = "[auth.ldap]\nurl = \"ldaps://dir.example\"\nbind_password = \"hunter2-s3cr3t-passw0rd\n";
        let err = reseal_config_text(text, &[&old, &new], &new).unwrap_err();
        let SecretsError::ConfigSyntax { line, column, .. } = err else {
            panic!("{err}")
        };
        assert_eq!(line, 3, "column {column}");
        let err = err.to_string();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("line 3, column"), "{err}");
    }

    #[test]
    fn a_value_moved_to_another_field_stops_the_rotation() {
        let (old, new) = (key(), key());
        let bind = envelope::seal_value(&old, BIND, "the bind password").unwrap();
        let text = format!("[[notify.webhooks]]\nurl = \"https://h.example/\"\nsecret = \"{bind}\"\n");
        let err = reseal_config_text(&text, &[&old, &new], &new).unwrap_err().to_string();
        assert!(
            err.contains("notify.webhooks[0].secret") && err.contains("encrypted for config:auth.ldap.bind_password"),
            "{err}"
        );
    }

    #[test]
    fn inline_webhook_lists_are_rewritten_too() {
        let (old, new) = (key(), key());
        let a = envelope::seal_value(&old, HOOK, "inline secret value").unwrap();
        let text = format!("notify.webhooks = [ {{ url = \"https://h.example/\", secret = \"{a}\" }} ]\n");
        let (out, n) = reseal_config_text(&text, &[&old, &new], &new).unwrap();
        assert_eq!(n, 1);
        assert!(out.starts_with("notify.webhooks = [ { url = \"https://h.example/\", secret = \"enc:v2:"));
        assert!(out.ends_with("\" } ]\n"), "{out}");
    }
}
