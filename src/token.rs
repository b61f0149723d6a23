//! API bearer tokens: 256 random bits, shown once, stored only as SHA-256.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix that makes a leaked token recognisable by secret scanners.
pub const PREFIX: &str = "ptk_";

/// Prefix of console session cookies.
pub const SESSION_PREFIX: &str = "pcs_";

/// A fresh token and the hash to store.
pub fn generate() -> (String, String) {
    generate_prefixed(PREFIX)
}

/// A fresh secret with `prefix` (256 random bits) and the hash to store.
pub fn generate_prefixed(prefix: &str) -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = format!("{prefix}{}", hex::encode(bytes));
    let hash = hash(&token);
    (token, hash)
}

/// How many characters of a token are kept to tell it apart in lists
/// (`ptk_` and 6 of its 64 random hexadecimal digits: 24 of its 256 bits).
pub const SHOWN_CHARS: usize = PREFIX.len() + 6;

/// The first characters of a token, kept and shown in lists.
pub fn shown_prefix(token: &str) -> String {
    token.chars().take(SHOWN_CHARS).collect()
}

/// The stored form of a token.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_long_random_and_hashed() {
        let (a, ha) = super::generate();
        let (b, _) = super::generate();
        assert_ne!(a, b);
        assert_eq!(a.len(), super::PREFIX.len() + 64);
        assert_eq!(ha, super::hash(&a));
        assert!(!ha.contains(&a[4..]));
    }
}
