//! Emergency access, lockdown, intervention reports, extensions, notifications.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use portier::clock::{ManualClock, SharedClock, SystemClock};
use serde_json::json;

use crate::common::*;
use crate::on_both_backends;

fn denied_with(line: &str, reason: &str) -> bool {
    line.starts_with(&format!("PORTIER DENIED {reason} "))
}

async fn lockdown(db: TestDb) {
    let mut t = TestApp::spawn(db).await;
    let device = echo_device().await;
    let (sc, vendor, security) = t.open_window_scene(device).await;

    let mut tunnels = Vec::new();
    for _ in 0..3 {
        let mut tls = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
            .await
            .unwrap();
        assert_eq!(echo_roundtrip(&mut tls, b"x").await, b"x");
        tunnels.push(tls);
    }
    // Only security may lock down; a reason is required.
    let (st, _) = t
        .call("POST", "/api/v1/lockdown", Some(&t.admin), Some(json!({"reason": "x"})))
        .await;
    assert_eq!(st, 403);
    let (st, _) = t
        .call(
            "POST",
            "/api/v1/lockdown",
            Some(&security),
            Some(json!({"reason": " "})),
        )
        .await;
    assert_eq!(st, 400);
    let before = Utc::now();
    let (st, b) = t
        .call(
            "POST",
            "/api/v1/lockdown",
            Some(&security),
            Some(json!({"reason": "ransomware on the PACS network"})),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    for tls in &mut tunnels {
        let closed = wait_closed(tls).await;
        assert!(
            closed - before < chrono::Duration::seconds(1),
            "cut {} after lockdown",
            closed - before
        );
    }
    let mut tls = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert!(denied_with(&read_all(&mut tls).await.unwrap(), "lockdown"));
    // Anyone can see the state; the API keeps working for auditors.
    let (st, state) = t.call("GET", "/api/v1/lockdown", Some(&vendor), None).await;
    assert_eq!(st, 200);
    assert_eq!(state["active"], true);
    assert_eq!(state["reason"], "ransomware on the PACS network");
    assert!(state["set_by"].is_string() && state["set_at"].is_string());
    let ended = eventually(|| async {
        let (_, l) = t
            .call("GET", "/api/v1/sessions?active=false", Some(&security), None)
            .await;
        l.as_array().filter(|a| a.len() == 3).cloned()
    })
    .await;
    assert!(ended.iter().all(|s| s["end_reason"] == "lockdown"), "{ended:?}");

    // A restarted node is still locked down.
    t.restart().await;
    let mut tls = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert!(denied_with(&read_all(&mut tls).await.unwrap(), "lockdown"));

    // Unlock (security, with a reason) restores admission.
    let (st, _) = t
        .call("DELETE", "/api/v1/lockdown", Some(&security), Some(json!({})))
        .await;
    assert_eq!(st, 400, "a reason is required to lift it");
    let (st, _) = t
        .call(
            "DELETE",
            "/api/v1/lockdown",
            Some(&security),
            Some(json!({"reason": "incident closed"})),
        )
        .await;
    assert_eq!(st, 200);
    let mut tls = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut tls, b"back").await, b"back");

    // The command line locks down a running node too (it follows within a second).
    let before = Utc::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portier"))
        .args([
            "lockdown",
            "on",
            "--reason",
            "API unreachable, SOC decision",
            "--config",
        ])
        .arg(t.dir.path().join("portier.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let closed = wait_closed(&mut tls).await;
    assert!(
        closed - before < chrono::Duration::seconds(3),
        "cut {} after the CLI lockdown",
        closed - before
    );
    let mut tls = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    let said = read_all(&mut tls).await.unwrap();
    assert!(denied_with(&said, "lockdown"), "{said:?}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portier"))
        .args(["lockdown", "off", "--reason", "restored", "--config"])
        .arg(t.dir.path().join("portier.toml"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let (_, state) = t.call("GET", "/api/v1/lockdown", Some(&security), None).await;
    assert_eq!(state["active"], false);
    t.stop().await;
}
on_both_backends!(lockdown_cuts_refuses_persists_and_lifts, super::lockdown);

async fn emergency_and_review(db: TestDb) {
    // Virtual time: the grant's end comes when the test moves the clock.
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let t = TestApp::spawn_with(db, "", clock.clone()).await;
    let device = echo_device().await;
    let sc = api_scene(&t, "Acme", "127.0.0.2", "mri-1", device).await;
    let vendor = t.token("vendor", "desk", Some(&sc.vendor_id)).await;
    let soc1 = t.token("security", "soc-1", None).await;
    let soc2 = t.token("security", "soc-2", None).await;
    let grant = |minutes: u32, justification: &str| json!({"vendor_id": sc.vendor_id, "device_ids": [sc.device_id], "duration_minutes": minutes, "justification": justification, "extra_networks": ["127.0.0.3"]});
    for token in [&t.admin, &vendor] {
        let (st, _) = t
            .call("POST", "/api/v1/emergency", Some(token), Some(grant(30, "MRI down")))
            .await;
        assert_eq!(st, 403);
    }
    let (st, e) = t
        .call("POST", "/api/v1/emergency", Some(&soc1), Some(grant(30, "   ")))
        .await;
    assert_eq!(st, 400, "{e}");
    let (st, e) = t
        .call("POST", "/api/v1/emergency", Some(&soc1), Some(grant(241, "MRI down")))
        .await;
    assert_eq!(st, 400, "{e}");
    assert!(e["message"].as_str().unwrap().contains("240"));
    let (st, e) = t
        .call(
            "POST",
            "/api/v1/emergency",
            Some(&soc1),
            Some(json!({"vendor_id": sc.vendor_id, "device_ids": [sc.device_id], "duration_minutes": 30})),
        )
        .await;
    assert_eq!(st, 400, "missing justification: {e}");

    let (st, w) = t
        .call(
            "POST",
            "/api/v1/emergency",
            Some(&soc1),
            Some(grant(1, "MRI down during a stroke protocol")),
        )
        .await;
    assert_eq!(st, 201, "{w}");
    assert_eq!(
        (w["emergency"].as_bool(), w["state"].as_str()),
        (Some(true), Some("active"))
    );
    let wid = w["id"].as_str().unwrap().to_owned();
    let ends_at = chrono::DateTime::parse_from_rfc3339(w["ends_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);

    // The extra network admits its address during the grant; others stay refused.
    let mut extra = connect_from("127.0.0.3", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut extra, b"urgent").await, b"urgent");
    let mut other = connect_from("127.0.0.5", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert!(denied_with(
        &read_all(&mut other).await.unwrap(),
        "source_ip_not_declared"
    ));

    // Unreviewed grants are listed; the granter cannot review; a second account can.
    let (_, pending) = t
        .call(
            "GET",
            "/api/v1/windows?emergency=true&reviewed=false",
            Some(&soc2),
            None,
        )
        .await;
    assert_eq!(pending.as_array().unwrap().len(), 1);
    let review = json!({"verdict": "justified", "comment": "stroke protocol, confirmed with radiology"});
    let (st, _) = t
        .call(
            "POST",
            &format!("/api/v1/windows/{wid}/review"),
            Some(&soc1),
            Some(review.clone()),
        )
        .await;
    assert_eq!(st, 403);
    let (st, _) = t
        .call(
            "POST",
            &format!("/api/v1/windows/{wid}/review"),
            Some(&soc2),
            Some(json!({"verdict": "maybe", "comment": "x"})),
        )
        .await;
    assert_eq!(st, 400);
    let (st, b) = t
        .call(
            "POST",
            &format!("/api/v1/windows/{wid}/review"),
            Some(&soc2),
            Some(review.clone()),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["review_verdict"], "justified");
    let (st, _) = t
        .call(
            "POST",
            &format!("/api/v1/windows/{wid}/review"),
            Some(&soc2),
            Some(review),
        )
        .await;
    assert_eq!(st, 409, "reviewed once");
    let (_, pending) = t
        .call(
            "GET",
            "/api/v1/windows?emergency=true&reviewed=false",
            Some(&soc2),
            None,
        )
        .await;
    assert_eq!(pending, json!([]));
    let events = t
        .app
        .store
        .list_audit(&portier::store::AuditFilter::default())
        .await
        .unwrap();
    assert!(events
        .iter()
        .any(|e| e.action == "emergency.granted" && e.details.contains("stroke protocol")));

    // When the grant expires, the tunnel is cut and the address refused again.
    clock.set(ends_at - chrono::Duration::milliseconds(1));
    assert_eq!(echo_roundtrip(&mut extra, b"last").await, b"last");
    let at_end = std::time::Instant::now();
    clock.set(ends_at);
    wait_closed(&mut extra).await;
    assert!(
        at_end.elapsed() < Duration::from_secs(1),
        "cut {:?} after the grant's end",
        at_end.elapsed()
    );
    let mut again = connect_from("127.0.0.3", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert!(denied_with(
        &read_all(&mut again).await.unwrap(),
        "source_ip_not_declared"
    ));
    t.stop().await;
}
on_both_backends!(
    emergency_grant_extra_networks_expire_and_are_reviewed,
    super::emergency_and_review
);

async fn reports_and_overdue(db: TestDb, mode: &str) {
    let start = Utc::now();
    let clock = Arc::new(ManualClock::new(start));
    let shared: SharedClock = clock.clone();
    let t = TestApp::spawn_with(db, &format!("[policy]\non_overdue_report = \"{mode}\"\n"), shared).await;
    let device = echo_device().await;
    let sc = api_scene(&t, "Acme", "127.0.0.2", "mri-1", device).await;
    let other = api_scene(&t, "Other", "127.0.0.4", "ct-1", device).await;
    let vendor = t.token("vendor", "desk", Some(&sc.vendor_id)).await;
    let other_vendor = t.token("vendor", "other-desk", Some(&other.vendor_id)).await;
    let security = t.token("security", "soc", None).await;
    let h = chrono::Duration::hours;
    let w1 = t
        .approved_window(
            &vendor,
            &security,
            &sc.device_id,
            start - chrono::Duration::minutes(1),
            start + h(1),
        )
        .await;
    let w2 = t
        .approved_window(&vendor, &security, &sc.device_id, start + h(24), start + h(27))
        .await;

    // Before the end, with no session: too early.
    let report = json!({"summary": "Replaced the gradient coil firmware", "actions": "1. backup\n2. flash 4.2\n3. QA scan", "outcome": "success"});
    let (st, e) = t
        .call(
            "POST",
            &format!("/api/v1/windows/{w1}/report"),
            Some(&vendor),
            Some(report.clone()),
        )
        .await;
    assert_eq!(st, 409, "{e}");

    let mut tls = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut tls, b"work").await, b"work");
    use tokio::io::AsyncWriteExt;
    tls.shutdown().await.unwrap();
    wait_closed(&mut tls).await;
    eventually(|| async {
        let (_, l) = t
            .call("GET", "/api/v1/sessions?active=false", Some(&security), None)
            .await;
        l.as_array().filter(|a| a.len() == 1).cloned()
    })
    .await;

    // 26 hours later: w1 ended 25 hours ago with a session and no report.
    clock.set(start + h(26));
    let (_, overdue) = t
        .call("GET", "/api/v1/reports?overdue=true", Some(&security), None)
        .await;
    assert_eq!(overdue.as_array().unwrap().len(), 1, "{overdue}");
    assert_eq!(overdue[0]["window_id"], w1.as_str());
    assert_eq!(overdue[0]["sessions"].as_array().unwrap().len(), 1);
    let new_window =
        json!({"device_ids": [sc.device_id], "starts_at": start + h(30), "ends_at": start + h(31), "reason": "next"});
    let (st, e) = t
        .call("POST", "/api/v1/windows", Some(&vendor), Some(new_window.clone()))
        .await;
    let mut tls = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    if mode == "block" {
        assert_eq!(st, 409, "{e}");
        assert!(
            e["message"].as_str().unwrap().contains(&w1),
            "names the overdue window: {e}"
        );
        assert!(denied_with(&read_all(&mut tls).await.unwrap(), "report_overdue"));
        // An emergency grant is admitted despite the overdue report.
        let (st, g) = t
            .call(
                "POST",
                "/api/v1/emergency",
                Some(&security),
                Some(json!({"vendor_id": sc.vendor_id, "device_ids": [sc.device_id], "duration_minutes": 30, "justification": "scanner down"})),
            )
            .await;
        assert_eq!(st, 201, "{g}");
        let mut tls = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
            .await
            .unwrap();
        assert_eq!(echo_roundtrip(&mut tls, b"urgent").await, b"urgent");
    } else {
        // warn: nothing is blocked.
        assert_eq!(st, 201, "{e}");
        assert_eq!(echo_roundtrip(&mut tls, b"still").await, b"still");
    }

    // Another vendor cannot file it; the vendor can, once; then it is visible with its sessions.
    let (st, _) = t
        .call(
            "POST",
            &format!("/api/v1/windows/{w1}/report"),
            Some(&other_vendor),
            Some(report.clone()),
        )
        .await;
    assert!(st == 403 || st == 404, "{st}");
    let (st, _) = t
        .call(
            "POST",
            &format!("/api/v1/windows/{w1}/report"),
            Some(&security),
            Some(report.clone()),
        )
        .await;
    assert_eq!(st, 403);
    let (st, e) = t
        .call(
            "POST",
            &format!("/api/v1/windows/{w1}/report"),
            Some(&vendor),
            Some(json!({"summary": "x", "actions": "y", "outcome": "meh"})),
        )
        .await;
    assert_eq!(st, 400, "{e}");
    let (st, r) = t
        .call(
            "POST",
            &format!("/api/v1/windows/{w1}/report"),
            Some(&vendor),
            Some(report.clone()),
        )
        .await;
    assert_eq!(st, 201, "{r}");
    let (st, _) = t
        .call(
            "POST",
            &format!("/api/v1/windows/{w1}/report"),
            Some(&vendor),
            Some(report.clone()),
        )
        .await;
    assert_eq!(st, 409, "filed twice");
    let (st, r) = t
        .call(
            "POST",
            &format!("/api/v1/windows/{w1}/report/addenda"),
            Some(&vendor),
            Some(json!({"text": "QA scan redone on day 2"})),
        )
        .await;
    assert_eq!(st, 201, "{r}");
    let (_, r) = t
        .call("GET", &format!("/api/v1/windows/{w1}/report"), Some(&security), None)
        .await;
    assert_eq!(r["report"]["summary"], "Replaced the gradient coil firmware");
    assert_eq!(r["report"]["addenda"].as_array().unwrap().len(), 1);
    assert_eq!(r["sessions"][0]["end_reason"], "client_closed");
    assert_eq!(r["overdue"], false);
    let (_, list) = t.call("GET", "/api/v1/reports", Some(&other_vendor), None).await;
    assert_eq!(list, json!([]), "other vendors do not see it");
    let (_, list) = t
        .call(
            "GET",
            &format!("/api/v1/reports?device_id={}", sc.device_id),
            Some(&security),
            None,
        )
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    // Filed: the block is lifted.
    let (st, e) = t.call("POST", "/api/v1/windows", Some(&vendor), Some(new_window)).await;
    assert_eq!(st, 201, "{e}");
    let mut tls = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut tls, b"again").await, b"again");
    let _ = w2;
    t.stop().await;
}

async fn reports_block(db: TestDb) {
    reports_and_overdue(db, "block").await;
}
async fn reports_warn(db: TestDb) {
    reports_and_overdue(db, "warn").await;
}
on_both_backends!(
    overdue_report_blocks_requests_and_tunnels_until_filed,
    super::reports_block
);
on_both_backends!(overdue_report_in_warn_mode_blocks_nothing, super::reports_warn);

async fn extension(db: TestDb) {
    // Virtual time: the ends come when the test moves the clock.
    let now = Utc::now();
    let clock = Arc::new(ManualClock::new(now));
    let t = TestApp::spawn_with(db, "", clock.clone()).await;
    let device = echo_device().await;
    let sc = api_scene(&t, "Acme", "127.0.0.2", "mri-1", device).await;
    let vendor = t.token("vendor", "desk", Some(&sc.vendor_id)).await;
    let security = t.token("security", "soc", None).await;
    let original_end = now + chrono::Duration::seconds(3);
    let wid = t
        .approved_window(
            &vendor,
            &security,
            &sc.device_id,
            now - chrono::Duration::seconds(5),
            original_end,
        )
        .await;
    let mut tls = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut tls, b"x").await, b"x");

    let new_end = original_end + chrono::Duration::seconds(3);
    let (st, e) = t
        .call(
            "POST",
            &format!("/api/v1/windows/{wid}/extend"),
            Some(&vendor),
            Some(json!({"ends_at": original_end - chrono::Duration::seconds(1), "reason": "r"})),
        )
        .await;
    assert_eq!(st, 400, "{e}");
    let (st, w) = t
        .call(
            "POST",
            &format!("/api/v1/windows/{wid}/extend"),
            Some(&vendor),
            Some(json!({"ends_at": new_end, "reason": "calibration takes longer"})),
        )
        .await;
    assert_eq!(st, 200, "{w}");
    assert!(w["extension_ends_at"].is_string());
    // Its requester cannot approve it; security can.
    let (st, _) = t
        .call("POST", &format!("/api/v1/windows/{wid}/approve"), Some(&vendor), None)
        .await;
    assert_eq!(st, 403);
    let (st, w) = t
        .call("POST", &format!("/api/v1/windows/{wid}/approve"), Some(&security), None)
        .await;
    assert_eq!(st, 200, "{w}");
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(w["ends_at"].as_str().unwrap()).unwrap(),
        portier::audit::truncate_micros(new_end)
    );

    // Alive past the original end, cut at the new one.
    clock.set(original_end + chrono::Duration::milliseconds(500));
    assert_eq!(echo_roundtrip(&mut tls, b"still here").await, b"still here");
    clock.set(new_end - chrono::Duration::milliseconds(1));
    assert_eq!(echo_roundtrip(&mut tls, b"just in").await, b"just in");
    let at_end = std::time::Instant::now();
    clock.set(new_end);
    wait_closed(&mut tls).await;
    assert!(
        at_end.elapsed() < Duration::from_secs(1),
        "cut {:?} after the new end",
        at_end.elapsed()
    );
    let s = eventually(|| async {
        let (_, l) = t
            .call("GET", "/api/v1/sessions?active=false", Some(&security), None)
            .await;
        l.as_array().and_then(|a| a.first().cloned())
    })
    .await;
    assert_eq!(s["end_reason"], "window_ended");
    t.stop().await;
}
on_both_backends!(approved_extension_moves_the_live_deadline, super::extension);

