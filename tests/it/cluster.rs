//! The change feed (issue 9 items 2 and 4). First the follower on its own, on
//! each backend: every kind of change applied incrementally gives the state a
//! full load gives, and cuts the live tunnels it forbids. Then two nodes on one
//! PostgreSQL database: a change made through node A cuts node B's tunnel
//! within 1.5 s and B refuses accordingly; an approval on A admits on B. Last,
//! a node whose database stops: it refuses within the staleness bound, says so
//! in `/readyz`, and recovers by itself; and after such an outage no node
//! closes another live node's sessions as `node_lost`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use portier::audit::AuditEvent;
use portier::clock::{SharedClock, SystemClock};
use portier::cluster::{differences, Feed, FeedSettings, Skip};
use portier::domain::{DeviceId, DeviceName, EndReason, SessionId, WindowState};
use portier::gateway::{LiveSession, Registry};
use portier::store::{
    Change, Device, Effects, JournalEntry, LockdownState, NewDevice, NewReport, NewWindow, Session, Store,
    TechnicianAdmission, Vendor, Window, WindowTransition,
};
use serde_json::json;

use crate::common::*;
use crate::on_both_backends;

/// A direct store change with its feed entry.
fn fx(c: Change) -> Effects {
    test_effects().change(c)
}

async fn device(store: &dyn Store, name: &str, vendor: &Vendor) -> Device {
    store
        .create_device(
            &NewDevice {
                name: name.parse::<DeviceName>().unwrap(),
                address: "127.0.0.1:9".into(),
                protocol: "echo".into(),
                description: None,
                vendor_ids: vec![vendor.id.clone()],
            },
            Utc::now(),
            &|d| fx(Change::Device(d.id.clone())),
        )
        .await
        .unwrap()
}

/// Requests and approves a window over `devices`, each step through the feed.
async fn window_over(store: &dyn Store, vendor: &Vendor, devices: &[&Device], hours: i64) -> Window {
    let now = Utc::now();
    let w = store
        .create_window(
            &NewWindow {
                vendor_id: vendor.id.clone(),
                device_ids: devices.iter().map(|d| d.id.clone()).collect(),
                starts_at: now - chrono::Duration::minutes(1),
                ends_at: now + chrono::Duration::hours(hours),
                reason: "feed test".into(),
                requested_by: "vendor".into(),
                emergency: false,
                approved_by: None,
                extra_networks: vec![],
            },
            now,
            &|w| fx(Change::Window(w.id.clone())),
        )
        .await
        .unwrap();
    transition(store, &w, WindowState::Requested, WindowState::Approved).await
}

async fn transition(store: &dyn Store, w: &Window, from: WindowState, to: WindowState) -> Window {
    store
        .transition_window(
            &w.id,
            &WindowTransition {
                from: vec![from],
                to,
                by: "security".into(),
                reason: Some("feed test".into()),
                at: Utc::now(),
            },
            &|w| fx(Change::Window(w.id.clone())),
        )
        .await
        .unwrap()
}

/// A live tunnel as the registry holds it (no sockets: the feed only cuts).
fn live(id: &str, w: &Window, tech: &portier::store::Technician, device: &DeviceId, source: &str) -> Arc<LiveSession> {
    Arc::new(
        LiveSession::new(
            SessionId::from(id),
            w.id.clone(),
            w.vendor_id.clone(),
            tech.id.clone(),
            device.clone(),
            Utc::now(),
            w.ends_at,
        )
        .with_source(source.parse::<IpAddr>().unwrap()),
    )
}

/// Catches up, then checks the incremental state against a full load.
async fn same_as_full(feed: &Feed, store: &dyn Store, what: &str) -> Arc<portier::policy::Snapshot> {
    feed.catch_up().await.unwrap();
    let mine = feed.published().unwrap();
    let now = Utc::now();
    let full = store.load_admission_snapshot(now).await.unwrap();
    let (shown, count) = differences(&mine, &full, now, &Skip::default(), 20);
    assert_eq!(count, 0, "after {what}: {shown:?}");
    mine
}

fn cut(s: &LiveSession) -> Option<EndReason> {
    s.cut_reason()
}

