//! The one encryption of secrets at rest: AES-256-GCM under the master key,
//! with a random 96-bit nonce per envelope and associated data naming what the
//! secret is for, so an envelope moved elsewhere does not decrypt.
//!
//! Binary form: `version (1) ‖ key id (8) ‖ nonce (12) ‖ ciphertext ‖ tag (16)`.
//! Text form of a value: `enc:v2:` + base64 of that (`enc:v1:` for version 1).
//!
//! Version 2 (written since) binds the secret's role: the configuration field
//! (`config:notify.webhooks.secret`), the key file's use (`key-file:vendor-ca`),
//! the account of a TOTP secret (`totp:<id>`). Version 1 (legacy, still read)
//! bound only the kind (`config-value`, `private-key`), so a sealed bind
//! password pasted as a webhook secret decrypted; `portier secrets rotate`
//! rewrites version 1 envelopes as version 2.

use base64::Engine;
use rand::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use zeroize::Zeroizing;

use super::master_key::{KeyId, MasterKey};

/// The legacy format: associated data names the kind of secret only.
const V1: u8 = 1;
/// The current format: associated data names the secret's role.
const V2: u8 = 2;
const ID_LEN: usize = 8;
const HEADER_LEN: usize = 1 + ID_LEN + NONCE_LEN;
/// Prefix of an encrypted value in the configuration or the database.
pub const VALUE_PREFIX: &str = "enc:v2:";
/// Prefix of a legacy (version 1) encrypted value, still read.
pub const LEGACY_VALUE_PREFIX: &str = "enc:v1:";
/// The algorithm, as the dossier names it.
pub const ALGORITHM: &str = "AES-256-GCM (96-bit random nonce, 128-bit tag)";

/// A configuration field that holds a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigField {
    /// `[[notify.webhooks]] secret` (any of them: reordering the hooks must
    /// not make their secrets unreadable).
    WebhookSecret,
    /// `[auth.ldap] bind_password`.
    BindPassword,
}

impl ConfigField {
    /// Every field, for `portier secrets encrypt --field` and diagnostics.
    pub const ALL: [Self; 2] = [Self::WebhookSecret, Self::BindPassword];

    /// Its name in `portier.toml` (without a webhook's index).
    pub fn name(self) -> &'static str {
        match self {
            Self::WebhookSecret => "notify.webhooks.secret",
            Self::BindPassword => "auth.ldap.bind_password",
        }
    }

    /// The field a name designates, with or without a webhook's index
    /// (`notify.webhooks[2].secret` is `notify.webhooks.secret`).
    pub fn parse(name: &str) -> Option<Self> {
        let mut plain = String::with_capacity(name.len());
        let mut in_index = false;
        for c in name.chars() {
            match c {
                '[' => in_index = true,
                ']' => in_index = false,
                c if !in_index => plain.push(c),
                _ => {}
            }
        }
        Self::ALL.into_iter().find(|f| f.name() == plain)
    }
}

/// What a private key file is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyRole {
    /// The TLS server key of the gateway and the admin API (`gateway.key`, `api.key`).
    TlsServer,
    /// The vendor CA's key, which signs technicians' certificates (`gateway.vendor_ca_key`).
    VendorCa,
    /// The development server CA's key `init` writes (read by no node).
    ServerCa,
    /// A key Portier sealed that the configuration no longer names.
    Other,
}

impl KeyRole {
    /// Every role, for diagnostics.
    pub const ALL: [Self; 4] = [Self::TlsServer, Self::VendorCa, Self::ServerCa, Self::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TlsServer => "tls-server",
            Self::VendorCa => "vendor-ca",
            Self::ServerCa => "server-ca",
            Self::Other => "other",
        }
    }
}

/// What a secret is for: bound into the envelope as associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose<'a> {
    /// A PEM private key file with this use.
    KeyFile(KeyRole),
    /// A value of `portier.toml` in this field.
    Config(ConfigField),
    /// The TOTP secret of the account with this id.
    Totp(&'a str),
}

