//! Hostile tests: certificates (issue 8, defect 1). An expired technician
//! certificate was admitted again and again by resuming a saved TLS 1.3 session.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use portier::clock::{ManualClock, SharedClock};
use portier::domain::EndReason;
use portier::pki::CertAuthority;
use portier::policy::{decide, Decision, DenyReason, Facts};
use portier::store::{AuditFilter, SessionFilter};
use rustls::HandshakeKind;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::common::{
    connect_from, echo_device, echo_roundtrip, eventually, read_all, scene, technician, wait_closed, Backend, Pki,
    TestApp, TestDb,
};
use crate::on_both_backends;

type Tunnel = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

fn handshake(tls: &Tunnel) -> Option<HandshakeKind> {
    tls.get_ref().1.handshake_kind()
}

/// Registers (pins) a new technician of `vendor_id` with a certificate of the
/// app's vendor CA valid for one day; returns its client configuration and `not_after`.
async fn one_day_technician(t: &TestApp, vendor_id: &str) -> (Arc<rustls::ClientConfig>, DateTime<Utc>) {
    let ca = CertAuthority::load(
        &std::fs::read_to_string(t.dir.path().join("certs/vendor-ca.pem")).unwrap(),
        &std::fs::read_to_string(t.dir.path().join("certs/vendor-ca.key")).unwrap(),
    )
    .unwrap();
    let cert = ca.issue_client("one-day", Some("Acme"), 1).unwrap();
    let (st, tech) = t
        .call(
            "POST",
            &format!("/api/v1/vendors/{vendor_id}/technicians"),
            Some(&t.admin),
            Some(json!({"name": "one-day", "certificate_pem": cert.cert_pem})),
        )
        .await;
    assert_eq!(st, 201, "{tech}");
    let not_after: DateTime<Utc> = serde_json::from_value(tech["not_after"].clone()).unwrap();
    let (_, list) = t
        .call(
            "GET",
            &format!("/api/v1/vendors/{vendor_id}/technicians"),
            Some(&t.admin),
            None,
        )
        .await;
    assert!(
        list.as_array().unwrap().iter().all(|x| x["not_before"].is_string()),
        "not_before recorded: {list}"
    );
    (t.technician_tls(&cert.cert_pem, &cert.key_pem), not_after)
}

/// The attack: a first tunnel with a certificate, the certificate expires (the
/// gateway's clock moves past `not_after`; the real-time TLS verifier still
/// accepts it), then the same client — with its session cache — comes back three
/// times. Every handshake must be a full one, the live tunnel is cut at
/// `not_after` as `certificate_expired`, and every new attempt is refused.
async fn expired_certificate_with_saved_session(db: TestDb) {
    let start = Utc::now();
    let clock = Arc::new(ManualClock::new(start));
    let shared: SharedClock = clock.clone();
    // Windows longer than the test certificate's one-day validity.
    let t = TestApp::spawn_with(db, "[policy]\nmax_window_hours = 72\n", shared).await;
    let device = echo_device().await;
    let sc = crate::common::api_scene(&t, "Acme", "127.0.0.2", "mri-1", device).await;
    let vendor = t.token("vendor", "desk", Some(&sc.vendor_id)).await;
    let security = t.token("security", "soc", None).await;
    let window_end = start + chrono::Duration::hours(48);
    t.approved_window(
        &vendor,
        &security,
        &sc.device_id,
        start - chrono::Duration::seconds(30),
        window_end,
    )
    .await;
    let (tls, not_after) = one_day_technician(&t, &sc.vendor_id).await;
    assert!(not_after < window_end, "the certificate ends inside the window");

    // A first tunnel, kept open; its data exchange lets the client receive any
    // session ticket the gateway would send.
    let mut live = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", tls.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut live, b"first").await, b"first");
    assert_eq!(handshake(&live), Some(HandshakeKind::Full));

    // The first tunnel's session, while it is the only one.
    let (_, sessions) = t
        .call("GET", "/api/v1/sessions?active=true", Some(&security), None)
        .await;
    let live_id = sessions
        .as_array()
        .and_then(|a| a.first())
        .and_then(|s| s["id"].as_str())
        .unwrap_or_else(|| panic!("one live session: {sessions}"))
        .to_owned();

    // Same client configuration (same session cache): still a full handshake.
    let mut second = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", tls.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut second, b"second").await, b"second");
    assert_eq!(
        handshake(&second),
        Some(HandshakeKind::Full),
        "the gateway must not resume TLS sessions"
    );
    second.shutdown().await.unwrap();
    wait_closed(&mut second).await;

    // The certificate expires: the live tunnel is cut (the tunnel re-reads the
    // clock at least every second).
    clock.set(not_after + chrono::Duration::seconds(1));
    wait_closed(&mut live).await;
    let ended = eventually(|| async {
        t.db.store
            .list_sessions(&SessionFilter::default())
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.id.as_str() == live_id && s.ended_at.is_some())
    })
    .await;
    assert_eq!(ended.end_reason, Some(EndReason::CertificateExpired));

    // "Resumed three times in a row": now refused every time, after a full handshake.
    for attempt in 1..=3 {
        let mut tls = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", tls.clone())
            .await
            .unwrap();
        assert_eq!(handshake(&tls), Some(HandshakeKind::Full), "attempt {attempt}");
        let line = read_all(&mut tls).await.unwrap();
        assert!(
            line.starts_with("PORTIER DENIED certificate_expired "),
            "attempt {attempt}: {line:?}"
        );
    }
    let denials =
        t.db.store
            .list_audit(&AuditFilter {
                action: Some("admission.denied".into()),
                ..AuditFilter::default()
            })
            .await
            .unwrap();
    let expired = denials
        .iter()
        .filter(|e| e.details.contains("\"certificate_expired\""))
        .count();
    assert_eq!(expired, 3, "each refusal is audited");
    let ends =
        t.db.store
            .list_audit(&AuditFilter {
                action: Some("session.ended".into()),
                ..AuditFilter::default()
            })
            .await
            .unwrap();
    assert!(ends
        .iter()
        .any(|e| e.object == live_id && e.details.contains("\"certificate_expired\"")));
    t.stop().await;
}
on_both_backends!(
    expired_certificate_is_refused_despite_a_saved_tls_session,
    super::expired_certificate_with_saved_session
);

