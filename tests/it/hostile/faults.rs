//! Hostile tests: faults. A database that fills up or stops, a node that crashes,
//! two processes under one node name (issue 8: defects 3, 7, 8, 10).
//!
//! Outages are real: the SQLite file lives on a small tmpfs the test fills (needs
//! root to mount; a non-root run says it is skipped), the PostgreSQL server is one
//! the test starts itself on a free port and stops (never the shared one).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use portier::clock::{ManualClock, SharedClock, SystemClock};
use portier::domain::{EndReason, SessionId};
use portier::store::{AuditFilter, SessionFilter};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;
use crate::on_both_backends;

use super::support::{ended_events, is_root, skip, within, OwnPostgres};

/// Quick liveness settings, so that outages are noticed within a second or two.
const FAST: &str = "database.heartbeat_secs = 1\ndatabase.node_stale_secs = 3\ndatabase.checkpoint_secs = 1\ndatabase.probe_ms = 200\n";

/// A small tmpfs, unmounted when dropped (whatever the test's outcome).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (and a "skipped" line) when not root; a root that cannot mount fails.
    fn mount(size: &str) -> Option<Self> {
        if !is_root() {
            skip("mounting a tmpfs to fill needs root");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "running as root, yet cannot mount a tmpfs");
        Some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Fills the filesystem holding `dir` to the last byte; returns the filler.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    // What is left is smaller than a chunk: byte by byte.
    while matches!(f.write(&[0]), Ok(1)) {}
    path
}

/// Moves everything from SQLite's WAL into the database file and empties the WAL,
/// so the next write must grow a file (and fails on a full disk).
async fn empty_wal(url: &str) {
    let pool = sqlx::SqlitePool::connect(url).await.unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

/// A database the test can take down and bring back.
enum Outage {
    /// SQLite on a tmpfs: down = the filesystem is full.
    Disk {
        fs: Tmpfs,
        url: String,
        filler: Option<PathBuf>,
    },
    /// PostgreSQL of our own: down = the server is stopped.
    Server(OwnPostgres),
}

impl Outage {
    async fn sqlite() -> Option<Self> {
        let fs = Tmpfs::mount("32m")?;
        let url = format!("sqlite://{}", fs.path().join("portier.db").display());
        Some(Self::Disk { fs, url, filler: None })
    }

    async fn postgres() -> Option<Self> {
        let pg = tokio::task::spawn_blocking(OwnPostgres::start).await.unwrap()?;
        let admin = sqlx::PgPool::connect(&pg.admin_url()).await.unwrap();
        sqlx::query("CREATE DATABASE portier").execute(&admin).await.unwrap();
        admin.close().await;
        Some(Self::Server(pg))
    }

    fn url(&self) -> String {
        match self {
            Self::Disk { url, .. } => url.clone(),
            Self::Server(pg) => pg.url(),
        }
    }

    async fn down(&mut self) {
        match self {
            Self::Disk { fs, url, filler } => {
                empty_wal(url).await;
                *filler = Some(fill(fs.path()));
            }
            Self::Server(pg) => tokio::task::block_in_place(|| pg.stop_server()),
        }
    }

    async fn up(&mut self) {
        match self {
            Self::Disk { filler, .. } => {
                if let Some(f) = filler.take() {
                    std::fs::remove_file(f).unwrap();
                }
            }
            Self::Server(pg) => tokio::task::block_in_place(|| pg.start_server()),
        }
    }
}

/// Defines `<name>::sqlite` (tmpfs) and `<name>::postgres` (own server) over an [`Outage`].
macro_rules! with_outage {
    ($name:ident, $body:path) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(o) = super::Outage::sqlite().await {
                    $body(o).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(o) = super::Outage::postgres().await {
                    $body(o).await;
                }
            }
        }
    };
}

/// Opens a tunnel and sends a probe: `Ok` with the stream if it is echoed back,
/// `Err(what the gateway said)` if refused.
async fn try_tunnel(
    gateway: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    let mut s = connect_from("127.0.0.2", gateway, "mri-1", tls)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    // A refusal may already be on its way: a failed write is fine, the read tells.
    let _ = s.write_all(b"ping").await;
    let _ = s.flush().await;
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while got.len() < 4 {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return Err("no answer within 10 s".into()),
        }
    }
    if got == b"ping" {
        return Ok(s);
    }
    if let Ok(rest) = read_all(&mut s).await {
        got.extend_from_slice(rest.as_bytes());
    }
    Err(String::from_utf8_lossy(&got).into_owned())
}

