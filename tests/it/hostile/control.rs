//! Control of access under attack and outage (issue 8, defects 5 and 9):
//! emergency extensions stay capped and second-person approved; restrictive
//! actions (lockdown, revoke, terminate) take effect while the database is down.

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;
use crate::on_both_backends;

use super::support::{within, OwnPostgres};

fn time(v: &serde_json::Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

/// Defect 5: a vendor stretched a 10-minute emergency grant to 11 hours and its
/// granter approved the extension.
async fn emergency_extension_is_capped_and_second_person(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let device = echo_device().await;
    let sc = api_scene(&t, "Acme", "127.0.0.2", "mri-1", device).await;
    let vendor = t.token("vendor", "desk", Some(&sc.vendor_id)).await;
    let granter = t.token("security", "soc-1", None).await;
    let second = t.token("security", "soc-2", None).await;
    let (st, w) = t
        .call(
            "POST",
            "/api/v1/emergency",
            Some(&granter),
            Some(json!({"vendor_id": sc.vendor_id, "device_ids": [sc.device_id], "duration_minutes": 10, "justification": "MRI down"})),
        )
        .await;
    assert_eq!(st, 201, "{w}");
    let wid = w["id"].as_str().unwrap().to_owned();
    let starts = time(&w["starts_at"]);
    let ends = time(&w["ends_at"]);
    let mut tls = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut tls, b"urgent").await, b"urgent");

    // The attack: 11 hours (under the 12 h window cap, far over the 240 min emergency cap).
    let extend = |to: DateTime<Utc>| json!({"ends_at": to, "reason": "more work"});
    let path = format!("/api/v1/windows/{wid}/extend");
    let (st, e) = t
        .call(
            "POST",
            &path,
            Some(&vendor),
            Some(extend(ends + chrono::Duration::hours(11))),
        )
        .await;
    assert_eq!(st, 400, "{e}");
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("240") && msg.contains("policy.max_emergency_minutes"),
        "{msg}"
    );
    // Exactly at the cap is allowed to be asked for.
    let capped = starts + chrono::Duration::minutes(240);
    let (st, e) = t
        .call(
            "POST",
            &path,
            Some(&vendor),
            Some(extend(capped + chrono::Duration::seconds(1))),
        )
        .await;
    assert_eq!(st, 400, "one second over the cap: {e}");
    let (st, e) = t.call("POST", &path, Some(&vendor), Some(extend(capped))).await;
    assert_eq!(st, 200, "{e}");

    // Neither its granter nor an admin may approve it; the vendor neither.
    let approve = format!("/api/v1/windows/{wid}/approve");
    for token in [&granter, &t.admin, &vendor] {
        let (st, e) = t.call("POST", &approve, Some(token), None).await;
        assert_eq!(st, 403, "{e}");
    }
    let (st, w) = t
        .call("GET", &format!("/api/v1/windows/{wid}"), Some(&t.admin), None)
        .await;
    assert_eq!((st, time(&w["ends_at"])), (200, ends), "nothing moved yet: {w}");

    // A second security account approves: the live tunnel's deadline moves, capped.
    let (st, w) = t.call("POST", &approve, Some(&second), None).await;
    assert_eq!(st, 200, "{w}");
    assert_eq!(time(&w["ends_at"]), capped);
    assert_eq!(w["emergency"], json!(true));
    let live = t.app.registry.list();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].deadline, capped);
    assert_eq!(echo_roundtrip(&mut tls, b"still").await, b"still");

    // Already at the cap: nothing more can be asked for.
    let (st, e) = t
        .call(
            "POST",
            &path,
            Some(&vendor),
            Some(extend(capped + chrono::Duration::minutes(1))),
        )
        .await;
    assert_eq!(st, 400, "{e}");
    t.stop().await;
}
on_both_backends!(
    emergency_extension_capped,
    super::emergency_extension_is_capped_and_second_person
);

// ---------------------------------------------------------------------------
// Defect 9: nothing could be cut while the database was down.

