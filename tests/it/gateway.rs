//! The gateway end to end: real TLS, real sockets, a real store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use portier::clock::ManualClock;
use portier::domain::{EndReason, WindowState};
use portier::policy::PolicySettings;
use portier::store::{
    AuditFilter, Change, NewDevice, NewVendor, NewWindow, SessionFilter, Store, WindowTransition,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;
use crate::on_both_backends;

/// Parses `PORTIER DENIED <reason> <id>` and returns (reason, id).
fn denial(line: &str) -> (String, String) {
    let mut parts = line.trim_end().split(' ');
    assert_eq!(parts.next(), Some("PORTIER"), "line: {line:?}");
    assert_eq!(parts.next(), Some("DENIED"), "line: {line:?}");
    let reason = parts.next().unwrap().to_owned();
    let id = parts.next().unwrap().to_owned();
    assert!(parts.next().is_none(), "line: {line:?}");
    assert!(line.ends_with('\n'));
    (reason, id)
}

/// Asserts the audit trail holds a denial with this id and reason; returns its details.
async fn denial_event(store: &dyn Store, id: &str, reason: &str) -> serde_json::Value {
    let events = store
        .list_audit(&AuditFilter {
            action: Some("admission.denied".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let e = events
        .iter()
        .find(|e| e.object == id)
        .unwrap_or_else(|| panic!("no audit event for {id}: {events:?}"));
    let details: serde_json::Value = serde_json::from_str(&e.details).unwrap();
    assert_eq!(details["reason"], reason);
    assert_eq!(e.outcome, "denied");
    details
}

async fn allowed(db: TestDb) {
    let pki = Pki::generate();
    let device = echo_device().await;
    let s = scene(db.store.as_ref(), &pki, device).await;
    let gw = TestGateway::spawn(db.store.clone(), &pki).await;

    let mut tls = connect_from("127.0.0.2", gw.addr, "mri-1", pki.client_tls(Some(&s.tech_cert), TLS13))
        .await
        .unwrap();
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    let payload: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(echo_roundtrip(&mut tls, &payload).await, payload);
    assert_eq!(echo_roundtrip(&mut tls, b"second message").await, b"second message");
    let live = gw.registry.list();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].deadline, s.window.ends_at);
    tls.shutdown().await.unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut rest)).await;

    let session = eventually(|| async {
        let all = db.store.list_sessions(&SessionFilter::default()).await.unwrap();
        all.into_iter().find(|x| x.ended_at.is_some())
    })
    .await;
    assert_eq!(session.vendor_id, s.vendor.id);
    assert_eq!(session.technician_id, s.tech.id);
    assert_eq!(session.technician_subject, "O=Acme Imaging, CN=alice");
    assert_eq!(session.device_id, s.device.id);
    assert_eq!(session.window_id, s.window.id);
    assert_eq!(session.source_ip.to_string(), "127.0.0.2");
    assert_ne!(session.source_port, 0);
    let sent = (payload.len() + b"second message".len()) as u64;
    assert_eq!(session.bytes_from_vendor, sent);
    assert_eq!(session.bytes_to_vendor, sent);
    assert_eq!(session.end_reason, Some(EndReason::ClientClosed));
    assert!(gw.registry.is_empty());

    // Start and end are both on the audit trail.
    let events = db.store.list_audit(&AuditFilter::default()).await.unwrap();
    let started = events.iter().find(|e| e.action == "session.started").unwrap();
    assert_eq!(started.object, session.id.as_str());
    let ended = events.iter().find(|e| e.action == "session.ended").unwrap();
    assert!(ended.details.contains("client_closed"));
    assert!(started.seq < ended.seq);
    gw.stop().await;
}
on_both_backends!(allowed_tunnel_echoes_and_is_recorded, super::allowed);

