//! Secure disposal (`portier purge`, `POST /api/v1/purge`) and the incident
//! timeline (`portier timeline`, `GET /api/v1/timeline`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use portier::audit::{AuditRecord, TrailReader};
use portier::domain::{SessionId, WindowId, WindowState};
use portier::store::{AuditAnchor, Store, StoreError};
use portier::store::{AuditFilter, ERASED, ERASED_IP};
use serde_json::{json, Value};

use crate::common::*;
use crate::on_both_backends;

/// A worked period at `start` (see `worked_period`), then one denial (an
/// undeclared source) and the window's report. Returns (scene, vendor token,
/// security token, window id, session id).
async fn worked_window(t: &TestApp, start: DateTime<Utc>) -> (ApiScene, String, String, String, String) {
    let p = worked_period(t, "Acme", start).await;
    let mut denied = connect_from("127.0.0.3", t.app.gateway_addr, "mri-1", p.scene.tls.clone())
        .await
        .unwrap();
    assert!(read_all(&mut denied)
        .await
        .unwrap()
        .starts_with("PORTIER DENIED source_ip_not_declared "));
    let (st, r) = t
        .call(
            "POST",
            &format!("/api/v1/windows/{}/report", p.window),
            Some(&p.vendor),
            Some(json!({"summary": "replaced the coil of Mr Martin's scanner", "actions": "coil", "outcome": "success", "follow_up": "call Dr Durand"})),
        )
        .await;
    assert_eq!(st, 201, "{r}");
    (p.scene, p.vendor, p.security, p.window, p.session)
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
    let (t, clock) = clocked_app(db, start).await;
    let (sc, vendor, _security, window, session) = worked_window(&t, start).await;
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
    // The prefix was verified before it went.
    assert_eq!(
        (&d["prefix_verified"], &done["prefix_verified"]),
        (&json!(true), &json!(true))
    );
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
    raw_sql(&t, &statements).await;
    let v = verify(&t, &auditor).await;
    assert_eq!(
        (v["valid"].as_bool(), v["first_invalid_seq"].as_i64()),
        (Some(false), Some(seq + 1)),
        "{v}"
    );
    t.stop().await;
}
on_both_backends!(hand_made_anchor_is_refused, super::a_hand_made_anchor_does_not_verify);

async fn vendors(t: &TestApp, names: &[&str]) {
    for name in names {
        let (st, b) = t
            .call(
                "POST",
                "/api/v1/vendors",
                Some(&t.admin),
                Some(json!({"name": name, "networks": ["192.0.2.1"]})),
            )
            .await;
        assert_eq!(st, 201, "{b}");
    }
}

/// The trail is `before` untouched, followed only by the refusals'
/// `data.purge_refused` events (the tampering stays to be seen, and the
/// refusal is evidence too).
async fn assert_kept_and_refusals_recorded(t: &TestApp, before: &[portier::audit::AuditRecord]) {
    let now = t.app.store.list_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(&now[..before.len()], before);
    let added: Vec<&str> = now[before.len()..].iter().map(|r| r.action.as_str()).collect();
    assert!(!added.is_empty(), "the refusal is not recorded");
    assert!(added.iter().all(|a| *a == "data.purge_refused"), "{added:?}");
    assert!(now[before.len()..].iter().all(|r| r.outcome == "denied"));
}

/// A purge over a prefix that does not verify (an event modified in the
/// database) is refused, through the API (409, dry run too) and the CLI, with
/// the first invalid seq, and leaves everything in place: deleting that prefix
/// would erase the evidence of tampering.
async fn a_tampered_prefix_is_not_purged(db: TestDb) {
    let start = Utc::now();
    let (t, clock) = clocked_app(db, start).await;
    vendors(&t, &["V0", "V1", "V2", "V3"]).await;
    clock.set(start + Duration::days(400));
    vendors(&t, &["Recent"]).await;
    let cut = start + Duration::days(1);
    raw_sql(&t, &["UPDATE audit_events SET object = 'forged' WHERE seq = 4"]).await;
    let trail = t.app.store.list_audit(&AuditFilter::default()).await.unwrap();
    for dry_run in [true, false] {
        let (st, b) = purge(&t, cut, dry_run).await;
        assert_eq!(st, 409, "dry run {dry_run}: {b}");
        let message = b["message"].as_str().unwrap();
        assert!(
            message.contains("sequence number 4") && message.contains("nothing was purged"),
            "{b}"
        );
    }
    // Nothing went, nothing was recorded: the break is still there to see.
    assert_kept_and_refusals_recorded(&t, &trail).await;
    assert!(t.app.store.audit_anchor().await.unwrap().is_none());
    let auditor = t.token("auditor", "dpo", None).await;
    let v = verify(&t, &auditor).await;
    assert_eq!(v["first_invalid_seq"].as_i64(), Some(4), "{v}");
    let db = match t.db.kind {
        Backend::Sqlite => TestDb::sqlite().await,
        Backend::Postgres => TestDb::postgres().await.expect("PORTIER_TEST_PG_URL is set"),
    };
    t.stop().await;

    // The CLI (its clock is the real one: events 400 days old by it) says the
    // same and changes nothing. The test's own first records are dated now, so
    // the prefix here is the node's start alone: that is the one modified.
    let start = Utc::now() - Duration::days(400);
    let (t, clock) = clocked_app(db, start).await;
    clock.set(Utc::now());
    raw_sql(&t, &["UPDATE audit_events SET object = 'forged' WHERE seq = 1"]).await;
    let trail = t.app.store.list_audit(&AuditFilter::default()).await.unwrap();
    let out = cli(&t, &["purge", "--before", &(start + Duration::days(1)).to_rfc3339()]);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sequence number 1"),
        "{out:?}"
    );
    assert_kept_and_refusals_recorded(&t, &trail).await;
    assert!(t.app.store.audit_anchor().await.unwrap().is_none());
    t.stop().await;
}
on_both_backends!(tampered_prefix_is_not_purged, super::a_tampered_prefix_is_not_purged);

