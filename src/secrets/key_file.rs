//! Private key files: the PEM key (as generated or given) inside an AES-256-GCM
//! envelope bound to the key's role (`key-file:tls-server`, …), armoured as
//! `-----BEGIN PORTIER ENCRYPTED PRIVATE KEY-----`, and written atomically (a
//! temporary file, then a rename). The envelope's first byte is its version:
//! 2 since the role is bound, 1 for legacy files (still read).

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use zeroize::Zeroizing;

use super::envelope::{self, EnvelopeError, KeyRole, Purpose};
use super::master_key::MasterKey;

/// The PEM label of an encrypted key file.
pub const PEM_LABEL: &str = "PORTIER ENCRYPTED PRIVATE KEY";
const BEGIN: &str = "-----BEGIN PORTIER ENCRYPTED PRIVATE KEY-----";
const END: &str = "-----END PORTIER ENCRYPTED PRIVATE KEY-----";
/// PEM labels of private keys in clear.
pub const CLEAR_LABELS: [&str; 3] = ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"];

/// What went wrong with a key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("the private key {path} could not be decrypted: {err}")]
    Open { path: PathBuf, err: EnvelopeError },
    #[error("the private key {path} could not be encrypted: {err}")]
    Seal { path: PathBuf, err: EnvelopeError },
    #[error(
        "{path} is a passphrase-protected PKCS#8 key (ENCRYPTED PRIVATE KEY), which Portier does not read: \
         decrypt it (openssl pkey -in {path} -out KEY) and encrypt it under the master key with `portier secrets rotate`"
    )]
    Passphrase { path: PathBuf },
    #[error("{path} holds no PEM private key")]
    NoKey { path: PathBuf },
}

/// How a key file is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyFileState {
    Encrypted,
    Clear,
    Absent,
}

/// How the file at `path` is stored (without decrypting it).
pub fn state(path: &Path) -> Result<KeyFileState, KeyFileError> {
    match std::fs::read_to_string(path) {
        Ok(text) if is_sealed(&text) => Ok(KeyFileState::Encrypted),
        Ok(_) => Ok(KeyFileState::Clear),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeyFileState::Absent),
        Err(err) => Err(KeyFileError::Io {
            path: path.to_owned(),
            err,
        }),
    }
}

fn is_sealed(text: &str) -> bool {
    text.contains(BEGIN)
}

/// Whether the file at `path` is encrypted in the legacy format (its envelope
/// bound to no role); `false` if it cannot be read or is not encrypted.
pub fn is_legacy(path: &Path) -> bool {
    read_text(path).is_ok_and(|text| envelope_of(&text).is_some_and(|e| envelope::is_legacy(&e)))
}

/// The envelope inside an armoured key file's text.
fn envelope_of(text: &str) -> Option<Vec<u8>> {
    if !is_sealed(text) {
        return None;
    }
    let body: Zeroizing<String> = text
        .split(BEGIN)
        .nth(1)
        .and_then(|rest| rest.split(END).next())
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .into();
    base64::engine::general_purpose::STANDARD.decode(body.as_bytes()).ok()
}

/// The key file's text armoured, encrypted for `role`.
pub fn seal_pem(key: &MasterKey, role: KeyRole, clear_pem: &str, path: &Path) -> Result<String, KeyFileError> {
    let sealed =
        envelope::seal(key, Purpose::KeyFile(role), clear_pem.as_bytes()).map_err(|err| KeyFileError::Seal {
            path: path.to_owned(),
            err,
        })?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(sealed);
    let mut out = format!("{BEGIN}\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(END);
    out.push('\n');
    Ok(out)
}

/// The clear PEM of the key file's text: decrypted with one of `keys` if it
/// is encrypted (none given: an error; encrypted for another role than
/// `role`: an error naming both), as is if it is in clear.
pub fn open_pem(
    keys: &[&MasterKey],
    role: KeyRole,
    text: &str,
    path: &Path,
) -> Result<Zeroizing<String>, KeyFileError> {
    let (plain, _) = open_pem_as(keys, &[role], text, path)?;
    Ok(plain)
}

/// [`open_pem`] for whichever of `roles` the file was encrypted for (the
/// first one if it is in clear, or in the legacy format, which names none);
/// returns the clear PEM, that role and whether the file was in the legacy
/// format.
pub fn open_pem_as(
    keys: &[&MasterKey],
    roles: &[KeyRole],
    text: &str,
    path: &Path,
) -> Result<(Zeroizing<String>, KeyFileOpened), KeyFileError> {
    let first = roles.first().copied().unwrap_or(KeyRole::Other);
    if !is_sealed(text) {
        if text.contains("BEGIN ENCRYPTED PRIVATE KEY") {
            return Err(KeyFileError::Passphrase { path: path.to_owned() });
        }
        if !CLEAR_LABELS
            .iter()
            .any(|l| text.contains(&format!("-----BEGIN {l}-----")))
        {
            return Err(KeyFileError::NoKey { path: path.to_owned() });
        }
        return Ok((
            Zeroizing::new(text.to_owned()),
            KeyFileOpened {
                role: first,
                legacy: false,
            },
        ));
    }
    let open_err = |err| KeyFileError::Open {
        path: path.to_owned(),
        err,
    };
    let sealed = envelope_of(text).ok_or_else(|| open_err(EnvelopeError::Malformed))?;
    let legacy = envelope::is_legacy(&sealed);
    // A legacy envelope names no role: it opens as any (the first asked).
    let opened = roles.iter().find_map(|r| {
        envelope::open(keys, Purpose::KeyFile(*r), &sealed)
            .ok()
            .map(|p| (*r, p))
    });
    let (role, plain) = match opened {
        Some(found) => found,
        // Why not: a wrong key, damage, or another role (named).
        None => {
            let elsewhere = KeyRole::ALL.map(Purpose::KeyFile);
            let plain = envelope::open_for(keys, Purpose::KeyFile(first), &elsewhere, &sealed).map_err(open_err)?;
            (first, plain)
        }
    };
    let plain = String::from_utf8(plain.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| open_err(EnvelopeError::Malformed))?;
    Ok((plain, KeyFileOpened { role, legacy }))
}

/// What [`open_pem_as`] found a key file encrypted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyFileOpened {
    pub role: KeyRole,
    /// In the legacy (version 1) format, bound to no role.
    pub legacy: bool,
}

