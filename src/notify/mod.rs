//! Notifications to the hospital's tools: webhooks (JSON, signed per the
//! Standard Webhooks scheme) and syslog (RFC 5424 over UDP or TCP).
//!
//! They survive (issue 9 item 6): a notification is a row of the store's
//! outbox before anything is sent — written in the transaction of the change it
//! announces, or through the journal by [`Notifier::send`] — and each node runs
//! an [`OutboxWorker`] that claims due rows (one node at a time per row),
//! delivers them to every sink, and retries the ones a sink refused with
//! growing, jittered delays for hours (`[notify] retry_for_hours`) before giving
//! up loudly. Delivery is at least once: a receiver deduplicates on
//! `webhook-id`, derived from the row, so the same on every retry and node.
//! Sending never blocks a tunnel or an API call.

mod outbox;
mod syslog;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore};

use crate::clock::SharedClock;
use crate::events::Event;
use crate::redact::{DebugUrl, Secret};
use crate::store::{Durability, Journal, JournalEntry, Notice, Store};

pub use outbox::{retry_delay, OutboxWorker};
pub use syslog::syslog_line;
pub use webhook::{signature, signing_key, standard_signature, BadSecret, SECRET_PREFIX};

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
/// Header carrying the event name.
pub const EVENT_HEADER: &str = "x-portier-event";

/// Notifications on their way to the journal at most; beyond, new ones are
/// dropped with a log line (the store is far behind: something else is wrong).
const IN_FLIGHT: usize = 1024;

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
    /// Also send the deprecated body-only `x-portier-signature` (default: no).
    /// It does not cover the id and timestamp, so a captured delivery verifies
    /// again when replayed: only for receivers not yet moved to the Standard
    /// Webhooks headers.
    #[serde(default)]
    pub legacy_signature: bool,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &DebugUrl(&self.url))
            .field("secret", &self.secret)
            .field("events", &self.events)
            .field("legacy_signature", &self.legacy_signature)
            .finish()
    }
}

fn all_events() -> Vec<String> {
    vec!["*".into()]
}

/// One event as delivered: the webhook body (`{"event", "at", "data"}`) and
/// the syslog line's content.
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
}

impl Sinks {
    /// No sink at all: nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.webhooks.is_empty() && self.syslog.is_none()
    }

    /// Whether some sink takes `event` (syslog takes every event).
    pub fn want(&self, event: &str) -> bool {
        self.syslog.is_some() || self.webhooks.iter().any(|h| wanted(&h.events, event))
    }
}

/// How notifications are delivered and retried (`[notify]`).
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// The first retry's delay ceiling, doubled per attempt.
    pub retry_base: Duration,
    /// The longest delay between two attempts.
    pub retry_max: Duration,
    /// A notification still undelivered this long after it was raised is given up.
    pub retry_for: Duration,
    /// Settled (delivered or given-up) notifications are deleted after this.
    pub retention: Duration,
    /// How often a node looks for due notifications it was not woken for.
    pub poll: Duration,
    /// One webhook request at most.
    pub attempt_timeout: Duration,
    /// Notifications claimed (and delivered concurrently) at once.
    pub batch: u32,
    /// Where failed delivery attempts are counted.
    pub metrics: crate::metrics::Metrics,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(30 * 60),
            retry_for: Duration::from_secs(72 * 3600),
            retention: Duration::from_secs(7 * 86_400),
            poll: Duration::from_secs(1),
            attempt_timeout: Duration::from_secs(5),
            batch: 32,
            metrics: crate::metrics::Metrics::default(),
        }
    }
}

/// Starts the notifications of a node: the [`Notifier`] everything raises
/// events through, and the [`OutboxWorker`] that delivers them (to spawn with
/// the node's shutdown token). With no sink configured, nothing is queued and
/// the worker only purges the outbox (changes still write their notices in
/// their transactions; other nodes may have sinks).
pub fn start(
    sinks: Sinks,
    settings: DeliverySettings,
    store: Arc<dyn Store>,
    journal: Journal,
    clock: SharedClock,
    node: &str,
) -> (Notifier, OutboxWorker) {
    let wake = Arc::new(Notify::new());
    let notifier = if sinks.is_empty() {
        Notifier::disabled()
    } else {
        Notifier {
            inner: Some(Arc::new(Enqueue {
                journal,
                sinks: sinks.clone(),
                clock: clock.clone(),
                wake: wake.clone(),
                in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
            })),
        }
    };
    let worker = OutboxWorker::new(store, sinks, settings, clock, node, wake);
    (notifier, worker)
}

/// Handle to queue notifications; cheap to clone. A handle built with
/// [`Notifier::disabled`] drops everything.
#[derive(Clone, Default)]
pub struct Notifier {
    inner: Option<Arc<Enqueue>>,
}

struct Enqueue {
    journal: Journal,
    sinks: Sinks,
    clock: SharedClock,
    /// Wakes this node's worker once a notice is committed.
    wake: Arc<Notify>,
    in_flight: Arc<Semaphore>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("enabled", &self.inner.is_some())
            .finish()
    }
}

impl Notifier {
    /// A notifier that sends nothing.
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    /// Queues an event that goes with no stored change (a change's own
    /// notices are written in its transaction): it is written to the outbox
    /// through the journal (sharing its group commit, and its retry queue while
    /// the store is down), then delivered by the worker. Never waits. Dropped
    /// if no sink wants it.
    pub fn send(&self, event: Event, data: serde_json::Value) {
        let Some(inner) = &self.inner else { return };
        let name = event.as_str();
        if !inner.sinks.want(name) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(event = name, "notification raised outside the runtime: dropped");
            return;
        };
        let Ok(permit) = inner.in_flight.clone().try_acquire_owned() else {
            tracing::warn!(event = name, "notification backlog full: event dropped");
            return;
        };
        let entry = JournalEntry::Notice(Notice::new(event, data), inner.clock.now());
        let (journal, wake) = (inner.journal.clone(), inner.wake.clone());
        runtime.spawn(async move {
            match journal.write(entry).await {
                Ok(Durability::Durable) => wake.notify_one(),
                // Written once the store is back; the worker's polling finds it then.
                Ok(Durability::Queued) => {}
                Err(e) => tracing::error!(event = name, error = %e, "notification not recorded: it will not be sent"),
            }
            drop(permit);
        });
    }
}

pub(crate) fn wanted(filters: &[String], event: &str) -> bool {
    filters.iter().any(|f| {
        f == "*"
            || f == event
            || f.strip_suffix(".*")
                .is_some_and(|family| event.strip_prefix(family).is_some_and(|r| r.starts_with('.')))
    })
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
        // Warning for what needs attention, notice otherwise (and for names this
        // version does not know).
        for (event, pri) in [
            ("admission.denied", "<164>"),
            ("report.overdue", "<164>"),
            ("window.requested", "<165>"),
            ("session.started", "<165>"),
            ("something.new", "<165>"),
        ] {
            let line = syslog_line(&Notification {
                event: event.into(),
                ..n.clone()
            });
            assert!(line.starts_with(pri), "{event}: {line}");
        }
    }
}