async fn denials(db: TestDb) {
    let pki = Pki::generate();
    let device = echo_device().await;
    let store = db.store.as_ref();
    let s = scene(store, &pki, device).await;
    let now = Utc::now();

    // A second device with only a requested window; a third with a future and a past window.
    let mk_device = |name: &'static str, vendor: portier::domain::VendorId| NewDevice {
        name: name.parse().unwrap(),
        address: device.to_string(),
        protocol: "echo".into(),
        description: None,
        vendor_ids: vec![vendor],
    };
    let pending = store
        .create_device(&mk_device("lab-2", s.vendor.id.clone()), now, &|_| test_effects())
        .await
        .unwrap();
    store
        .create_window(
            &NewWindow {
                vendor_id: s.vendor.id.clone(),
                device_ids: vec![pending.id.clone()],
                starts_at: now - chrono::Duration::minutes(5),
                ends_at: now + chrono::Duration::hours(1),
                reason: "not approved yet".into(),
                requested_by: "vendor-user".into(),
                emergency: false,
                approved_by: None,
                extra_networks: vec![],
            },
            now,
            &|_| test_effects(),
        )
        .await
        .unwrap();
    let timed = store
        .create_device(&mk_device("ct-3", s.vendor.id.clone()), now, &|_| test_effects())
        .await
        .unwrap();
    approved_window(
        store,
        &s.vendor,
        &timed,
        now + chrono::Duration::hours(1),
        now + chrono::Duration::hours(2),
    )
    .await;
    approved_window(
        store,
        &s.vendor,
        &timed,
        now - chrono::Duration::hours(2),
        now - chrono::Duration::hours(1),
    )
    .await;
    // A device of another vendor, with that vendor's window open now.
    let other = store
        .create_vendor(
            &NewVendor {
                name: "Other Medical".into(),
                networks: vec![portier::domain::parse_network("127.0.0.0/8").unwrap()],
                security_contact: None,
            },
            now,
            &|_| test_effects(),
        )
        .await
        .unwrap();
    let foreign = store
        .create_device(&mk_device("pump-9", other.id.clone()), now, &|_| test_effects())
        .await
        .unwrap();
    approved_window(
        store,
        &other,
        &foreign,
        now - chrono::Duration::minutes(5),
        now + chrono::Duration::hours(1),
    )
    .await;
    // A revoked technician of acme.
    let (bob, bob_cert) = technician(store, &pki, &s.vendor, "bob").await;
    store
        .revoke_technician(&s.vendor.id, &bob.id, now, &|_| test_effects())
        .await
        .unwrap();

    let gw = TestGateway::spawn(db.store.clone(), &pki).await;
    let alice = pki.client_tls(Some(&s.tech_cert), TLS13);
    let cases = [
        (
            "undeclared source",
            "127.0.0.3",
            "mri-1",
            alice.clone(),
            "source_ip_not_declared",
        ),
        (
            "requested, not approved",
            "127.0.0.2",
            "lab-2",
            alice.clone(),
            "no_active_window",
        ),
        (
            "future and past windows only",
            "127.0.0.2",
            "ct-3",
            alice.clone(),
            "no_active_window",
        ),
        ("unknown sni", "127.0.0.2", "xray-404", alice.clone(), "unknown_device"),
        (
            "other vendor's device",
            "127.0.0.2",
            "pump-9",
            alice.clone(),
            "device_not_assigned",
        ),
        (
            "revoked technician",
            "127.0.0.2",
            "mri-1",
            pki.client_tls(Some(&bob_cert), TLS13),
            "unknown_technician",
        ),
    ];
    for (name, source, sni, cfg, reason) in cases {
        let mut tls = connect_from(source, gw.addr, sni, cfg)
            .await
            .unwrap_or_else(|e| panic!("{name}: handshake: {e}"));
        let line = read_all(&mut tls).await.unwrap();
        let (got, id) = denial(&line);
        assert_eq!(got, reason, "case {name}");
        let details = denial_event(store, &id, reason).await;
        assert_eq!(details["source_ip"], source, "case {name}");
        assert_eq!(details["sni"], sni, "case {name}");
        assert_eq!(
            details["certificate_fingerprint"].as_str().unwrap().len(),
            64,
            "case {name}"
        );
        assert!(
            details["certificate_subject"].as_str().unwrap().contains("CN="),
            "case {name}"
        );
    }

    // Disabling the vendor takes effect for the very next connection.
    store
        .set_vendor_enabled(&s.vendor.id, false, &|v| {
            test_effects().change(Change::Vendor(v.id.clone()))
        })
        .await
        .unwrap();
    let mut tls = connect_from("127.0.0.2", gw.addr, "mri-1", alice.clone())
        .await
        .unwrap();
    let (got, id) = denial(&read_all(&mut tls).await.unwrap());
    assert_eq!(got, "vendor_disabled");
    denial_event(store, &id, "vendor_disabled").await;

    // No tunnel was opened by any of these.
    assert!(store.list_sessions(&SessionFilter::default()).await.unwrap().is_empty());
    gw.stop().await;
}
on_both_backends!(denials_carry_their_reason_and_are_audited, super::denials);

