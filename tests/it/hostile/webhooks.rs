//! Hostile tests: webhooks (issue 9, item 6).
//!
//! Replay: a delivery is signed over its id, its attempt's timestamp and its
//! body (Standard Webhooks), so a receiver can refuse a captured delivery sent
//! again; the id stays the same across retries so a receiver can deduplicate.
//!
//! Survival: a notification is an outbox row before anything is sent, so it
//! outlives a receiver that is down, a node stopped (cleanly or mid-delivery)
//! and restarted, keeps its id, is retried with growing delays until the
//! horizon, and is delivered once by one of several nodes sharing a database.

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::Utc;
use hmac::Mac;
use portier::clock::{Clock, ManualClock, SharedClock, SystemClock};
use portier::events::Event;
use portier::notify::{self, DeliverySettings, Notifier, Sinks, WebhookConfig};
use portier::store::{Journal, Notice, OutboxBacklog, Store};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::common::*;
use crate::on_both_backends;

use super::support::within;

/// Key material of a `whsec_` secret (base64 of 32 bytes).
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwAAECAwQFBgc=";
const PLAIN: &str = "a-plain-secret-0123456789";
const TOLERANCE_SECS: i64 = 5 * 60;

/// What a receiver saw: path, webhook-id, webhook-timestamp, webhook-signature,
/// x-portier-signature, body, and the status it answered.
#[derive(Clone, Debug)]
struct Delivery {
    path: String,
    id: String,
    timestamp: String,
    signature: String,
    legacy: String,
    body: String,
    answered: u16,
}

/// A loopback receiver that answers 500 to the first delivery on `/flaky`
/// (forcing a retry) and 200 otherwise.
async fn receiver() -> (std::net::SocketAddr, tokio::sync::mpsc::UnboundedReceiver<Delivery>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let flaky_seen = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/{name}",
        axum::routing::post(
            move |axum::extract::Path(name): axum::extract::Path<String>,
                  headers: axum::http::HeaderMap,
                  body: String| {
                let (tx, flaky_seen) = (tx.clone(), flaky_seen.clone());
                async move {
                    let h = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let answered = if name == "flaky" && flaky_seen.fetch_add(1, Ordering::SeqCst) == 0 {
                        500
                    } else {
                        200
                    };
                    let _ = tx.send(Delivery {
                        path: name,
                        id: h("webhook-id"),
                        timestamp: h("webhook-timestamp"),
                        signature: h("webhook-signature"),
                        legacy: h("x-portier-signature"),
                        body,
                        answered,
                    });
                    axum::http::StatusCode::from_u16(answered).unwrap()
                }
            },
        ),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    (addr, rx)
}

/// The key a receiver derives from the secret, written from the spec (not the
/// production function): `whsec_` + base64 → decoded bytes, else UTF-8 bytes.
fn key(secret: &str) -> Vec<u8> {
    match secret.strip_prefix("whsec_") {
        Some(b64) => base64::engine::general_purpose::STANDARD.decode(b64).unwrap(),
        None => secret.as_bytes().to_vec(),
    }
}