/// The last event of the prefix rewritten with a hash recomputed over its new
/// content: the prefix alone verifies, but the first kept event no longer
/// chains to it. The purge is refused, naming the first kept event, rather
/// than erase the forgery and anchor the trail on its hash.
async fn a_forged_last_event_is_not_purged(db: TestDb) {
    let start = Utc::now();
    let (t, clock) = clocked_app(db, start).await;
    vendors(&t, &["V0", "V1"]).await;
    clock.set(start + Duration::days(400));
    vendors(&t, &["Recent"]).await;
    let cut = start + Duration::days(1);
    let trail = t.app.store.list_audit(&AuditFilter::default()).await.unwrap();
    let last = trail.iter().rfind(|r| r.at < cut).unwrap().clone();
    let forged_hash = portier::audit::chain_hash(
        &last.prev_hash,
        last.seq,
        last.at,
        &last.actor,
        &last.action,
        "forged",
        &last.outcome,
        &last.details,
    );
    raw_sql(
        &t,
        &[&format!(
            "UPDATE audit_events SET object = 'forged', hash = '{forged_hash}' WHERE seq = {}",
            last.seq
        )],
    )
    .await;
    let trail = t.app.store.list_audit(&AuditFilter::default()).await.unwrap();
    let (st, b) = purge(&t, cut, false).await;
    assert_eq!(st, 409, "{b}");
    let kept = last.seq + 1;
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains(&format!("sequence number {kept}")),
        "{b}"
    );
    assert_kept_and_refusals_recorded(&t, &trail).await;
    assert!(t.app.store.audit_anchor().await.unwrap().is_none());
    t.stop().await;
}
on_both_backends!(
    forged_last_event_is_not_purged,
    super::a_forged_last_event_is_not_purged
);