async fn handshake_refusals(db: TestDb) {
    let pki = Pki::generate();
    let device = echo_device().await;
    let s = scene(db.store.as_ref(), &pki, device).await;
    let gw = TestGateway::spawn(db.store.clone(), &pki).await;

    // No client certificate: the handshake fails (the server demands one).
    let r = async {
        let mut tls = connect_from("127.0.0.2", gw.addr, "mri-1", pki.client_tls(None, TLS13)).await?;
        // TLS 1.3 clients learn of the refusal on their first read.
        let mut buf = [0u8; 64];
        tls.read(&mut buf).await
    }
    .await;
    assert!(
        r.is_err() || r.as_ref().is_ok_and(|n| *n == 0),
        "no-certificate client got {r:?}"
    );

    // A certificate from another CA.
    let rogue_ca = portier::pki::CertAuthority::generate("rogue CA", 1).unwrap();
    let rogue = rogue_ca.issue_client("alice", Some("Acme Imaging"), 1).unwrap();
    let r = async {
        let mut tls = connect_from("127.0.0.2", gw.addr, "mri-1", pki.client_tls(Some(&rogue), TLS13)).await?;
        let mut buf = [0u8; 64];
        tls.read(&mut buf).await
    }
    .await;
    assert!(
        r.is_err() || r.as_ref().is_ok_and(|n| *n == 0),
        "rogue client got {r:?}"
    );

    // A TLS 1.2-only client cannot even start.
    let tls12 = pki.client_tls(Some(&s.tech_cert), &[&rustls::version::TLS12]);
    let r = connect_from("127.0.0.2", gw.addr, "mri-1", tls12).await;
    assert!(r.is_err(), "TLS 1.2 handshake succeeded");

    // Garbage instead of TLS: closed, no hang, no session.
    let mut raw = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut sink = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut sink)).await;
    assert!(closed.is_ok(), "garbage connection not closed");

    assert!(db
        .store
        .list_sessions(&SessionFilter::default())
        .await
        .unwrap()
        .is_empty());
    // Handshake failures are on the audit trail too.
    let failures = eventually(|| async {
        let ev = db
            .store
            .list_audit(&AuditFilter {
                action: Some("tls.handshake_failed".into()),
                ..AuditFilter::default()
            })
            .await
            .unwrap();
        (ev.len() >= 4).then_some(ev)
    })
    .await;
    assert!(failures.iter().all(|e| e.details.contains("127.0.0.")));
    gw.stop().await;
}
on_both_backends!(
    handshake_is_refused_without_a_valid_tls13_client_certificate,
    super::handshake_refusals
);

