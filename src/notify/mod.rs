//! Notifications to the hospital's tools: webhooks (JSON, signed per the
//! Standard Webhooks scheme, retried with backoff) and syslog (RFC 5424 over
//! UDP or TCP).
//! Sending never blocks a tunnel or an API call: events go through a bounded
//! queue, and when it is full they are dropped with a log line.

use crate::events::Event;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::redact::{redact_url, DebugUrl, Secret};

/// Deprecated: `sha256=<hex HMAC-SHA256 of the body>`. It covers the body only,
/// so a captured delivery verifies again when replayed; kept for receivers
/// written before [`STANDARD_SIGNATURE_HEADER`], to be removed.
pub const SIGNATURE_HEADER: &str = "x-portier-signature";
/// Standard Webhooks: the message id, the same on every retry of a message
/// (receivers deduplicate on it).
pub const ID_HEADER: &str = "webhook-id";
/// Standard Webhooks: Unix seconds of this attempt (receivers refuse old ones).
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// Standard Webhooks: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
pub const STANDARD_SIGNATURE_HEADER: &str = "webhook-signature";
/// Prefix of a Standard Webhooks secret whose rest is the base64 key.
pub const SECRET_PREFIX: &str = "whsec_";
/// Header carrying the event name.
pub const EVENT_HEADER: &str = "x-portier-event";

const QUEUE: usize = 1024;
const ATTEMPTS: u32 = 5;

/// A webhook sink (`[[notify.webhooks]]`).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `https://…` (or `http://` on loopback for tests and local relays).
    /// May carry credentials: shown only through [`redact_url`].
    pub url: String,
    /// HMAC-SHA256 key the receiver verifies the signature with: `whsec_<base64>`
    /// (the Standard Webhooks form: the key is the decoded bytes), or any other
    /// text (the key is its UTF-8 bytes). See [`signing_key`].
    pub secret: Secret<String>,
    /// Event names to send (`*` for all, `window.*` for a family). Default: all.
    #[serde(default = "all_events")]
    pub events: Vec<String>,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &DebugUrl(&self.url))
            .field("secret", &self.secret)
            .field("events", &self.events)
            .finish()
    }
}

fn all_events() -> Vec<String> {
    vec!["*".into()]
}

/// One event.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub event: String,
    pub at: DateTime<Utc>,
    pub data: serde_json::Value,
}

/// Where notifications go.
#[derive(Debug, Clone, Default)]
pub struct Sinks {
    pub webhooks: Vec<WebhookConfig>,
    /// `udp://host:port` or `tcp://host:port`.
    pub syslog: Option<String>,
    /// Initial delay between webhook attempts (doubled each time).
    pub retry_base: Duration,
}

/// Handle to the notification task; cheap to clone. A handle built with
/// [`Notifier::disabled`] drops everything.
#[derive(Clone, Debug)]
pub struct Notifier {
    tx: Option<mpsc::Sender<Notification>>,
}

impl Notifier {
    /// A notifier that sends nothing.
    pub fn disabled() -> Self {
        Self { tx: None }
    }

    /// Starts the sending task.
    pub fn start(sinks: Sinks) -> Self {
        if sinks.webhooks.is_empty() && sinks.syslog.is_none() {
            return Self::disabled();
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(Arc::new(sinks), rx));
        Self { tx: Some(tx) }
    }

    /// Queues an event; never waits.
    pub fn send(&self, event: Event, data: serde_json::Value) {
        let Some(tx) = &self.tx else { return };
        let event = event.as_str();
        let n = Notification {
            event: event.to_owned(),
            at: Utc::now(),
            data,
        };
        if tx.try_send(n).is_err() {
            tracing::warn!(event, "notification queue full: event dropped");
        }
    }
}

fn wanted(filters: &[String], event: &str) -> bool {
    filters.iter().any(|f| {
        f == "*"
            || f == event
            || f.strip_suffix(".*")
                .is_some_and(|family| event.strip_prefix(family).is_some_and(|r| r.starts_with('.')))
    })
}

/// A `whsec_` secret whose rest is not base64.
#[derive(Debug, thiserror::Error)]
#[error("a webhook secret starting with {SECRET_PREFIX:?} must continue with base64 key bytes")]
pub struct BadSecret;

/// The HMAC key of a configured secret: `whsec_<base64>` decodes to its key
/// bytes (as every Standard Webhooks library does), anything else is used as
/// its UTF-8 bytes (secrets written before the scheme keep working).
pub fn signing_key(secret: &str) -> Result<Vec<u8>, BadSecret> {
    use base64::engine::{general_purpose, DecodePaddingMode, GeneralPurpose};
    use base64::Engine;
    // Padding optional: secrets are copied from consoles that strip it.
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        general_purpose::PAD.with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    match secret.strip_prefix(SECRET_PREFIX) {
        Some(b64) => LENIENT.decode(b64).ok().filter(|k| !k.is_empty()).ok_or(BadSecret),
        None => Ok(secret.as_bytes().to_vec()),
    }
}

