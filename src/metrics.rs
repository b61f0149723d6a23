//! Operators' metrics: one registry of typed series (`prometheus-client`),
//! served as Prometheus text (0.0.4) on `GET /metrics`.
//!
//! [`Metrics`] owns the process-lifetime series (counters and histograms updated
//! where things happen: one call at each site) and renders them together with the
//! values read at scrape time ([`Scrape`]: live tunnels, the store's state and
//! backlogs, certificate lifetimes). Every labelled counter has its label set
//! created up front, one per reason code, so an event costs an atomic add and
//! never an allocation or a map lookup, and every reason shows from the first
//! scrape (at 0), which `rate()` and alerts need.
//!
//! Each running node has its own [`Metrics`] (no global registry): several nodes
//! in one test process do not mix their counts.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::domain::EndReason;
use crate::gateway::HandshakeFailure;
use crate::policy::DenyReason;

/// The `Content-Type` of what [`Metrics::render`] returns.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// One label, with a value from a closed set of codes (never client input).
type Label = [(&'static str, &'static str); 1];

/// Upper bounds (seconds) of the latency histograms: a commit on a local disk
/// takes about a millisecond, a busy PostgreSQL tens; beyond 2.5 s something is wrong.
const LATENCY_BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0,
];
/// Upper bounds of the journal's batch sizes (at most 256 entries per commit).
const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Every denial reason, in the order of their counters.
const DENY_REASONS: [DenyReason; 12] = [
    DenyReason::UnknownDevice,
    DenyReason::DeviceDisabled,
    DenyReason::UnknownTechnician,
    DenyReason::VendorDisabled,
    DenyReason::DeviceNotAssigned,
    DenyReason::SourceIpNotDeclared,
    DenyReason::NoActiveWindow,
    DenyReason::Lockdown,
    DenyReason::ReportOverdue,
    DenyReason::CertificateExpired,
    DenyReason::StoreUnavailable,
    DenyReason::DeviceUnreachable,
];

/// The position of `r` in [`DENY_REASONS`] (exhaustive: a new reason does not compile until listed).
fn deny_index(r: DenyReason) -> usize {
    match r {
        DenyReason::UnknownDevice => 0,
        DenyReason::DeviceDisabled => 1,
        DenyReason::UnknownTechnician => 2,
        DenyReason::VendorDisabled => 3,
        DenyReason::DeviceNotAssigned => 4,
        DenyReason::SourceIpNotDeclared => 5,
        DenyReason::NoActiveWindow => 6,
        DenyReason::Lockdown => 7,
        DenyReason::ReportOverdue => 8,
        DenyReason::CertificateExpired => 9,
        DenyReason::StoreUnavailable => 10,
        DenyReason::DeviceUnreachable => 11,
    }
}

/// Every handshake failure class, in the order of their counters.
const HANDSHAKE_FAILURES: [HandshakeFailure; 8] = [
    HandshakeFailure::Timeout,
    HandshakeFailure::Closed,
    HandshakeFailure::NoCertificate,
    HandshakeFailure::BadCertificate,
    HandshakeFailure::Protocol,
    HandshakeFailure::ProxyHeaderInvalid,
    HandshakeFailure::ProxyHeaderUntrusted,
    HandshakeFailure::Other,
];

/// The position of `f` in [`HANDSHAKE_FAILURES`].
fn handshake_index(f: HandshakeFailure) -> usize {
    match f {
        HandshakeFailure::Timeout => 0,
        HandshakeFailure::Closed => 1,
        HandshakeFailure::NoCertificate => 2,
        HandshakeFailure::BadCertificate => 3,
        HandshakeFailure::Protocol => 4,
        HandshakeFailure::ProxyHeaderInvalid => 5,
        HandshakeFailure::ProxyHeaderUntrusted => 6,
        HandshakeFailure::Other => 7,
    }
}

/// The position of `r` in [`EndReason::ALL`].
fn end_index(r: EndReason) -> usize {
    EndReason::ALL
        .iter()
        .position(|x| *x == r)
        .unwrap_or(EndReason::ALL.len() - 1)
}

/// Where a notification is delivered to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationSink {
    Webhook,
    Syslog,
}

/// When the certificates this node loaded stop being valid.
#[derive(Debug, Clone, Copy, Default)]
pub struct CertificateExpiry {
    /// The gateway's server certificate (the first of its chain).
    pub gateway: Option<DateTime<Utc>>,
    /// The vendor CA (the soonest, if the file holds several).
    pub vendor_ca: Option<DateTime<Utc>>,
}

/// Counts read from the store at scrape time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounts {
    /// Windows requested, waiting for a decision.
    pub window_requests: u64,
    /// Approved windows, not ended, with an extension waiting for a decision.
    pub extension_requests: u64,
    /// Emergency grants nobody has reviewed yet.
    pub unreviewed_emergencies: u64,
    /// Windows whose intervention report is overdue.
    pub overdue_reports: u64,
}

