//! Store conformance: the same behaviour from SQLite and PostgreSQL.

use chrono::{Duration, Utc};
use portier::audit::{AuditEvent, GENESIS_HASH};
use portier::domain::{parse_network, EndReason, Role, SessionId, WindowState};
use portier::store::{
    AuditFilter, JournalEntry, LockdownState, NewDevice, NewUser, NewVendor, NewWindow, Session, SessionEnd,
    SessionFilter, StoreError, WindowFilter, WindowTransition,
};

use crate::common::*;
use crate::on_both_backends;

fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
    list.iter().map(|n| parse_network(n).unwrap()).collect()
}

async fn vendors_devices_technicians(db: TestDb) {
    let s = db.store.as_ref();
    let now = Utc::now();
    let generation = s.generation();
    let g0 = generation.get();
    let v = s
        .create_vendor(
            &NewVendor {
                name: "Acme".into(),
                networks: nets(&["203.0.113.7", "2001:db8::/32", "198.51.100.0/24"]),
                security_contact: None,
            },
            now,
            &|_| test_effects(),
        )
        .await
        .unwrap();
    assert!(generation.get() > g0, "creating a vendor changes admission");
    assert_eq!(s.vendor(&v.id).await.unwrap(), v);
    let mut shown: Vec<String> = v.networks.iter().map(ToString::to_string).collect();
    shown.sort();
    assert_eq!(shown, ["198.51.100.0/24", "2001:db8::/32", "203.0.113.7/32"]);
    let dup = s
        .create_vendor(
            &NewVendor {
                name: "Acme".into(),
                networks: vec![],
                security_contact: None,
            },
            now,
            &|_| test_effects(),
        )
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");

    let v = s
        .replace_vendor_networks(&v.id, &nets(&["10.0.0.0/8"]), &|_| test_effects())
        .await
        .unwrap();
    assert_eq!(v.networks, nets(&["10.0.0.0/8"]));
    let g1 = generation.get();
    assert!(
        !s.set_vendor_enabled(&v.id, false, &|_| test_effects())
            .await
            .unwrap()
            .enabled
    );
    assert!(generation.get() > g1);
    assert!(matches!(s.vendor(&"nope".into()).await, Err(StoreError::NotFound(_))));
    assert!(matches!(
        s.set_vendor_enabled(&"nope".into(), true, &|_| test_effects()).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.list_vendors().await.unwrap().len(), 1);

    let pki = Pki::generate();
    let (t, _) = technician(s, &pki, &v, "alice").await;
    assert_eq!(s.list_technicians(&v.id).await.unwrap(), vec![t.clone()]);
    let other = s
        .create_vendor(
            &NewVendor {
                name: "Other".into(),
                networks: vec![],
                security_contact: None,
            },
            now,
            &|_| test_effects(),
        )
        .await
        .unwrap();
    assert!(matches!(
        s.revoke_technician(&other.id, &t.id, now, &|_| test_effects()).await,
        Err(StoreError::NotFound(_))
    ));
    let revoked = s
        .revoke_technician(&v.id, &t.id, now, &|_| test_effects())
        .await
        .unwrap();
    assert!(revoked.revoked_at.is_some());

    let d = s
        .create_device(
            &NewDevice {
                name: "MRI-1".parse().unwrap(),
                address: "10.1.2.3:22".into(),
                protocol: "ssh".into(),
                description: Some("Radiology MRI".into()),
                vendor_ids: vec![v.id.clone(), other.id.clone()],
            },
            now,
            &|_| test_effects(),
        )
        .await
        .unwrap();
    assert_eq!(d.name.as_str(), "mri-1");
    assert_eq!(d.vendor_ids.len(), 2);
    assert_eq!(s.device(&d.id).await.unwrap(), d);
    let dup = s
        .create_device(
            &NewDevice {
                name: "mri-1".parse().unwrap(),
                address: "10.1.2.4:22".into(),
                protocol: "ssh".into(),
                description: None,
                vendor_ids: vec![],
            },
            now,
            &|_| test_effects(),
        )
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    let orphan = s
        .create_device(
            &NewDevice {
                name: "ct-2".parse().unwrap(),
                address: "10.1.2.5:22".into(),
                protocol: "ssh".into(),
                description: None,
                vendor_ids: vec!["no-such-vendor".into()],
            },
            now,
            &|_| test_effects(),
        )
        .await;
    assert!(matches!(orphan, Err(StoreError::Conflict(_))), "{orphan:?}");
    assert!(
        !s.set_device_enabled(&d.id, false, &|_| test_effects())
            .await
            .unwrap()
            .enabled
    );
    assert_eq!(s.list_devices().await.unwrap().len(), 1);
}
on_both_backends!(
    vendors_devices_technicians_round_trip,
    super::vendors_devices_technicians
);

async fn windows(db: TestDb) {
    let s = db.store.as_ref();
    let pki = Pki::generate();
    let sc = scene(s, &pki, "127.0.0.1:9".parse().unwrap()).await;
    let now = Utc::now();
    let new = |starts, ends| NewWindow {
        vendor_id: sc.vendor.id.clone(),
        device_ids: vec![sc.device.id.clone()],
        starts_at: starts,
        ends_at: ends,
        reason: "calibration".into(),
        requested_by: "u-vendor".into(),
        emergency: false,
        approved_by: None,
        extra_networks: vec![],
    };
    let generation = s.generation();
    let g = generation.get();
    let w = s
        .create_window(
            &new(now + Duration::days(1), now + Duration::days(1) + Duration::hours(2)),
            now,
            &|_| test_effects(),
        )
        .await
        .unwrap();
    assert_eq!(w.state, WindowState::Requested);
    assert_eq!(generation.get(), g, "a request does not change admission");
    let backwards = s
        .create_window(&new(now, now - Duration::hours(1)), now, &|_| test_effects())
        .await;
    assert!(matches!(backwards, Err(StoreError::Conflict(_))), "{backwards:?}");

    let approve = WindowTransition {
        from: vec![WindowState::Requested],
        to: WindowState::Approved,
        by: "u-security".into(),
        reason: None,
        at: now,
    };
    let approved = s.transition_window(&w.id, &approve, &|_| test_effects()).await.unwrap();
    assert_eq!(approved.state, WindowState::Approved);
    assert_eq!(approved.approved_by.as_deref(), Some("u-security"));
    assert!(generation.get() > g);
    // Compare-and-set: approving twice is a conflict naming the state.
    match s.transition_window(&w.id, &approve, &|_| test_effects()).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("approved"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.transition_window(&"nope".into(), &approve, &|_| test_effects()).await,
        Err(StoreError::NotFound(_))
    ));

    let all = s.list_windows(&WindowFilter::default()).await.unwrap();
    assert_eq!(all.len(), 2);
    let by_state = s
        .list_windows(&WindowFilter {
            state: Some(WindowState::Approved),
            since: Some(now + Duration::hours(12)),
            ..WindowFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(by_state.iter().map(|w| &w.id).collect::<Vec<_>>(), vec![&w.id]);
    let by_device = s
        .list_windows(&WindowFilter {
            device_id: Some("other-device".into()),
            ..WindowFilter::default()
        })
        .await
        .unwrap();
    assert!(by_device.is_empty());
    let until = s
        .list_windows(&WindowFilter {
            until: Some(now),
            ..WindowFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(until.len(), 1, "only the scene's window started before now");

    // Emergency grants are created approved, with their extra networks.
    let mut em = new(now, now + Duration::hours(1));
    em.emergency = true;
    em.approved_by = Some("u-security".into());
    em.extra_networks = nets(&["192.0.2.0/24"]);
    let em = s.create_window(&em, now, &|_| test_effects()).await.unwrap();
    assert_eq!(em.state, WindowState::Approved);
    assert_eq!(em.extra_networks, nets(&["192.0.2.0/24"]));

    let snap = s.load_admission_snapshot(now).await.unwrap();
    let ws = snap.windows_for(&sc.device.id);
    assert_eq!(ws.len(), 3, "scene window, future approved window, emergency grant");
    assert!(ws
        .iter()
        .any(|x| x.emergency && x.extra_networks == nets(&["192.0.2.0/24"])));
    // Windows already ended are not loaded.
    let later = s.load_admission_snapshot(now + Duration::days(3)).await.unwrap();
    assert!(later.windows_for(&sc.device.id).is_empty());
}
on_both_backends!(windows_round_trip_and_transition_once, super::windows);

fn session(sc: &Scene, at: chrono::DateTime<Utc>) -> Session {
    Session {
        id: SessionId::generate(),
        window_id: sc.window.id.clone(),
        vendor_id: sc.vendor.id.clone(),
        technician_id: sc.tech.id.clone(),
        technician_subject: "CN=alice".into(),
        device_id: sc.device.id.clone(),
        source_ip: "::ffff:127.0.0.2".parse().unwrap(),
        source_port: 50_000,
        node: "node-a".into(),
        started_at: portier::audit::truncate_micros(at),
        ended_at: None,
        bytes_from_vendor: 0,
        bytes_to_vendor: 0,
        end_reason: None,
    }
}

/// An event with any action name (the store keeps names as text; tests use
/// some that no version records).
fn event(action: &str, object: &str) -> AuditEvent {
    AuditEvent {
        at: portier::audit::truncate_micros(Utc::now()),
        actor: "test".into(),
        action: action.into(),
        object: object.into(),
        outcome: "success".into(),
        details: serde_json::json!({"k": "v"}),
    }
}

async fn journal_and_sessions(db: TestDb) {
    let s = db.store.as_ref();
    let pki = Pki::generate();
    let sc = scene(s, &pki, "127.0.0.1:9".parse().unwrap()).await;
    let now = Utc::now();
    let generation = s.generation();
    let snap = s.load_admission_snapshot(now).await.unwrap();
    assert_eq!(snap.vendors[&sc.vendor.id].oldest_unreported_end, None);

    let a = session(&sc, now);
    let g = generation.get();
    s.write_journal(&[JournalEntry::SessionStarted(
        a.clone(),
        event("session.started", a.id.as_str()),
    )])
    .await
    .unwrap();
    assert!(generation.get() > g, "the first session of a window makes a report due");
    let g = generation.get();
    let b = session(&sc, now + Duration::seconds(1));
    s.write_journal(&[
        JournalEntry::SessionStarted(b.clone(), event("session.started", b.id.as_str())),
        JournalEntry::Audit(event("admission.denied", "x")),
    ])
    .await
    .unwrap();
    assert_eq!(generation.get(), g, "later sessions change nothing for admission");
    let snap = s.load_admission_snapshot(now).await.unwrap();
    assert_eq!(
        snap.vendors[&sc.vendor.id].oldest_unreported_end,
        Some(sc.window.ends_at)
    );

    let stored = s.session(&a.id).await.unwrap();
    assert_eq!(
        stored.source_ip.to_string(),
        "127.0.0.2",
        "IPv4-mapped addresses are stored as IPv4"
    );
    assert_eq!(stored.started_at, a.started_at);
    let end = SessionEnd {
        id: a.id.clone(),
        ended_at: portier::audit::truncate_micros(now + Duration::seconds(5)),
        bytes_from_vendor: 1234,
        bytes_to_vendor: 5678,
        end_reason: EndReason::WindowEnded,
    };
    s.write_journal(&[JournalEntry::SessionEnded(
        end.clone(),
        event("session.ended", a.id.as_str()),
    )])
    .await
    .unwrap();
    let stored = s.session(&a.id).await.unwrap();
    assert_eq!(
        (
            stored.ended_at,
            stored.bytes_from_vendor,
            stored.bytes_to_vendor,
            stored.end_reason
        ),
        (Some(end.ended_at), 1234, 5678, Some(EndReason::WindowEnded))
    );

    let active = s
        .list_sessions(&SessionFilter {
            active: Some(true),
            ..SessionFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(active.iter().map(|x| &x.id).collect::<Vec<_>>(), vec![&b.id]);
    let since = s
        .list_sessions(&SessionFilter {
            since: Some(now + Duration::milliseconds(500)),
            vendor_id: Some(sc.vendor.id.clone()),
            ..SessionFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(since.len(), 1);
    // A restart closes what the previous run of this node left open, and only that.
    assert_eq!(s.close_orphan_sessions("node-b", now).await.unwrap(), 0);
    assert_eq!(s.close_orphan_sessions("node-a", now).await.unwrap(), 1);
    assert_eq!(
        s.session(&b.id).await.unwrap().end_reason,
        Some(EndReason::GatewayRestart)
    );

    // A failing entry fails its whole transaction: nothing half-written.
    let mut bad = session(&sc, now);
    bad.window_id = "no-such-window".into();
    let before = s.list_audit(&AuditFilter::default()).await.unwrap().len();
    let r = s
        .write_journal(&[
            JournalEntry::Audit(event("x", "y")),
            JournalEntry::SessionStarted(bad, event("session.started", "bad")),
        ])
        .await;
    assert!(r.is_err());
    assert_eq!(s.list_audit(&AuditFilter::default()).await.unwrap().len(), before);
}
on_both_backends!(
    journal_writes_sessions_and_marks_reports_due,
    super::journal_and_sessions
);

async fn audit_chain(db: TestDb) {
    let s = db.store.clone();
    // Concurrent appends through the journal and directly: one chain, no gap.
    let (journal, _task) = portier::store::Journal::start(s.clone());
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (journal, s) = (journal.clone(), s.clone());
        tasks.push(tokio::spawn(async move {
            if i % 4 == 0 {
                s.append_audit(&event("direct", &i.to_string()))
                    .await
                    .map(|_| ())
                    .unwrap();
            } else {
                journal
                    .write(JournalEntry::Audit(event("journal", &i.to_string())))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let events = s.list_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(events.len(), 40);
    let mut prev = GENESIS_HASH.to_owned();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as i64 + 1, "no gap");
        assert!(e.hash_is_valid(&prev), "event {} does not chain", e.seq);
        prev = e.hash.clone();
    }
    let head = s.audit_head().await.unwrap().unwrap();
    assert_eq!(head, (40, events.last().unwrap().hash.clone()));
    let limited = s
        .list_audit(&AuditFilter {
            after_seq: Some(10),
            limit: Some(5),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        limited.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![11, 12, 13, 14, 15]
    );
}
on_both_backends!(audit_appends_form_one_chain_under_concurrency, super::audit_chain);

async fn users_and_lockdown(db: TestDb) {
    let s = db.store.as_ref();
    let now = Utc::now();
    let (token, hash) = portier::token::generate();
    let u = s
        .create_user(
            &NewUser {
                name: "soc".into(),
                role: Role::Security,
                vendor_id: None,
                token_sha256: hash.clone(),
                token_prefix: "ptk_".into(),
                token_expires_at: None,
                email: None,
            },
            now,
            &|_| test_effects(),
        )
        .await
        .unwrap();
    assert_eq!(s.user_by_token_hash(&hash, Utc::now()).await.unwrap(), Some(u));
    assert_eq!(
        s.user_by_token_hash(&portier::token::hash("wrong"), Utc::now())
            .await
            .unwrap(),
        None
    );
    assert_ne!(hash, token);
    // A vendor account must name its vendor.
    let r = s
        .create_user(
            &NewUser {
                name: "v".into(),
                role: Role::Vendor,
                vendor_id: None,
                token_sha256: portier::token::generate().1,
                token_prefix: "ptk_".into(),
                token_expires_at: None,
                email: None,
            },
            now,
            &|_| test_effects(),
        )
        .await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");

    assert!(!s.lockdown().await.unwrap().active);
    let g = s.generation().get();
    let on = LockdownState {
        active: true,
        reason: Some("ransomware alert".into()),
        set_by: Some("soc".into()),
        set_at: Some(portier::audit::truncate_micros(now)),
    };
    s.set_lockdown(&on, &|_| test_effects()).await.unwrap();
    assert!(s.generation().get() > g);
    assert_eq!(s.lockdown().await.unwrap(), on);
    assert!(s.load_admission_snapshot(now).await.unwrap().lockdown);
    // Stored, so a new connection (a restarted node) sees it too.
    let reopened = portier::store::connect(&db.url).await.unwrap();
    assert!(reopened.lockdown().await.unwrap().active);
}
on_both_backends!(users_and_lockdown_persist, super::users_and_lockdown);
