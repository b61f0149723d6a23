//! Hostile tests: the audit trail (issue 8, defects 4 and 11). Anyone could grow
//! it without limit (refused API calls holding 60 KB paths, denials for any
//! vendor-CA certificate), and a refused change made with `Authorization: bearer`
//! was attributed to `unauthenticated`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use portier::audit::AuditRecord;
use portier::clock::ManualClock;
use portier::pki::CertAuthority;
use portier::store::AuditFilter;

use crate::common::{connect_from, echo_device, read_all, TestApp, TestDb};
use crate::on_both_backends;

use super::support::{within, OwnPostgres};

/// The product's per-key budget (per source address for refused API calls, per
/// (source, reason) for denials): events per second.
const PER_KEY_PER_SECOND: usize = 5;

async fn events(t: &TestApp, action: &str) -> Vec<AuditRecord> {
    t.db.store
        .list_audit(&AuditFilter {
            action: Some(action.into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap()
}

fn suppressed(e: &AuditRecord) -> u64 {
    let d: serde_json::Value = serde_json::from_str(&e.details).unwrap();
    d["suppressed_since_last"]
        .as_u64()
        .unwrap_or_else(|| panic!("no suppressed_since_last: {d}"))
}

/// Every one of `expected` events since `before` is in the trail or counted in a
/// later event's `suppressed_since_last` (on a slow box a flood may fit the
/// budget: then nothing is suppressed and the sum still holds).
async fn assert_all_accounted(t: &TestApp, action: &str, before: usize, expected: usize) {
    let all = events(t, action).await;
    let all = all.get(before..).unwrap_or_default();
    let counted: u64 = all.iter().map(suppressed).sum();
    assert_eq!(
        all.len() as u64 + counted,
        expected as u64,
        "{} written + {counted} counted",
        all.len()
    );
}

/// Sleeps into the next wall-clock second (the budgets count per second).
async fn next_second() {
    let ms = 1000 - u64::from(Utc::now().timestamp_subsec_millis()).min(999);
    tokio::time::sleep(Duration::from_millis(ms + 20)).await;
}

/// What a flood may add: the budget for each second it touched, plus slack.
fn allowed(elapsed: Duration) -> usize {
    PER_KEY_PER_SECOND * (elapsed.as_secs() as usize + 2) + 2
}

async fn refused_call_flood(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let before = events(&t, "api.refused").await.len();
    // 60 KB paths on a route whose handler authenticates first: 401 each.
    let path = format!("/api/v1/windows/{}/approve", "A".repeat(60 * 1024));
    const CALLS: usize = 160;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (http, url) = (t.http.clone(), t.url(&path));
        tasks.push(tokio::spawn(async move {
            for _ in 0..CALLS / 8 {
                let r = http.post(&url).send().await.unwrap();
                assert_eq!(r.status().as_u16(), 401);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    let added = events(&t, "api.refused").await;
    let added = added.get(before..).unwrap_or_default();
    eprintln!("{CALLS} refused calls in {elapsed:?}: {} audit events", added.len());
    assert!(!added.is_empty(), "refusals are still audited");
    assert!(
        added.len() <= allowed(elapsed),
        "{} events for {CALLS} calls in {elapsed:?}",
        added.len()
    );
    for e in added {
        assert_eq!(e.actor, "unauthenticated");
        assert!(e.object.len() <= 300, "path bounded: {} bytes", e.object.len());
        assert!(e.object.contains("[truncated, "), "says it was cut: {}", e.object);
        assert!(e.details.len() <= 512, "details bounded: {}", e.details);
    }

    // The next event written tells how many were left out.
    next_second().await;
    let r = t.http.post(t.url(&path)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // Every one is accounted for: written, or counted in a later event of its key.
    assert_all_accounted(&t, "api.refused", before, CALLS + 1).await;
    t.stop().await;
}
on_both_backends!(
    refused_api_calls_cannot_flood_the_audit_trail,
    super::refused_call_flood
);

async fn denial_flood(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let device = echo_device().await;
    t.open_window_scene(device).await;
    // A certificate of the vendor CA that no technician holds, with a long subject.
    let ca = CertAuthority::load(
        &std::fs::read_to_string(t.dir.path().join("certs/vendor-ca.pem")).unwrap(),
        &std::fs::read_to_string(t.dir.path().join("certs/vendor-ca.key")).unwrap(),
    )
    .unwrap();
    let cert = ca
        // The longest names the CA signs (256 characters each): a subject of
        // over 500 characters, beyond the 256 the trail keeps.
        .issue_client(&"intruder-".repeat(29)[..256], Some(&"Org".repeat(90)[..256]), 1)
        .unwrap();
    let tls = t.technician_tls(&cert.cert_pem, &cert.key_pem);
    let before = events(&t, "admission.denied").await.len();
    const ATTEMPTS: usize = 120;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (tls, gw) = (tls.clone(), t.app.gateway_addr);
        tasks.push(tokio::spawn(async move {
            for _ in 0..ATTEMPTS / 6 {
                let mut s = connect_from("127.0.0.3", gw, "mri-1", tls.clone()).await.unwrap();
                // The wire answer is unchanged, suppressed or not.
                let line = read_all(&mut s).await.unwrap();
                assert!(line.starts_with("PORTIER DENIED unknown_technician "), "{line:?}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    let added = events(&t, "admission.denied").await;
    let added = added.get(before..).unwrap_or_default();
    eprintln!("{ATTEMPTS} denials in {elapsed:?}: {} audit events", added.len());
    assert!(!added.is_empty(), "denials are still audited");
    assert!(
        added.len() <= allowed(elapsed),
        "{} events for {ATTEMPTS} denials in {elapsed:?}",
        added.len()
    );
    for e in added {
        assert!(e.details.len() <= 1200, "details bounded: {} bytes", e.details.len());
        assert!(e.details.contains("[truncated, "), "the subject says it was cut");
    }

    next_second().await;
    let mut s = connect_from("127.0.0.3", t.app.gateway_addr, "mri-1", tls.clone())
        .await
        .unwrap();
    assert!(read_all(&mut s)
        .await
        .unwrap()
        .starts_with("PORTIER DENIED unknown_technician "));
    // Every denial is accounted for: written, or counted in a later event of its
    // (source, reason) key (on a slow box the flood may fit the budget: then
    // nothing is suppressed and the sum still holds).
    // Every one is accounted for: written, or counted in a later event of its key.
    assert_all_accounted(&t, "admission.denied", before, ATTEMPTS + 1).await;
    t.stop().await;
}
on_both_backends!(denied_connections_cannot_flood_the_audit_trail, super::denial_flood);

/// Defect 11: the scheme is case-insensitive for authentication, and so for the
/// audit of a refusal: the actor is the account, not `unauthenticated`.
async fn lower_case_bearer_names_the_account(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let vendor_id = {
        let (st, v) = t
            .call(
                "POST",
                "/api/v1/vendors",
                Some(&t.admin),
                Some(serde_json::json!({"name": "Acme", "networks": ["127.0.0.2"]})),
            )
            .await;
        assert_eq!(st, 201, "{v}");
        v["id"].as_str().unwrap().to_owned()
    };
    let token = t.token("vendor", "desk", Some(&vendor_id)).await;
    let (_, me) = t.call("GET", "/api/v1/me", Some(&token), None).await;
    for scheme in ["bearer", "BEARER"] {
        let r = t
            .http
            .post(t.url("/api/v1/lockdown"))
            .header("Authorization", format!("{scheme} {token}"))
            .json(&serde_json::json!({"reason": "vendor tries"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "authenticated, not allowed");
        let last = events(&t, "api.refused").await;
        let last = last.last().unwrap();
        assert_ne!(last.actor, "unauthenticated");
        assert_eq!(Some(last.actor.as_str()), me["id"].as_str(), "{me}");
    }
    t.stop().await;
}
on_both_backends!(
    lower_case_bearer_refusal_is_attributed_to_the_account,
    super::lower_case_bearer_names_the_account
);

/// Connects from `source` and sends an HTTP request instead of a TLS hello; the
/// gateway's handshake fails (`protocol`) and it closes the connection.
async fn garbage_from(source: &str, gateway: std::net::SocketAddr) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(std::net::SocketAddr::new(source.parse().unwrap(), 0))
        .unwrap();
    let mut tcp = sock.connect(gateway).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: mri-1\r\n\r\n").await.unwrap();
    let mut sink = Vec::new();
    // Closed or reset: either way the gateway is done with it.
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut sink)).await;
    assert!(read.is_ok(), "garbage connection not closed");
}

fn detail(e: &AuditRecord, key: &str) -> serde_json::Value {
    let d: serde_json::Value = serde_json::from_str(&e.details).unwrap();
    d[key].clone()
}

/// Handshake failures are budgeted per (source, failure class) as well as in all:
/// one source flooding the gateway with garbage in one second (the product's
/// clock stands still, so every failure falls in the same second) fills its own
/// budget, not everyone's; a failure from another source is still audited, with
/// its class and a bounded error text, and every failure is accounted for.
async fn handshake_flood(db: TestDb) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let t = TestApp::spawn_with(db, "", clock.clone()).await;
    let gw = t.app.gateway_addr;
    const FLOOD: usize = 60;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        tasks.push(tokio::spawn(async move {
            for _ in 0..FLOOD / 4 {
                garbage_from("127.0.0.2", gw).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    garbage_from("127.0.0.3", gw).await;
    let from = |events: &[AuditRecord], ip: &str| -> Vec<AuditRecord> {
        events
            .iter()
            .filter(|e| detail(e, "source_ip") == ip)
            .cloned()
            .collect()
    };
    let other = within(5, "the other source's failure audited", || async {
        let all = events(&t, "tls.handshake_failed").await;
        let other = from(&all, "127.0.0.3");
        (!other.is_empty()).then_some(other)
    })
    .await;
    assert_eq!(other.len(), 1);
    assert_eq!(detail(&other[0], "class"), "protocol", "{}", other[0].details);
    let all = events(&t, "tls.handshake_failed").await;
    assert!(all.len() <= 20, "global budget: {} events", all.len());
    let flooder = from(&all, "127.0.0.2");
    assert_eq!(flooder.len(), 2, "per-key budget: {} events", flooder.len());
    for e in &all {
        assert!(e.details.len() <= 600, "details bounded: {}", e.details);
        let error = detail(e, "error");
        assert!(error.as_str().is_some_and(|s| s.chars().count() <= 300), "{error}");
    }

    // The next second: the flooder's next event counts every failure left out.
    clock.advance(chrono::Duration::seconds(1));
    garbage_from("127.0.0.2", gw).await;
    let last = within(5, "the flooder's next failure audited", || async {
        let flooder = from(&events(&t, "tls.handshake_failed").await, "127.0.0.2");
        (flooder.len() == 3).then(|| flooder.last().cloned()).flatten()
    })
    .await;
    assert_eq!(suppressed(&last), (FLOOD - 2) as u64, "{}", last.details);
    t.stop().await;
}
on_both_backends!(one_source_cannot_hide_other_handshake_failures, super::handshake_flood);

/// A refused change is attributed to the account the handler authenticated, not
/// by looking the token up again: with the database stopped, a vendor account
/// this node knows is accepted from memory for a restrictive action
/// (`RestrictiveCaller`), refused (403, not security), and the refusal — stored
/// once the database is back — names the account, not `unauthenticated`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusal_during_an_outage_is_attributed_to_the_account() {
    let Some(pg) = tokio::task::spawn_blocking(OwnPostgres::start).await.unwrap() else {
        return;
    };
    let t = TestApp::spawn(TestDb::postgres_at(&pg.admin_url()).await).await;
    let (st, v) = t
        .call(
            "POST",
            "/api/v1/vendors",
            Some(&t.admin),
            Some(serde_json::json!({"name": "Acme", "networks": ["127.0.0.2"]})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let token = t.token("vendor", "desk", v["id"].as_str()).await;
    // Authenticated once by the store: this node now knows the account.
    let (st, me) = t.call("GET", "/api/v1/me", Some(&token), None).await;
    assert_eq!(st, 200, "{me}");
    let account = me["id"].as_str().unwrap().to_owned();

    tokio::task::block_in_place(|| pg.stop_server());
    let (st, e) = t
        .call(
            "POST",
            "/api/v1/lockdown",
            Some(&token),
            Some(serde_json::json!({"reason": "vendor tries"})),
        )
        .await;
    assert_eq!(st, 403, "accepted from memory, then refused: {e}");
    tokio::task::block_in_place(|| pg.start_server());

    let refused = within(40, "the refusal stored after the outage", || async {
        let all =
            t.db.store
                .list_audit(&AuditFilter {
                    action: Some("api.refused".into()),
                    ..AuditFilter::default()
                })
                .await
                .ok()?;
        all.into_iter().find(|e| e.object == "/api/v1/lockdown")
    })
    .await;
    assert_eq!(refused.actor, account, "{}", refused.details);
    t.stop().await;
}
