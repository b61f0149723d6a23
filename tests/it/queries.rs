//! The read use cases the console calls (src/ops/queries), driven directly
//! through the `Ops` of a running node: role checks, vendor visibility, and
//! the security views (denials, timeline, live tunnels, pending decisions).

use std::sync::Arc;

use chrono::{Duration, Utc};
use portier::audit::AuditEvent;
use portier::clock::{SharedClock, SystemClock};
use portier::domain::{DeviceId, SessionId, VendorId, WindowId};
use portier::events::Event;
use portier::ops::{Actor, LifecycleState, Ops, OpsError, SessionsQuery, TimelineQuery, WindowsQuery};
use portier::store::{JournalEntry, Session};
use serde_json::{json, Value};

use crate::common::*;
use crate::on_both_backends;

/// The use cases over the node's store and registry, as the console would hold them.
fn ops(t: &TestApp) -> Ops {
    let clock: SharedClock = Arc::new(SystemClock);
    Ops {
        cache: Arc::new(portier::admission::AdmissionCache::new(
            t.app.store.clone(),
            t.settings().policy_settings(),
            clock.clone(),
        )),
        store: t.app.store.clone(),
        registry: t.app.registry.clone(),
        clock,
        rules: t.settings().api_limits(),
    }
}

/// The actor behind an API token.
async fn actor(t: &TestApp, token: &str) -> Actor {
    let user = t
        .app
        .store
        .user_by_token_hash(&portier::token::hash(token), Utc::now())
        .await
        .unwrap()
        .unwrap();
    Actor::from(user)
}