async fn every_change_applied_incrementally_matches_a_full_load(db: TestDb) {
    let store = db.store.as_ref();
    let pki = Pki::generate();
    let sc = scene(store, &pki, "127.0.0.1:9".parse().unwrap()).await;
    let ct = device(store, "ct-2", &sc.vendor).await;
    let registry = Arc::new(Registry::default());
    let clock: SharedClock = Arc::new(SystemClock);
    let feed = Feed::new(db.store.clone(), registry.clone(), clock, FeedSettings::default());
    feed.read().await.unwrap();
    let mri = sc.device.id.clone();

    // A window over several devices appears under each.
    let w2 = window_over(store, &sc.vendor, &[&sc.device, &ct], 2).await;
    let snap = same_as_full(&feed, store, "approving a window over two devices").await;
    for d in [&mri, &ct.id] {
        assert!(snap.windows_for(d).iter().any(|w| w.id == w2.id), "{d}");
    }
    let s_w1 = live("s-w1", &sc.window, &sc.tech, &mri, "127.0.0.2");
    let s_ext = live("s-ext", &w2, &sc.tech, &ct.id, "127.0.0.2");
    for s in [&s_w1, &s_ext] {
        registry.insert(s.clone());
    }

    // An approved extension moves the window's end on every device and the
    // deadline of its tunnels.
    let new_end = w2.ends_at + chrono::Duration::hours(1);
    store
        .request_extension(&w2.id, new_end, "more time", "vendor", &|w| {
            fx(Change::Window(w.id.clone()))
        })
        .await
        .unwrap();
    store
        .decide_extension(&w2.id, new_end, true, "security", Utc::now(), &|w| {
            fx(Change::Window(w.id.clone()))
        })
        .await
        .unwrap();
    let snap = same_as_full(&feed, store, "an extension").await;
    for d in [&mri, &ct.id] {
        let w = snap.windows_for(d).iter().find(|w| w.id == w2.id).unwrap();
        assert_eq!(w.ends_at, new_end);
    }
    assert_eq!(s_ext.deadline(), new_end);
    assert_eq!(cut(&s_ext), None);

    // A revoked window leaves every device; its tunnels are cut.
    transition(store, &sc.window, WindowState::Approved, WindowState::Revoked).await;
    let snap = same_as_full(&feed, store, "a revocation").await;
    assert!(!snap.windows_for(&mri).iter().any(|w| w.id == sc.window.id));
    assert_eq!(cut(&s_w1), Some(EndReason::WindowRevoked));
    assert_eq!(cut(&s_ext), None, "another window's tunnel stays");

    // A technician added, then revoked: its tunnels are cut.
    let (bob, _) = technician(store, &pki, &sc.vendor, "bob").await;
    store
        .revoke_technician(&sc.vendor.id, &bob.id, Utc::now(), &|t| {
            fx(Change::Technician(t.id.clone()))
        })
        .await
        .unwrap();
    let s_bob = live("s-bob", &w2, &bob, &mri, "127.0.0.2");
    registry.insert(s_bob.clone());
    let snap = same_as_full(&feed, store, "a technician revoked").await;
    assert!(snap.technicians.values().any(|t| t.id == bob.id && t.revoked));
    assert_eq!(cut(&s_bob), Some(EndReason::TechnicianRevoked));
    assert_eq!(cut(&s_ext), None);

    // A device disabled: its tunnels are cut; enabled again.
    store
        .set_device_enabled(&ct.id, false, &|d| fx(Change::Device(d.id.clone())))
        .await
        .unwrap();
    let snap = same_as_full(&feed, store, "a device disabled").await;
    assert!(!snap.device_by_name("ct-2").unwrap().enabled);
    assert_eq!(cut(&s_ext), Some(EndReason::DeviceDisabled));
    store
        .set_device_enabled(&ct.id, true, &|d| fx(Change::Device(d.id.clone())))
        .await
        .unwrap();
    same_as_full(&feed, store, "a device enabled").await;

    // The vendor's networks replaced: a tunnel from an address no longer
    // declared is cut, one from the new network stays.
    let s_old_net = live("s-old-net", &w2, &sc.tech, &mri, "127.0.0.2");
    let s_new_net = live("s-new-net", &w2, &sc.tech, &mri, "127.0.0.9");
    registry.insert(s_old_net.clone());
    registry.insert(s_new_net.clone());
    store
        .replace_vendor_networks(
            &sc.vendor.id,
            &[portier::domain::parse_network("127.0.0.9").unwrap()],
            &|v| fx(Change::Vendor(v.id.clone())),
        )
        .await
        .unwrap();
    same_as_full(&feed, store, "networks replaced").await;
    assert_eq!(cut(&s_old_net), Some(EndReason::SourceIpNotDeclared));
    assert_eq!(cut(&s_new_net), None);

    // The vendor disabled: all its tunnels are cut; enabled again.
    store
        .set_vendor_enabled(&sc.vendor.id, false, &|v| fx(Change::Vendor(v.id.clone())))
        .await
        .unwrap();
    same_as_full(&feed, store, "a vendor disabled").await;
    assert_eq!(cut(&s_new_net), Some(EndReason::VendorDisabled));
    store
        .set_vendor_enabled(&sc.vendor.id, true, &|v| fx(Change::Vendor(v.id.clone())))
        .await
        .unwrap();
    same_as_full(&feed, store, "a vendor enabled").await;

    // Lockdown on cuts everything; off again.
    let s_lock = live("s-lock", &w2, &sc.tech, &mri, "127.0.0.9");
    registry.insert(s_lock.clone());
    let lock = |active: bool| LockdownState {
        active,
        reason: active.then(|| "drill".into()),
        set_by: Some("security".into()),
        set_at: Some(Utc::now()),
    };
    store
        .set_lockdown(&lock(true), &|_| fx(Change::Lockdown))
        .await
        .unwrap();
    assert!(same_as_full(&feed, store, "lockdown on").await.lockdown);
    assert_eq!(cut(&s_lock), Some(EndReason::Lockdown));
    store
        .set_lockdown(&lock(false), &|_| fx(Change::Lockdown))
        .await
        .unwrap();
    assert!(!same_as_full(&feed, store, "lockdown off").await.lockdown);

    // A termination cuts the session it names, and only it.
    let s_term = live("s-term", &w2, &sc.tech, &mri, "127.0.0.9");
    let s_other = live("s-other", &w2, &sc.tech, &mri, "127.0.0.9");
    registry.insert(s_term.clone());
    registry.insert(s_other.clone());
    store.record(&fx(Change::Terminate(s_term.id.clone()))).await.unwrap();
    same_as_full(&feed, store, "a termination").await;
    assert_eq!(cut(&s_term), Some(EndReason::Terminated));
    assert_eq!(cut(&s_other), None);

    // A window's first session makes its report due (the journal appends the
    // feed entry); filing the report clears it. Neither cuts anything.
    let started = Utc::now();
    let session = Session {
        id: SessionId::from("s-journal"),
        window_id: w2.id.clone(),
        vendor_id: sc.vendor.id.clone(),
        technician_id: sc.tech.id.clone(),
        technician_subject: "CN=alice".into(),
        device_id: mri.clone(),
        source_ip: "127.0.0.9".parse().unwrap(),
        source_port: 4242,
        node: "test".into(),
        started_at: started,
        ended_at: None,
        bytes_from_vendor: 0,
        bytes_to_vendor: 0,
        end_reason: None,
    };
    let event = AuditEvent::new(
        started,
        "gateway",
        portier::events::Event::SessionStarted,
        "s-journal",
        "success",
        json!({}),
    );
    store
        .write_journal(&[JournalEntry::SessionStarted(session, event)])
        .await
        .unwrap();
    let snap = same_as_full(&feed, store, "a window's first session").await;
    assert_eq!(snap.vendors[&sc.vendor.id].oldest_unreported_end, Some(new_end));
    store
        .file_report(
            &NewReport {
                window_id: w2.id.clone(),
                vendor_id: sc.vendor.id.clone(),
                summary: "done".into(),
                actions: "firmware".into(),
                outcome: "success".into(),
                follow_up: None,
                filed_by: "vendor".into(),
            },
            Utc::now(),
            &|r| fx(Change::Reports(r.vendor_id.clone())),
        )
        .await
        .unwrap();
    let snap = same_as_full(&feed, store, "a report filed").await;
    assert_eq!(snap.vendors[&sc.vendor.id].oldest_unreported_end, None);
    assert_eq!(cut(&s_other), None);
    assert_eq!(feed.mismatches(), 0);
}
on_both_backends!(
    every_change_applied_incrementally_matches_a_full_load,
    super::every_change_applied_incrementally_matches_a_full_load
);

