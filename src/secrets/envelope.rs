//! The one encryption of secrets at rest: AES-256-GCM under the master key,
//! with a random 96-bit nonce per envelope and associated data naming what the
//! secret is (a private key, a configuration value, the TOTP secret of one
//! account), so an envelope moved elsewhere does not decrypt.
//!
//! Binary form: `version (1) ‖ key id (8) ‖ nonce (12) ‖ ciphertext ‖ tag (16)`.
//! Text form of a value: `enc:v1:` + base64 of that.

use base64::Engine;
use rand::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use zeroize::Zeroizing;

use super::master_key::{KeyId, MasterKey};

/// Format version byte.
const VERSION: u8 = 1;
const ID_LEN: usize = 8;
const HEADER_LEN: usize = 1 + ID_LEN + NONCE_LEN;
/// Prefix of an encrypted value in the configuration or the database.
pub const VALUE_PREFIX: &str = "enc:v1:";
/// The algorithm, as the dossier names it.
pub const ALGORITHM: &str = "AES-256-GCM (96-bit random nonce, 128-bit tag)";

/// What a secret is: bound into the envelope as associated data.
#[derive(Debug, Clone, Copy)]
pub enum Purpose<'a> {
    /// A PEM private key file.
    PrivateKey,
    /// A value of `portier.toml` (webhook secret, bind password).
    ConfigValue,
    /// The TOTP secret of the account with this id.
    Totp(&'a str),
}

impl Purpose<'_> {
    fn aad(&self, key: KeyId) -> Vec<u8> {
        let what = match self {
            Self::PrivateKey => "private-key".to_owned(),
            Self::ConfigValue => "config-value".to_owned(),
            Self::Totp(account) => format!("totp:{account}"),
        };
        let mut aad = format!("portier-at-rest\0v{VERSION}\0{what}\0").into_bytes();
        aad.extend_from_slice(&key.0);
        aad
    }
}

/// Why an envelope did not open.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EnvelopeError {
    #[error("not an encrypted value of this format")]
    Malformed,
    #[error("encrypted under master key {sealed_with}, but no master key is configured")]
    NoKey { sealed_with: KeyId },
    #[error(
        "encrypted under master key {sealed_with}, not under the configured master key {configured}: wrong master key"
    )]
    WrongKey { sealed_with: KeyId, configured: String },
    #[error("does not decrypt under master key {0} although it names it: damaged, or moved from another place")]
    Damaged(KeyId),
    #[error("encryption failed")]
    Seal,
}

fn aead(key: &MasterKey) -> Result<LessSafeKey, EnvelopeError> {
    UnboundKey::new(&AES_256_GCM, key.bytes())
        .map(LessSafeKey::new)
        .map_err(|_| EnvelopeError::Seal)
}

/// Encrypts `plaintext` for `purpose` under `key`.
pub fn seal(key: &MasterKey, purpose: Purpose<'_>, plaintext: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + AES_256_GCM.tag_len());
    out.push(VERSION);
    out.extend_from_slice(&key.id().0);
    out.extend_from_slice(&nonce);
    let mut body = plaintext.to_vec();
    aead(key)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(purpose.aad(key.id())),
            &mut body,
        )
        .map_err(|_| EnvelopeError::Seal)?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// The id of the key an envelope was sealed under.
pub fn key_id_of(envelope: &[u8]) -> Result<KeyId, EnvelopeError> {
    match envelope.first() {
        Some(&VERSION) if envelope.len() >= HEADER_LEN + AES_256_GCM.tag_len() => {}
        _ => return Err(EnvelopeError::Malformed),
    }
    let mut id = [0u8; ID_LEN];
    id.copy_from_slice(envelope.get(1..1 + ID_LEN).ok_or(EnvelopeError::Malformed)?);
    Ok(KeyId(id))
}