async fn post(t: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let (st, b) = t.call("POST", path, Some(token), Some(body)).await;
    assert!(st == 200 || st == 201, "{path}: {st} {b}");
    b
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// A session record as the gateway writes it, open or ended.
async fn session(t: &TestApp, w: &str, v: &str, tech: &str, d: &str, node: &str, ended: bool) -> SessionId {
    let sid = SessionId::generate();
    let now = portier::audit::truncate_micros(Utc::now());
    let s = Session {
        id: sid.clone(),
        window_id: w.into(),
        vendor_id: v.into(),
        technician_id: tech.into(),
        technician_subject: "CN=alice".into(),
        device_id: d.into(),
        source_ip: "127.0.0.2".parse().unwrap(),
        source_port: 40000,
        node: node.into(),
        started_at: now,
        ended_at: None,
        bytes_from_vendor: 0,
        bytes_to_vendor: 0,
        end_reason: None,
    };
    let started = AuditEvent::new(
        now,
        "gateway",
        Event::SessionStarted,
        sid.as_str(),
        "success",
        json!({}),
    );
    t.app
        .store
        .write_journal(&[JournalEntry::SessionStarted(s, started)])
        .await
        .unwrap();
    if ended {
        let end = portier::store::SessionEnd {
            id: sid.clone(),
            ended_at: now + Duration::milliseconds(5),
            bytes_from_vendor: 10,
            bytes_to_vendor: 20,
            end_reason: portier::domain::EndReason::ClientClosed,
        };
        let ev = AuditEvent::new(now, "gateway", Event::SessionEnded, sid.as_str(), "success", json!({}));
        t.app
            .store
            .write_journal(&[JournalEntry::SessionEnded(end, ev)])
            .await
            .unwrap();
    }
    sid
}

async fn denial(t: &TestApp, reason: &str, ip: &str) {
    let ev = AuditEvent::new(
        Utc::now(),
        "gateway",
        Event::AdmissionDenied,
        SessionId::generate().as_str(),
        "denied",
        json!({"reason": reason, "source_ip": ip, "source_port": 5555, "sni": "mri-a", "vendor_id": null,
               "technician_id": null, "device_id": null, "suppressed_since_last": 0, "node": "n1"}),
    );
    t.app.store.write_journal(&[JournalEntry::Audit(ev)]).await.unwrap();
}

fn forbidden<T: std::fmt::Debug>(r: Result<T, OpsError>) {
    assert!(matches!(r, Err(OpsError::Forbidden(_))), "{r:?}");
}

fn not_found<T: std::fmt::Debug>(r: Result<T, OpsError>) {
    assert!(matches!(r, Err(OpsError::NotFound(_))), "{r:?}");
}

async fn console_reads(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let ops = ops(&t);
    let admin_token = t.admin.clone();

    // Vendors A and B, a device of each, a technician of A.
    let va = id(&post(
        &t,
        &admin_token,
        "/api/v1/vendors",
        json!({"name": "Vendor A", "networks": ["127.0.0.2"]}),
    )
    .await);
    let vb = id(&post(
        &t,
        &admin_token,
        "/api/v1/vendors",
        json!({"name": "Vendor B", "networks": ["127.0.0.4"]}),
    )
    .await);
    let da = id(&post(
        &t,
        &admin_token,
        "/api/v1/devices",
        json!({"name": "mri-a", "address": "127.0.0.1:9", "protocol": "ssh", "vendor_ids": [va]}),
    )
    .await);
    let db_ = id(&post(
        &t,
        &admin_token,
        "/api/v1/devices",
        json!({"name": "mri-b", "address": "127.0.0.1:9", "protocol": "ssh", "vendor_ids": [vb]}),
    )
    .await);
    let ca = portier::pki::CertAuthority::load(
        &std::fs::read_to_string(t.dir.path().join("certs/vendor-ca.pem")).unwrap(),
        &std::fs::read_to_string(t.dir.path().join("certs/vendor-ca.key")).unwrap(),
    )
    .unwrap();
    let pinned = ca.issue_client("alice", Some("Vendor A"), 30).unwrap();
    let tech = id(&post(
        &t,
        &admin_token,
        &format!("/api/v1/vendors/{va}/technicians"),
        json!({"name": "alice", "certificate_pem": pinned.cert_pem}),
    )
    .await);

    let vendor_a_token = t.token("vendor", "desk-a", Some(&va)).await;
    let vendor_b_token = t.token("vendor", "desk-b", Some(&vb)).await;
    let security_token = t.token("security", "soc", None).await;
    let auditor_token = t.token("auditor", "audit", None).await;
    let (admin, security, auditor) = (
        actor(&t, &admin_token).await,
        actor(&t, &security_token).await,
        actor(&t, &auditor_token).await,
    );
    let (vendor_a, vendor_b) = (actor(&t, &vendor_a_token).await, actor(&t, &vendor_b_token).await);

    // A requested window of A; an approved window of B with a pending extension;
    // an emergency grant of A (active, unreviewed).
    let start = Utc::now() + Duration::hours(1);
    let wa = id(&post(
        &t,
        &vendor_a_token,
        "/api/v1/windows",
        json!({"device_ids": [da], "starts_at": start, "ends_at": start + Duration::hours(1), "reason": "firmware"}),
    )
    .await);
    let wb = id(&post(&t, &admin_token, "/api/v1/windows", json!({"vendor_id": vb, "device_ids": [db_], "starts_at": start, "ends_at": start + Duration::hours(1), "reason": "check"})).await);
    post(&t, &security_token, &format!("/api/v1/windows/{wb}/approve"), json!({})).await;
    post(
        &t,
        &vendor_b_token,
        &format!("/api/v1/windows/{wb}/extend"),
        json!({"ends_at": start + Duration::hours(2), "reason": "more"}),
    )
    .await;
    let we = post(
        &t,
        &security_token,
        "/api/v1/emergency",
        json!({"vendor_id": va, "device_ids": [da], "duration_minutes": 60, "justification": "down"}),
    )
    .await;
    let we_end = we["ends_at"].clone();
    let we = id(&we);

    // Sessions of the grant: one live on this node, one ended; one open on a dead node.
    let node = t.settings().gateway.node.clone();
    let live = session(&t, &we, &va, &tech, &da, &node, false).await;
    let ended = session(&t, &we, &va, &tech, &da, &node, true).await;
    let orphan = session(&t, &we, &va, &tech, &da, "gone", false).await;

    // --- pending decisions and unreviewed grants: security and admin only ---
    for who in [&security, &admin] {
        let p = ops.pending_decisions(who).await.unwrap();
        assert_eq!(
            p.requests.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(),
            [wa.as_str()]
        );
        assert_eq!(
            p.extensions.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(),
            [wb.as_str()]
        );
        assert!(p.extensions[0].extension_ends_at.is_some());
        let e = ops.unreviewed_emergencies(who).await.unwrap();
        assert_eq!(e.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(), [we.as_str()]);
        assert_eq!(e[0].state, LifecycleState::Active);
    }
    for who in [&auditor, &vendor_a] {
        forbidden(ops.pending_decisions(who).await);
        forbidden(ops.unreviewed_emergencies(who).await);
    }

    // --- live tunnels: open sessions on a live node, with names and the time left ---
    let tunnels = ops.live_tunnels(&security).await.unwrap();
    assert_eq!(tunnels.len(), 1, "{tunnels:?}");
    let l = &tunnels[0];
    assert_eq!(l.session_id, live);
    assert_eq!(
        (
            l.vendor_name.as_str(),
            l.device_name.as_str(),
            l.technician_name.as_str()
        ),
        ("Vendor A", "mri-a", "alice")
    );
    assert_eq!(l.source_ip.to_string(), "127.0.0.2");
    assert_eq!(serde_json::to_value(l.window_ends_at).unwrap(), we_end);
    assert!(
        l.seconds_left > 50 * 60 && l.seconds_left <= 60 * 60,
        "{}",
        l.seconds_left
    );
    assert!(!l.here, "written by the test, not carried by the registry");
    assert_eq!(ops.live_tunnels(&admin).await.unwrap().len(), 1);
    forbidden(ops.live_tunnels(&auditor).await);
    forbidden(ops.live_tunnels(&vendor_a).await);

    // --- recent denials: newest first, bounded, with their reasons ---
    denial(&t, "no_active_window", "192.0.2.1").await;
    denial(&t, "source_ip_not_declared", "192.0.2.2").await;
    denial(&t, "unknown_device", "192.0.2.3").await;
    for who in [&security, &admin, &auditor] {
        let d = ops.recent_denials(who, 2).await.unwrap();
        assert_eq!(
            d.iter()
                .map(|d| (d.reason.as_str(), d.source_ip.as_deref()))
                .collect::<Vec<_>>(),
            [
                ("unknown_device", Some("192.0.2.3")),
                ("source_ip_not_declared", Some("192.0.2.2"))
            ]
        );
        assert!(d[0].seq > d[1].seq);
        assert_eq!(d[0].sni.as_deref(), Some("mri-a"));
    }
    assert_eq!(ops.recent_denials(&auditor, 0).await.unwrap().len(), 1, "at least one");
    forbidden(ops.recent_denials(&vendor_a, 10).await);

    // --- timeline: A's windows overlapping the range, by start, with their sessions ---
    let q = TimelineQuery {
        vendor_id: Some(VendorId(va.clone())),
        device_id: None,
        since: Utc::now() - Duration::hours(1),
        until: Utc::now() + Duration::hours(3),
    };
    for who in [&auditor, &security, &admin] {
        let tl = ops.timeline(who, &q).await.unwrap();
        assert_eq!(
            tl.iter().map(|e| e.window.id.as_str()).collect::<Vec<_>>(),
            [we.as_str(), wa.as_str()]
        );
        let s: Vec<_> = tl[0].sessions.iter().map(|s| (s.session.id.clone(), s.live)).collect();
        assert_eq!(
            s,
            [(live.clone(), true), (ended.clone(), false), (orphan.clone(), false)]
        );
        assert!(tl[1].sessions.is_empty());
    }
    // Before the grant: nothing of A.
    let before = TimelineQuery {
        since: Utc::now() - Duration::hours(3),
        until: Utc::now() - Duration::hours(2),
        ..q.clone()
    };
    assert!(ops.timeline(&auditor, &before).await.unwrap().is_empty());
    // By device: B's device, B's window only.
    let by_device = TimelineQuery {
        vendor_id: None,
        device_id: Some(DeviceId(db_.clone())),
        ..q.clone()
    };
    let tl = ops.timeline(&auditor, &by_device).await.unwrap();
    assert_eq!(
        tl.iter().map(|e| e.window.id.as_str()).collect::<Vec<_>>(),
        [wb.as_str()]
    );
    let backwards = TimelineQuery {
        since: q.until,
        until: q.since,
        ..q.clone()
    };
    assert!(matches!(
        ops.timeline(&auditor, &backwards).await,
        Err(OpsError::Invalid(_))
    ));
    forbidden(ops.timeline(&vendor_a, &q).await);

    // --- the API's reads, as the console calls them: vendors see their own only ---
    let mine = ops
        .windows(
            &vendor_b,
            &WindowsQuery {
                vendor_id: Some(VendorId(va.clone())),
                ..WindowsQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(mine.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(), [wb.as_str()]);
    let active = ops
        .windows(
            &admin,
            &WindowsQuery {
                state: Some(LifecycleState::Active),
                ..WindowsQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(active.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(), [we.as_str()]);
    not_found(ops.window(&vendor_b, &WindowId(wa.clone())).await);
    assert_eq!(
        ops.window(&vendor_a, &WindowId(wa.clone())).await.unwrap().state,
        LifecycleState::Requested
    );
    assert!(ops
        .sessions(&vendor_b, &SessionsQuery::default())
        .await
        .unwrap()
        .is_empty());
    let all = ops
        .sessions(
            &auditor,
            &SessionsQuery {
                active: Some(true),
                ..SessionsQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|s| (s.session.id.clone(), s.live)).collect::<Vec<_>>(),
        [(live.clone(), true)]
    );
    not_found(ops.session(&vendor_b, &live).await);
    forbidden(ops.sessions(&admin, &SessionsQuery::default()).await);
    not_found(ops.vendor(&vendor_b, &VendorId(va.clone())).await);
    not_found(ops.device(&vendor_b, &DeviceId(da.clone())).await);
    assert_eq!(ops.vendors(&vendor_a).await.unwrap().len(), 1);
    assert_eq!(ops.devices(&vendor_a).await.unwrap().len(), 1);
    assert_eq!(ops.devices(&auditor).await.unwrap().len(), 2);
    forbidden(ops.users(&security).await);
    assert!(ops.users(&admin).await.unwrap().len() >= 5);
    forbidden(ops.nodes(&vendor_a).await);
    assert!(ops.nodes(&auditor).await.unwrap().iter().any(|n| n.name == node));
    t.stop().await;
}
on_both_backends!(console_reads_check_roles_and_visibility, super::console_reads);
