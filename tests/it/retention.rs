//! Secure disposal (`portier purge`, `POST /api/v1/purge`) and the incident
//! timeline (`portier timeline`, `GET /api/v1/timeline`).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use portier::clock::ManualClock;
use portier::domain::{SessionId, WindowId, WindowState};
use portier::store::{AuditFilter, SessionFilter, ERASED, ERASED_IP};
use serde_json::{json, Value};

use crate::common::*;
use crate::on_both_backends;

/// The usual scene, then one session carrying "ping" (4 bytes each way), one
/// denial (an undeclared source), and the window's report. Returns (scene,
/// vendor token, security token, window id, session id).
async fn worked_window(t: &TestApp) -> (ApiScene, String, String, String, String) {
    let device = echo_device().await;
    let (sc, vendor, security) = t.open_window_scene(device).await;
    {
        let mut s = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
            .await
            .unwrap();
        assert_eq!(echo_roundtrip(&mut s, b"ping").await, b"ping");
    }
    let session = eventually(|| async {
        let list = t.app.store.list_sessions(&SessionFilter::default()).await.ok()?;
        let s = list.into_iter().find(|s| s.ended_at.is_some())?;
        Some(s)
    })
    .await;
    let mut denied = connect_from("127.0.0.3", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert!(read_all(&mut denied)
        .await
        .unwrap()
        .starts_with("PORTIER DENIED source_ip_not_declared "));
    let window = session.window_id.to_string();
    let (st, r) = t
        .call(
            "POST",
            &format!("/api/v1/windows/{window}/report"),
            Some(&vendor),
            Some(json!({"summary": "replaced the coil of Mr Martin's scanner", "actions": "coil", "outcome": "success", "follow_up": "call Dr Durand"})),
        )
        .await;
    assert_eq!(st, 201, "{r}");
    (sc, vendor, security, window, session.id.to_string())
}

async fn purge(t: &TestApp, before: DateTime<Utc>, dry_run: bool) -> (u16, Value) {
    let (st, v) = t
        .call(
            "POST",
            "/api/v1/purge",
            Some(&t.admin),
            Some(json!({"before": before, "dry_run": dry_run})),
        )
        .await;
    (st, v)
}

fn cli(t: &TestApp, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_portier"))
        .args(args)
        .arg("--config")
        .arg(t.dir.path().join("portier.toml"))
        .output()
        .unwrap()
}

async fn verify(t: &TestApp, auditor: &str) -> Value {
    let (st, v) = t.call("GET", "/api/v1/audit/verify", Some(auditor), None).await;
    assert_eq!(st, 200, "{v}");
    let out = cli(t, &["audit", "verify"]);
    assert_eq!(
        out.status.success(),
        v["valid"] == true,
        "the CLI and the API disagree: {v} / {}",
        String::from_utf8_lossy(&out.stdout)
    );
    v
}

/// A year and more after a worked window, a purge erases the personal data it
/// names, deletes the old audit events, keeps what the rules still need, and
/// leaves a trail that verifies (through the API and the CLI), also after
/// later appends; a dry run changes nothing; a too-recent cut-off is refused.
async fn purge_erases_old_personal_data_and_keeps_the_chain(db: TestDb) {
    let start = Utc::now();
    let clock = Arc::new(ManualClock::new(start));
    let t = TestApp::spawn_with(db, "", clock.clone()).await;
    let (sc, vendor, _security, window, session) = worked_window(&t).await;
    // A request nobody decided: pending, it stays whatever its age.
    let later = Utc::now() + Duration::hours(3);
    let (st, pending) = t
        .call(
            "POST",
            "/api/v1/windows",
            Some(&vendor),
            Some(json!({"device_ids": [sc.device_id], "starts_at": later, "ends_at": later + Duration::hours(1), "reason": "pending firmware update"})),
        )
        .await;
    assert_eq!(st, 201, "{pending}");
    let pending = pending["id"].as_str().unwrap().to_owned();
    let key = "source:192.0.2.9".to_owned();
    t.app
        .store
        .add_sign_in_failure(
            std::slice::from_ref(&key),
            start,
            start - Duration::hours(1),
            start - Duration::days(1),
        )
        .await
        .unwrap();
    let events_before = t.app.store.list_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(events_before[0].seq, 1);

    clock.set(start + Duration::days(400));
    let auditor = t.token("auditor", "dpo", None).await;
    let cut = start + Duration::days(1);
    // The incident timeline of that day: the window's scheduled end (no event
    // marks it) comes from its record, after the report.
    let day = format!(
        "/api/v1/timeline?vendor_id={}&since={}&until={}",
        sc.vendor_id,
        (start - Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ"),
        (start + Duration::hours(3)).format("%Y-%m-%dT%H:%M:%SZ")
    );
    let (st, tl) = t.call("GET", &day, Some(&auditor), None).await;
    assert_eq!(st, 200, "{tl}");
    let got = events(&tl);
    assert!(
        in_order(
            &got,
            &[
                ("window.approved", window.as_str()),
                ("session.ended", session.as_str()),
                ("report.filed", window.as_str()),
                ("window.ended", window.as_str()),
            ]
        ),
        "{got:?}"
    );

    // Refused: in the future, or within the minimum retention (365 days).
    let (st, b) = purge(&t, start + Duration::days(500), false).await;
    assert_eq!(st, 400, "{b}");
    let (st, b) = purge(&t, start + Duration::days(100), false).await;
    assert_eq!(st, 422, "{b}");
    assert!(b["message"].as_str().unwrap().contains("min_days"), "{b}");
    // Only an admin purges.
    let (st, _) = t
        .call("POST", "/api/v1/purge", Some(&auditor), Some(json!({"before": cut})))
        .await;
    assert_eq!(st, 403);

    // A dry run counts and changes nothing.
    let (st, dry) = purge(&t, cut, true).await;
    assert_eq!(st, 200, "{dry}");
    assert_eq!(
        (
            &dry["sessions"],
            &dry["windows"],
            &dry["reports"],
            &dry["sign_in_records"]
        ),
        (&json!(1), &json!(1), &json!(1), &json!(1)),
        "{dry}"
    );
    let old = events_before.len() as u64;
    assert_eq!(dry["audit_events"].as_u64(), Some(old), "{dry}");
    let s = t.app.store.session(&SessionId(session.clone())).await.unwrap();
    assert_ne!(s.technician_subject, ERASED);
    assert!(t.app.store.audit_anchor().await.unwrap().is_none());
    let all = t.app.store.list_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(all[0].seq, 1);
    assert!(all.iter().all(|e| e.action != "data.purged"));

    // The purge.
    let (st, done) = purge(&t, cut, false).await;
    assert_eq!(st, 200, "{done}");
    assert_eq!(
        json!({"sessions": done["sessions"], "windows": done["windows"], "reports": done["reports"], "audit_events": done["audit_events"]}),
        json!({"sessions": dry["sessions"], "windows": dry["windows"], "reports": dry["reports"], "audit_events": dry["audit_events"]})
    );
    // Read back: personal fields erased, bytes and ids kept.
    let s = t.app.store.session(&SessionId(session.clone())).await.unwrap();
    assert_eq!(
        (s.technician_subject.as_str(), s.source_ip, s.source_port),
        (ERASED, ERASED_IP, 0)
    );
    assert_eq!((s.bytes_from_vendor, s.bytes_to_vendor), (4, 4));
    let w = t.app.store.window(&WindowId(window.clone())).await.unwrap();
    assert_eq!(w.reason, ERASED);
    let p = t.app.store.window(&WindowId(pending.clone())).await.unwrap();
    assert_eq!(
        (p.state, p.reason.as_str()),
        (WindowState::Requested, "pending firmware update")
    );
    let r = t.app.store.report(&WindowId(window.clone())).await.unwrap();
    assert_eq!(
        (r.summary.as_str(), r.actions.as_str(), r.follow_up.as_deref()),
        (ERASED, ERASED, Some(ERASED))
    );
    assert_eq!(
        t.app
            .store
            .sign_in_failures(&key, start - Duration::days(1))
            .await
            .unwrap()
            .0,
        0
    );
    // The old events are gone, a whole prefix; the anchor is the last of them.
    let kept = t.app.store.list_audit(&AuditFilter::default()).await.unwrap();
    let anchor = t.app.store.audit_anchor().await.unwrap().unwrap();
    assert_eq!(anchor.seq, events_before.last().unwrap().seq);
    assert_eq!(anchor.hash, events_before.last().unwrap().hash);
    assert_eq!(kept[0].seq, anchor.seq + 1);
    assert_eq!(kept[0].prev_hash, anchor.hash);
    assert!(
        kept.iter().all(|e| e.at >= cut),
        "an event older than the cut-off is left"
    );
    assert_eq!(done["audit_anchor"]["seq"].as_i64(), Some(anchor.seq));
    // …and the purge is on the trail, with its counts and cut-off.
    let purged: Vec<_> = kept.iter().filter(|e| e.action == "data.purged").collect();
    assert_eq!(purged.len(), 1);
    let d: Value = serde_json::from_str(&purged[0].details).unwrap();
    assert_eq!(d["sessions"], 1);
    assert_eq!(d["audit_events"].as_u64(), Some(old));
    assert_eq!(d["audit_anchor"]["hash"], anchor.hash.as_str());
    assert_eq!(
        d["before"].as_str().map(|b| b.parse::<DateTime<Utc>>().unwrap()),
        Some(cut)
    );
    assert!(purged[0].actor != "gateway" && !purged[0].actor.is_empty());
    let v = verify(&t, &auditor).await;
    assert_eq!(
        (v["valid"].as_bool(), v["anchor_seq"].as_i64()),
        (Some(true), Some(anchor.seq)),
        "{v}"
    );

    // The chain goes on: the gateway (its journal) and the API append after it.
    let mut denied = connect_from("127.0.0.3", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    let _ = read_all(&mut denied).await;
    let (st, _) = t
        .call(
            "POST",
            "/api/v1/vendors",
            Some(&t.admin),
            Some(json!({"name": "After", "networks": ["192.0.2.1"]})),
        )
        .await;
    assert_eq!(st, 201);
    // A second purge with the same cut-off finds nothing more, and still verifies.
    let (st, again) = purge(&t, cut, false).await;
    assert_eq!(st, 200, "{again}");
    assert_eq!(
        (again["sessions"].as_u64(), again["audit_events"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(again["audit_anchor"]["seq"].as_i64(), Some(anchor.seq));
    assert_eq!(verify(&t, &auditor).await["valid"], true);
    // The purged day's timeline keeps only what the records still say.
    let (st, tl) = t.call("GET", &day, Some(&auditor), None).await;
    assert_eq!(st, 200, "{tl}");
    assert_eq!(events(&tl), vec![("window.ended".to_owned(), window.clone())]);

    // The CLI refuses a too-recent cut-off with the rule (its clock is the real one).
    let out = cli(&t, &["purge", "--before", &Utc::now().format("%Y-%m-%d").to_string()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("min_days"), "{out:?}");
    t.stop().await;
}
on_both_backends!(
    purge_erases_and_keeps_the_chain,
    super::purge_erases_old_personal_data_and_keeps_the_chain
);

/// Deleting a prefix of the trail by hand, with an anchor row no purge
/// recorded, does not verify.
async fn a_hand_made_anchor_does_not_verify(db: TestDb) {
    let t = TestApp::spawn(db).await;
    for i in 0..3 {
        let (st, _) = t
            .call(
                "POST",
                "/api/v1/vendors",
                Some(&t.admin),
                Some(json!({"name": format!("V{i}"), "networks": ["192.0.2.1"]})),
            )
            .await;
        assert_eq!(st, 201);
    }
    let auditor = t.token("auditor", "audit", None).await;
    let events = t.app.store.list_audit(&AuditFilter::default()).await.unwrap();
    let (seq, hash, at) = (events[1].seq, events[1].hash.clone(), events[1].at);
    let statements = [
        format!("DELETE FROM audit_events WHERE seq <= {seq}"),
        format!(
            "INSERT INTO audit_anchor (id, seq, hash, purged_at, before) VALUES (1, {seq}, '{hash}', {}, {})",
            sql_time(&t, at),
            sql_time(&t, at)
        ),
    ];
    raw(&t, &statements).await;
    let v = verify(&t, &auditor).await;
    assert_eq!(
        (v["valid"].as_bool(), v["first_invalid_seq"].as_i64()),
        (Some(false), Some(seq + 1)),
        "{v}"
    );
    t.stop().await;
}
on_both_backends!(hand_made_anchor_is_refused, super::a_hand_made_anchor_does_not_verify);

fn sql_time(t: &TestApp, at: DateTime<Utc>) -> String {
    match t.db.kind {
        Backend::Sqlite => at.timestamp_micros().to_string(),
        Backend::Postgres => format!("'{}'", at.to_rfc3339()),
    }
}

async fn raw(t: &TestApp, statements: &[String]) {
    match t.db.kind {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&t.db.url).await.unwrap();
            for s in statements {
                sqlx::query(s).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&t.db.url).await.unwrap();
            for s in statements {
                sqlx::query(s).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
    }
}

fn events(timeline: &Value) -> Vec<(String, String)> {
    timeline["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_owned(),
                e["object"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Whether `wanted` appears in `got` in this order (other events between).
fn in_order(got: &[(String, String)], wanted: &[(&str, &str)]) -> bool {
    let mut it = got.iter();
    wanted
        .iter()
        .all(|(event, object)| it.any(|(e, o)| e == event && o == object))
}

/// A scripted incident: the timeline of the vendor and of the device lists
/// the window's request and approval, the session with its bytes, the denial
/// and the report, in time order, and nothing of another vendor.
async fn timeline_of_a_vendor_and_a_device(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let since = Utc::now() - Duration::minutes(5);
    let (sc, vendor, security, window, session) = worked_window(&t).await;
    // Another vendor, its device and window.
    let other_device = echo_device().await;
    let other = api_scene(&t, "Other", "127.0.0.4", "ct-2", other_device).await;
    let other_desk = t.token("vendor", "other-desk", Some(&other.vendor_id)).await;
    let now = Utc::now();
    let other_window = t
        .approved_window(
            &other_desk,
            &security,
            &other.device_id,
            now + Duration::hours(1),
            now + Duration::hours(2),
        )
        .await;
    let auditor = t.token("auditor", "anssi", None).await;
    let until = Utc::now() + Duration::minutes(1);
    let q = |subject: &str| {
        format!(
            "/api/v1/timeline?{subject}&since={}&until={}",
            since
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                .replace('+', "%2B"),
            until
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                .replace('+', "%2B")
        )
    };
    let denial = eventually(|| async {
        let list = t
            .app
            .store
            .list_audit(&AuditFilter {
                action: Some("admission.denied".into()),
                ..AuditFilter::default()
            })
            .await
            .ok()?;
        Some(list.first()?.object.clone())
    })
    .await;
    let script = [
        ("window.requested", window.as_str()),
        ("window.approved", window.as_str()),
        ("session.started", session.as_str()),
        ("session.ended", session.as_str()),
        ("admission.denied", denial.as_str()),
        ("report.filed", window.as_str()),
    ];
    for subject in [
        format!("vendor_id={}", sc.vendor_id),
        format!("device_id={}", sc.device_id),
    ] {
        let (st, tl) = t.call("GET", &q(&subject), Some(&auditor), None).await;
        assert_eq!(st, 200, "{tl}");
        let got = events(&tl);
        assert!(in_order(&got, &script), "{subject}: {got:?}");
        let text = tl.to_string();
        assert!(
            !text.contains(&other_window) && !text.contains(&other.vendor_id) && !text.contains(&other.device_id),
            "{subject} shows another vendor's events: {got:?}"
        );
        // In time order; the session's entries carry its stored bytes.
        let times: Vec<DateTime<Utc>> = tl["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["at"].as_str().unwrap().parse().unwrap())
            .collect();
        assert!(times.windows(2).all(|p| p[0] <= p[1]), "{subject}: not in time order");
        let ended = tl["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["event"] == "session.ended")
            .unwrap();
        assert_eq!(
            (
                &ended["session"]["bytes_from_vendor"],
                &ended["session"]["bytes_to_vendor"],
                &ended["window_id"]
            ),
            (&json!(4), &json!(4), &json!(window)),
            "{ended}"
        );
    }
    // The other vendor's timeline has its window, and none of the first's.
    let (st, tl) = t
        .call(
            "GET",
            &q(&format!("vendor_id={}", other.vendor_id)),
            Some(&security),
            None,
        )
        .await;
    assert_eq!(st, 200, "{tl}");
    let got = events(&tl);
    assert!(
        in_order(
            &got,
            &[
                ("window.requested", other_window.as_str()),
                ("window.approved", other_window.as_str())
            ]
        ),
        "{got:?}"
    );
    assert!(!tl.to_string().contains(&window), "{got:?}");

    // Bad input, roles, the bound.
    for (path, status) in [
        ("/api/v1/timeline?vendor_id=nope".to_owned(), 404),
        ("/api/v1/timeline?device_id=nope".to_owned(), 404),
        ("/api/v1/timeline".to_owned(), 400),
        (
            format!("/api/v1/timeline?vendor_id={}&device_id={}", sc.vendor_id, sc.device_id),
            400,
        ),
        (
            format!("/api/v1/timeline?vendor_id={}&since=yesterday", sc.vendor_id),
            400,
        ),
        (
            format!(
                "/api/v1/timeline?vendor_id={}&since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
                sc.vendor_id
            ),
            400,
        ),
        (q(&format!("vendor_id={}&limit=2", sc.vendor_id)), 422),
    ] {
        let (st, b) = t.call("GET", &path, Some(&auditor), None).await;
        assert_eq!(st, status, "{path}: {b}");
    }
    let (st, b) = t
        .call(
            "GET",
            &q(&format!("limit=2&vendor_id={}", sc.vendor_id)),
            Some(&auditor),
            None,
        )
        .await;
    assert!(b["message"].as_str().unwrap().contains("narrow the period"), "{st} {b}");
    let (st, _) = t
        .call("GET", &q(&format!("vendor_id={}", sc.vendor_id)), Some(&vendor), None)
        .await;
    assert_eq!(st, 403);
    let (st, _) = t
        .call("GET", &q(&format!("vendor_id={}", sc.vendor_id)), Some(&t.admin), None)
        .await;
    assert_eq!(st, 200);

    // The command line: by name, one line per event, the same order.
    let out = cli(&t, &["timeline", "--vendor", "Acme", "--since", &since.to_rfc3339()]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let pos = |needle: &str| text.find(needle).unwrap_or_else(|| panic!("{needle} missing: {text}"));
    assert!(
        pos("window.approved") < pos("session.ended") && pos("session.ended") < pos("report.filed"),
        "{text}"
    );
    assert!(text.contains("4 bytes from vendor"), "{text}");
    let out = cli(&t, &["timeline", "--vendor", "nope"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("vendor not found"),
        "{out:?}"
    );
    let out = cli(&t, &["timeline", "--device", "mri-1", "--since", "2026-13-01"]);
    assert!(!out.status.success());
    t.stop().await;
}
on_both_backends!(
    timeline_lists_an_incident_in_order,
    super::timeline_of_a_vendor_and_a_device
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_purge_and_timeline() {
    let t = TestApp::spawn(TestDb::sqlite().await).await;
    let (st, doc) = t.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(st, 200);
    for (path, method) in [("/api/v1/purge", "post"), ("/api/v1/timeline", "get")] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
    assert!(doc["paths"]["/api/v1/timeline"]["get"]["responses"]["422"].is_object());
    t.stop().await;
}
