//! Hostile tests: node identity and liveness (issue 9 item 3). A node that
//! crashes while another runs has its sessions closed by the survivor as
//! `node_lost`, dated by its last heartbeat, once, even when two survivors
//! sweep at the same moment; `GET /api/v1/nodes` says which node is lost.

use std::sync::Arc;

use chrono::Utc;
use portier::clock::{Clock, ManualClock, SharedClock};
use portier::domain::{EndReason, SessionId};
use serde_json::Value;

use crate::common::*;
use crate::on_both_backends;

use super::support::{ended_events, within};

/// Quick liveness settings (as in faults.rs), under the node name `a`.
const FAST_A: &str = "database.heartbeat_secs = 1\ndatabase.node_stale_secs = 3\ndatabase.checkpoint_secs = 1\ndatabase.probe_ms = 200\ngateway.node = \"a\"\n";

/// A node `a` with one live tunnel that beat at `t1`, then crashed.
async fn crashed_node_a(db: TestDb, clock: &Arc<ManualClock>) -> (TestApp, SessionId, chrono::DateTime<Utc>) {
    let shared: SharedClock = clock.clone();
    let t = TestApp::spawn_config(db, FAST_A, "", shared).await;
    let device = echo_device().await;
    let (sc, _vendor, _security) = t.open_window_scene(device).await;
    let mut s = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut s, b"ping").await, b"ping");
    let id = t.app.registry.list()[0].id.clone();
    let t1 = clock.now() + chrono::Duration::seconds(30);
    clock.set(t1);
    within(10, "a beat and checkpointed at t1", || async {
        let nodes = t.app.store.list_nodes().await.ok()?;
        let a = nodes.iter().find(|n| n.name == "a")?;
        let rec = t.app.store.session(&id).await.ok()?;
        (a.last_seen == t1 && rec.bytes_from_vendor == 4).then_some(())
    })
    .await;
    t.app.abort(); // kill -9
    drop(s);
    (t, id, t1)
}

async fn a_lost_node_s_sessions_are_closed_by_a_survivor(db: TestDb) {
    let t0 = portier::audit::truncate_micros(Utc::now());
    let clock = Arc::new(ManualClock::new(t0));
    let shared: SharedClock = clock.clone();
    let (mut t, id, t1) = crashed_node_a(db, &clock).await;
    // Node b, beside a on the same database (same PKI and configuration).
    let mut settings_b = t.settings().clone();
    settings_b.gateway.node = "b".into();
    let b = portier::app::App::start_with_clock(&settings_b, shared.clone())
        .await
        .unwrap();

    // Past node_stale_secs on every clock: b finds a lost and closes its session.
    let t2 = t1 + chrono::Duration::minutes(10);
    clock.set(t2);
    let rec = within(15, "the lost node's session closed by b", || async {
        let rec = b.store.session(&id).await.ok()?;
        rec.ended_at.is_some().then_some(rec)
    })
    .await;
    assert_eq!(rec.end_reason, Some(EndReason::NodeLost));
    assert_eq!(
        rec.ended_at,
        Some(t1),
        "ended at a's last heartbeat, not when b noticed ({t2})"
    );
    assert_eq!((rec.bytes_from_vendor, rec.bytes_to_vendor), (4, 4));
    let ended = ended_events(&b.store, &id).await;
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0].at, t1);
    let details: Value = serde_json::from_str(&ended[0].details).unwrap();
    assert_eq!(details["end_reason"], "node_lost");
    assert_eq!(details["node"], "a");
    assert_eq!(details["closed_by"], "b");

    // The node list, through b's API: a lost with nothing open, b alive.
    let http = https_client(&t.server_ca(), b.api_addr);
    let auditor = t.token("auditor", "audit", None).await;
    let nodes: Value = http
        .get(format!("https://localhost:{}/api/v1/nodes", b.api_addr.port()))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let state = |name: &str| {
        nodes
            .as_array()
            .and_then(|l| l.iter().find(|n| n["name"] == name))
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(state("a")["state"], "lost", "{nodes}");
    assert_eq!(state("a")["open_sessions"], 0, "{nodes}");
    assert_eq!(state("a")["pid"], std::process::id(), "{nodes}");
    assert_eq!(state("b")["state"], "alive", "{nodes}");

    // a comes back: nothing of its old run is left to close as gateway_restart.
    t.start_again().await;
    let rec = t.app.store.session(&id).await.unwrap();
    assert_eq!(rec.end_reason, Some(EndReason::NodeLost));
    assert_eq!(ended_events(&t.app.store, &id).await.len(), 1);
    let (_, nodes) = t.call("GET", "/api/v1/nodes", Some(&t.admin), None).await;
    let a = nodes
        .as_array()
        .and_then(|l| l.iter().find(|n| n["name"] == "a"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(a["state"], "alive", "{nodes}");
    b.stop().await;
    t.stop().await;
}
on_both_backends!(
    a_lost_node_s_sessions_are_closed_by_a_survivor,
    super::a_lost_node_s_sessions_are_closed_by_a_survivor
);

async fn two_survivors_sweeping_at_once_close_a_session_once(db: TestDb) {
    let t0 = portier::audit::truncate_micros(Utc::now());
    let clock = Arc::new(ManualClock::new(t0));
    let (t, id, t1) = crashed_node_a(db, &clock).await;
    // Two survivors, each with its own connection pool, sweep at the same moment.
    let s1 = portier::store::connect(&t.db.url).await.unwrap();
    let s2 = portier::store::connect(&t.db.url).await.unwrap();
    let stale_before = t1 + chrono::Duration::minutes(10);
    let mut closed = 0;
    for _ in 0..3 {
        let (c1, c2) = tokio::join!(
            s1.close_lost_node_sessions("b", stale_before),
            s2.close_lost_node_sessions("c", stale_before)
        );
        closed += c1.unwrap() + c2.unwrap();
    }
    assert_eq!(closed, 1);
    let rec = s1.session(&id).await.unwrap();
    assert_eq!(rec.end_reason, Some(EndReason::NodeLost));
    assert_eq!(rec.ended_at, Some(t1));
    assert_eq!(ended_events(&s1, &id).await.len(), 1);
    // A node never sweeps its own sessions, nor those of a node still beating.
    assert_eq!(s1.close_lost_node_sessions("a", stale_before).await.unwrap(), 0);
    let chain = portier::audit::verify_store(s1.as_ref(), |_| {}).await.unwrap();
    assert!(chain.valid, "{chain:?}");
}
on_both_backends!(
    two_survivors_sweeping_at_once_close_a_session_once,
    super::two_survivors_sweeping_at_once_close_a_session_once
);