/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`: the
/// `webhook-signature` value of the Standard Webhooks scheme.
pub fn standard_signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    use base64::Engine;
    // HMAC accepts keys of any length: this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// A fresh message id (`msg_` and 32 hex digits).
fn message_id() -> String {
    format!("msg_{}", uuid::Uuid::new_v4().simple())
}

/// Deprecated body-only signature: `sha256=<hex>` of `body` under `secret`'s
/// UTF-8 bytes (unchanged, whatever the secret's form).
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length: this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn run(sinks: Arc<Sinks>, mut rx: mpsc::Receiver<Notification>) {
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(5)).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook client unavailable");
            return;
        }
    };
    while let Some(n) = rx.recv().await {
        let body = match serde_json::to_vec(&n) {
            Ok(b) => Arc::new(b),
            Err(_) => continue,
        };
        // One id per event: the same on every retry and for every receiver.
        let id: Arc<str> = message_id().into();
        for hook in sinks.webhooks.iter().filter(|h| wanted(&h.events, &n.event)) {
            // Each delivery retries on its own task: a dead receiver delays nobody.
            tokio::spawn(deliver(
                client.clone(),
                hook.clone(),
                Message {
                    id: id.clone(),
                    event: n.event.clone(),
                    body: body.clone(),
                },
                sinks.retry_base,
            ));
        }
        if let Some(target) = &sinks.syslog {
            if let Err(e) = syslog(target, &n).await {
                tracing::warn!(error = %e, target, "syslog notification failed");
            }
        }
    }
}

/// One event as sent to a webhook.
struct Message {
    id: Arc<str>,
    event: String,
    body: Arc<Vec<u8>>,
}

async fn deliver(client: reqwest::Client, hook: WebhookConfig, msg: Message, base: Duration) {
    let Message { id, event, body } = msg;
    // The URL may carry credentials: logs get the redacted form, and reqwest's
    // errors are stripped of the URL they embed.
    let shown = redact_url(&hook.url);
    // Checked when the configuration is loaded; this guards a hand-built Sinks.
    let key = match signing_key(hook.secret.expose()) {
        Ok(k) => k,
        Err(e) => {
            tracing::error!(url = %shown, event, error = %e, "webhook not sent");
            return;
        }
    };
    let legacy = signature(hook.secret.expose(), &body);
    let mut delay = base;
    for attempt in 1..=ATTEMPTS {
        // Signed anew per attempt: the timestamp is the attempt's, the id the message's.
        let timestamp = Utc::now().timestamp();
        let r = client
            .post(&hook.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(ID_HEADER, id.as_ref())
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(
                STANDARD_SIGNATURE_HEADER,
                standard_signature(&key, &id, timestamp, &body),
            )
            .header(SIGNATURE_HEADER, &legacy)
            .header(EVENT_HEADER, &event)
            .body(body.as_ref().clone())
            .send()
            .await;
        match r {
            Ok(resp) if resp.status().is_success() => return,
            Ok(resp) => tracing::warn!(url = %shown, status = %resp.status(), attempt, "webhook refused"),
            Err(e) => tracing::warn!(url = %shown, error = %e.without_url(), attempt, "webhook unreachable"),
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
    tracing::error!(url = %shown, event, "webhook delivery abandoned after {ATTEMPTS} attempts");
}

/// RFC 5424 line: facility local4 (20), severity notice (5) or warning (4).
pub fn syslog_line(n: &Notification) -> String {
    let severity = if n.event.starts_with("lockdown")
        || n.event.starts_with("emergency")
        || n.event.contains("denied")
        || n.event.contains("overdue")
    {
        4
    } else {
        5
    };
    let pri = 20 * 8 + severity;
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty() && h.is_ascii() && !h.contains(' '))
        .unwrap_or_else(|| "-".into());
    let msgid: String = n.event.chars().filter(|c| c.is_ascii_graphic()).take(32).collect();
    format!(
        "<{pri}>1 {} {host} portier {} {msgid} - {}",
        n.at.to_rfc3339_opts(SecondsFormat::Micros, true),
        std::process::id(),
        serde_json::json!({"event": n.event, "data": n.data})
    )
}

async fn syslog(target: &str, n: &Notification) -> std::io::Result<()> {
    let line = syslog_line(n);
    let bad = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "syslog target must be udp://host:port or tcp://host:port",
        )
    };
    if let Some(addr) = target.strip_prefix("udp://") {
        let sock = tokio::net::UdpSocket::bind(if addr.starts_with('[') { "[::]:0" } else { "0.0.0.0:0" }).await?;
        sock.send_to(line.as_bytes(), addr).await?;
        Ok(())
    } else if let Some(addr) = target.strip_prefix("tcp://") {
        // RFC 6587 octet counting.
        let mut s = tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        s.write_all(format!("{} {line}", line.len()).as_bytes()).await?;
        s.shutdown().await
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_filters() {
        let f = vec!["window.*".to_owned(), "lockdown.on".to_owned()];
        assert!(wanted(&f, "window.approved"));
        assert!(!wanted(&f, "windows.x"));
        assert!(wanted(&f, "lockdown.on"));
        assert!(!wanted(&f, "lockdown.off"));
        assert!(wanted(&["*".to_owned()], "anything"));
    }

    #[test]
    fn signature_is_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    /// The example of the Standard Webhooks specification and its reference
    /// libraries' tests.
    #[test]
    fn standard_signature_matches_the_spec_vector() {
        let key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            standard_signature(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_map_to_keys() {
        assert_eq!(signing_key("plain-secret-0123").unwrap(), b"plain-secret-0123");
        assert_eq!(signing_key("whsec_AAECAw==").unwrap(), [0, 1, 2, 3]);
        assert_eq!(signing_key("whsec_AAECAw").unwrap(), [0, 1, 2, 3]);
        assert!(signing_key("whsec_not base64!").is_err());
        assert!(signing_key("whsec_").is_err());
        assert!(message_id().starts_with("msg_") && message_id() != message_id());
    }

    #[test]
    fn syslog_lines_are_rfc5424() {
        let n = Notification {
            event: "lockdown.on".into(),
            at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            data: serde_json::json!({"reason": "x"}),
        };
        let line = syslog_line(&n);
        assert!(line.starts_with("<164>1 2023-11-14T22:13:20.000000Z "), "{line}");
        assert!(
            line.contains(" portier ") && line.contains(" lockdown.on - {"),
            "{line}"
        );
    }
}