/// Closes within `secs` of `from`.
fn closed_within(closed: DateTime<Utc>, from: DateTime<Utc>, secs: i64) {
    eprintln!("tunnel cut {} ms after the request", (closed - from).num_milliseconds());
    assert!(
        closed - from < chrono::Duration::seconds(secs),
        "cut after {} ms",
        (closed - from).num_milliseconds()
    );
}

async fn denial(t: &TestApp, sni: &str, tls: std::sync::Arc<rustls::ClientConfig>) -> String {
    let mut c = connect_from("127.0.0.2", t.app.gateway_addr, sni, tls).await.unwrap();
    read_all(&mut c).await.unwrap()
}

async fn audited(store: &dyn portier::store::Store, action: &str) -> bool {
    store
        .list_audit(&portier::store::AuditFilter {
            action: Some(action.into()),
            ..Default::default()
        })
        .await
        .is_ok_and(|l| !l.is_empty())
}

/// With the database stopped: a window revoke, a session termination and a
/// lockdown each cut their tunnel at once and keep refusing; once the database
/// is back, all three are stored without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restrictive_actions_hold_while_postgres_is_down() {
    let Some(pg) = OwnPostgres::start() else { return };
    let t = TestApp::spawn(TestDb::postgres_at(&pg.admin_url()).await).await;
    let sc = api_scene(&t, "Acme", "127.0.0.2", "mri-1", echo_device().await).await;
    let (st, d2) = t
        .call(
            "POST",
            "/api/v1/devices",
            Some(&t.admin),
            Some(json!({"name": "mri-2", "address": echo_device().await.to_string(), "protocol": "echo", "vendor_ids": [sc.vendor_id]})),
        )
        .await;
    assert_eq!(st, 201, "{d2}");
    let dev2 = d2["id"].as_str().unwrap().to_owned();
    let (st, d3) = t
        .call(
            "POST",
            "/api/v1/devices",
            Some(&t.admin),
            Some(json!({"name": "mri-3", "address": echo_device().await.to_string(), "protocol": "echo", "vendor_ids": [sc.vendor_id]})),
        )
        .await;
    assert_eq!(st, 201, "{d3}");
    let dev3 = d3["id"].as_str().unwrap().to_owned();
    let vendor = t.token("vendor", "desk", Some(&sc.vendor_id)).await;
    let security = t.token("security", "soc", None).await;
    let now = Utc::now();
    let (from, to) = (now - chrono::Duration::minutes(1), now + chrono::Duration::hours(1));
    let w1 = t.approved_window(&vendor, &security, &sc.device_id, from, to).await;
    t.approved_window(&vendor, &security, &dev2, from, to).await;
    t.approved_window(&vendor, &security, &dev3, from, to).await;
    let open = |sni: &'static str| {
        let tls = sc.tls.clone();
        let gw = t.app.gateway_addr;
        async move {
            let mut c = connect_from("127.0.0.2", gw, sni, tls).await.unwrap();
            assert_eq!(echo_roundtrip(&mut c, b"hello").await, b"hello");
            c
        }
    };
    let mut t1 = open("mri-1").await;
    let mut t2 = open("mri-2").await;
    let s2 = t
        .app
        .registry
        .list()
        .into_iter()
        .find(|l| l.device_id.as_str() == dev2)
        .unwrap()
        .id;
    let mut t3 = open("mri-2").await;
    let mut t4 = open("mri-3").await;

    pg.stop_server();

    // Device disable: 503, its tunnel cut at once and the device refused here.
    let sent = Utc::now();
    let path = format!("/api/v1/devices/{dev3}/disable");
    let ((st, e), closed) = tokio::join!(t.call("POST", &path, Some(&security), None), wait_closed(&mut t4));
    assert_eq!(st, 503, "{e}");
    assert!(e["message"].as_str().unwrap().contains("cut"), "{e}");
    closed_within(closed, sent, 2);
    let line = denial(&t, "mri-3", sc.tls.clone()).await;
    assert!(line.starts_with("PORTIER DENIED "), "{line}");

    // Revoke: 503 (not stored), but the tunnel is cut at once and the window refused here.
    let sent = Utc::now();
    let path = format!("/api/v1/windows/{w1}/revoke");
    let ((st, e), closed) = tokio::join!(
        t.call(
            "POST",
            &path,
            Some(&security),
            Some(json!({"reason": "compromised laptop"}))
        ),
        wait_closed(&mut t1)
    );
    assert_eq!(st, 503, "{e}");
    assert!(e["message"].as_str().unwrap().contains("cut"), "{e}");
    closed_within(closed, sent, 2);
    let line = denial(&t, "mri-1", sc.tls.clone()).await;
    assert!(line.starts_with("PORTIER DENIED "), "{line}");

    // Terminate: the same.
    let sent = Utc::now();
    let path = format!("/api/v1/sessions/{s2}/terminate");
    let ((st, e), closed) = tokio::join!(
        t.call("POST", &path, Some(&security), Some(json!({"reason": "suspicious"}))),
        wait_closed(&mut t2)
    );
    assert_eq!(st, 503, "{e}");
    closed_within(closed, sent, 2);
    assert_eq!(echo_roundtrip(&mut t3, b"other").await, b"other", "only that session");

    // Lockdown: 202, not persisted; everything cut, new tunnels refused with `lockdown`.
    let sent = Utc::now();
    let ((st, body), closed) = tokio::join!(
        t.call(
            "POST",
            "/api/v1/lockdown",
            Some(&security),
            Some(json!({"reason": "ransomware on the LAN"}))
        ),
        wait_closed(&mut t3)
    );
    assert_eq!(st, 202, "{body}");
    assert_eq!(body["persisted"], json!(false), "{body}");
    assert_eq!(body["active"], json!(true));
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    closed_within(closed, sent, 2);
    let line = denial(&t, "mri-2", sc.tls.clone()).await;
    assert!(line.starts_with("PORTIER DENIED lockdown "), "{line}");
    let (st, view) = t.call("GET", "/api/v1/lockdown", Some(&security), None).await;
    assert_eq!(st, 200, "{view}");
    assert_eq!(
        (view["active"].clone(), view["persisted"].clone()),
        (json!(true), json!(false))
    );

    // The database is back: everything is stored, without a restart.
    pg.start_server();
    let store = t.db.store.clone();
    within(40, "changes stored after the outage", || {
        let store = store.clone();
        let w1 = w1.clone();
        let dev3 = dev3.clone();
        async move {
            let locked = store.lockdown().await.ok()?.active;
            let revoked =
                store.window(&portier::domain::WindowId(w1)).await.ok()?.state == portier::domain::WindowState::Revoked;
            let disabled = !store
                .device(&portier::domain::DeviceId(dev3.clone()))
                .await
                .ok()?
                .enabled;
            let events = audited(store.as_ref(), "lockdown.on").await
                && audited(store.as_ref(), "window.revoked").await
                && audited(store.as_ref(), "session.terminated").await
                && audited(store.as_ref(), "device.disabled").await;
            (locked && revoked && disabled && events).then_some(())
        }
    })
    .await;
    let (st, view) = within(20, "lockdown shown as stored", || async {
        let (st, view) = t.call("GET", "/api/v1/lockdown", Some(&security), None).await;
        (view["persisted"] == json!(true)).then_some((st, view))
    })
    .await;
    assert_eq!((st, view["active"].clone()), (200, json!(true)), "{view}");
    // Back to normal service (breaker closed, change feed confirmed): the
    // stored lockdown is what refuses, and says so.
    within(20, "node ready again", || async {
        (t.call("GET", "/readyz", None, None).await.0 == 200).then_some(())
    })
    .await;
    let line = denial(&t, "mri-2", sc.tls.clone()).await;
    assert!(line.starts_with("PORTIER DENIED lockdown "), "{line}");

    // Lifting needs the database and works again; the revoked window stays refused.
    let (st, body) = t
        .call(
            "DELETE",
            "/api/v1/lockdown",
            Some(&security),
            Some(json!({"reason": "cleaned"})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let mut again = open("mri-2").await;
    assert_eq!(echo_roundtrip(&mut again, b"back").await, b"back");
    let line = denial(&t, "mri-1", sc.tls.clone()).await;
    assert!(line.starts_with("PORTIER DENIED no_active_window "), "{line}");
    drop(again);
    t.stop().await;
}

fn portier_cli(args: &[&str], config: &std::path::Path) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_portier"))
        .args(args)
        .arg("--config")
        .arg(config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

async fn finish(child: std::process::Child) -> std::process::Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap()
}

/// `portier lockdown on` reaches a running node through its lockdown file: with
/// the database stopped (`pg`), the live tunnel is cut within a second or two,
/// and the node stores the lockdown once the database is back.
async fn cli_lockdown(db: TestDb, pg: Option<&OwnPostgres>) {
    let t = TestApp::spawn(db).await;
    let (sc, _vendor, _security) = t.open_window_scene(echo_device().await).await;
    let mut tunnel = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut tunnel, b"hello").await, b"hello");
    let config = t.dir.path().join("portier.toml");
    if let Some(pg) = pg {
        pg.stop_server();
    }

    let sent = Utc::now();
    let child = portier_cli(&["lockdown", "on", "--reason", "ransomware on the LAN"], &config);
    closed_within(wait_closed(&mut tunnel).await, sent, 3);
    let line = denial(&t, "mri-1", sc.tls.clone()).await;
    assert!(line.starts_with("PORTIER DENIED lockdown "), "{line}");
    let out = finish(child).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("lockdown on"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(pg.is_some(), stderr.contains("not stored in the database"), "{stderr}");
    assert!(t.dir.path().join("lockdown").exists());

    if let Some(pg) = pg {
        // Lifting needs the database.
        let off = finish(portier_cli(&["lockdown", "off", "--reason", "too early"], &config)).await;
        assert!(!off.status.success());
        assert!(
            t.dir.path().join("lockdown").exists(),
            "the file stays while the database is down"
        );
        pg.start_server();
    }
    // Stored: by the CLI at once, or by the node once the database is back.
    let store = t.db.store.clone();
    let stored = within(40, "lockdown stored", || {
        let store = store.clone();
        async move { store.lockdown().await.ok().filter(|s| s.active) }
    })
    .await;
    assert_eq!(stored.reason.as_deref(), Some("ransomware on the LAN"));
    assert!(stored.set_by.unwrap().starts_with("cli:"));
    within(20, "lockdown audited", || async {
        audited(t.db.store.as_ref(), "lockdown.on").await.then_some(())
    })
    .await;
    // The API cannot lift a lockdown held by the node's file.
    let security = t.token("security", "soc-2", None).await;
    let (st, e) = t
        .call(
            "DELETE",
            "/api/v1/lockdown",
            Some(&security),
            Some(json!({"reason": "x"})),
        )
        .await;
    assert_eq!(st, 409, "{e}");

    let off = finish(portier_cli(&["lockdown", "off", "--reason", "cleaned"], &config)).await;
    assert!(off.status.success(), "{}", String::from_utf8_lossy(&off.stderr));
    assert!(!t.dir.path().join("lockdown").exists());
    let gw = t.app.gateway_addr;
    within(10, "tunnels admitted again", || {
        let tls = sc.tls.clone();
        async move {
            let mut c = connect_from("127.0.0.2", gw, "mri-1", tls).await.ok()?;
            c.write_all(b"x").await.ok()?;
            let mut b = [0u8; 1];
            tokio::time::timeout(std::time::Duration::from_secs(2), c.read_exact(&mut b))
                .await
                .ok()?
                .ok()?;
            (&b == b"x").then_some(())
        }
    })
    .await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_lockdown_reaches_a_node_whose_postgres_is_down() {
    let Some(pg) = OwnPostgres::start() else { return };
    let db = TestDb::postgres_at(&pg.admin_url()).await;
    cli_lockdown(db, Some(&pg)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_lockdown_through_the_file_sqlite() {
    cli_lockdown(TestDb::sqlite().await, None).await;
}

/// SQLite whose writes fail (another process holds the write lock): a revoke
/// cuts at once (503, retried) and a lockdown answers 202; both are stored once
/// the lock is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restrictive_actions_hold_while_sqlite_cannot_write() {
    use sqlx::Connection;
    let db = TestDb::sqlite().await;
    let url = db.url.clone();
    let t = TestApp::spawn(db).await;
    let sc = api_scene(&t, "Acme", "127.0.0.2", "mri-1", echo_device().await).await;
    let vendor = t.token("vendor", "desk", Some(&sc.vendor_id)).await;
    let security = t.token("security", "soc", None).await;
    let now = Utc::now();
    let w = t
        .approved_window(
            &vendor,
            &security,
            &sc.device_id,
            now - chrono::Duration::minutes(1),
            now + chrono::Duration::hours(1),
        )
        .await;
    let mut tunnel = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut tunnel, b"hello").await, b"hello");

    let mut holder = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut holder).await.unwrap();

    let sent = Utc::now();
    let path = format!("/api/v1/windows/{w}/revoke");
    let ((st, e), closed) = tokio::join!(
        t.call("POST", &path, Some(&security), Some(json!({"reason": "stolen laptop"}))),
        wait_closed(&mut tunnel)
    );
    assert_eq!(st, 503, "{e}");
    closed_within(closed, sent, 2);
    // Technician revocation and vendor disabling: 503, refused here, retried.
    let (st, techs) = t
        .call(
            "GET",
            &format!("/api/v1/vendors/{}/technicians", sc.vendor_id),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(st, 200, "{techs}");
    let tid = techs[0]["id"].as_str().unwrap().to_owned();
    let (st, e) = t
        .call(
            "DELETE",
            &format!("/api/v1/vendors/{}/technicians/{tid}", sc.vendor_id),
            Some(&security),
            None,
        )
        .await;
    assert_eq!(st, 503, "{e}");
    let (st, e) = t
        .call(
            "POST",
            &format!("/api/v1/vendors/{}/disable", sc.vendor_id),
            Some(&security),
            None,
        )
        .await;
    assert_eq!(st, 503, "{e}");
    // Refused: by the local deny-list, or earlier by the store's breaker, which
    // the failed writes opened (no tunnel can be recorded now anyway).
    let line = denial(&t, "mri-1", sc.tls.clone()).await;
    assert!(
        line.starts_with("PORTIER DENIED unknown_technician ") || line.starts_with("PORTIER DENIED store_unavailable "),
        "{line}"
    );
    let (st, body) = t
        .call(
            "POST",
            "/api/v1/lockdown",
            Some(&security),
            Some(json!({"reason": "incident"})),
        )
        .await;
    assert_eq!((st, body["persisted"].clone()), (202, json!(false)), "{body}");
    let line = denial(&t, "mri-1", sc.tls.clone()).await;
    assert!(line.starts_with("PORTIER DENIED lockdown "), "{line}");

    sqlx::raw_sql("ROLLBACK").execute(&mut holder).await.unwrap();
    drop(holder);
    let store = t.db.store.clone();
    let vendor_id = sc.vendor_id.clone();
    within(40, "changes stored once writable", || {
        let (store, w, tid, vendor_id) = (store.clone(), w.clone(), tid.clone(), vendor_id.clone());
        async move {
            let locked = store.lockdown().await.ok()?.active;
            let revoked =
                store.window(&portier::domain::WindowId(w)).await.ok()?.state == portier::domain::WindowState::Revoked;
            let tech = store
                .technician(&portier::domain::TechnicianId(tid.clone()))
                .await
                .ok()?;
            let vendor = store.vendor(&portier::domain::VendorId(vendor_id.clone())).await.ok()?;
            let events = audited(store.as_ref(), "lockdown.on").await
                && audited(store.as_ref(), "window.revoked").await
                && audited(store.as_ref(), "technician.revoked").await
                && audited(store.as_ref(), "vendor.disabled").await;
            (locked && revoked && events && tech.revoked_at.is_some() && !vendor.enabled).then_some(())
        }
    })
    .await;
    t.stop().await;
}