/// What `/metrics` reads at scrape time. `None`: unknown now (the store is down
/// or slow), and the series are left out rather than reported as zero.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    pub now: DateTime<Utc>,
    pub live_tunnels: u64,
    pub store_writable: bool,
    pub journal_queued: u64,
    pub feed_mismatches: u64,
    pub outbox: Option<crate::store::OutboxBacklog>,
    pub counts: Option<StoreCounts>,
}

/// The node's metrics; cheap to clone (one shared registry).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(CertificateExpiry::default())
    }
}

struct Inner {
    registry: Registry,
    certificates: CertificateExpiry,
    tunnels_opened: Counter,
    denied: Vec<Counter>,
    ended: Vec<Counter>,
    bytes_from_vendor: Counter,
    bytes_to_vendor: Counter,
    handshake_failures: Vec<Counter>,
    admitted_latency: Histogram,
    denied_latency: Histogram,
    journal_commit: Histogram,
    journal_batch: Histogram,
    /// Indexed by [`NotificationSink`] as `usize`.
    notification_failures: Vec<Counter>,
}

/// Registers a family of counters with one label and creates one counter per value.
fn counters(
    registry: &mut Registry,
    name: &str,
    help: &str,
    label: &'static str,
    values: &[&'static str],
) -> Vec<Counter> {
    let family = Family::<Label, Counter>::default();
    let handles = values
        .iter()
        .map(|v| family.get_or_create_owned(&[(label, *v)]))
        .collect();
    registry.register(name, help, family);
    handles
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

impl Metrics {
    /// A registry with every series at zero; `certificates` are what this node loaded.
    pub fn new(certificates: CertificateExpiry) -> Self {
        let mut r = Registry::default();
        let tunnels_opened = Counter::default();
        r.register(
            "portier_tunnels_opened",
            "Tunnels admitted: the session record is durable and bytes may flow",
            tunnels_opened.clone(),
        );
        let deny_codes: Vec<&'static str> = DENY_REASONS.iter().map(|d| d.code()).collect();
        let denied = counters(
            &mut r,
            "portier_tunnels_denied",
            "Tunnels refused, by the reason code the technician is told",
            "reason",
            &deny_codes,
        );
        let end_codes: Vec<&'static str> = EndReason::ALL.iter().map(|e| e.as_str()).collect();
        let ended = counters(
            &mut r,
            "portier_tunnels_ended",
            "Tunnels ended on this node, by end reason (every reason but client_closed, device_closed and error is a cut)",
            "reason",
            &end_codes,
        );
        let bytes_from_vendor = Counter::default();
        r.register(
            "portier_tunnel_bytes_from_vendor",
            "Bytes relayed from technicians to devices, counted when each tunnel ends",
            bytes_from_vendor.clone(),
        );
        let bytes_to_vendor = Counter::default();
        r.register(
            "portier_tunnel_bytes_to_vendor",
            "Bytes relayed from devices to technicians, counted when each tunnel ends",
            bytes_to_vendor.clone(),
        );
        let class_codes: Vec<&'static str> = HANDSHAKE_FAILURES.iter().map(|c| c.code()).collect();
        let handshake_failures = counters(
            &mut r,
            "portier_tls_handshake_failures",
            "Gateway connections that did not complete the TLS handshake (or its PROXY header), by class",
            "class",
            &class_codes,
        );
        let admission = Family::<Label, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let admitted_latency = admission.get_or_create_owned(&[("outcome", "admitted")]);
        let denied_latency = admission.get_or_create_owned(&[("outcome", "denied")]);
        r.register(
            "portier_admission_seconds",
            "From the end of the TLS handshake to the decision being on record: the session record committed (admitted) or the denial written to the trail (denied)",
            admission,
        );
        let journal_commit = latency_histogram();
        r.register(
            "portier_journal_commit_seconds",
            "Duration of the journal's successful group commits (one transaction each)",
            journal_commit.clone(),
        );
        let journal_batch = Histogram::new(BATCH_BUCKETS);
        r.register(
            "portier_journal_batch_entries",
            "Entries per successful group commit of the journal",
            journal_batch.clone(),
        );
        let notification_failures = counters(
            &mut r,
            "portier_notification_attempts_failed",
            "Notification delivery attempts that failed (retried until notify.retry_for_hours), by sink",
            "sink",
            &["webhook", "syslog"],
        );
        let build = Family::<Label, Gauge>::default();
        build.get_or_create(&[("version", env!("CARGO_PKG_VERSION"))]).set(1);
        r.register("portier_build_info", "Build information", build);
        Self {
            inner: Arc::new(Inner {
                registry: r,
                certificates,
                tunnels_opened,
                denied,
                ended,
                bytes_from_vendor,
                bytes_to_vendor,
                handshake_failures,
                admitted_latency,
                denied_latency,
                journal_commit,
                journal_batch,
                notification_failures,
            }),
        }
    }

    /// A tunnel is admitted: its record is durable, `since` the handshake ended.
    pub fn admitted(&self, since: Instant) {
        self.inner.tunnels_opened.inc();
        self.inner.admitted_latency.observe(since.elapsed().as_secs_f64());
    }

    /// A tunnel is refused for `reason`. The returned guard observes the
    /// admission latency (from `since`, the handshake's end) when dropped, once
    /// the denial is on record (or given up).
    #[must_use = "the latency is observed when the guard is dropped"]
    pub fn denied(&self, reason: DenyReason, since: Instant) -> DenialTimer {
        if let Some(c) = self.inner.denied.get(deny_index(reason)) {
            c.inc();
        }
        DenialTimer {
            histogram: self.inner.denied_latency.clone(),
            since,
        }
    }

    /// A tunnel ended for `reason` after relaying these bytes each way.
    pub fn tunnel_ended(&self, reason: EndReason, bytes_from_vendor: u64, bytes_to_vendor: u64) {
        if let Some(c) = self.inner.ended.get(end_index(reason)) {
            c.inc();
        }
        self.inner.bytes_from_vendor.inc_by(bytes_from_vendor);
        self.inner.bytes_to_vendor.inc_by(bytes_to_vendor);
    }

    /// A gateway connection failed its handshake.
    pub fn handshake_failed(&self, class: HandshakeFailure) {
        if let Some(c) = self.inner.handshake_failures.get(handshake_index(class)) {
            c.inc();
        }
    }

    /// One attempt to deliver a notification to `sink` failed.
    pub fn notification_failed(&self, sink: NotificationSink) {
        let i = match sink {
            NotificationSink::Webhook => 0,
            NotificationSink::Syslog => 1,
        };
        if let Some(c) = self.inner.notification_failures.get(i) {
            c.inc();
        }
    }

    /// Runs one journal commit of `entries` entries, timing it if it succeeds.
    pub async fn journal_commit<T, E>(
        &self,
        entries: usize,
        commit: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let started = Instant::now();
        let result = commit.await;
        if result.is_ok() {
            self.inner.journal_commit.observe(started.elapsed().as_secs_f64());
            self.inner.journal_batch.observe(entries as f64);
        }
        result
    }

    /// The exposition text: the process-lifetime series, then `scrape`'s values.
    pub fn render(&self, scrape: &Scrape) -> Result<String, fmt::Error> {
        let mut out = String::with_capacity(8 * 1024);
        prometheus_text::encode(&mut out, &self.scraped(scrape))?;
        prometheus_text::encode(&mut out, &self.inner.registry)?;
        Ok(out)
    }

    /// A registry of this scrape's values only (built per scrape so that a value
    /// unknown now is absent rather than stale or zero).
    fn scraped(&self, s: &Scrape) -> Registry {
        let mut r = Registry::default();
        r.register(
            "portier_live_tunnels",
            "Tunnels open on this node",
            ConstGauge::new(i64::try_from(s.live_tunnels).unwrap_or(i64::MAX)),
        );
        r.register(
            "portier_store_writable",
            "1 if the database takes writes (breaker closed), 0 while tunnels are refused",
            ConstGauge::new(i64::from(s.store_writable)),
        );
        r.register(
            "portier_journal_queued",
            "Audit events and session ends waiting for the database to come back",
            ConstGauge::new(i64::try_from(s.journal_queued).unwrap_or(i64::MAX)),
        );
        r.register(
            "portier_feed_mismatches",
            "Periodic full reloads that disagreed with the incrementally kept admission state",
            ConstCounter::new(s.feed_mismatches),
        );
        if let Some(b) = &s.outbox {
            r.register(
                "portier_outbox_pending",
                "Notifications not delivered yet (retried)",
                ConstGauge::new(gauge(b.pending)),
            );
            r.register(
                "portier_outbox_failed",
                "Notifications (webhook and syslog deliveries) given up after the retry horizon",
                ConstGauge::new(gauge(b.failed)),
            );
        }
        if let Some(c) = &s.counts {
            r.register(
                "portier_window_requests_pending",
                "Windows requested and waiting for a decision",
                ConstGauge::new(gauge(c.window_requests)),
            );
            r.register(
                "portier_extension_requests_pending",
                "Extensions of approved windows waiting for a decision",
                ConstGauge::new(gauge(c.extension_requests)),
            );
            r.register(
                "portier_emergency_grants_unreviewed",
                "Emergency grants not reviewed by security yet",
                ConstGauge::new(gauge(c.unreviewed_emergencies)),
            );
            r.register(
                "portier_reports_overdue",
                "Windows with sessions whose intervention report is overdue",
                ConstGauge::new(gauge(c.overdue_reports)),
            );
        }
        let days = Family::<Label, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        let c = self.inner.certificates;
        for (which, not_after) in [("gateway", c.gateway), ("vendor_ca", c.vendor_ca)] {
            if let Some(at) = not_after {
                days.get_or_create(&[("certificate", which)]).set(days_until(at, s.now));
            }
        }
        r.register(
            "portier_certificate_expiry_days",
            "Days until a certificate this node loaded expires (negative once expired)",
            days,
        );
        r
    }
}

fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Days (fractional) from `now` to `at`.
fn days_until(at: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    let secs = (at - now).num_seconds() as f64;
    // Rounded to the minute: enough for an alert, and a stable text.
    (secs / 60.0).round() / (24.0 * 60.0)
}

/// Observes a denial's admission latency when dropped.
#[derive(Debug)]
pub struct DenialTimer {
    histogram: Histogram,
    since: Instant,
}

impl Drop for DenialTimer {
    fn drop(&mut self) {
        self.histogram.observe(self.since.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> Option<String> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ').map(str::to_owned))
    }

    #[test]
    fn every_reason_is_listed_once() {
        for (i, r) in DENY_REASONS.iter().enumerate() {
            assert_eq!(deny_index(*r), i);
        }
        for (i, c) in HANDSHAKE_FAILURES.iter().enumerate() {
            assert_eq!(handshake_index(*c), i);
        }
        for (i, r) in EndReason::ALL.iter().enumerate() {
            assert_eq!(end_index(*r), i);
        }
    }

    #[test]
    fn renders_counts_and_leaves_out_unknowns() {
        let now = Utc::now();
        let m = Metrics::new(CertificateExpiry {
            gateway: Some(now + chrono::Duration::days(30)),
            vendor_ca: None,
        });
        let t0 = Instant::now();
        m.admitted(t0);
        drop(m.denied(DenyReason::NoActiveWindow, t0));
        drop(m.denied(DenyReason::NoActiveWindow, t0));
        m.tunnel_ended(EndReason::Lockdown, 10, 20);
        m.handshake_failed(HandshakeFailure::BadCertificate);
        m.notification_failed(NotificationSink::Syslog);
        let text = m
            .render(&Scrape {
                now,
                live_tunnels: 2,
                store_writable: true,
                ..Scrape::default()
            })
            .unwrap();
        assert_eq!(value(&text, "portier_tunnels_opened_total").as_deref(), Some("1"));
        assert_eq!(
            value(&text, "portier_tunnels_denied_total{reason=\"no_active_window\"}").as_deref(),
            Some("2")
        );
        assert_eq!(
            value(&text, "portier_tunnels_denied_total{reason=\"lockdown\"}").as_deref(),
            Some("0")
        );
        assert_eq!(
            value(&text, "portier_tunnels_ended_total{reason=\"lockdown\"}").as_deref(),
            Some("1")
        );
        assert_eq!(
            value(&text, "portier_tunnel_bytes_from_vendor_total").as_deref(),
            Some("10")
        );
        assert_eq!(
            value(&text, "portier_tunnel_bytes_to_vendor_total").as_deref(),
            Some("20")
        );
        assert_eq!(
            value(&text, "portier_tls_handshake_failures_total{class=\"bad_certificate\"}").as_deref(),
            Some("1")
        );
        assert_eq!(
            value(&text, "portier_notification_attempts_failed_total{sink=\"syslog\"}").as_deref(),
            Some("1")
        );
        assert_eq!(
            value(&text, "portier_notification_attempts_failed_total{sink=\"webhook\"}").as_deref(),
            Some("0")
        );
        assert_eq!(
            value(&text, "portier_admission_seconds_count{outcome=\"denied\"}").as_deref(),
            Some("2")
        );
        assert_eq!(value(&text, "portier_live_tunnels").as_deref(), Some("2"));
        assert_eq!(value(&text, "portier_store_writable").as_deref(), Some("1"));
        assert_eq!(
            value(&text, "portier_certificate_expiry_days{certificate=\"gateway\"}").as_deref(),
            Some("30.0")
        );
        assert!(!text.contains("certificate=\"vendor_ca\""), "{text}");
        assert!(!text.contains("portier_outbox_pending"), "unknown: left out\n{text}");
        assert!(!text.contains("portier_window_requests_pending"), "{text}");
        assert!(text.contains(&format!(
            "portier_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )));
        assert!(
            text.contains("# TYPE portier_feed_mismatches_total counter\n"),
            "{text}"
        );
    }
}
