//! The master key: 32 random bytes written as base64, found (in this order) in
//! a systemd credential, the `PORTIER_MASTER_KEY` environment variable, or the
//! file `[secrets] master_key_file` names.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Bytes of a master key (AES-256).
pub const KEY_LEN: usize = 32;
/// The credential's name under `$CREDENTIALS_DIRECTORY` (`LoadCredentialEncrypted=portier-master-key:…`).
pub const CREDENTIAL_NAME: &str = "portier-master-key";
/// The environment variable that may carry the key.
pub const ENV_VAR: &str = "PORTIER_MASTER_KEY";
/// The environment variable `portier secrets rotate` may take the new key from.
pub const NEW_ENV_VAR: &str = "PORTIER_NEW_MASTER_KEY";

/// Why no usable master key could be had.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("the master key from {from} is not {KEY_LEN} bytes in base64 (make one with `portier secrets new-key`)")]
    Malformed { from: KeySource },
    #[error("cannot read the master key file {path}: {err}")]
    Read { path: PathBuf, err: std::io::Error },
    #[error(
        "the master key file {path} is readable by its group or others (mode {mode:o}): refused; `chmod 600` it and make the service its owner"
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error("the master key file {0} is not a regular file (a symbolic link is refused: name the file itself)")]
    NotAFile(PathBuf),
    #[error("the master key file {path} belongs to uid {owner}, not to this process's user (uid {euid}): refused; make the service its owner")]
    NotOwned { path: PathBuf, owner: u32, euid: u32 },
}

/// Where a master key came from (what the dossier and errors name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KeySource {
    /// `$CREDENTIALS_DIRECTORY/portier-master-key` (systemd `LoadCredential[Encrypted]=`).
    SystemdCredential { path: PathBuf },
    /// The `PORTIER_MASTER_KEY` (or, for the new key of a rotation, `PORTIER_NEW_MASTER_KEY`) variable.
    Environment { variable: String },
    /// A key file (`[secrets] master_key_file`, `init --master-key-file`, `rotate --new-key-file`).
    File { path: PathBuf },
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SystemdCredential { path } => write!(f, "the systemd credential {}", path.display()),
            Self::Environment { variable } => write!(f, "the environment variable {variable}"),
            Self::File { path } => write!(f, "the key file {}", path.display()),
        }
    }
}

/// A short public name of a key: the first 8 bytes of a SHA-256 of it, in hex.
/// Every envelope carries it, so a wrong key is told apart from damaged data.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct KeyId(#[serde(serialize_with = "hex_id")] pub [u8; 8]);

fn hex_id<S: serde::Serializer>(id: &[u8; 8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(id))
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// A master key with where it came from. Wiped from memory when dropped;
/// its `Debug` shows only its id and source.
pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    id: KeyId,
    source: KeySource,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .field("source", &self.source)
            .finish()
    }
}

impl MasterKey {
    /// Parses the text form (base64 of 32 bytes; surrounding white space ignored).
    pub fn parse(text: &str, source: KeySource) -> Result<Self, MasterKeyError> {
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| MasterKeyError::Malformed { from: source.clone() })?,
        );
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        if decoded.len() != KEY_LEN {
            return Err(MasterKeyError::Malformed { from: source });
        }
        bytes.copy_from_slice(&decoded);
        let id = key_id(&bytes);
        Ok(Self { bytes, id, source })
    }

    /// The raw key, for the AEAD.
    pub(super) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }

    /// Its public id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// Where it came from.
    pub fn source(&self) -> &KeySource {
        &self.source
    }
}

fn key_id(bytes: &[u8; KEY_LEN]) -> KeyId {
    let digest = Sha256::new()
        .chain_update(b"portier master key id\0")
        .chain_update(bytes)
        .finalize();
    let mut id = [0u8; 8];
    id.copy_from_slice(digest.get(..8).unwrap_or(&[0u8; 8]));
    KeyId(id)
}

/// A new master key in its text form (32 bytes from the OS's generator, base64).
pub fn generate() -> Zeroizing<String> {
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(bytes.as_ref()))
}