/// Appends a feed entry of a kind this version does not know, as a newer node would.
async fn append_unknown_kind(db: &TestDb) {
    match db.kind {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            sqlx::query(
                "INSERT INTO changes (seq, at, kind, object, audit_seq)
                 SELECT COALESCE(MAX(seq), 0) + 1, 0, 'from_the_future', 'x', 0 FROM changes",
            )
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            sqlx::query(
                "INSERT INTO changes (seq, at, kind, object, audit_seq)
                 SELECT COALESCE(MAX(seq), 0) + 1, now(), 'from_the_future', 'x', 0 FROM changes",
            )
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
    }
}

/// A follower over `db`'s scene, up to date, with one live session of its
/// technician on its device (from 127.0.0.2) in the follower's registry.
async fn following_one_session(db: &TestDb, pki: &Pki) -> (Scene, Feed, Arc<LiveSession>) {
    let sc = scene(db.store.as_ref(), pki, "127.0.0.1:9".parse().unwrap()).await;
    let registry = Arc::new(Registry::default());
    let feed = Feed::new(
        db.store.clone(),
        registry.clone(),
        Arc::new(SystemClock),
        FeedSettings::default(),
    );
    feed.read().await.unwrap();
    let s = live("s1", &sc.window, &sc.tech, &sc.device.id, "127.0.0.2");
    registry.insert(s.clone());
    (sc, feed, s)
}

