//! Delivery of the outbox: one worker per node claims due notices, sends each
//! to every sink that wants it, and records the outcome — delivered, retried
//! later (growing, jittered delays), or given up after the horizon. The rows
//! are durable, so nothing is lost when a node stops: a claim it held expires
//! (or is freed when it starts again) and the notice is sent again.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::webhook::{self, Message};
use super::{syslog, wanted, DeliverySettings, Notification, Sinks, WebhookConfig};
use crate::clock::SharedClock;
use crate::metrics::NotificationSink;
use crate::redact::redact_url;
use crate::store::{OutboxItem, Store, StoreResult};

/// How often settled notices are deleted (and forgotten ones given up).
const PURGE_EVERY: Duration = Duration::from_secs(10 * 60);
/// The shortest claim: long enough for any delivery of one batch.
const MIN_LEASE: Duration = Duration::from_secs(60);
/// Longest error text kept with a notice.
const MAX_ERROR: usize = 1000;

/// The delay before the next attempt of a notice whose `attempts` attempts
/// failed: a ceiling of `base`·2^(attempts−1), capped at `max`, of which half
/// is always waited and the other half scaled by `jitter` (0 to 1, random in
/// use). The random half spreads the retries of many notices refused at the
/// same moment (a receiver down); the fixed half keeps the delays growing, so a
/// receiver that is down is not retried at once.
pub fn retry_delay(attempts: u32, base: Duration, max: Duration, jitter: f64) -> Duration {
    let doublings = i32::try_from(attempts.saturating_sub(1).min(62)).unwrap_or(62);
    let ceiling = (base.as_secs_f64() * 2f64.powi(doublings)).min(max.as_secs_f64());
    let delay = ceiling * (0.5 + 0.5 * jitter.clamp(0.0, 1.0));
    Duration::try_from_secs_f64(delay).unwrap_or(max)
}

fn later(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn earlier(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// One configured sink.
enum Sink {
    Webhook(WebhookConfig),
    Syslog(String),
}

/// A sink and the key its acceptance of a notice is remembered by: a digest
/// of its address, so a retry skips the sinks that already took the notice.
struct Target {
    key: String,
    sink: Sink,
}

impl Sink {
    fn kind(&self) -> NotificationSink {
        match self {
            Sink::Webhook(_) => NotificationSink::Webhook,
            Sink::Syslog(_) => NotificationSink::Syslog,
        }
    }
}

impl Target {
    fn new(sink: Sink) -> Self {
        let (kind, address) = match &sink {
            Sink::Webhook(h) => ("webhook", h.url.as_str()),
            Sink::Syslog(t) => ("syslog", t.as_str()),
        };
        let digest: Vec<u8> = Sha256::digest(address.as_bytes()).into_iter().take(8).collect();
        Self {
            key: format!("{kind}:{}", hex::encode(digest)),
            sink,
        }
    }

    fn wants(&self, event: &str) -> bool {
        match &self.sink {
            Sink::Webhook(h) => wanted(&h.events, event),
            Sink::Syslog(_) => true,
        }
    }

    /// One attempt; the error names the sink (redacted).
    async fn send(
        &self,
        client: &reqwest::Client,
        id: &str,
        n: &Notification,
        body: &[u8],
        timeout: Duration,
    ) -> Result<(), String> {
        match &self.sink {
            Sink::Webhook(hook) => {
                let msg = Message {
                    id,
                    event: &n.event,
                    body,
                };
                webhook::post(client, hook, &msg).await
            }
            Sink::Syslog(target) => {
                let r = tokio::time::timeout(timeout, syslog::send(target, n))
                    .await
                    .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()));
                r.map_err(|e| {
                    tracing::warn!(error = %e, target = %redact_url(target), id, "syslog notification failed");
                    format!("syslog {}: {e}", redact_url(target))
                })
            }
        }
    }
}

/// What one claim round found.
struct Round {
    /// As many notices as a batch holds: more may be due at once.
    full: bool,
    /// The earliest retry this round scheduled.
    soonest: Option<DateTime<Utc>>,
}

/// Delivers the outbox from this node (see the module documentation).
pub struct OutboxWorker {
    store: Arc<dyn Store>,
    targets: Vec<Target>,
    settings: DeliverySettings,
    clock: SharedClock,
    node: String,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for OutboxWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxWorker")
            .field("node", &self.node)
            .field("sinks", &self.targets.len())
            .field("settings", &self.settings)
            .finish()
    }
}

impl OutboxWorker {
    pub(super) fn new(
        store: Arc<dyn Store>,
        sinks: Sinks,
        settings: DeliverySettings,
        clock: SharedClock,
        node: &str,
        wake: Arc<Notify>,
    ) -> Self {
        let mut targets: Vec<Target> = sinks
            .webhooks
            .into_iter()
            .map(|h| Target::new(Sink::Webhook(h)))
            .collect();
        if let Some(t) = sinks.syslog {
            targets.push(Target::new(Sink::Syslog(t)));
        }
        Self {
            store,
            targets,
            settings,
            clock,
            node: node.to_owned(),
            wake,
        }
    }