/// Decrypts an envelope with whichever of `keys` it was sealed under.
pub fn open(keys: &[&MasterKey], purpose: Purpose<'_>, envelope: &[u8]) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    let sealed_with = key_id_of(envelope)?;
    let Some(key) = keys.iter().find(|k| k.id() == sealed_with) else {
        return Err(if keys.is_empty() {
            EnvelopeError::NoKey { sealed_with }
        } else {
            EnvelopeError::WrongKey {
                sealed_with,
                configured: keys.iter().map(|k| k.id().to_string()).collect::<Vec<_>>().join(", "),
            }
        });
    };
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(envelope.get(1 + ID_LEN..HEADER_LEN).ok_or(EnvelopeError::Malformed)?);
    let mut body = Zeroizing::new(envelope.get(HEADER_LEN..).ok_or(EnvelopeError::Malformed)?.to_vec());
    let len = aead(key)?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(purpose.aad(sealed_with)),
            &mut body,
        )
        .map_err(|_| EnvelopeError::Damaged(sealed_with))?
        .len();
    body.truncate(len);
    Ok(body)
}

/// Whether a stored text is an encrypted value (`enc:v1:…`).
pub fn is_sealed_value(text: &str) -> bool {
    text.starts_with(VALUE_PREFIX)
}

/// A text value encrypted, in its text form.
pub fn seal_value(key: &MasterKey, purpose: Purpose<'_>, value: &str) -> Result<String, EnvelopeError> {
    let sealed = seal(key, purpose, value.as_bytes())?;
    Ok(format!(
        "{VALUE_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(sealed)
    ))
}

/// The envelope inside a text value (`enc:v1:…`).
pub fn value_envelope(text: &str) -> Result<Vec<u8>, EnvelopeError> {
    let b64 = text.strip_prefix(VALUE_PREFIX).ok_or(EnvelopeError::Malformed)?;
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| EnvelopeError::Malformed)
}

/// A text value decrypted.
pub fn open_value(keys: &[&MasterKey], purpose: Purpose<'_>, text: &str) -> Result<Zeroizing<String>, EnvelopeError> {
    let plain = open(keys, purpose, &value_envelope(text)?)?;
    String::from_utf8(plain.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| EnvelopeError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::super::master_key::{generate, KeySource};
    use super::*;

    fn key() -> MasterKey {
        MasterKey::parse(&generate(), KeySource::File { path: "k".into() }).unwrap()
    }

    #[test]
    fn a_value_opens_only_with_its_key_and_purpose() {
        let (k, other) = (key(), key());
        let sealed = seal_value(&k, Purpose::Totp("u1"), "JBSWY3DPEHPK3PXP").unwrap();
        assert!(is_sealed_value(&sealed));
        assert!(!sealed.contains("JBSWY3DP"));
        assert_eq!(
            open_value(&[&k], Purpose::Totp("u1"), &sealed).unwrap().as_str(),
            "JBSWY3DPEHPK3PXP"
        );
        // Another account's row, another purpose, another key, no key.
        assert!(matches!(
            open_value(&[&k], Purpose::Totp("u2"), &sealed),
            Err(EnvelopeError::Damaged(_))
        ));
        assert!(matches!(
            open_value(&[&k], Purpose::ConfigValue, &sealed),
            Err(EnvelopeError::Damaged(_))
        ));
        assert!(matches!(
            open_value(&[&other], Purpose::Totp("u1"), &sealed),
            Err(EnvelopeError::WrongKey { .. })
        ));
        assert!(matches!(
            open_value(&[], Purpose::Totp("u1"), &sealed),
            Err(EnvelopeError::NoKey { .. })
        ));
        // Either of two keys (a rotation under way) opens what the right one sealed.
        assert!(open_value(&[&other, &k], Purpose::Totp("u1"), &sealed).is_ok());
    }

    #[test]
    fn tampering_is_detected_and_nonces_differ() {
        let k = key();
        let a = seal(&k, Purpose::PrivateKey, b"key").unwrap();
        let b = seal(&k, Purpose::PrivateKey, b"key").unwrap();
        assert_ne!(a, b);
        let mut bad = a.clone();
        if let Some(last) = bad.last_mut() {
            *last ^= 1;
        }
        assert!(matches!(
            open(&[&k], Purpose::PrivateKey, &bad),
            Err(EnvelopeError::Damaged(_))
        ));
        assert!(matches!(
            open(&[&k], Purpose::PrivateKey, &a[..10]),
            Err(EnvelopeError::Malformed)
        ));
        assert_eq!(open(&[&k], Purpose::PrivateKey, &a).unwrap().as_slice(), b"key");
    }
}