impl std::fmt::Display for Purpose<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::KeyFile(role) => write!(f, "key-file:{}", role.as_str()),
            Self::Config(field) => write!(f, "config:{}", field.name()),
            Self::Totp(account) => write!(f, "totp:{account}"),
        }
    }
}

impl Purpose<'_> {
    fn aad(&self, version: u8, key: KeyId) -> Vec<u8> {
        let what = match (version, self) {
            (V1, Self::KeyFile(_)) => "private-key".to_owned(),
            (V1, Self::Config(_)) => "config-value".to_owned(),
            _ => self.to_string(),
        };
        let mut aad = format!("portier-at-rest\0v{version}\0{what}\0").into_bytes();
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
    #[error(
        "was encrypted for {sealed_for}, not for {wanted}: moved from another place (put each secret where it was \
         encrypted for, or encrypt it again for this place)"
    )]
    Misplaced { sealed_for: String, wanted: String },
    #[error("encryption failed")]
    Seal,
}

fn aead(key: &MasterKey) -> Result<LessSafeKey, EnvelopeError> {
    UnboundKey::new(&AES_256_GCM, key.bytes())
        .map(LessSafeKey::new)
        .map_err(|_| EnvelopeError::Seal)
}

/// Encrypts `plaintext` for `purpose` under `key` (current format).
pub fn seal(key: &MasterKey, purpose: Purpose<'_>, plaintext: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + AES_256_GCM.tag_len());
    out.push(V2);
    out.extend_from_slice(&key.id().0);
    out.extend_from_slice(&nonce);
    let mut body = Zeroizing::new(plaintext.to_vec());
    aead(key)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(purpose.aad(V2, key.id())),
            &mut *body,
        )
        .map_err(|_| EnvelopeError::Seal)?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// The format version of an envelope (1: legacy, 2: current).
pub fn version_of(envelope: &[u8]) -> Result<u8, EnvelopeError> {
    match envelope.first() {
        Some(&v @ (V1 | V2)) if envelope.len() >= HEADER_LEN + AES_256_GCM.tag_len() => Ok(v),
        _ => Err(EnvelopeError::Malformed),
    }
}

/// Whether an envelope is in the legacy format (its purpose not bound to a role).
pub fn is_legacy(envelope: &[u8]) -> bool {
    matches!(version_of(envelope), Ok(V1))
}

/// The id of the key an envelope was sealed under.
pub fn key_id_of(envelope: &[u8]) -> Result<KeyId, EnvelopeError> {
    version_of(envelope)?;
    let mut id = [0u8; ID_LEN];
    id.copy_from_slice(envelope.get(1..1 + ID_LEN).ok_or(EnvelopeError::Malformed)?);
    Ok(KeyId(id))
}

/// Decrypts an envelope with whichever of `keys` it was sealed under.
pub fn open(keys: &[&MasterKey], purpose: Purpose<'_>, envelope: &[u8]) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    let version = version_of(envelope)?;
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
            Aad::from(purpose.aad(version, sealed_with)),
            &mut body,
        )
        .map_err(|_| EnvelopeError::Damaged(sealed_with))?
        .len();
    body.truncate(len);
    Ok(body)
}

