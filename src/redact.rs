//! Secrets kept out of logs, API answers, the audit trail and `Debug` output.
//!
//! URLs may carry credentials (a database password, `https://user:pass@host`,
//! `?token=…`): [`redact_url`] is the one function every place that shows a
//! configured URL goes through. [`Secret`] wraps a value whose `Debug` must not
//! print it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a hidden value is shown as.
pub const MASK: &str = "***";

/// Query keys whose values are settings, not credentials (kept for operators).
const PLAIN_QUERY_KEYS: [&str; 4] = ["sslmode", "mode", "cache", "connect_timeout"];

/// A URL without its credentials: the password (and for HTTP URLs the user
/// name too, often a token there), every query value except known settings
/// such as `sslmode`, and the fragment are replaced by `***`.
/// Text that does not parse as a URL is hidden whole after its scheme when it
/// might hold credentials.
pub fn redact_url(raw: &str) -> String {
    let Ok(mut url) = url::Url::parse(raw) else {
        return redact_unparsed(raw);
    };
    let http = matches!(url.scheme(), "http" | "https");
    if url.password().is_some() {
        // Cannot fail: the URL has a password, so it has a host.
        let _ = url.set_password(Some(MASK));
    }
    if http && !url.username().is_empty() {
        let _ = url.set_username(MASK);
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let keep = PLAIN_QUERY_KEYS.contains(&k.as_ref());
                (k.into_owned(), if keep { v.into_owned() } else { MASK.to_owned() })
            })
            .collect();
        if pairs.is_empty() {
            url.set_query(None);
        } else {
            // Written by hand so the mask stays readable (the serializer would
            // percent-encode nothing here, but keys stay as given).
            let q: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            url.set_query(Some(&q.join("&")));
        }
    }
    if url.fragment().is_some() {
        url.set_fragment(Some(MASK));
    }
    url.to_string()
}

/// Fallback for text the URL parser refuses: keep it only if nothing in it can
/// be a credential.
fn redact_unparsed(raw: &str) -> String {
    if !raw.contains(['@', '?', '#']) {
        return raw.to_owned();
    }
    match raw.split_once("://") {
        Some((scheme, _)) if !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+') => {
            format!("{scheme}://{MASK}")
        }
        _ => MASK.to_owned(),
    }
}

/// A value that is used but never shown: its `Debug` prints `***`. Serialized
/// as the value itself (configuration files must round-trip).
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }
    /// The value, for the one place that uses it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl From<String> for Secret<String> {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Secret<String> {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// `Debug` of a URL-valued field, through [`redact_url`].
pub struct DebugUrl<'a>(pub &'a str);

impl fmt::Debug for DebugUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&redact_url(self.0), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials() {
        for (raw, shown) in [
            ("postgres://u:secret@h/db", "postgres://u:***@h/db"),
            (
                "postgres://u@h:5432/db?sslmode=require",
                "postgres://u@h:5432/db?sslmode=require",
            ),
            (
                "postgres://u:pw@h/db?password=pw2&sslmode=verify-full",
                "postgres://u:***@h/db?password=***&sslmode=verify-full",
            ),
            (
                "sqlite:///var/lib/portier/portier.db",
                "sqlite:///var/lib/portier/portier.db",
            ),
            ("sqlite:///x.db?mode=ro", "sqlite:///x.db?mode=ro"),
            (
                "https://user:pass@soc.example/hook?token=abc&x=1#frag",
                "https://***:***@soc.example/hook?token=***&x=***#***",
            ),
            ("https://tok3n@soc.example/hook", "https://***@soc.example/hook"),
            ("http://127.0.0.1:9/hook", "http://127.0.0.1:9/hook"),
        ] {
            assert_eq!(redact_url(raw), shown, "{raw}");
        }
    }

    #[test]
    fn unparsed_text_with_possible_credentials_is_hidden() {
        assert_eq!(redact_url("postgres://u:p@[bad/db"), "postgres://***");
        assert_eq!(redact_url("//u:p@host/x"), "***");
        assert_eq!(redact_url("plain text"), "plain text");
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let s = Secret::new("hunter2-hunter2-hunter2".to_owned());
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(s.expose(), "hunter2-hunter2-hunter2");
        assert_eq!(
            format!("{:?}", DebugUrl("https://a:b@h/x?t=1")),
            "\"https://***:***@h/x?t=***\""
        );
    }
}