/// A loopback HTTP server recording what it receives.
async fn webhook_receiver() -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<(String, String, String)>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                let h = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let _ = tx.send((h("x-portier-event"), h("x-portier-signature"), body));
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    (addr, rx)
}

/// Independent check of the signature (not the production function).
fn verify(secret: &str, body: &str, header: &str) -> bool {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    header
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .is_some_and(|sig| mac.verify_slice(&sig).is_ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_are_signed_and_a_dead_receiver_blocks_nothing() {
    let (addr, mut rx) = webhook_receiver().await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let syslog = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let secret = "a-long-webhook-secret-0123456789";
    let extra = format!(
        "[notify]\nsyslog = \"udp://{}\"\nretry_base_ms = 200\n[[notify.webhooks]]\nurl = \"http://{addr}/hook\"\nsecret = \"{secret}\"\nlegacy_signature = true\n[[notify.webhooks]]\nurl = \"http://{dead}/hook\"\nsecret = \"another-secret-of-16+\"\n",
        syslog.local_addr().unwrap()
    );
    let t = TestApp::spawn_with(TestDb::sqlite().await, &extra, Arc::new(SystemClock)).await;
    let device = echo_device().await;
    let sc = api_scene(&t, "Acme", "127.0.0.2", "mri-1", device).await;
    let vendor = t.token("vendor", "desk", Some(&sc.vendor_id)).await;
    let security = t.token("security", "soc", None).await;
    let now = Utc::now();
    let started = std::time::Instant::now();
    t.approved_window(
        &vendor,
        &security,
        &sc.device_id,
        now - chrono::Duration::minutes(1),
        now + chrono::Duration::hours(1),
    )
    .await;
    let mut tls = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut tls, b"x").await, b"x");
    // The dead receiver is being retried meanwhile; nothing waited for it.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "API and tunnel took {:?}",
        started.elapsed()
    );
    let (st, _) = t
        .call(
            "POST",
            "/api/v1/lockdown",
            Some(&security),
            Some(json!({"reason": "drill"})),
        )
        .await;
    assert_eq!(st, 200);

    let mut seen = std::collections::HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while ![
        "window.requested",
        "window.approved",
        "session.started",
        "lockdown.on",
        "session.ended",
    ]
    .iter()
    .all(|e| seen.contains_key(*e))
    {
        let (event, sig, body) = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("notifications did not arrive")
            .unwrap();
        assert!(verify(secret, &body, &sig), "bad signature for {event}");
        assert!(!verify("wrong-secret-wrong-secret", &body, &sig));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["event"], event.as_str());
        seen.insert(event, v);
    }
    assert_eq!(seen["lockdown.on"]["data"]["reason"], "drill");
    assert_eq!(seen["session.ended"]["data"]["end_reason"], "lockdown");
    // The SIEM got RFC 5424 lines.
    let mut buf = vec![0u8; 8192];
    let mut lines = Vec::new();
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(3), syslog.recv(&mut buf)).await {
        lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        if lines.iter().any(|l| l.contains("lockdown.on")) {
            break;
        }
    }
    let line = lines
        .iter()
        .find(|l| l.contains("lockdown.on"))
        .expect("no syslog line for lockdown.on");
    assert!(line.starts_with("<164>1 "), "{line}");
    t.stop().await;
}