/// [`open`], telling apart an envelope sealed for one of `elsewhere` (moved
/// from another field or key file: [`EnvelopeError::Misplaced`]) from a
/// damaged one.
pub fn open_for(
    keys: &[&MasterKey],
    purpose: Purpose<'_>,
    elsewhere: &[Purpose<'_>],
    envelope: &[u8],
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    match open(keys, purpose, envelope) {
        Err(EnvelopeError::Damaged(id)) => {
            match elsewhere
                .iter()
                .find(|p| **p != purpose && open(keys, **p, envelope).is_ok())
            {
                Some(other) => Err(EnvelopeError::Misplaced {
                    sealed_for: other.to_string(),
                    wanted: purpose.to_string(),
                }),
                None => Err(EnvelopeError::Damaged(id)),
            }
        }
        other => other,
    }
}

/// Whether a stored text is an encrypted value (`enc:v2:…` or legacy `enc:v1:…`).
pub fn is_sealed_value(text: &str) -> bool {
    text.starts_with(VALUE_PREFIX) || text.starts_with(LEGACY_VALUE_PREFIX)
}

/// Whether a stored text is a legacy encrypted value (`enc:v1:…`).
pub fn is_legacy_value(text: &str) -> bool {
    text.starts_with(LEGACY_VALUE_PREFIX)
}

/// A text value encrypted, in its text form (`enc:v2:…`).
pub fn seal_value(key: &MasterKey, purpose: Purpose<'_>, value: &str) -> Result<String, EnvelopeError> {
    let sealed = seal(key, purpose, value.as_bytes())?;
    Ok(format!(
        "{VALUE_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(sealed)
    ))
}

/// The envelope inside a text value; its prefix must match its version.
pub fn value_envelope(text: &str) -> Result<Vec<u8>, EnvelopeError> {
    let (b64, version) = match (text.strip_prefix(VALUE_PREFIX), text.strip_prefix(LEGACY_VALUE_PREFIX)) {
        (Some(b64), _) => (b64, V2),
        (None, Some(b64)) => (b64, V1),
        (None, None) => return Err(EnvelopeError::Malformed),
    };
    let envelope = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| EnvelopeError::Malformed)?;
    if version_of(&envelope)? != version {
        return Err(EnvelopeError::Malformed);
    }
    Ok(envelope)
}

/// A text value decrypted.
pub fn open_value(keys: &[&MasterKey], purpose: Purpose<'_>, text: &str) -> Result<Zeroizing<String>, EnvelopeError> {
    open_value_for(keys, purpose, &[], text)
}