/// Reads a private key file encrypted for `role` (or in clear) and returns its clear PEM.
pub fn read(path: &Path, role: KeyRole, keys: &[&MasterKey]) -> Result<Zeroizing<String>, KeyFileError> {
    let text = read_text(path)?;
    open_pem(keys, role, &text, path)
}

/// A key file's text, wiped when dropped.
pub fn read_text(path: &Path) -> Result<Zeroizing<String>, KeyFileError> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|err| KeyFileError::Io {
            path: path.to_owned(),
            err,
        })
}

/// Replaces `path` with `contents`: written to a temporary file beside it,
/// synced, then renamed over it, so a crash leaves the old file or the new one,
/// never half of either. The new file keeps the old one's owner and mode (run
/// as root, `rotate` must not leave the service unable to read its keys); a
/// new file is owner-only (0600).
pub fn write_atomic(path: &Path, contents: &str) -> Result<(), KeyFileError> {
    let io = |err| KeyFileError::Io {
        path: path.to_owned(),
        err,
    };
    let (mut f, tmp, dir) = temp_beside(path).map_err(io)?;
    let written = (|| {
        f.write_all(contents.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself reaches the disk with the directory.
        std::fs::File::open(&dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io)
}

/// Whether [`write_atomic`] can replace `path`, without changing it: not a
/// symbolic link, a temporary file can be made beside it with its owner and
/// mode (then removed). `rotate` checks every file so before writing any.
pub fn check_replaceable(path: &Path) -> Result<(), KeyFileError> {
    let (_, tmp, _) = temp_beside(path).map_err(|err| KeyFileError::Io {
        path: path.to_owned(),
        err,
    })?;
    std::fs::remove_file(&tmp).map_err(|err| KeyFileError::Io { path: tmp, err })
}

/// A new temporary file beside `path` (owner-only, or with the owner and mode
/// of the file at `path`), its path and the directory; refused if `path` is
/// a symbolic link. Removed again if it cannot be given that owner and mode.
fn temp_beside(path: &Path) -> std::io::Result<(std::fs::File, PathBuf, PathBuf)> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A symlink would be replaced by a regular file, leaving its target (the
    // clear key, another tool's file) where it was: refused.
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(std::io::Error::other(
            "is a symbolic link: point the configuration at the file itself",
        ));
    }
    let tmp = dir.join(format!(".{name}.{}.tmp", crate::credentials::random_text(8)));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let previous = std::fs::metadata(path).ok();
    let f = opts.open(&tmp)?;
    #[cfg(unix)]
    if let Some(meta) = &previous {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let owned = std::os::unix::fs::fchown(&f, Some(meta.uid()), Some(meta.gid()))
            .and_then(|()| f.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o777)));
        if let Err(e) = owned {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    }
    #[cfg(not(unix))]
    let _ = previous;
    Ok((f, tmp, dir))
}

/// The key id an encrypted key file's text was sealed under (`None` in clear
/// or unreadable).
pub fn key_id(text: &str) -> Option<super::master_key::KeyId> {
    envelope_of(text).and_then(|e| envelope::key_id_of(&e).ok())
}

#[cfg(test)]
mod tests {
    use super::super::master_key::{generate, KeySource};
    use super::*;

    fn key() -> MasterKey {
        MasterKey::parse(&generate(), KeySource::File { path: "k".into() }).unwrap()
    }

    #[test]
    fn a_key_file_round_trips_and_holds_no_clear_key() {
        let k = key();
        let clear = rcgen::KeyPair::generate().unwrap().serialize_pem();
        let path = Path::new("server.key");
        let role = KeyRole::TlsServer;
        let sealed = seal_pem(&k, role, &clear, path).unwrap();
        assert!(!sealed.contains("BEGIN PRIVATE KEY"));
        assert_eq!(open_pem(&[&k], role, &sealed, path).unwrap().as_str(), clear);
        let err = open_pem(&[&key()], role, &sealed, path).unwrap_err().to_string();
        assert!(err.contains("server.key") && err.contains("wrong master key"), "{err}");
        let err = open_pem(&[], role, &sealed, path).unwrap_err().to_string();
        assert!(err.contains("no master key is configured"), "{err}");
        assert_eq!(open_pem(&[], role, &clear, path).unwrap().as_str(), clear);
        // The vendor CA's key put where the server key belongs: refused, naming both.
        let err = open_pem(&[&k], KeyRole::VendorCa, &sealed, path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("server.key") && err.contains("encrypted for key-file:tls-server, not for key-file:vendor-ca"),
            "{err}"
        );
        let (_, opened) = open_pem_as(&[&k], &KeyRole::ALL, &sealed, path).unwrap();
        assert_eq!(opened, KeyFileOpened { role, legacy: false });
    }

    #[test]
    fn atomic_writes_replace_and_stay_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        write_atomic(&p, "one").unwrap();
        write_atomic(&p, "two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
            write_atomic(&p, "three").unwrap();
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o640);
        }
    }
}