async fn window_end_cuts(db: TestDb) {
    let pki = Pki::generate();
    let device = echo_device().await;
    let s = scene(db.store.as_ref(), &pki, device).await;
    // A window ending 2.5 s from now, replacing the scene's long one.
    db.store
        .transition_window(
            &s.window.id,
            &WindowTransition {
                from: vec![WindowState::Approved],
                to: WindowState::Revoked,
                by: "security-user".into(),
                reason: Some("replaced".into()),
                at: Utc::now(),
            },
            &|_| test_effects(),
        )
        .await
        .unwrap();
    // Virtual time: the product's clock moves only when the test says so.
    let now = Utc::now();
    let clock = Arc::new(ManualClock::new(now));
    let short = approved_window(
        db.store.as_ref(),
        &s.vendor,
        &s.device,
        now - chrono::Duration::seconds(1),
        now + chrono::Duration::milliseconds(2500),
    )
    .await;
    let gw = TestGateway::spawn_clocked(db.store.clone(), &pki, PolicySettings::default(), clock.clone()).await;

    let tls = connect_from("127.0.0.2", gw.addr, "mri-1", pki.client_tls(Some(&s.tech_cert), TLS13))
        .await
        .unwrap();
    let (mut r, mut w) = tokio::io::split(tls);
    // Keep bytes flowing until the gateway cuts the tunnel.
    let writer = tokio::spawn(async move {
        let chunk = [42u8; 1024];
        loop {
            if w.write_all(&chunk).await.is_err() || w.flush().await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let echoed = Arc::new(AtomicU64::new(0));
    let reader = {
        let echoed = echoed.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match tokio::time::timeout(Duration::from_secs(10), r.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return Instant::now(),
                    Ok(Ok(n)) => echoed.fetch_add(n as u64, Ordering::Relaxed),
                    Err(_) => panic!("tunnel still open 10 s later"),
                };
            }
        })
    };
    let flowing = |more: u64| {
        let echoed = echoed.clone();
        let from = echoed.load(Ordering::Relaxed);
        eventually(move || {
            let echoed = echoed.clone();
            async move { (echoed.load(Ordering::Relaxed) >= from + more).then_some(()) }
        })
    };
    flowing(10_000).await;
    // A millisecond before the end: still open, bytes still flowing.
    clock.set(short.ends_at - chrono::Duration::milliseconds(1));
    flowing(10_000).await;
    assert!(!reader.is_finished(), "cut before the end");
    // At the end: cut at once (the product promises within a second).
    let at_end = Instant::now();
    clock.set(short.ends_at);
    let closed = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .expect("tunnel still open 10 s after the window's end")
        .unwrap();
    writer.abort();
    let late = closed - at_end;
    assert!(late < Duration::from_secs(1), "cut {late:?} after the window's end");

    let session = eventually(|| async {
        db.store
            .list_sessions(&SessionFilter::default())
            .await
            .unwrap()
            .into_iter()
            .find(|x| x.ended_at.is_some())
    })
    .await;
    assert_eq!(session.end_reason, Some(EndReason::WindowEnded));
    assert_eq!(session.window_id, short.id);
    let ended = session.ended_at.unwrap();
    assert!(
        ended >= short.ends_at - chrono::Duration::milliseconds(1)
            && ended - short.ends_at < chrono::Duration::seconds(1),
        "ended at {ended}, window end {}",
        short.ends_at
    );
    assert!(session.bytes_from_vendor > 20_000);
    gw.stop().await;
}
on_both_backends!(window_end_cuts_a_busy_tunnel_within_a_second, super::window_end_cuts);