/// A change that reached no feed entry is found by the periodic full load,
/// counted, and repaired; a change of an unknown kind reloads in full.
async fn a_change_missing_from_the_feed_is_found_and_repaired(db: TestDb) {
    let store = db.store.as_ref();
    let pki = Pki::generate();
    let (sc, feed, s) = following_one_session(&db, &pki).await;

    // Disabled without a feed entry (a bug): the incremental state misses it.
    store
        .set_device_enabled(&sc.device.id, false, &|_| test_effects())
        .await
        .unwrap();
    feed.catch_up().await.unwrap();
    assert!(feed.published().unwrap().device_by_name("mri-1").unwrap().enabled);
    assert_eq!(cut(&s), None);
    // The comparison finds it, counts it and takes the stored state; the tunnel
    // it forbids is cut.
    feed.reload_and_compare().await.unwrap();
    assert_eq!(feed.mismatches(), 1);
    assert!(!feed.published().unwrap().device_by_name("mri-1").unwrap().enabled);
    assert_eq!(cut(&s), Some(EndReason::DeviceDisabled));
    // Nothing differs any more.
    feed.reload_and_compare().await.unwrap();
    assert_eq!(feed.mismatches(), 1);

    // Enabled again without a feed entry, then an entry of an unknown kind:
    // the follower reloads in full.
    store
        .set_device_enabled(&sc.device.id, true, &|_| test_effects())
        .await
        .unwrap();
    append_unknown_kind(&db).await;
    feed.catch_up().await.unwrap();
    assert!(feed.published().unwrap().device_by_name("mri-1").unwrap().enabled);

    // Technicians keyed by fingerprint follow their id.
    let (bob, _) = technician(store, &pki, &sc.vendor, "bob").await;
    store.record(&fx(Change::Technician(bob.id.clone()))).await.unwrap();
    let snap = same_as_full(&feed, store, "a technician added").await;
    let read: TechnicianAdmission = store.admission_technician(&bob.id).await.unwrap().unwrap();
    assert_eq!(snap.technicians.get(&read.fingerprint), Some(&read.entry));
}
on_both_backends!(
    a_change_missing_from_the_feed_is_found_and_repaired,
    super::a_change_missing_from_the_feed_is_found_and_repaired
);

/// Feed entries a node never read are pruned (it was behind longer than the feed
/// keeps them): it sees the gap and reloads in full, so nothing is missed; the
/// newest entry is never pruned, so the numbering goes on.
async fn a_node_behind_pruned_entries_reloads_in_full(db: TestDb) {
    let store = db.store.as_ref();
    let pki = Pki::generate();
    let (sc, feed, s) = following_one_session(&db, &pki).await;

    // Two changes this node has not read yet, then both pruned but the newest.
    store
        .set_device_enabled(&sc.device.id, false, &|d| fx(Change::Device(d.id.clone())))
        .await
        .unwrap();
    store.record(&fx(Change::Lockdown)).await.unwrap();
    let last = store.last_change_seq().await.unwrap();
    let pruned = store
        .prune_changes(Utc::now() + chrono::Duration::hours(1))
        .await
        .unwrap();
    assert!(pruned >= 1, "the older entries go");
    assert_eq!(store.last_change_seq().await.unwrap(), last, "the newest stays");
    assert_eq!(store.changes_since(0, 10).await.unwrap().len(), 1);

    // The device's entry is gone, yet the node learns it is disabled and cuts.
    feed.catch_up().await.unwrap();
    assert!(!feed.published().unwrap().device_by_name("mri-1").unwrap().enabled);
    assert_eq!(cut(&s), Some(EndReason::DeviceDisabled));
    // The numbering goes on after the kept entry.
    store.record(&fx(Change::Lockdown)).await.unwrap();
    assert_eq!(store.last_change_seq().await.unwrap(), last + 1);
}
on_both_backends!(
    a_node_behind_pruned_entries_reloads_in_full,
    super::a_node_behind_pruned_entries_reloads_in_full
);

// --- two nodes on one PostgreSQL database ---

type Tunnel = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A tunnel through `gateway` if it admits one (it echoes a probe), else what it said.
async fn try_tunnel(gateway: std::net::SocketAddr, tls: Arc<rustls::ClientConfig>) -> Result<Tunnel, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = connect_from("127.0.0.2", gateway, "mri-1", tls)
        .await
        .map_err(|e| e.to_string())?;
    // A refused tunnel may already be closed: the write's outcome does not matter.
    let _ = s.write_all(b"x").await;
    let _ = s.flush().await;
    let mut probe = [0u8; 1];
    match tokio::time::timeout(Duration::from_secs(3), s.read(&mut probe)).await {
        Ok(Ok(1)) if probe == *b"x" => Ok(s),
        Ok(Ok(1)) => {
            let rest = read_all(&mut s).await.unwrap_or_default();
            Err(format!("{}{rest}", char::from(probe[0])))
        }
        other => Err(format!("{other:?}")),
    }
}