/// Finds the master key: the systemd credential, then the environment
/// variable, then `key_file`. None anywhere: `Ok(None)` (secrets stay in
/// clear). A source that is present but unusable is an error, never skipped.
pub fn locate(
    key_file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<MasterKey>, MasterKeyError> {
    if let Some(dir) = env("CREDENTIALS_DIRECTORY").filter(|d| !d.is_empty()) {
        let path = Path::new(&dir).join(CREDENTIAL_NAME);
        if path.exists() {
            // systemd owns this file and its mode (it is the service's only).
            let source = KeySource::SystemdCredential { path: path.clone() };
            let text = read(&path, &source)?;
            return MasterKey::parse(text_of(&text, &source)?, source).map(Some);
        }
    }
    // The variable's copy is wiped once parsed (the process environment
    // itself keeps it: that is why the systemd credential is preferred).
    if let Some(text) = env(ENV_VAR).map(Zeroizing::new).filter(|t| !t.trim().is_empty()) {
        let source = KeySource::Environment {
            variable: ENV_VAR.to_owned(),
        };
        return MasterKey::parse(&text, source).map(Some);
    }
    key_file.map(read_key_file).transpose()
}

/// Reads a key file, refusing one that its group or others may read, one that
/// another user owns (unless we are root), and a symbolic link. The checks and
/// the read use one open file, so the file cannot be swapped between them.
pub fn read_key_file(path: &Path) -> Result<MasterKey, MasterKeyError> {
    let read_err = |err| MasterKeyError::Read {
        path: path.to_owned(),
        err,
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    let mut file = match opts.open(path) {
        Ok(f) => f,
        // O_NOFOLLOW on a symbolic link: ELOOP.
        Err(_) if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) => {
            return Err(MasterKeyError::NotAFile(path.to_owned()))
        }
        Err(err) => return Err(read_err(err)),
    };
    let meta = file.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(MasterKeyError::NotAFile(path.to_owned()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(MasterKeyError::Exposed {
                path: path.to_owned(),
                mode,
            });
        }
        let euid = rustix::process::geteuid().as_raw();
        if meta.uid() != euid && euid != 0 {
            return Err(MasterKeyError::NotOwned {
                path: path.to_owned(),
                owner: meta.uid(),
                euid,
            });
        }
    }
    let source = KeySource::File { path: path.to_owned() };
    let text = read_bounded(&mut file, path, &source)?;
    MasterKey::parse(text_of(&text, &source)?, source)
}

/// The most a master key's text may take (44 characters of base64, a line
/// end, some white space): a larger file is not a key, and reading into a
/// buffer of fixed size leaves no copy behind a reallocation.
const MAX_KEY_TEXT: usize = 1024;

/// Reads at most [`MAX_KEY_TEXT`] bytes into a buffer wiped when dropped.
fn read_bounded(
    file: &mut impl std::io::Read,
    path: &Path,
    source: &KeySource,
) -> Result<Zeroizing<Vec<u8>>, MasterKeyError> {
    let mut buf = Zeroizing::new(vec![0u8; MAX_KEY_TEXT + 1]);
    let mut len = 0;
    loop {
        let free = buf.get_mut(len..).unwrap_or_default();
        if free.is_empty() {
            return Err(MasterKeyError::Malformed { from: source.clone() });
        }
        match file.read(free) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => {
                return Err(MasterKeyError::Read {
                    path: path.to_owned(),
                    err,
                })
            }
        }
    }
    buf.truncate(len);
    Ok(buf)
}

/// The key's text in a buffer (not copied).
fn text_of<'a>(buf: &'a [u8], source: &KeySource) -> Result<&'a str, MasterKeyError> {
    std::str::from_utf8(buf).map_err(|_| MasterKeyError::Malformed { from: source.clone() })
}

fn read(path: &Path, source: &KeySource) -> Result<Zeroizing<Vec<u8>>, MasterKeyError> {
    let mut file = std::fs::File::open(path).map_err(|err| MasterKeyError::Read {
        path: path.to_owned(),
        err,
    })?;
    read_bounded(&mut file, path, source)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn generated_keys_parse_and_have_distinct_ids() {
        let a = MasterKey::parse(&generate(), KeySource::File { path: "a".into() }).unwrap();
        let b = MasterKey::parse(&generate(), KeySource::File { path: "b".into() }).unwrap();
        assert_ne!(a.id(), b.id());
        assert_eq!(a.id().to_string().len(), 16);
        assert!(!format!("{a:?}").contains(&base64::engine::general_purpose::STANDARD.encode(a.bytes())));
    }

    #[test]
    fn short_or_garbled_keys_are_refused() {
        let src = || KeySource::Environment {
            variable: ENV_VAR.into(),
        };
        for bad in [
            "",
            "not base64!",
            "AAAA",
            &base64::engine::general_purpose::STANDARD.encode([0u8; 31]),
        ] {
            assert!(
                matches!(MasterKey::parse(bad, src()), Err(MasterKeyError::Malformed { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn sources_are_taken_in_order_and_exposed_files_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mk");
        std::fs::write(&file, generate().as_str()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
            assert!(matches!(
                locate(Some(&file), no_env),
                Err(MasterKeyError::Exposed { .. })
            ));
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
            // A link to a good key file is still refused: whoever can change the
            // link chooses the key.
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(&file, &link).unwrap();
            assert!(matches!(locate(Some(&link), no_env), Err(MasterKeyError::NotAFile(_))));
        }
        let from_file = locate(Some(&file), no_env).unwrap().unwrap();
        assert!(matches!(from_file.source(), KeySource::File { .. }));
        let env_key = generate();
        let env = |name: &str| (name == ENV_VAR).then(|| env_key.to_string());
        let from_env = locate(Some(&file), env).unwrap().unwrap();
        assert!(matches!(from_env.source(), KeySource::Environment { .. }));
        let creds = tempfile::tempdir().unwrap();
        std::fs::write(creds.path().join(CREDENTIAL_NAME), generate().as_str()).unwrap();
        let creds_dir = creds.path().display().to_string();
        let env = |name: &str| match name {
            "CREDENTIALS_DIRECTORY" => Some(creds_dir.clone()),
            ENV_VAR => Some(env_key.to_string()),
            _ => None,
        };
        let from_cred = locate(Some(&file), env).unwrap().unwrap();
        assert!(matches!(from_cred.source(), KeySource::SystemdCredential { .. }));
        assert!(locate(None, no_env).unwrap().is_none());
        // A file far larger than a key is not read whole.
        let big = dir.path().join("big");
        std::fs::write(&big, format!("{}\n{}", generate().as_str(), " ".repeat(2000))).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(matches!(
            locate(Some(&big), no_env),
            Err(MasterKeyError::Malformed { .. })
        ));
        assert!(matches!(
            locate(Some(&dir.path().join("missing")), no_env),
            Err(MasterKeyError::Read { .. })
        ));
    }
}
