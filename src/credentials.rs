//! The primitives of staff sign-in, free of any store: argon2id password
//! hashes, TOTP codes (RFC 6238), recovery codes and random one-time text.
//! The rules that use them (who may reset what, the sign-in stages, lockout)
//! are in `ops`.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;

/// Longest password hashed (argon2's cost grows with it; nobody types more).
pub const MAX_PASSWORD_LEN: usize = 1024;
/// TOTP: 30-second steps, 6 digits, HMAC-SHA-1 (what authenticator apps use).
pub const TOTP_STEP_SECS: i64 = 30;
pub const TOTP_DIGITS: u32 = 6;
/// Codes of the step before and after are accepted too (clock drift).
const TOTP_DRIFT_STEPS: i64 = 1;

/// Argon2 computations at once: each takes 19 MiB and a core for a while, so a
/// burst of sign-ins waits here instead of exhausting the node's memory.
const CONCURRENT_HASHES: usize = 4;

fn hash_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    PERMITS.get_or_init(|| tokio::sync::Semaphore::new(CONCURRENT_HASHES))
}

/// A password could not be hashed (argon2 refused it, or the blocking pool is gone).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Hashes a password with argon2id (the crate's default parameters, recorded
/// in the PHC string) and a random salt. CPU-bound: runs off the async workers.
pub async fn hash_password(password: &str) -> Result<String, HashError> {
    let password = password.to_owned();
    let _permit = hash_permits().acquire().await.map_err(|e| HashError(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| HashError(e.to_string()))
    })
    .await
    .map_err(|e| HashError(e.to_string()))?
}

/// Whether `password` matches `stored`. With no stored hash, a dummy one is
/// checked so an unknown account takes as long as a known one.
pub async fn verify_password(stored: Option<String>, password: &str) -> bool {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    let password = password.to_owned();
    let known = stored.is_some();
    let stored = stored.or_else(|| {
        DUMMY
            .get_or_init(|| {
                let salt = SaltString::generate(&mut rand::rngs::OsRng);
                Argon2::default()
                    .hash_password(b"portier-dummy-password", &salt)
                    .ok()
                    .map(|h| h.to_string())
            })
            .clone()
    });
    let Ok(_permit) = hash_permits().acquire().await else {
        return false;
    };
    let checked = tokio::task::spawn_blocking(move || {
        let Some(stored) = stored else { return false };
        let Ok(parsed) = PasswordHash::new(&stored) else {
            tracing::error!("a stored password hash does not parse");
            return false;
        };
        Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()
    })
    .await
    .unwrap_or(false);
    known && checked
}

/// The TOTP code of `secret` (raw bytes) at `step`.
fn totp_at(secret: &[u8], step: i64) -> Option<u32> {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).ok()?;
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest.get(19)? & 0x0f);
    let bytes: [u8; 4] = digest.get(offset..offset + 4)?.try_into().ok()?;
    let value = u32::from_be_bytes(bytes) & 0x7fff_ffff;
    Some(value % 10u32.pow(TOTP_DIGITS))
}

/// The 30-second step of `at`.
pub fn totp_step(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(TOTP_STEP_SECS)
}

/// The code an authenticator app shows for a base32 `secret` at `at`
/// (public for tests and tools).
pub fn totp_code(secret_b32: &str, at: DateTime<Utc>) -> Option<String> {
    let secret = decode_secret(secret_b32)?;
    totp_at(&secret, totp_step(at)).map(|c| format!("{c:06}"))
}

/// A new random TOTP secret (160 bits, RFC 4226's recommendation), in base32.
pub fn new_totp_secret() -> String {
    let mut raw = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    data_encoding::BASE32_NOPAD.encode(&raw)
}

/// Whether a base32 TOTP secret is one this product could have made: at
/// least 160 bits (the enrolment form sends the secret back, so a short or
/// empty one chosen by the client must not satisfy a required second factor).
pub fn valid_totp_secret(secret_b32: &str) -> bool {
    decode_secret(secret_b32).is_some_and(|s| s.len() >= 20 && s.len() <= 64)
}

fn decode_secret(secret_b32: &str) -> Option<Vec<u8>> {
    let cleaned: String = secret_b32
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    data_encoding::BASE32_NOPAD.decode(cleaned.as_bytes()).ok()
}

/// The step whose code `code` is, within the drift allowed around `at`.
pub fn matching_step(secret_b32: &str, code: &str, at: DateTime<Utc>) -> Option<i64> {
    let secret = decode_secret(secret_b32)?;
    let code: u32 = code.parse().ok()?;
    let now = totp_step(at);
    (now - TOTP_DRIFT_STEPS..=now + TOTP_DRIFT_STEPS).find(|s| totp_at(&secret, *s) == Some(code))
}

/// A six-digit code as typed (spaces allowed).
pub fn as_totp(code: &str) -> Option<String> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    (digits.len() == TOTP_DIGITS as usize && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// A recovery code as stored: lower case, without separators.
pub fn recovery_sha256(code: &str) -> String {
    let cleaned: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    crate::token::hash(&format!("portier-recovery:{cleaned}"))
}

/// A new recovery code, `xxxxx-xxxxx`.
pub fn new_recovery_code() -> String {
    let c = random_text(10);
    format!("{}-{}", c.get(..5).unwrap_or_default(), c.get(5..).unwrap_or_default())
}

/// Random text from an alphabet without look-alike characters.
pub fn random_text(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut bytes = vec![0u8; len];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| char::from(ALPHABET.get(usize::from(*b) % ALPHABET.len()).copied().unwrap_or(b'a')))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totp_matches_rfc_6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA-1, secret "12345678901234567890" (8 digits
        // there; the last 6 here).
        let secret = b"12345678901234567890";
        for (t, code8) in [
            (59, 94_287_082u32),
            (1_111_111_109, 7_081_804),
            (2_000_000_000, 69_279_037),
        ] {
            assert_eq!(totp_at(secret, t / 30), Some(code8 % 1_000_000), "t={t}");
        }
    }

    #[test]
    fn recovery_codes_ignore_case_and_separators() {
        assert_eq!(recovery_sha256("abcde-fghij"), recovery_sha256(" ABCDE FGHIJ "));
        let code = new_recovery_code();
        assert_eq!(code.len(), 11);
        assert_eq!(recovery_sha256(&code), recovery_sha256(&code.to_uppercase()));
    }

    #[test]
    fn short_or_malformed_secrets_are_refused() {
        assert!(valid_totp_secret(&new_totp_secret()));
        for bad in ["", "AAAA", "not base32 at all!", &"A".repeat(16)] {
            assert!(!valid_totp_secret(bad), "{bad}");
        }
    }

    #[test]
    fn codes_are_six_digits() {
        assert_eq!(as_totp(" 123 456 ").as_deref(), Some("123456"));
        for bad in ["12345", "1234567", "12345a", ""] {
            assert_eq!(as_totp(bad), None, "{bad}");
        }
    }
}