/// A text value decrypted, as [`open_for`].
pub fn open_value_for(
    keys: &[&MasterKey],
    purpose: Purpose<'_>,
    elsewhere: &[Purpose<'_>],
    text: &str,
) -> Result<Zeroizing<String>, EnvelopeError> {
    let plain = open_for(keys, purpose, elsewhere, &value_envelope(text)?)?;
    String::from_utf8(plain.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| EnvelopeError::Malformed)
}

/// A configuration value decrypted for `field`; one encrypted for another
/// field is [`EnvelopeError::Misplaced`].
pub fn open_config_value(
    keys: &[&MasterKey],
    field: ConfigField,
    text: &str,
) -> Result<Zeroizing<String>, EnvelopeError> {
    let elsewhere = ConfigField::ALL.map(Purpose::Config);
    open_value_for(keys, Purpose::Config(field), &elsewhere, text)
}

/// A version 1 value, as Portier wrote them before the role was bound (for
/// the tests of what reads them).
#[cfg(test)]
pub(super) fn seal_legacy_value(key: &MasterKey, purpose: Purpose<'_>, value: &str) -> String {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let mut out = vec![V1];
    out.extend_from_slice(&key.id().0);
    out.extend_from_slice(&nonce);
    let mut body = value.as_bytes().to_vec();
    let sealed = aead(key).and_then(|k| {
        k.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(purpose.aad(V1, key.id())),
            &mut body,
        )
        .map_err(|_| EnvelopeError::Seal)
    });
    assert!(sealed.is_ok());
    out.extend_from_slice(&body);
    format!(
        "{LEGACY_VALUE_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(out)
    )
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
        assert!(is_sealed_value(&sealed) && sealed.starts_with("enc:v2:") && !is_legacy_value(&sealed));
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
            open_value(&[&k], Purpose::Config(ConfigField::WebhookSecret), &sealed),
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
    fn a_config_value_moved_to_another_field_does_not_open_and_says_so() {
        let k = key();
        let password = seal_value(&k, Purpose::Config(ConfigField::BindPassword), "the bind password").unwrap();
        assert_eq!(
            open_config_value(&[&k], ConfigField::BindPassword, &password)
                .unwrap()
                .as_str(),
            "the bind password"
        );
        let err = open_config_value(&[&k], ConfigField::WebhookSecret, &password).unwrap_err();
        assert!(matches!(err, EnvelopeError::Misplaced { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("encrypted for config:auth.ldap.bind_password")
                && msg.contains("not for config:notify.webhooks.secret"),
            "{msg}"
        );
        // A key file's envelope is bound to its role the same way.
        let vendor_ca = seal(&k, Purpose::KeyFile(KeyRole::VendorCa), b"ca key").unwrap();
        let roles = KeyRole::ALL.map(Purpose::KeyFile);
        let err = open_for(&[&k], Purpose::KeyFile(KeyRole::TlsServer), &roles, &vendor_ca).unwrap_err();
        assert!(
            err.to_string()
                .contains("encrypted for key-file:vendor-ca, not for key-file:tls-server"),
            "{err}"
        );
        // Damage is not taken for a move.
        let mut bad = value_envelope(&password).unwrap();
        if let Some(last) = bad.last_mut() {
            *last ^= 1;
        }
        assert!(matches!(
            open_for(
                &[&k],
                Purpose::Config(ConfigField::WebhookSecret),
                &ConfigField::ALL.map(Purpose::Config),
                &bad
            ),
            Err(EnvelopeError::Damaged(_))
        ));
    }

    #[test]
    fn legacy_values_still_open_for_their_kind() {
        let k = key();
        let v1 = seal_legacy_value(&k, Purpose::Config(ConfigField::WebhookSecret), "an old webhook secret");
        assert!(is_sealed_value(&v1) && is_legacy_value(&v1));
        assert!(is_legacy(&value_envelope(&v1).unwrap()));
        // Version 1 bound the kind only: either field opens it (why v2 exists).
        for field in ConfigField::ALL {
            assert_eq!(
                open_config_value(&[&k], field, &v1).unwrap().as_str(),
                "an old webhook secret"
            );
        }
        assert!(matches!(
            open_value(&[&k], Purpose::Totp("u1"), &v1),
            Err(EnvelopeError::Damaged(_))
        ));
        let totp = seal_legacy_value(&k, Purpose::Totp("u1"), "JBSW");
        assert_eq!(open_value(&[&k], Purpose::Totp("u1"), &totp).unwrap().as_str(), "JBSW");
        assert!(open_value(&[&k], Purpose::Totp("u2"), &totp).is_err());
        // A prefix that lies about the version is malformed.
        let relabelled = v1.replacen(LEGACY_VALUE_PREFIX, VALUE_PREFIX, 1);
        assert!(matches!(
            open_config_value(&[&k], ConfigField::WebhookSecret, &relabelled),
            Err(EnvelopeError::Malformed)
        ));
    }

    #[test]
    fn tampering_is_detected_and_nonces_differ() {
        let k = key();
        let p = Purpose::KeyFile(KeyRole::TlsServer);
        let a = seal(&k, p, b"key").unwrap();
        let b = seal(&k, p, b"key").unwrap();
        assert_ne!(a, b);
        let mut bad = a.clone();
        if let Some(last) = bad.last_mut() {
            *last ^= 1;
        }
        assert!(matches!(open(&[&k], p, &bad), Err(EnvelopeError::Damaged(_))));
        assert!(matches!(open(&[&k], p, &a[..10]), Err(EnvelopeError::Malformed)));
        assert_eq!(open(&[&k], p, &a).unwrap().as_slice(), b"key");
    }

    #[test]
    fn field_names_parse_with_or_without_an_index() {
        assert_eq!(
            ConfigField::parse("notify.webhooks[3].secret"),
            Some(ConfigField::WebhookSecret)
        );
        assert_eq!(
            ConfigField::parse("notify.webhooks.secret"),
            Some(ConfigField::WebhookSecret)
        );
        assert_eq!(
            ConfigField::parse("auth.ldap.bind_password"),
            Some(ConfigField::BindPassword)
        );
        assert_eq!(ConfigField::parse("auth.ldap.url"), None);
    }
}