    /// Wakes the worker: a notice was committed and is due now.
    pub fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// How long a claim lasts: every sink of a notice may take the whole
    /// attempt timeout (the notices of a batch are delivered concurrently).
    fn lease(&self) -> Duration {
        let sinks = u32::try_from(self.targets.len()).unwrap_or(u32::MAX);
        let busy = self.settings.attempt_timeout.saturating_mul(sinks.saturating_mul(2));
        MIN_LEASE.max(busy + Duration::from_secs(30))
    }

    /// Delivers until `shutdown`. A delivery under way when it fires is
    /// abandoned: its claim is freed when this node starts again, or expires.
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let client = match reqwest::Client::builder()
            .timeout(this.settings.attempt_timeout)
            .build()
        {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(error = %e, "webhook client unavailable: this node delivers no notification");
                None
            }
        };
        let client = client.filter(|_| !this.targets.is_empty());
        if client.is_some() {
            match this.store.release_outbox_claims(&this.node).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    notices = n,
                    "notifications the previous run was delivering when it stopped: sent again"
                ),
                Err(e) => tracing::warn!(error = %e, "could not free the previous run's claims: they expire instead"),
            }
        }
        let mut next_purge = Instant::now();
        let mut store_down = false;
        loop {
            if Instant::now() >= next_purge {
                this.purge().await;
                next_purge = Instant::now() + PURGE_EVERY;
            }
            let mut pause = PURGE_EVERY;
            if let Some(client) = &client {
                pause = this.settings.poll;
                let round = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    r = this.clone().round(client) => r,
                };
                match round {
                    Ok(r) => {
                        if std::mem::take(&mut store_down) {
                            tracing::info!("notification delivery resumed");
                        }
                        if r.full {
                            pause = Duration::ZERO;
                        } else if let Some(at) = r.soonest {
                            let until = (at - this.clock.now()).to_std().unwrap_or(Duration::ZERO);
                            pause = pause.min(until);
                        }
                    }
                    Err(e) => {
                        if !std::mem::replace(&mut store_down, true) {
                            tracing::warn!(error = %e, "cannot claim notifications: delivery waits for the store");
                        }
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = this.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Claims the notices due and delivers them concurrently.
    async fn round(self: Arc<Self>, client: &reqwest::Client) -> StoreResult<Round> {
        let now = self.clock.now();
        let items = self
            .store
            .claim_outbox(&self.node, now, later(now, self.lease()), self.settings.batch)
            .await?;
        let full = items.len() >= self.settings.batch as usize;
        // Dropped with the round at shutdown: the deliveries under way are aborted.
        let mut set = JoinSet::new();
        for item in items {
            let (this, client) = (self.clone(), client.clone());
            set.spawn(async move { this.settle(&client, item).await });
        }
        let mut soonest: Option<DateTime<Utc>> = None;
        while let Some(r) = set.join_next().await {
            if let Ok(Some(next)) = r {
                soonest = Some(soonest.map_or(next, |s| s.min(next)));
            }
        }
        Ok(Round { full, soonest })
    }

    /// Delivers one claimed notice to every sink that wants it and has not
    /// taken it yet, and records the outcome. Returns when it is retried.
    async fn settle(&self, client: &reqwest::Client, item: OutboxItem) -> Option<DateTime<Utc>> {
        let seq = item.seq;
        let data = match serde_json::from_str(&item.data) {
            Ok(d) => d,
            Err(e) => {
                // Written by this program: a bug or tampering, and no retry mends it.
                tracing::error!(seq, event = item.event, error = %e, "stored notification is not JSON: given up");
                let now = self.clock.now();
                if let Err(e) = self
                    .store
                    .outbox_failed(seq, &self.node, now, "stored data is not JSON", &item.sinks_done)
                    .await
                {
                    tracing::warn!(seq, error = %e, "could not record a notification as given up");
                }
                return None;
            }
        };
        let n = Notification {
            event: item.event.clone(),
            at: item.created_at,
            data,
        };
        let body = match serde_json::to_vec(&n) {
            Ok(b) => b,
            Err(_) => return None,
        };
        let id = item.message_id();
        let mut done = item.sinks_done.clone();
        let mut errors: Vec<String> = Vec::new();
        for t in self.targets.iter().filter(|t| t.wants(&n.event)) {
            if done.contains(&t.key) {
                continue;
            }
            match t.send(client, &id, &n, &body, self.settings.attempt_timeout).await {
                Ok(()) => done.push(t.key.clone()),
                Err(e) => {
                    self.settings.metrics.notification_failed(t.sink.kind());
                    errors.push(e);
                }
            }
        }
        let now = self.clock.now();
        let recorded = if errors.is_empty() {
            self.store.outbox_delivered(seq, now).await.map(|()| None)
        } else {
            let mut error = errors.join("; ");
            if error.len() > MAX_ERROR {
                let cut = (0..=MAX_ERROR).rev().find(|i| error.is_char_boundary(*i)).unwrap_or(0);
                error.truncate(cut);
            }
            let give_up_at = later(item.created_at, self.settings.retry_for);
            if now >= give_up_at {
                tracing::error!(
                    seq,
                    id,
                    event = n.event,
                    attempts = item.attempts,
                    created_at = %item.created_at,
                    error,
                    "notification abandoned: not delivered within notify.retry_for_hours"
                );
                self.store
                    .outbox_failed(seq, &self.node, now, &error, &done)
                    .await
                    .map(|()| None)
            } else {
                let jitter = rand::thread_rng().gen_range(0.0..=1.0);
                let delay = retry_delay(item.attempts, self.settings.retry_base, self.settings.retry_max, jitter);
                // One last attempt at the horizon rather than none after it.
                let next = later(now, delay).min(give_up_at);
                self.store
                    .outbox_retry(seq, &self.node, next, &error, &done)
                    .await
                    .map(|()| Some(next))
            }
        };
        recorded.unwrap_or_else(|e| {
            tracing::warn!(seq, error = %e, "could not record a delivery attempt: the notification is sent again once its claim expires");
            None
        })
    }

    /// Deletes settled notices past the retention, and gives up the pending
    /// ones nobody delivered within the horizon (no node with a sink ran).
    async fn purge(&self) {
        let now = self.clock.now();
        let settled_before = earlier(now, self.settings.retention);
        // Later than this node's own give-up, which comes with a last attempt.
        let slack = self.settings.retry_max + self.lease();
        let expire_before = earlier(earlier(now, self.settings.retry_for), slack);
        match self.store.purge_outbox(settled_before, expire_before, now).await {
            Ok(p) => {
                if p.expired > 0 {
                    tracing::error!(
                        notices = p.expired,
                        "notifications abandoned: no node delivered them within notify.retry_for_hours (is a sink configured on any node?)"
                    );
                }
                if p.deleted > 0 {
                    tracing::debug!(
                        notices = p.deleted,
                        "settled notifications past their retention deleted"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not purge the notification outbox"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_with_jitter_up_to_the_cap() {
        let (base, max) = (Duration::from_secs(1), Duration::from_secs(1800));
        // Bounds: [ceiling/2, ceiling], ceiling = base·2^(attempts−1) capped.
        for (attempts, ceiling) in [(1, 1.0), (2, 2.0), (3, 4.0), (11, 1024.0), (12, 1800.0), (400, 1800.0)] {
            let low = retry_delay(attempts, base, max, 0.0).as_secs_f64();
            let high = retry_delay(attempts, base, max, 1.0).as_secs_f64();
            assert!((low - ceiling / 2.0).abs() < 1e-6, "{attempts}: {low}");
            assert!((high - ceiling).abs() < 1e-6, "{attempts}: {high}");
        }
        // Growing whatever the draws, until the cap.
        for attempts in 1..11 {
            assert!(retry_delay(attempts + 1, base, max, 0.0) >= retry_delay(attempts, base, max, 1.0));
        }
        // Out-of-range jitter is clamped; a zero attempt count is the first retry.
        assert_eq!(retry_delay(1, base, max, 7.0), base);
        assert_eq!(retry_delay(0, base, max, 0.0), base / 2);
    }

    #[test]
    fn the_default_schedule_spans_the_horizon_in_a_few_hundred_attempts() {
        let s = DeliverySettings::default();
        let (mut elapsed, mut attempts) = (Duration::ZERO, 0u32);
        while elapsed < s.retry_for {
            attempts += 1;
            elapsed += retry_delay(attempts, s.retry_base, s.retry_max, 0.5);
        }
        // 72 h at up to 30 min apart: retried for hours, not hammered.
        assert!((150..400).contains(&attempts), "{attempts}");
    }

    #[test]
    fn sink_keys_are_stable_and_distinct() {
        let hook = |url: &str| {
            Target::new(Sink::Webhook(WebhookConfig {
                url: url.into(),
                secret: "0123456789abcdef".to_owned().into(),
                events: vec!["*".into()],
                legacy_signature: false,
            }))
        };
        let a = hook("https://a.example/h");
        assert_eq!(a.key, hook("https://a.example/h").key);
        assert_ne!(a.key, hook("https://b.example/h").key);
        assert!(a.key.starts_with("webhook:") && a.key.len() == "webhook:".len() + 16);
        assert!(Target::new(Sink::Syslog("udp://x:514".into()))
            .key
            .starts_with("syslog:"));
    }
}