async fn metrics(t: &TestApp) -> String {
    t.http
        .get(t.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn readyz(t: &TestApp) -> u16 {
    t.call("GET", "/readyz", None, None).await.0
}

// --- defect 3: SQLite recovers after a disk-full, /readyz says when it cannot write ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_recovers_after_disk_full_without_restart() {
    let Some(mut db) = Outage::sqlite().await else {
        return;
    };
    let t = TestApp::spawn_config(TestDb::at(&db.url()).await, FAST, "", Arc::new(SystemClock)).await;
    let device = echo_device().await;
    let (sc, _vendor, _security) = t.open_window_scene(device).await;
    drop(try_tunnel(t.app.gateway_addr, sc.tls.clone()).await.unwrap());
    assert_eq!(readyz(&t).await, 200);

    db.down().await;
    let refused = try_tunnel(t.app.gateway_addr, sc.tls.clone())
        .await
        .map(drop)
        .expect_err("a tunnel on a full disk");
    assert!(refused.starts_with("PORTIER DENIED store_unavailable"), "{refused}");
    within(10, "/readyz 503 while writes fail", || async {
        (readyz(&t).await == 503).then_some(())
    })
    .await;
    let (st, body) = t
        .call(
            "POST",
            "/api/v1/vendors",
            Some(&t.admin),
            Some(json!({"name": "Full Disk", "networks": ["127.0.0.9"]})),
        )
        .await;
    assert_eq!(st, 503, "{body}");

    db.up().await;
    within(10, "/readyz 200 once writes succeed", || async {
        (readyz(&t).await == 200).then_some(())
    })
    .await;
    // More changes than the pool has connections: none of them was left mid-transaction.
    for i in 0..12 {
        let (st, body) = t
            .call(
                "POST",
                "/api/v1/vendors",
                Some(&t.admin),
                Some(json!({"name": format!("After {i}"), "networks": [format!("127.0.1.{i}")]})),
            )
            .await;
        assert_eq!(st, 201, "change {i} after the disk was freed: {body}");
    }
    for _ in 0..3 {
        let mut s = try_tunnel(t.app.gateway_addr, sc.tls.clone())
            .await
            .expect("admitted again");
        assert_eq!(echo_roundtrip(&mut s, b"after").await, b"after");
    }
    t.stop().await;
}

// --- defect 8: refusals stay fast once the store is known down ---

async fn refusals_stay_fast_during_an_outage(mut db: Outage) {
    let t = TestApp::spawn_config(TestDb::at(&db.url()).await, FAST, "", Arc::new(SystemClock)).await;
    let device = echo_device().await;
    let (sc, _vendor, _security) = t.open_window_scene(device).await;
    drop(try_tunnel(t.app.gateway_addr, sc.tls.clone()).await.unwrap());

    db.down().await;
    within(30, "the store's breaker opens", || async {
        (!t.app.store.health().is_up()).then_some(())
    })
    .await;
    assert_eq!(readyz(&t).await, 503);
    let attempts: Vec<_> = (0..5)
        .map(|_| {
            let (gw, tls) = (t.app.gateway_addr, sc.tls.clone());
            tokio::spawn(async move {
                let t0 = Instant::now();
                let r = try_tunnel(gw, tls).await.map(drop);
                (r, t0.elapsed())
            })
        })
        .collect();
    for a in attempts {
        let (r, took) = a.await.unwrap();
        let said = r.expect_err("refused while the store is down");
        assert!(said.starts_with("PORTIER DENIED store_unavailable"), "{said}");
        eprintln!("refused during the outage in {took:?}");
        // A generous bound (the promise is about a second), not a speed target.
        assert!(took < Duration::from_secs(3), "refusal took {took:?}");
    }

    db.up().await;
    let mut s = within(30, "a tunnel admitted once the store is back", || async {
        try_tunnel(t.app.gateway_addr, sc.tls.clone()).await.ok()
    })
    .await;
    assert_eq!(echo_roundtrip(&mut s, b"back").await, b"back");
    assert_eq!(readyz(&t).await, 200);
    drop(s);
    t.stop().await;
}
with_outage!(
    refusals_stay_fast_during_an_outage,
    super::refusals_stay_fast_during_an_outage
);

// --- defect 7: a session end lost in an outage is retried until durable ---

async fn session_end_in_an_outage_is_recorded_after_it(mut db: Outage) {
    let t = TestApp::spawn_config(TestDb::at(&db.url()).await, FAST, "", Arc::new(SystemClock)).await;
    let device = echo_device().await;
    let (sc, _vendor, security) = t.open_window_scene(device).await;
    let mut s = try_tunnel(t.app.gateway_addr, sc.tls.clone()).await.unwrap();
    let data = vec![b'x'; 996];
    assert_eq!(echo_roundtrip(&mut s, &data).await, data);
    let id = t.app.registry.list()[0].id.clone();
    let (_, live) = t
        .call("GET", "/api/v1/sessions?active=true", Some(&security), None)
        .await;
    assert_eq!(
        live.as_array().map(Vec::len),
        Some(1),
        "a live session is listed: {live}"
    );
    assert_eq!(live[0]["live"], true);

    db.down().await;
    within(30, "the store's breaker opens", || async {
        (!t.app.store.health().is_up()).then_some(())
    })
    .await;
    assert_eq!(readyz(&t).await, 503);
    drop(s); // the technician leaves during the outage
    within(10, "tunnel ended", || async { t.app.registry.is_empty().then_some(()) }).await;
    // The end reaches the journal after the TLS close (at most 1 s): let it meet the outage.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let m = metrics(&t).await;
    assert!(m.contains("portier_store_writable 0\n"), "{m}");
    assert!(
        !m.contains("portier_journal_queued 0\n"),
        "the end waits in the queue: {m}"
    );

    db.up().await;
    let session = within(30, "session end recorded after the outage", || async {
        t.app.store.session(&id).await.ok().filter(|s| s.ended_at.is_some())
    })
    .await;
    assert_eq!(session.end_reason, Some(EndReason::ClientClosed));
    assert_eq!(session.bytes_from_vendor, 1000, "4 bytes of probe + 996");
    assert_eq!(session.bytes_to_vendor, 1000);
    let ended = ended_events(&t.app.store, &id).await;
    assert_eq!(ended.len(), 1, "one session.ended event: {ended:?}");
    within(5, "metrics show the queue drained", || async {
        let m = metrics(&t).await;
        (m.contains("portier_store_writable 1\n") && m.contains("portier_journal_queued 0\n")).then_some(())
    })
    .await;
    let (_, live) = t
        .call("GET", "/api/v1/sessions?active=true", Some(&security), None)
        .await;
    assert_eq!(live, json!([]));
    t.stop().await;
}
with_outage!(
    session_end_in_an_outage_is_recorded_after_it,
    super::session_end_in_an_outage_is_recorded_after_it
);

// --- defect 10: crash recovery records the last heartbeat, the checkpointed bytes, an event ---

async fn crash_recovery_records_the_last_known_facts(db: TestDb) {
    let t0 = portier::audit::truncate_micros(Utc::now());
    let clock = Arc::new(ManualClock::new(t0));
    let shared: SharedClock = clock.clone();
    let mut t = TestApp::spawn_config(db, FAST, "", shared).await;
    let device = echo_device().await;
    let (sc, _vendor, security) = t.open_window_scene(device).await;
    let mut s = try_tunnel(t.app.gateway_addr, sc.tls.clone()).await.unwrap();
    let id: SessionId = t.app.registry.list()[0].id.clone();

    // The node is alive at t1 and has relayed 5000 bytes each way when it dies.
    let t1 = t0 + chrono::Duration::seconds(30);
    clock.set(t1);
    let data = vec![b'y'; 4996];
    assert_eq!(echo_roundtrip(&mut s, &data).await, data);
    within(10, "bytes checkpointed", || async {
        let rec = t.app.store.session(&id).await.ok()?;
        (rec.bytes_from_vendor == 5000 && rec.bytes_to_vendor == 5000).then_some(())
    })
    .await;
    let (_, live) = t
        .call("GET", "/api/v1/sessions?active=true", Some(&security), None)
        .await;
    assert_eq!(live.as_array().map(Vec::len), Some(1), "{live}");

    t.app.abort(); // kill -9: no end recorded, no release of the name
    let t2 = t1 + chrono::Duration::minutes(10);
    clock.set(t2);
    // The session is live nowhere now, whatever its record says.
    let open = t
        .app
        .store
        .list_sessions(&SessionFilter {
            active: Some(true),
            live_after: Some(t2 - chrono::Duration::seconds(3)),
            ..SessionFilter::default()
        })
        .await
        .unwrap();
    assert!(open.is_empty(), "{open:?}");
    let alive = t.app.store.live_nodes(t2 - chrono::Duration::seconds(3)).await.unwrap();
    assert!(alive.is_empty(), "{alive:?}");
    drop(s);

    t.start_again().await;
    let rec = t.app.store.session(&id).await.unwrap();
    assert_eq!(rec.end_reason, Some(EndReason::GatewayRestart));
    let (_, view) = t
        .call("GET", &format!("/api/v1/sessions/{id}"), Some(&security), None)
        .await;
    assert_eq!(view["live"], false, "{view}");
    assert_eq!(
        rec.ended_at,
        Some(t1),
        "ended at the last heartbeat, not at the restart ({t2})"
    );
    assert_eq!((rec.bytes_from_vendor, rec.bytes_to_vendor), (5000, 5000));
    let ended = ended_events(&t.app.store, &id).await;
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0].at, t1);
    let details: serde_json::Value = serde_json::from_str(&ended[0].details).unwrap();
    assert_eq!(details["end_reason"], "gateway_restart");
    assert_eq!(details["bytes_from_vendor"], 5000);
    t.stop().await;
}
on_both_backends!(
    crash_recovery_records_the_last_known_facts,
    super::crash_recovery_records_the_last_known_facts
);