/// What a Standard Webhooks receiver does: verify the signature over
/// `{id}.{timestamp}.{body}`, refuse a timestamp outside the tolerance, refuse
/// an id already processed.
fn accept(
    key: &[u8],
    d: &Delivery,
    now: i64,
    processed: &mut std::collections::HashSet<String>,
) -> Result<(), &'static str> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{}.{}.{}", d.id, d.timestamp, d.body).as_bytes());
    let good = d.signature.split(' ').any(|s| {
        s.strip_prefix("v1,")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .is_some_and(|sig| mac.clone().verify_slice(&sig).is_ok())
    });
    if !good {
        return Err("bad signature");
    }
    let ts: i64 = d.timestamp.parse().map_err(|_| "bad timestamp")?;
    if (now - ts).abs() > TOLERANCE_SECS {
        return Err("timestamp outside tolerance");
    }
    if !processed.insert(d.id.clone()) {
        return Err("already processed");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_webhook_delivery_cannot_be_replayed() {
    let (addr, mut rx) = receiver().await;
    let hook = |path: &str, secret: &str| WebhookConfig {
        url: format!("http://{addr}/{path}"),
        secret: secret.to_owned().into(),
        events: vec!["*".into()],
        // The "plain" receiver still verifies the deprecated header (opted in).
        legacy_signature: path == "plain",
    };
    let db = TestDb::sqlite().await;
    let (notifier, _running) = delivering(
        &db.store,
        Sinks {
            webhooks: vec![hook("flaky", WHSEC), hook("plain", PLAIN)],
            syslog: None,
        },
        Arc::new(SystemClock),
    );
    notifier.send(Event::LockdownOn, json!({"reason": "drill"}));

    let mut got: Vec<Delivery> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while got.len() < 3 {
        let d = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("deliveries did not arrive")
            .unwrap();
        got.push(d);
    }
    let flaky: Vec<_> = got.iter().filter(|d| d.path == "flaky").cloned().collect();
    let plain: Vec<_> = got.iter().filter(|d| d.path == "plain").cloned().collect();
    // The receiver that accepted the first attempt is not sent it again.
    assert_eq!((flaky.len(), plain.len()), (2, 1), "{got:?}");
    let (refused, retried) = (&flaky[0], &flaky[1]);
    assert_eq!((refused.answered, retried.answered), (500, 200));

    // One message: the same id on the retry (and for every receiver).
    assert!(refused.id.starts_with("msg_") && refused.id.len() > 10, "{refused:?}");
    assert_eq!(refused.id, retried.id);
    assert_eq!(refused.id, plain[0].id);
    assert_eq!(refused.body, retried.body);

    // Every attempt verifies, with either form of secret, at the receiver's clock.
    let now = Utc::now().timestamp();
    for (d, secret) in [(refused, WHSEC), (retried, WHSEC), (&plain[0], PLAIN)] {
        let ts: i64 = d.timestamp.parse().expect("integer Unix seconds");
        assert!((now - ts).abs() <= 60, "timestamp {ts} vs now {now}");
        assert!(d.signature.starts_with("v1,"), "{d:?}");
        accept(&key(secret), d, now, &mut Default::default()).unwrap();
        // The wrong key (e.g. the whsec_ text used as raw bytes) fails.
        assert_eq!(
            accept(WHSEC.as_bytes(), d, now, &mut Default::default()),
            Err("bad signature")
        );
    }

    // The receiver processes the successful delivery…
    let k = key(WHSEC);
    let mut processed = std::collections::HashSet::new();
    accept(&k, retried, now, &mut processed).unwrap();
    // …a capture of it sent again soon after is a duplicate id…
    assert_eq!(accept(&k, retried, now + 10, &mut processed), Err("already processed"));
    // …sent later is outside the tolerance, even to a receiver that has since
    // forgotten the id…
    assert_eq!(
        accept(&k, retried, now + TOLERANCE_SECS + 61, &mut Default::default()),
        Err("timestamp outside tolerance")
    );
    // …and re-stamped with a fresh time, or given a fresh id, it no longer verifies.
    let mut restamped = retried.clone();
    restamped.timestamp = (now + TOLERANCE_SECS + 61).to_string();
    assert_eq!(
        accept(&k, &restamped, now + TOLERANCE_SECS + 61, &mut Default::default()),
        Err("bad signature")
    );
    let mut renamed = retried.clone();
    renamed.id = "msg_fresh".into();
    assert_eq!(accept(&k, &renamed, now, &mut processed), Err("bad signature"));

    // The deprecated body-only header is sent only where opted in (HMAC under
    // the secret's UTF-8 bytes); the others never carry it.
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(PLAIN.as_bytes()).unwrap();
    mac.update(plain[0].body.as_bytes());
    assert_eq!(
        plain[0].legacy,
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );
    let flaky: Vec<_> = got.iter().filter(|d| d.path == "flaky").collect();
    assert!(
        !flaky.is_empty() && flaky.iter().all(|d| d.legacy.is_empty()),
        "the replayable body-only signature is sent only where opted in"
    );
}

/// A `whsec_` secret that is not base64 is refused when the configuration loads.
#[test]
fn a_whsec_secret_that_is_not_base64_is_refused() {
    let toml = "[[notify.webhooks]]\nurl = \"https://soc.example/hook\"\nsecret = \"whsec_this is not base64!!\"\n";
    let e = format!(
        "{:?}",
        portier::config::Settings::from_toml(toml, std::path::Path::new("/x"), Vec::<(String, String)>::new())
            .map(|_| ())
    );
    assert!(e.contains("whsec_") && e.contains("base64"), "{e}");
    assert!(!e.contains("this is not base64"), "secret shown: {e}");
}

/// Fast delivery for tests: retries from 50 ms, polling every 20 ms.
fn fast() -> DeliverySettings {
    DeliverySettings {
        retry_base: Duration::from_millis(50),
        poll: Duration::from_millis(20),
        ..DeliverySettings::default()
    }
}

/// A journal, a notifier and a delivery worker over `store` (a node named
/// `n1`), as a node runs them; delivery stops when the token is dropped.
fn delivering(store: &Arc<dyn Store>, sinks: Sinks, clock: SharedClock) -> (Notifier, tokio_util::sync::DropGuard) {
    let (journal, _task) = Journal::start(store.clone());
    let (notifier, worker) = notify::start(sinks, fast(), store.clone(), journal, clock, "n1");
    let stop = CancellationToken::new();
    tokio::spawn(worker.run(stop.clone()));
    (notifier, stop.drop_guard())
}

/// One request a [`Hook`] received.
#[derive(Clone, Debug)]
struct Got {
    id: String,
    body: String,
    at: Instant,
    answered: u16,
}

/// A webhook receiver whose answer a test sets (`status`), and which can be
/// told to never answer its next request (`hang_next`).
#[derive(Clone)]
struct Hook {
    url: String,
    got: Arc<Mutex<Vec<Got>>>,
    status: Arc<AtomicU16>,
    hang_next: Arc<AtomicBool>,
}

impl Hook {
    async fn start(status: u16) -> Self {
        let hook = Hook {
            url: String::new(),
            got: Arc::default(),
            status: Arc::new(AtomicU16::new(status)),
            hang_next: Arc::default(),
        };
        let h = hook.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let h = h.clone();
                async move {
                    let id = headers
                        .get("webhook-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let hang = h.hang_next.swap(false, Ordering::SeqCst);
                    let answered = if hang { 0 } else { h.status.load(Ordering::SeqCst) };
                    h.got.lock().unwrap().push(Got {
                        id,
                        body,
                        at: Instant::now(),
                        answered,
                    });
                    if hang {
                        std::future::pending::<()>().await;
                    }
                    axum::http::StatusCode::from_u16(answered).unwrap()
                }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await });
        Hook { url, ..hook }
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    fn config(&self) -> WebhookConfig {
        WebhookConfig {
            url: self.url.clone(),
            secret: WHSEC.to_owned().into(),
            events: vec!["*".into()],
            legacy_signature: false,
        }
    }

    /// `[notify]` for a [`TestApp`] sending to this receiver, quickly.
    fn notify_toml(&self) -> String {
        format!(
            "[notify]\nretry_base_ms = 50\npoll_ms = 20\n[[notify.webhooks]]\nurl = \"{}\"\nsecret = \"{WHSEC}\"\n",
            self.url
        )
    }
}

async fn backlog(store: &Arc<dyn Store>) -> OutboxBacklog {
    store.outbox_backlog().await.unwrap()
}

fn drill(n: usize) -> Notice {
    Notice::new(Event::LockdownOn, json!({"reason": "drill", "n": n}))
}

/// Receiver down, node stopped, receiver up, a new node on the same database:
/// the notification is delivered, under the id its first attempt had.
async fn a_notification_survives_a_restart(db: TestDb) {
    let hook = Hook::start(503).await;
    let mut t = TestApp::spawn_with(db, &hook.notify_toml(), Arc::new(SystemClock)).await;
    t.app.store.enqueue_notices(&[drill(1)], Utc::now()).await.unwrap();
    let first = within(10, "a first, refused attempt", || async { hook.got().first().cloned() }).await;
    assert_eq!(first.answered, 503);
    assert!(first.id.starts_with("msg_"), "{first:?}");
    t.app.shutdown().await;
    let seen = hook.got().len();
    assert_eq!(backlog(&t.db.store).await.pending, 1, "kept while undelivered");

    hook.status.store(200, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(hook.got().len(), seen, "a stopped node sends nothing");
    t.start_again().await;
    let ok = within(10, "delivered by the new node", || async {
        hook.got().into_iter().find(|g| g.answered == 200)
    })
    .await;
    assert_eq!(ok.id, first.id, "the same webhook-id on every attempt, across restarts");
    assert_eq!(ok.body, first.body);
    within(5, "recorded as delivered", || async {
        (backlog(&t.app.store).await.pending == 0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        hook.got().iter().filter(|g| g.answered == 200).count(),
        1,
        "{:?}",
        hook.got()
    );
}
on_both_backends!(
    a_notification_survives_a_restart_under_its_id,
    super::a_notification_survives_a_restart
);

/// A node killed while a delivery waits for its receiver leaves the
/// notification claimed; the node's next start frees its own claims at once
/// (without waiting for the lease) and delivers it under the same id.
async fn a_delivery_cut_by_a_crash_is_sent_again(db: TestDb) {
    let hook = Hook::start(200).await;
    hook.hang_next.store(true, Ordering::SeqCst);
    let clock = Arc::new(ManualClock::new(portier::audit::truncate_micros(Utc::now())));
    let liveness = "database.heartbeat_secs = 1\ndatabase.node_stale_secs = 3\n";
    let mut t = TestApp::spawn_config(db, liveness, &hook.notify_toml(), clock.clone()).await;
    t.app.store.enqueue_notices(&[drill(1)], clock.now()).await.unwrap();
    let cut = within(10, "a delivery under way", || async { hook.got().first().cloned() }).await;
    t.app.abort(); // kill -9, mid-delivery
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(backlog(&t.db.store).await.pending, 1);
    // Enough for the node name to be free again, far from the claim's lease
    // (a minute at least): only freeing its own claims at start delivers now.
    clock.advance(chrono::Duration::seconds(5));
    t.start_again().await;
    let ok = within(10, "delivered after the crash", || async {
        hook.got().into_iter().find(|g| g.answered == 200)
    })
    .await;
    assert_eq!(ok.id, cut.id);
    assert_eq!(hook.got().len(), 2, "{:?}", hook.got());
}
on_both_backends!(
    a_delivery_cut_by_a_crash_is_sent_again,
    super::a_delivery_cut_by_a_crash_is_sent_again
);

/// Attempts to a receiver that keeps refusing come further and further apart:
/// the n-th retry waits at least half of base·2^(n−1) (and at most all of it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_back_off() {
    let db = TestDb::sqlite().await;
    let hook = Hook::start(503).await;
    let settings = DeliverySettings {
        retry_base: Duration::from_millis(100),
        ..fast()
    };
    let (journal, _task) = Journal::start(db.store.clone());
    let (notifier, worker) = notify::start(
        Sinks {
            webhooks: vec![hook.config()],
            syslog: None,
        },
        settings,
        db.store.clone(),
        journal,
        Arc::new(SystemClock),
        "n1",
    );
    let stop = CancellationToken::new();
    tokio::spawn(worker.run(stop.clone()));
    notifier.send(Event::LockdownOn, json!({"reason": "drill"}));
    let got = within(10, "five attempts", || async {
        let g = hook.got();
        (g.len() >= 5).then_some(g)
    })
    .await;
    stop.cancel();
    let gaps: Vec<Duration> = got.windows(2).map(|w| w[1].at - w[0].at).collect();
    for (i, gap) in gaps.iter().take(4).enumerate() {
        let ceiling = Duration::from_millis(100 * (1 << i));
        assert!(*gap >= ceiling / 2, "retry {} after {gap:?}: {gaps:?}", i + 1);
        assert!(
            *gap <= ceiling + Duration::from_millis(300),
            "retry {} after {gap:?}: {gaps:?}",
            i + 1
        );
    }
    assert!(gaps[3] >= gaps[0] * 2, "{gaps:?}");
    assert!(got.iter().all(|g| g.id == got[0].id));
}

/// Past `retry_for` the notification is given up: marked failed, not retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stop_at_the_horizon() {
    let db = TestDb::sqlite().await;
    let hook = Hook::start(503).await;
    let clock = Arc::new(ManualClock::new(portier::audit::truncate_micros(Utc::now())));
    let settings = DeliverySettings {
        retry_for: Duration::from_secs(3600),
        ..fast()
    };
    let (journal, _task) = Journal::start(db.store.clone());
    let (_notifier, worker) = notify::start(
        Sinks {
            webhooks: vec![hook.config()],
            syslog: None,
        },
        settings,
        db.store.clone(),
        journal,
        clock.clone(),
        "n1",
    );
    let stop = CancellationToken::new();
    tokio::spawn(worker.run(stop.clone()));
    db.store.enqueue_notices(&[drill(1)], clock.now()).await.unwrap();
    within(10, "a first attempt", || async {
        (!hook.got().is_empty()).then_some(())
    })
    .await;
    // Virtual time stands still: the retry (≥ 25 ms later) is not due yet.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hook.got().len(), 1, "retried before its time");
    assert_eq!(backlog(&db.store).await.pending, 1);
    // An hour and more later: one last attempt, then given up.
    clock.advance(chrono::Duration::minutes(61));
    within(10, "given up", || async {
        let b = backlog(&db.store).await;
        (b.failed == 1 && b.pending == 0).then_some(())
    })
    .await;
    assert_eq!(hook.got().len(), 2);
    clock.advance(chrono::Duration::hours(5));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hook.got().len(), 2, "retried after being given up");
    stop.cancel();
}

/// Two nodes on one PostgreSQL database, both delivering: each notification
/// reaches a receiver that accepts it exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_deliver_each_notification_once() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("skipped: PORTIER_TEST_PG_URL is not set");
        return;
    };
    let hook = Hook::start(200).await;
    let shared: SharedClock = Arc::new(SystemClock);
    let mut a = TestApp::spawn_config(db, "gateway.node = \"a\"\n", &hook.notify_toml(), shared.clone()).await;
    let mut settings_b = a.settings().clone();
    settings_b.gateway.node = "b".into();
    let mut b = portier::app::App::start_with_clock(&settings_b, shared).await.unwrap();
    const N: usize = 300;
    for chunk in 0..10 {
        let notices: Vec<Notice> = (0..N / 10).map(|i| drill(chunk * 100 + i)).collect();
        // Both nodes' stores: the rows are the same table.
        let store = if chunk % 2 == 0 { &a.app.store } else { &b.store };
        store.enqueue_notices(&notices, Utc::now()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    within(30, "every notification delivered", || async {
        (backlog(&a.app.store).await.pending == 0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = hook.got();
    let ids: std::collections::HashSet<&str> = got.iter().map(|g| g.id.as_str()).collect();
    assert_eq!(ids.len(), N, "distinct notifications received");
    assert_eq!(got.len(), N, "duplicates: {}", got.len() - ids.len());
    b.shutdown().await;
    a.app.shutdown().await;
}

/// A notice the journal carries (`Notifier::send`) lands in the outbox; with
/// no sink configured nothing is queued at all.
async fn sent_notices_go_through_the_outbox(db: TestDb) {
    let hook = Hook::start(503).await;
    let clock: SharedClock = Arc::new(SystemClock);
    // No sink: nothing queued.
    let (journal, _task) = Journal::start(db.store.clone());
    let (quiet, _worker) = notify::start(Sinks::default(), fast(), db.store.clone(), journal, clock.clone(), "n0");
    quiet.send(Event::LockdownOn, json!({}));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(backlog(&db.store).await, OutboxBacklog::default());
    // A sink that wants `window.*` only: a lockdown is not queued, a window event is.
    let mut only_windows = hook.config();
    only_windows.events = vec!["window.*".into()];
    let (notifier, _running) = delivering(
        &db.store,
        Sinks {
            webhooks: vec![only_windows],
            syslog: None,
        },
        clock,
    );
    notifier.send(Event::LockdownOn, json!({}));
    notifier.send(Event::WindowEndingSoon, json!({"window_id": "w1"}));
    let got = within(10, "the window event attempted", || async {
        hook.got().first().cloned()
    })
    .await;
    let body: serde_json::Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(body["event"], "window.ending_soon");
    assert_eq!(body["data"]["window_id"], "w1");
    assert_eq!(backlog(&db.store).await.pending, 1, "only the wanted event is queued");
}
on_both_backends!(
    sent_notices_go_through_the_outbox,
    super::sent_notices_go_through_the_outbox
);

/// The outbox as the store keeps it: a notice lives and dies with its
/// transaction; a claim is a lease only its holder settles; retries keep the
/// sinks that accepted; settled rows are purged and forgotten ones given up.
async fn the_outbox_is_transactional_and_leased(db: TestDb) {
    let s = db.store.clone();
    let t = portier::audit::truncate_micros(Utc::now());
    let secs = chrono::Duration::seconds;

    // A notice in a journal batch whose other entry fails is rolled back with it.
    let bad = portier::store::Session {
        id: portier::domain::SessionId::generate(),
        window_id: "no-such-window".into(),
        vendor_id: "no-such-vendor".into(),
        technician_id: "no-such-technician".into(),
        technician_subject: "CN=nobody".into(),
        device_id: "no-such-device".into(),
        source_ip: "127.0.0.2".parse().unwrap(),
        source_port: 50_000,
        node: "n1".into(),
        started_at: t,
        ended_at: None,
        bytes_from_vendor: 0,
        bytes_to_vendor: 0,
        end_reason: None,
    };
    let started = portier::audit::AuditEvent::new(t, "gateway", Event::SessionStarted, "x", "success", json!({}));
    let r = s
        .write_journal(&[
            portier::store::JournalEntry::Notice(drill(0), t),
            portier::store::JournalEntry::SessionStarted(bad, started),
        ])
        .await;
    assert!(r.is_err());
    assert_eq!(backlog(&s).await.pending, 0, "a notice outlived its failed transaction");
    // A change refused (no such vendor) leaves no notice either.
    let refused = s
        .set_vendor_enabled(&portier::domain::VendorId("no-such-vendor".into()), false, &|_| {
            test_effects().notice(Event::VendorDisabled, json!({}))
        })
        .await;
    assert!(refused.is_err());
    assert_eq!(backlog(&s).await.pending, 0);
    // A committed change's notice is queued, due at once.
    s.record(&test_effects().notice(Event::LockdownOn, json!({"reason": "drill"})))
        .await
        .unwrap();
    let b = backlog(&s).await;
    assert_eq!(b.pending, 1);

    // Claimed by a for a minute: b gets nothing until the lease ends.
    let now = Utc::now();
    let first = s.claim_outbox("a", now, now + secs(60), 10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!((first[0].event.as_str(), first[0].attempts), ("lockdown.on", 1));
    let data: serde_json::Value = serde_json::from_str(&first[0].data).unwrap();
    assert_eq!(data["reason"], "drill");
    assert!(s
        .claim_outbox("b", now + secs(59), now + secs(120), 10)
        .await
        .unwrap()
        .is_empty());
    let second = s.claim_outbox("b", now + secs(61), now + secs(120), 10).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].attempts, 2);
    assert_eq!(second[0].message_id(), first[0].message_id(), "the id is the row's");
    // a no longer holds it: its late verdicts change nothing.
    s.outbox_failed(first[0].seq, "a", now + secs(62), "late", &[])
        .await
        .unwrap();
    s.outbox_retry(first[0].seq, "a", now + secs(900), "late", &[])
        .await
        .unwrap();
    assert_eq!(backlog(&s).await.failed, 0);
    // b schedules a retry, remembering the sink that took it.
    let done = vec!["webhook:0123456789abcdef".to_owned()];
    s.outbox_retry(second[0].seq, "b", now + secs(200), "503", &done)
        .await
        .unwrap();
    assert!(s
        .claim_outbox("a", now + secs(199), now + secs(300), 10)
        .await
        .unwrap()
        .is_empty());
    let third = s.claim_outbox("a", now + secs(200), now + secs(300), 10).await.unwrap();
    assert_eq!((third.len(), third[0].attempts), (1, 3));
    assert_eq!(third[0].sinks_done, done);
    // a restarts: its claims are freed at once.
    assert_eq!(s.release_outbox_claims("b").await.unwrap(), 0);
    assert_eq!(s.release_outbox_claims("a").await.unwrap(), 1);
    assert_eq!(
        s.claim_outbox("a", now + secs(201), now + secs(300), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    s.outbox_delivered(third[0].seq, now + secs(202)).await.unwrap();
    assert_eq!(backlog(&s).await, OutboxBacklog::default());
    assert!(s
        .claim_outbox("a", now + secs(9999), now + secs(99_999), 10)
        .await
        .unwrap()
        .is_empty());

    // Another notice nobody delivers: given up once past the horizon, and
    // purged with the delivered one once past the retention.
    s.enqueue_notices(&[drill(2)], t).await.unwrap();
    let b = backlog(&s).await;
    assert_eq!((b.pending, b.oldest_pending_at), (1, Some(t)));
    let p = s.purge_outbox(t - secs(3600), t - secs(1), t).await.unwrap();
    assert_eq!((p.deleted, p.expired), (0, 0), "too young for either");
    let p = s.purge_outbox(t - secs(3600), t + secs(1), t + secs(2)).await.unwrap();
    assert_eq!((p.deleted, p.expired), (0, 1));
    assert_eq!(backlog(&s).await.failed, 1);
    let p = s.purge_outbox(now + secs(86_400), t, now + secs(86_400)).await.unwrap();
    assert_eq!((p.deleted, p.expired), (2, 0));
    assert_eq!(backlog(&s).await, OutboxBacklog::default());
}
on_both_backends!(
    the_outbox_is_transactional_and_leased,
    super::the_outbox_is_transactional_and_leased
);