async fn store_refusing_writes(db: TestDb) {
    let pki = Pki::generate();
    let device = echo_device().await;
    let _s = scene(db.store.as_ref(), &pki, device).await;
    let tech_cert = _s.tech_cert.clone();
    // The gateway's own connection to the database refuses every write.
    let read_only = portier::store::connect(&db.read_only_url()).await.unwrap();
    let gw = TestGateway::spawn(read_only, &pki).await;
    let mut tls = connect_from("127.0.0.2", gw.addr, "mri-1", pki.client_tls(Some(&tech_cert), TLS13))
        .await
        .unwrap();
    // Nothing reaches the device: a byte sent now would be echoed if a tunnel existed.
    let _ = tls.write_all(b"should never be echoed").await;
    let said = read_all(&mut tls).await.unwrap();
    let (reason, _) = denial(&said);
    assert_eq!(reason, "store_unavailable");
    assert!(!said.contains("should never"));
    assert!(db
        .store
        .list_sessions(&SessionFilter::default())
        .await
        .unwrap()
        .is_empty());
    assert!(gw.registry.is_empty());
    gw.stop().await;
}
on_both_backends!(no_tunnel_without_its_session_record, super::store_refusing_writes);

async fn openssl_client(db: TestDb) {
    if std::process::Command::new("openssl").arg("version").output().is_err() {
        eprintln!("skipped: openssl is not installed");
        return;
    }
    let pki = Pki::generate();
    let device = echo_device().await;
    let s = scene(db.store.as_ref(), &pki, device).await;
    let gw = TestGateway::spawn(db.store.clone(), &pki).await;
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("alice.pem");
    let key = dir.path().join("alice.key");
    std::fs::write(&cert, &s.tech_cert.cert_pem).unwrap();
    std::fs::write(&key, &s.tech_cert.key_pem).unwrap();

    let run = |source: &'static str, sni: &'static str| {
        let (cert, key, ca) = (cert.clone(), key.clone(), pki.server_ca_path());
        let addr = gw.addr;
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut child = std::process::Command::new("openssl")
                .args([
                    "s_client",
                    "-quiet",
                    "-no_ign_eof",
                    "-tls1_3",
                    "-connect",
                    &addr.to_string(),
                    "-servername",
                    sni,
                ])
                .args(["-bind", &format!("{source}:0")])
                .arg("-cert")
                .arg(&cert)
                .arg("-key")
                .arg(&key)
                .arg("-CAfile")
                .arg(&ca)
                .args(["-verify_return_error", "-verify_hostname", "localhost"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(b"hello through openssl\n").unwrap();
            // Give the echo time to come back before closing our side.
            std::thread::sleep(Duration::from_millis(700));
            drop(stdin);
            let out = child.wait_with_output().unwrap();
            (
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
    };
    let (out, err) = run("127.0.0.2", "mri-1").await.unwrap();
    assert!(out.contains("hello through openssl"), "stdout {out:?} stderr {err:?}");
    let (out, err) = run("127.0.0.3", "mri-1").await.unwrap();
    assert!(
        out.starts_with("PORTIER DENIED source_ip_not_declared "),
        "stdout {out:?} stderr {err:?}"
    );
    gw.stop().await;
}
on_both_backends!(openssl_s_client_through_the_gateway, super::openssl_client);

async fn unreachable_device(db: TestDb) {
    let pki = Pki::generate();
    // A port nobody listens on: bind, note it, close.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let s = scene(db.store.as_ref(), &pki, dead).await;
    let gw = TestGateway::spawn(db.store.clone(), &pki).await;
    let mut tls = connect_from("127.0.0.2", gw.addr, "mri-1", pki.client_tls(Some(&s.tech_cert), TLS13))
        .await
        .unwrap();
    let (reason, id) = denial(&read_all(&mut tls).await.unwrap());
    assert_eq!(reason, "device_unreachable");
    // The admitted session is on record, ended with an error.
    let session = eventually(|| async {
        db.store
            .session(&id.as_str().into())
            .await
            .ok()
            .filter(|x| x.ended_at.is_some())
    })
    .await;
    assert_eq!(session.end_reason, Some(EndReason::Error));
    gw.stop().await;
}
on_both_backends!(unreachable_device_is_reported, super::unreachable_device);