/// Node A (a `TestApp`) and node B beside it on the same database.
struct TwoNodes {
    a: TestApp,
    b: portier::app::App,
    sc: ApiScene,
    vendor: String,
    security: String,
    window: String,
}

impl TwoNodes {
    async fn start(extra: &str) -> Option<Self> {
        let db = TestDb::postgres().await?;
        let clock: SharedClock = Arc::new(SystemClock);
        let a = TestApp::spawn_config(db, "gateway.node = \"a\"\n", extra, clock.clone()).await;
        let mut settings = a.settings().clone();
        settings.gateway.node = "b".into();
        let b = portier::app::App::start_with_clock(&settings, clock).await.unwrap();
        let device = echo_device().await;
        let sc = api_scene(&a, "Acme", "127.0.0.2", "mri-1", device).await;
        let vendor = a.token("vendor", "desk", Some(&sc.vendor_id)).await;
        let security = a.token("security", "soc", None).await;
        let now = Utc::now();
        let window = a
            .approved_window(
                &vendor,
                &security,
                &sc.device_id,
                now - chrono::Duration::minutes(1),
                now + chrono::Duration::hours(1),
            )
            .await;
        Some(Self {
            a,
            b,
            sc,
            vendor,
            security,
            window,
        })
    }

    /// A tunnel through node B, echoing (B sees A's approval within a second).
    async fn tunnel_on_b(&self) -> Tunnel {
        let start = Instant::now();
        loop {
            match try_tunnel(self.b.gateway_addr, self.sc.tls.clone()).await {
                Ok(t) => return t,
                Err(said) => assert!(start.elapsed() < Duration::from_secs(1), "node B still refuses: {said}"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops both nodes once the audit chain they wrote together verifies.
    async fn stop(self) {
        assert_chain_valid(self.a.app.store.as_ref()).await;
        self.b.stop().await;
        self.a.stop().await;
    }
}

/// What node A is asked to do.
#[derive(Clone, Copy, Debug)]
enum Remote {
    RevokeWindow,
    RevokeTechnician,
    DisableVendor,
    DisableDevice,
    Lockdown,
    Terminate,
}

/// A change made through node A's API cuts node B's live tunnel within 1.5 s,
/// with the reason it stands for; B then refuses (or, after a termination,
/// still admits) new tunnels.
async fn a_change_through_node_a_cuts_node_b(what: Remote) {
    let Some(n) = TwoNodes::start("").await else {
        eprintln!("skipped: PORTIER_TEST_PG_URL is not set");
        return;
    };
    let mut tls = n.tunnel_on_b().await;
    let live = n.b.registry.list();
    assert_eq!(live.len(), 1);
    let session = live[0].id.clone();
    let (method, path, body, reason, refusal) = match what {
        Remote::RevokeWindow => (
            "POST",
            format!("/api/v1/windows/{}/revoke", n.window),
            Some(json!({"reason": "feed test"})),
            EndReason::WindowRevoked,
            Some("no_active_window"),
        ),
        Remote::RevokeTechnician => {
            let techs =
                n.a.app
                    .store
                    .list_technicians(&portier::domain::VendorId::from(n.sc.vendor_id.as_str()))
                    .await
                    .unwrap();
            (
                "DELETE",
                format!("/api/v1/vendors/{}/technicians/{}", n.sc.vendor_id, techs[0].id),
                None,
                EndReason::TechnicianRevoked,
                Some("unknown_technician"),
            )
        }
        Remote::DisableVendor => (
            "POST",
            format!("/api/v1/vendors/{}/disable", n.sc.vendor_id),
            None,
            EndReason::VendorDisabled,
            Some("vendor_disabled"),
        ),
        Remote::DisableDevice => (
            "POST",
            format!("/api/v1/devices/{}/disable", n.sc.device_id),
            None,
            EndReason::DeviceDisabled,
            Some("device_disabled"),
        ),
        Remote::Lockdown => (
            "POST",
            "/api/v1/lockdown".to_owned(),
            Some(json!({"reason": "feed test"})),
            EndReason::Lockdown,
            Some("lockdown"),
        ),
        Remote::Terminate => (
            "POST",
            format!("/api/v1/sessions/{session}/terminate"),
            Some(json!({"reason": "feed test"})),
            EndReason::Terminated,
            None,
        ),
    };
    let started = Instant::now();
    let (st, answer) = n.a.call(method, &path, Some(&n.security), body).await;
    assert!(st == 200 || st == 202, "{what:?}: {st} {answer}");
    wait_closed(&mut tls).await;
    let took = started.elapsed();
    assert!(
        took <= Duration::from_millis(1500),
        "{what:?}: node B cut its tunnel {took:?} after the request to node A"
    );
    let rec = eventually(|| async {
        let s = n.b.store.session(&session).await.ok()?;
        s.ended_at.is_some().then_some(s)
    })
    .await;
    assert_eq!(rec.end_reason, Some(reason), "{what:?}");
    assert_eq!(rec.node, "b");

    // The cut is the follower's: by now B's admission state holds the change.
    match (refusal, try_tunnel(n.b.gateway_addr, n.sc.tls.clone()).await) {
        (Some(code), Err(said)) => assert!(said.contains(code), "{what:?}: node B said {said:?}"),
        (None, Ok(_)) => {}
        (expected, got) => panic!(
            "{what:?}: expected {expected:?}, node B answered {:?}",
            got.map(|_| "a tunnel")
        ),
    }
    n.stop().await;
}

macro_rules! remote_cut {
    ($name:ident, $what:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            a_change_through_node_a_cuts_node_b($what).await;
        }
    };
}

mod through_node_a {
    use super::*;
    remote_cut!(window_revoked_cuts_on_node_b, Remote::RevokeWindow);
    remote_cut!(technician_revoked_cuts_on_node_b, Remote::RevokeTechnician);
    remote_cut!(vendor_disabled_cuts_on_node_b, Remote::DisableVendor);
    remote_cut!(device_disabled_cuts_on_node_b, Remote::DisableDevice);
    remote_cut!(lockdown_cuts_on_node_b, Remote::Lockdown);
    remote_cut!(session_terminated_on_node_b, Remote::Terminate);
}

/// A window approved through node A admits on node B within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_on_node_a_admits_on_node_b() {
    let Some(n) = TwoNodes::start("").await else {
        eprintln!("skipped: PORTIER_TEST_PG_URL is not set");
        return;
    };
    // Only a future window so far: B refuses.
    let (st, _) =
        n.a.call(
            "POST",
            &format!("/api/v1/windows/{}/revoke", n.window),
            Some(&n.security),
            Some(json!({"reason": "start over"})),
        )
        .await;
    assert_eq!(st, 200);
    let revoked = Instant::now();
    while try_tunnel(n.b.gateway_addr, n.sc.tls.clone()).await.is_ok() {
        assert!(revoked.elapsed() < Duration::from_secs(1), "node B still admits");
    }

    let now = Utc::now();
    let (st, w) = n
        .a
        .call(
            "POST",
            "/api/v1/windows",
            Some(&n.vendor),
            Some(json!({"device_ids": [n.sc.device_id], "starts_at": now - chrono::Duration::minutes(1), "ends_at": now + chrono::Duration::hours(1), "reason": "again"})),
        )
        .await;
    assert_eq!(st, 201, "{w}");
    let id = w["id"].as_str().unwrap();
    let (st, _) =
        n.a.call(
            "POST",
            &format!("/api/v1/windows/{id}/approve"),
            Some(&n.security),
            None,
        )
        .await;
    assert_eq!(st, 200);
    let approved = Instant::now();
    while let Err(said) = try_tunnel(n.b.gateway_addr, n.sc.tls.clone()).await {
        assert!(
            approved.elapsed() < Duration::from_secs(1),
            "node B still refuses {:?} after the approval on node A: {said}",
            approved.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = approved.elapsed();
    assert!(took < Duration::from_secs(1), "{took:?}");
    n.stop().await;
}

// --- staleness ---

/// A database of a PostgreSQL server this test starts (and stops) itself.
async fn own_postgres() -> Option<(crate::hostile::support::OwnPostgres, TestDb)> {
    let pg = tokio::task::spawn_blocking(crate::hostile::support::OwnPostgres::start)
        .await
        .unwrap()?;
    let admin = sqlx::PgPool::connect(&pg.admin_url()).await.unwrap();
    sqlx::query("CREATE DATABASE portier").execute(&admin).await.unwrap();
    admin.close().await;
    let db = TestDb::at(&pg.url()).await;
    Some((pg, db))
}

/// The follower alone: once it has not read the feed for `max_staleness`,
/// admission fails at once (no database call) and, with `on_stale = "cut"`, live
/// tunnels are cut; when reads succeed again it is current again by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_follower_refuses_cuts_and_recovers() {
    let Some((pg, db)) = own_postgres().await else {
        return;
    };
    let pki = Pki::generate();
    let sc = scene(db.store.as_ref(), &pki, "127.0.0.1:9".parse().unwrap()).await;
    let registry = Arc::new(Registry::default());
    let cache = portier::admission::AdmissionCache::following(
        db.store.clone(),
        registry.clone(),
        Arc::new(SystemClock),
        FeedSettings {
            max_staleness: Duration::from_secs(1),
            on_stale: portier::cluster::OnStale::Cut,
            ..FeedSettings::default()
        },
    );
    cache.snapshot().await.unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(cache.feed().clone().run(stop.clone()));
    let s = live("s1", &sc.window, &sc.tech, &sc.device.id, "127.0.0.2");
    registry.insert(s.clone());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(cache.stale().is_none());
    assert!(cache.stored_snapshot().await.is_ok());

    tokio::task::block_in_place(|| pg.stop_server());
    let stopped = Instant::now();
    let refused = crate::hostile::support::within(3, "condition", || async {
        let at = stopped.elapsed();
        let e = cache.stored_snapshot().await.err()?;
        Some((at, e.to_string()))
    })
    .await;
    assert!(
        refused.0 <= Duration::from_secs(2),
        "refused {:?} after the stop",
        refused.0
    );
    assert!(refused.1.contains("change feed"), "{}", refused.1);
    let stale = cache.stale().unwrap();
    assert!(stale.since.is_some());
    crate::hostile::support::within(3, "condition", || async { s.cut_reason() }).await;
    assert_eq!(s.cut_reason(), Some(EndReason::NodeStale));
    assert!(stopped.elapsed() <= Duration::from_millis(2500));

    tokio::task::block_in_place(|| pg.start_server());
    crate::hostile::support::within(20, "condition", || async { cache.stale().is_none().then_some(()) }).await;
    assert!(cache.stored_snapshot().await.is_ok());
    stop.cancel();
    let _ = task.await;
}

/// A whole node whose PostgreSQL stops: it refuses new tunnels within the
/// staleness bound (+1 s), cuts its live one (`on_stale = "cut"`), answers 503
/// on `/readyz` saying it is stale; once the database is back it admits again,
/// without a restart, and the cut tunnel's record says `node_stale`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_cannot_read_the_feed_refuses_and_recovers() {
    let Some((pg, db)) = own_postgres().await else {
        return;
    };
    let t = TestApp::spawn_config(
        db,
        "database.heartbeat_secs = 1\ndatabase.node_stale_secs = 3\ndatabase.probe_ms = 200\n",
        "[cluster]\nmax_staleness_secs = 2\non_stale = \"cut\"\n",
        Arc::new(SystemClock),
    )
    .await;
    // A second node on the same database, with its own API.
    let mut settings_b = t.settings().clone();
    settings_b.gateway.node = "b".into();
    let b = portier::app::App::start_with_clock(&settings_b, Arc::new(SystemClock))
        .await
        .unwrap();
    let readyz_b = |client: reqwest::Client| {
        let url = format!("https://{}/readyz", b.api_addr);
        async move { client.get(url).send().await.unwrap().status().as_u16() }
    };
    let client_b = https_client(&t.server_ca(), b.api_addr);
    let device = echo_device().await;
    let (sc, _vendor, _security) = t.open_window_scene(device).await;
    let mut tls = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut tls, b"ping").await, b"ping");
    let session = t.app.registry.list()[0].id.clone();
    let (st, _) = t.call("GET", "/readyz", None, None).await;
    assert_eq!(st, 200);
    assert_eq!(readyz_b(client_b.clone()).await, 200);