// --- two processes, one node name ---

async fn a_second_process_with_the_same_node_name_is_refused(db: TestDb) {
    let mut t = TestApp::spawn_config(db, FAST, "", Arc::new(SystemClock)).await;
    let device = echo_device().await;
    let (sc, _vendor, _security) = t.open_window_scene(device).await;
    let mut s = try_tunnel(t.app.gateway_addr, sc.tls.clone()).await.unwrap();

    let Err(err) = portier::app::App::start_with_clock(t.settings(), Arc::new(SystemClock)).await else {
        panic!("a second process under the same name must be refused");
    };
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&format!("{:?}", t.settings().gateway.node)) && msg.contains("gateway.node"),
        "the message names the node and the key to change: {msg}"
    );
    // The first node's tunnel was not touched.
    assert_eq!(echo_roundtrip(&mut s, b"still here").await, b"still here");
    assert_eq!(t.app.registry.len(), 1);

    // Another name runs beside it.
    let mut other = t.settings().clone();
    other.gateway.node = "node-b".into();
    let b = portier::app::App::start_with_clock(&other, Arc::new(SystemClock))
        .await
        .unwrap();
    b.stop().await;
    drop(s);

    // A clean stop frees the name at once.
    t.restart().await;
    drop(try_tunnel(t.app.gateway_addr, sc.tls.clone()).await.unwrap());
    t.stop().await;
}
on_both_backends!(
    a_second_process_with_the_same_node_name_is_refused,
    super::a_second_process_with_the_same_node_name_is_refused
);