/// The store's trail, with a purge that commits right after the first page
/// is read (between the anchor read and the next page).
struct PurgeAfterFirstPage {
    store: Arc<dyn Store>,
    purge: tokio::sync::Mutex<Option<Pin<Box<dyn Future<Output = ()> + Send>>>>,
    anchor_reads: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl TrailReader for PurgeAfterFirstPage {
    async fn trail_anchor(&self) -> Result<Option<AuditAnchor>, StoreError> {
        self.anchor_reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.store.audit_anchor().await
    }
    async fn trail_page(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        let page = self
            .store
            .list_audit(&AuditFilter {
                after_seq: Some(after_seq),
                limit: Some(limit),
                ..AuditFilter::default()
            })
            .await?;
        if let Some(purge) = self.purge.lock().await.take() {
            purge.await;
        }
        Ok(page)
    }
}

/// A purge committing while the trail is verified (pages of 3 events) is no
/// break: the verification starts over from the new anchor and the trail
/// verifies.
async fn a_purge_during_verification(db: TestDb) {
    let start = Utc::now();
    let (t, clock) = clocked_app(db, start).await;
    vendors(&t, &["V0", "V1", "V2", "V3", "V4", "V5"]).await;
    clock.set(start + Duration::days(400));
    vendors(&t, &["Kept0", "Kept1"]).await;
    let (http, url, admin) = (t.http.clone(), t.url("/api/v1/purge"), t.admin.clone());
    let cut = start + Duration::days(1);
    let purge: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
        let r = http
            .post(url)
            .bearer_auth(admin)
            .json(&json!({"before": cut}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    });
    let reader = PurgeAfterFirstPage {
        store: t.app.store.clone(),
        purge: tokio::sync::Mutex::new(Some(purge)),
        anchor_reads: std::sync::atomic::AtomicUsize::new(0),
    };
    let v = portier::audit::verify_trail(&reader, 3, |_| {}).await.unwrap();
    let anchor = t.app.store.audit_anchor().await.unwrap().expect("the purge ran");
    // The page after the first (after seq 3) was among the deleted events.
    assert!(anchor.seq > 4, "{anchor:?}");
    assert!(v.valid, "{v:?}");
    assert_eq!(v.anchor_seq, Some(anchor.seq));
    // The first pass saw the gap, read the anchor again, and started over.
    assert_eq!(reader.anchor_reads.load(std::sync::atomic::Ordering::SeqCst), 2);
    let kept = t.app.store.list_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(v.events, kept.len() as u64);
    t.stop().await;
}
on_both_backends!(
    purge_during_verification_is_no_break,
    super::a_purge_during_verification
);

/// The timeline covers a year at most (400 through the API, an error from
/// the CLI), and lists the events of the period: those of a window outside
/// it (reported after its end, requested ahead) included, the window's
/// approval and end (outside) not.
async fn timeline_period(db: TestDb) {
    let start = Utc::now();
    let (t, clock) = clocked_app(db, start).await;
    let p = worked_period(&t, "Acme", start).await;
    clock.set(start + Duration::hours(2));
    let (st, r) = t
        .call(
            "POST",
            &format!("/api/v1/windows/{}/report", p.window),
            Some(&p.vendor),
            Some(json!({"summary": "done", "actions": "coil", "outcome": "success"})),
        )
        .await;
    assert_eq!(st, 201, "{r}");
    let next = start + Duration::days(7);
    let (st, w) = t
        .call(
            "POST",
            "/api/v1/windows",
            Some(&p.vendor),
            Some(json!({"device_ids": [p.scene.device_id], "starts_at": next, "ends_at": next + Duration::hours(1), "reason": "next week"})),
        )
        .await;
    assert_eq!(st, 201, "{w}");
    let next_window = w["id"].as_str().unwrap().to_owned();
    let auditor = t.token("auditor", "anssi", None).await;
    let at = |d: DateTime<Utc>| d.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let app = &t;
    let timeline = |subject: String, since: DateTime<Utc>, until: DateTime<Utc>| {
        let path = format!("/api/v1/timeline?{subject}&since={}&until={}", at(since), at(until));
        let auditor = auditor.clone();
        async move { app.call("GET", &path, Some(&auditor), None).await }
    };
    for subject in [
        format!("vendor_id={}", p.scene.vendor_id),
        format!("device_id={}", p.scene.device_id),
    ] {
        let (st, tl) = timeline(
            subject.clone(),
            start + Duration::minutes(90),
            start + Duration::hours(3),
        )
        .await;
        assert_eq!(st, 200, "{tl}");
        assert_eq!(
            events(&tl),
            vec![
                ("report.filed".to_owned(), p.window.clone()),
                ("window.requested".to_owned(), next_window.clone())
            ],
            "{subject}"
        );
        // The window's own period: its end, no event of next week's window.
        let (st, tl) = timeline(
            subject.clone(),
            start + Duration::minutes(30),
            start + Duration::minutes(90),
        )
        .await;
        assert_eq!(st, 200, "{tl}");
        assert_eq!(
            events(&tl),
            vec![("window.ended".to_owned(), p.window.clone())],
            "{subject}"
        );
        // A year (366 days) is the most.
        let (st, tl) = timeline(subject.clone(), start - Duration::days(366), start).await;
        assert_eq!(st, 200, "{tl}");
        let (st, b) = timeline(
            subject.clone(),
            start - Duration::days(366) - Duration::seconds(1),
            start,
        )
        .await;
        assert_eq!(st, 400, "{b}");
        assert!(b["message"].as_str().unwrap().contains("longer than 366 days"), "{b}");
    }
    let out = cli(
        &t,
        &[
            "timeline",
            "--vendor",
            "Acme",
            "--since",
            &(Utc::now() - Duration::days(400)).to_rfc3339(),
        ],
    );
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("more than 366 days apart"),
        "{out:?}"
    );
    t.stop().await;
}
on_both_backends!(timeline_period_is_bounded, super::timeline_period);

fn sql_time(t: &TestApp, at: DateTime<Utc>) -> String {
    match t.db.kind {
        Backend::Sqlite => at.timestamp_micros().to_string(),
        Backend::Postgres => format!("'{}'", at.to_rfc3339()),
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
    let (sc, vendor, security, window, session) = worked_window(&t, Utc::now()).await;
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
    assert!(doc["paths"]["/api/v1/purge"]["post"]["responses"]["409"].is_object());
    t.stop().await;
}