/// A certificate that is not yet valid for the gateway's clock is refused too.
async fn not_yet_valid_certificate(db: TestDb) {
    // The test certificate is back-dated 5 minutes; put the gateway an hour before.
    let start = Utc::now() - chrono::Duration::hours(1);
    let clock = Arc::new(ManualClock::new(start));
    let shared: SharedClock = clock.clone();
    let t = TestApp::spawn_with(db, "", shared).await;
    let device = echo_device().await;
    let sc = crate::common::api_scene(&t, "Acme", "127.0.0.2", "mri-1", device).await;
    let vendor = t.token("vendor", "desk", Some(&sc.vendor_id)).await;
    let security = t.token("security", "soc", None).await;
    t.approved_window(
        &vendor,
        &security,
        &sc.device_id,
        start - chrono::Duration::seconds(30),
        start + chrono::Duration::hours(3),
    )
    .await;
    let mut tls = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    let line = read_all(&mut tls).await.unwrap();
    assert!(line.starts_with("PORTIER DENIED certificate_expired "), "{line:?}");
    // Once the clock reaches the validity period, the same certificate is admitted.
    clock.set(Utc::now());
    let mut tls = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut tls, b"ok").await, b"ok");
    t.stop().await;
}
on_both_backends!(not_yet_valid_certificate_is_refused, super::not_yet_valid_certificate);

/// Technicians registered before `not_before` was stored get it from their
/// stored certificate when the store migrates; a row whose certificate cannot be
/// read stays unknown and is refused ("unknown" never means "valid forever").
async fn validity_backfill(db: TestDb) {
    let pki = Pki::generate();
    let device = echo_device().await;
    let sc = scene(db.store.as_ref(), &pki, device).await;
    let (bob, _) = technician(db.store.as_ref(), &pki, &sc.vendor, "bob").await;
    let expected = sc.tech.not_before.unwrap();
    // Simulate rows from before migration 0003.
    let forget = "UPDATE technicians SET not_before = NULL";
    let garble = format!(
        "UPDATE technicians SET certificate_pem = 'garbage' WHERE id = '{}'",
        bob.id.as_str()
    );
    match db.kind {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            sqlx::query(forget).execute(&pool).await.unwrap();
            sqlx::query(&garble).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            sqlx::query(forget).execute(&pool).await.unwrap();
            sqlx::query(&garble).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
    db.store.migrate().await.unwrap();
    assert_eq!(
        db.store.technician(&sc.tech.id).await.unwrap().not_before,
        Some(expected)
    );
    assert_eq!(db.store.technician(&bob.id).await.unwrap().not_before, None);

    let now = Utc::now();
    let snap = db.store.load_admission_snapshot(now).await.unwrap();
    let ask = |fp| {
        let facts = Facts {
            sni: Some("mri-1"),
            fingerprint: Some(fp),
            source_ip: "127.0.0.2".parse().unwrap(),
        };
        match decide(&facts, &snap, now) {
            Decision::Allow(_) => None,
            Decision::Deny(d) => Some(d.reason),
        }
    };
    assert_eq!(ask(sc.tech.fingerprint), None, "backfilled technician admitted");
    assert_eq!(ask(bob.fingerprint), Some(DenyReason::CertificateExpired));
}
on_both_backends!(
    certificate_validity_is_backfilled_and_unknown_is_refused,
    super::validity_backfill
);
