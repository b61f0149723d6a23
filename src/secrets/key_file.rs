//! Private key files: the PEM key (as generated or given) inside an AES-256-GCM
//! envelope, armoured as `-----BEGIN PORTIER ENCRYPTED PRIVATE KEY-----`, and
//! written atomically (a temporary file, then a rename).

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use zeroize::Zeroizing;

use super::envelope::{self, EnvelopeError, Purpose};
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

/// The key file's text armoured.
pub fn seal_pem(key: &MasterKey, clear_pem: &str, path: &Path) -> Result<String, KeyFileError> {
    let sealed = envelope::seal(key, Purpose::PrivateKey, clear_pem.as_bytes()).map_err(|err| KeyFileError::Seal {
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
/// is encrypted (none given: an error), as is if it is in clear.
pub fn open_pem(keys: &[&MasterKey], text: &str, path: &Path) -> Result<Zeroizing<String>, KeyFileError> {
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
        return Ok(Zeroizing::new(text.to_owned()));
    }
    let body: String = text
        .split(BEGIN)
        .nth(1)
        .and_then(|rest| rest.split(END).next())
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let open_err = |err| KeyFileError::Open {
        path: path.to_owned(),
        err,
    };
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| open_err(EnvelopeError::Malformed))?;
    let plain = envelope::open(keys, Purpose::PrivateKey, &sealed).map_err(open_err)?;
    String::from_utf8(plain.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| open_err(EnvelopeError::Malformed))
}

/// Reads a private key file and returns its clear PEM.
pub fn read(path: &Path, keys: &[&MasterKey]) -> Result<Zeroizing<String>, KeyFileError> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|err| KeyFileError::Io {
        path: path.to_owned(),
        err,
    })?);
    open_pem(keys, &text, path)
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
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A symlink would be replaced by a regular file, leaving its target (the
    // clear key, another tool's file) where it was: refused.
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(io(std::io::Error::other(
            "is a symbolic link: point the configuration at the file itself",
        )));
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
    let written = (|| {
        let mut f = opts.open(&tmp)?;
        #[cfg(unix)]
        if let Some(meta) = &previous {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            std::os::unix::fs::fchown(&f, Some(meta.uid()), Some(meta.gid()))?;
            f.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o777))?;
        }
        f.write_all(contents.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself reaches the disk with the directory.
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io)
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
        let sealed = seal_pem(&k, &clear, path).unwrap();
        assert!(!sealed.contains("BEGIN PRIVATE KEY"));
        assert_eq!(open_pem(&[&k], &sealed, path).unwrap().as_str(), clear);
        let err = open_pem(&[&key()], &sealed, path).unwrap_err().to_string();
        assert!(err.contains("server.key") && err.contains("wrong master key"), "{err}");
        let err = open_pem(&[], &sealed, path).unwrap_err().to_string();
        assert!(err.contains("no master key is configured"), "{err}");
        assert_eq!(open_pem(&[], &clear, path).unwrap().as_str(), clear);
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
