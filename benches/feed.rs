//! The change feed at 100,000 open windows (10,000 devices, 1,000 vendors) in
//! SQLite: the cost of applying one change to the admission snapshot, in memory
//! (copy-on-write of the touched entries, then publishing the new snapshot) and
//! end to end (reading the feed entry and the changed window back from the
//! store, applying, checking the live tunnels), against a full reload.
//!
//! Run with `cargo bench --bench feed`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "common/seed.rs"]
mod seed;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use portier::clock::{SharedClock, SystemClock};
use portier::cluster::{Feed, FeedSettings, Indexed, Reread};
use portier::domain::{DeviceId, WindowState};
use portier::gateway::Registry;
use portier::store::{self, Change, Effects, Store, WindowAdmission, WindowTransition};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::ConnectOptions;

const VENDORS: usize = 1_000;
const DEVICES: usize = 10_000;
const WINDOWS_PER_DEVICE: usize = 10;
/// Changes applied per measurement.
const IN_MEMORY: usize = 5_000;
const END_TO_END: usize = 500;

/// Seeds the database in one transaction: every window approved and open or
/// to come, so all 100,000 are in the snapshot.
async fn seed(path: &std::path::Path) {
    let mut conn = SqliteConnectOptions::new().filename(path).connect().await.unwrap();
    let now = Utc::now().timestamp_micros();
    let hour = 3_600_000_000i64;
    let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
    for v in 0..VENDORS {
        sqlx::query("INSERT INTO vendors (id, name, enabled, created_at) VALUES (?, ?, 1, ?)")
            .bind(format!("v{v}"))
            .bind(format!("Vendor {v}"))
            .bind(now)
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query("INSERT INTO vendor_networks (vendor_id, network) VALUES (?, ?)")
            .bind(format!("v{v}"))
            .bind(format!("10.{}.{}.0/24", v >> 8, v & 0xff))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    seed::devices_and_windows(&mut tx, now, DEVICES, VENDORS, WINDOWS_PER_DEVICE, |w| {
        now - hour + (w as i64) * 24 * hour
    })
    .await;
    tx.commit().await.unwrap();
}

fn percentiles(mut v: Vec<Duration>) -> String {
    v.sort_unstable();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q) as usize];
    format!(
        "p50 {:>9.2?}  p99 {:>9.2?}  max {:>9.2?}  (n = {})",
        at(0.50),
        at(0.99),
        v[v.len() - 1],
        v.len()
    )
}

/// A xorshift generator: the same sequence on every run.
fn rng() -> impl FnMut() -> usize {
    let mut s = 0x2545_f491_4f6c_dd1du64;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s as usize
    }
}

#[tokio::main]
async fn main() {
    // `cargo test --benches` runs this with `--bench` absent: keep that quick.
    if !std::env::args().any(|a| a == "--bench") {
        println!("feed bench: run with `cargo bench --bench feed`");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let store: Arc<dyn Store> = store::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    store.migrate().await.unwrap();
    let t = Instant::now();
    seed(&path).await;
    println!(
        "seeded {VENDORS} vendors, {DEVICES} devices, {} windows in {:.1?}",
        DEVICES * WINDOWS_PER_DEVICE,
        t.elapsed()
    );

    let mut loads = Vec::new();
    let mut snapshot = None;
    for _ in 0..5 {
        let t = Instant::now();
        snapshot = Some(store.load_admission_snapshot(Utc::now()).await.unwrap());
        loads.push(t.elapsed());
    }
    let snapshot = snapshot.unwrap();
    let open: usize = snapshot.windows.values().map(Vec::len).sum();
    println!("windows in the snapshot: {open}");
    println!("full reload:                          {}", percentiles(loads));

    // In memory: one window's end moved, applied to the snapshot and published
    // (the published copy shares all but the touched shard with the next).
    let entries: Vec<(DeviceId, portier::policy::WindowEntry)> = snapshot
        .windows
        .iter()
        .flat_map(|(d, l)| l.iter().map(move |w| (d.clone(), w.clone())))
        .collect();
    let mut state = Indexed::new(snapshot);
    let mut published = Arc::new(state.snapshot().clone());
    let mut next = rng();
    let mut applied = Vec::with_capacity(IN_MEMORY);
    for i in 0..IN_MEMORY {
        let (device, entry) = &entries[next() % entries.len()];
        let mut moved = entry.clone();
        moved.ends_at += chrono::Duration::minutes(1 + i as i64 % 30);
        let change = Reread::Window {
            id: moved.id.clone(),
            window: Some(WindowAdmission {
                vendor_id: moved.vendor_id.clone(),
                state: WindowState::Approved,
                devices: vec![device.clone()],
                entry: Some(moved),
            }),
            vendor: None,
        };
        let t = Instant::now();
        state.apply(&change);
        published = Arc::new(state.snapshot().clone());
        applied.push(t.elapsed());
    }
    assert_eq!(published.windows.values().map(Vec::len).sum::<usize>(), open);
    println!("one change, in memory (apply+publish): {}", percentiles(applied));

    // End to end: a window extended in the store, then the follower reads the
    // feed entry, re-reads the window and its vendor, applies and checks tunnels.
    let registry = Arc::new(Registry::default());
    let clock: SharedClock = Arc::new(SystemClock);
    let feed = Feed::new(store.clone(), registry, clock, FeedSettings::default());
    feed.read().await.unwrap();
    let mut caught = Vec::with_capacity(END_TO_END);
    for i in 0..END_TO_END {
        let d = next() % DEVICES;
        let id = format!("w{d}-{}", next() % WINDOWS_PER_DEVICE).as_str().into();
        let approved = WindowTransition {
            from: vec![WindowState::Approved],
            to: WindowState::Approved,
            by: "bench".into(),
            reason: Some(format!("touch {i}")),
            at: Utc::now(),
        };
        // A no-op transition still commits a feed entry for the window.
        let record = |w: &portier::store::Window| {
            Effects::audit(portier::audit::AuditEvent {
                at: portier::audit::truncate_micros(Utc::now()),
                actor: "bench".into(),
                action: "bench.change".into(),
                object: w.id.to_string(),
                outcome: "success".into(),
                details: serde_json::json!({}),
            })
            .change(Change::Window(w.id.clone()))
        };
        store.transition_window(&id, &approved, &record).await.unwrap();
        let t = Instant::now();
        feed.catch_up().await.unwrap();
        caught.push(t.elapsed());
    }
    println!("one change, end to end (catch_up):     {}", percentiles(caught));
    assert_eq!(feed.mismatches(), 0);
}