// --- the retry queue is bounded, and says what it had to drop ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_queue_is_bounded_and_reports_what_it_dropped() {
    let Some(mut db) = Outage::sqlite().await else {
        return;
    };
    let config = format!("{FAST}database.retry_queue = 3\n");
    let t = TestApp::spawn_config(TestDb::at(&db.url()).await, &config, "", Arc::new(SystemClock)).await;
    let device = echo_device().await;
    let (sc, _vendor, _security) = t.open_window_scene(device).await;
    let before = t
        .app
        .store
        .list_audit(&AuditFilter {
            action: Some("admission.denied".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap()
        .len();

    db.down().await;
    // Five denials: within the per-(source, reason) audit budget of 5 a second,
    // so the budget suppresses none and the queue alone decides.
    for _ in 0..5 {
        let said = try_tunnel(t.app.gateway_addr, sc.tls.clone())
            .await
            .map(drop)
            .expect_err("refused on a full disk");
        assert!(said.starts_with("PORTIER DENIED store_unavailable"), "{said}");
    }
    db.up().await;

    let dropped = within(10, "the dropped count is recorded", || async {
        let events = t
            .app
            .store
            .list_audit(&AuditFilter {
                action: Some("journal.events_dropped".into()),
                ..AuditFilter::default()
            })
            .await
            .ok()?;
        let e = events.first()?;
        let d: serde_json::Value = serde_json::from_str(&e.details).ok()?;
        d["dropped"].as_u64()
    })
    .await;
    let denials = t
        .app
        .store
        .list_audit(&AuditFilter {
            action: Some("admission.denied".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap()
        .len()
        - before;
    assert_eq!(denials, 3, "the queue kept as many denials as it may");
    assert_eq!(dropped, 2, "and counted the rest");
    t.stop().await;
}