    tokio::task::block_in_place(|| pg.stop_server());
    let stopped = Instant::now();
    // The live tunnel is cut once the bound has passed.
    wait_closed(&mut tls).await;
    let took = stopped.elapsed();
    assert!(
        took <= Duration::from_secs(3),
        "cut {took:?} after the database stopped"
    );
    // New tunnels are refused, and /readyz says why.
    let mut refused = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    let said = read_all(&mut refused).await.unwrap();
    assert!(said.contains("store_unavailable"), "{said:?}");
    let (st, body) = t.call("GET", "/readyz", None, None).await;
    assert_eq!(st, 503, "{body}");
    assert!(body["message"].as_str().unwrap_or("").contains("change feed"), "{body}");
    // The other node is stale too: not ready, and it refuses new tunnels.
    assert_eq!(readyz_b(client_b.clone()).await, 503);
    let mut refused_b = connect_from("127.0.0.2", b.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    let said = read_all(&mut refused_b).await.unwrap();
    assert!(said.contains("store_unavailable"), "node b: {said:?}");

    tokio::task::block_in_place(|| pg.start_server());
    // Back without a restart: admitted again, ready again.
    let back = Instant::now();
    while try_tunnel(t.app.gateway_addr, sc.tls.clone()).await.is_err() {
        assert!(
            back.elapsed() < Duration::from_secs(20),
            "still refused 20 s after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (st, body) = t.call("GET", "/readyz", None, None).await;
    assert_eq!(st, 200, "{body}");
    let back = Instant::now();
    while try_tunnel(b.gateway_addr, sc.tls.clone()).await.is_err() {
        assert!(back.elapsed() < Duration::from_secs(20), "node b still refuses");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(readyz_b(client_b.clone()).await, 200);
    let rec = crate::hostile::support::within(15, "condition", || async {
        let s = t.app.store.session(&session).await.ok()?;
        s.ended_at.is_some().then_some(s)
    })
    .await;
    assert_eq!(rec.end_reason, Some(EndReason::NodeStale));
    assert_chain_valid(t.app.store.as_ref()).await;
    b.stop().await;
    t.stop().await;
}

/// A TCP relay to `upstream` that, while `shut` is set, drops new connections
/// at once: a node whose database connections go through it reconnects later
/// than the others after an outage.
async fn relay(upstream: String, shut: Arc<std::sync::atomic::AtomicBool>) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            if shut.load(std::sync::atomic::Ordering::SeqCst) {
                continue;
            }
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (addr, task)
}

/// PostgreSQL stops for longer than `node_stale_secs`, with `on_stale =
/// "refuse"`: node B's tunnel runs on. When the database is back, node A
/// reconnects first (B's connections are held back 1.5 s) and finds B's last
/// beat old; it must not close B's live session as `node_lost` before B has had
/// `node_stale_secs` to beat again. The session stays open, with no
/// `session.ended` event, the tunnel still echoes, and its end is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_outage_a_survivor_does_not_close_a_live_node_s_sessions() {
    let Some((pg, db)) = own_postgres().await else {
        return;
    };
    let t = TestApp::spawn_config(
        db,
        "database.heartbeat_secs = 1\ndatabase.node_stale_secs = 3\ndatabase.checkpoint_secs = 1\ndatabase.probe_ms = 200\n",
        "[cluster]\non_stale = \"refuse\"\n",
        Arc::new(SystemClock),
    )
    .await;
    // Node B reaches the database through a relay the test can hold shut.
    let upstream = pg
        .url()
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    let shut = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (relayed, relay_task) = relay(upstream.clone(), shut.clone()).await;
    let mut settings_b = t.settings().clone();
    settings_b.gateway.node = "b".into();
    settings_b.database.url = pg.url().replace(&upstream, &relayed);
    let b = portier::app::App::start_with_clock(&settings_b, Arc::new(SystemClock))
        .await
        .unwrap();
    let device = echo_device().await;
    let (sc, _vendor, _security) = t.open_window_scene(device).await;
    let start = Instant::now();
    let mut tls = loop {
        match try_tunnel(b.gateway_addr, sc.tls.clone()).await {
            Ok(tunnel) => break tunnel,
            Err(said) => assert!(start.elapsed() < Duration::from_secs(5), "node B refuses: {said}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let session = b.registry.list()[0].id.clone();

    tokio::task::block_in_place(|| pg.stop_server());
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(echo_roundtrip(&mut tls, b"during").await, b"during");
    shut.store(true, std::sync::atomic::Ordering::SeqCst);
    tokio::task::block_in_place(|| pg.start_server());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    shut.store(false, std::sync::atomic::Ordering::SeqCst);
    // Long enough for A to have beaten without failure for node_stale_secs,
    // and so to have swept, several times.
    tokio::time::sleep(Duration::from_millis(6500)).await;

    assert_eq!(echo_roundtrip(&mut tls, b"after").await, b"after");
    assert_eq!(b.registry.list().len(), 1);
    let rec = t.app.store.session(&session).await.unwrap();
    assert_eq!(
        (rec.ended_at, rec.end_reason),
        (None, None),
        "node B's live session was closed"
    );
    assert!(crate::hostile::support::ended_events(&t.app.store, &session)
        .await
        .is_empty());
    // Its end is still recorded when the vendor leaves.
    drop(tls);
    let rec = crate::hostile::support::within(10, "condition", || async {
        let s = t.app.store.session(&session).await.ok()?;
        s.ended_at.is_some().then_some(s)
    })
    .await;
    assert_eq!(rec.end_reason, Some(EndReason::ClientClosed));
    assert_eq!(
        crate::hostile::support::ended_events(&t.app.store, &session)
            .await
            .len(),
        1
    );
    assert_chain_valid(t.app.store.as_ref()).await;
    b.stop().await;
    t.stop().await;
    relay_task.abort();
}

/// The audit chain verifies from its first event to its last.
async fn assert_chain_valid(store: &dyn Store) {
    let chain = portier::audit::verify_store(store, |_| {}).await.unwrap();
    assert!(chain.valid, "audit chain broken: {chain:?}");
}
