//! Admission cost with 10,000 devices, 1,000 vendors (2 technicians each) and
//! 100,000 windows in SQLite: the policy decision plus the store reads it needs
//! (a cached snapshot, checked against the store's change counter), reported as
//! percentiles. Also reports the cost of reloading the snapshot after a change.
//!
//! Run with `cargo bench --bench admission`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::IpAddr;
#[path = "common/seed.rs"]
mod seed;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use portier::admission::AdmissionCache;
use portier::clock::{SharedClock, SystemClock};
use portier::domain::Fingerprint;
use portier::policy::{decide, Decision, Facts, PolicySettings};
use portier::store::{self, Store};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::ConnectOptions;

const VENDORS: usize = 1_000;
const DEVICES: usize = 10_000;
const WINDOWS_PER_DEVICE: usize = 10;
const TECHS_PER_VENDOR: usize = 2;
const SAMPLES: usize = 200_000;

fn fingerprint(v: usize, t: usize) -> Fingerprint {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&(v as u64).to_be_bytes());
    b[8..16].copy_from_slice(&(t as u64).to_be_bytes());
    Fingerprint(b)
}

fn vendor_ip(v: usize) -> IpAddr {
    // 10.v_hi.v_lo.0/24 per vendor.
    IpAddr::from([10, (v >> 8) as u8, (v & 0xff) as u8, 7])
}

/// Seeds the database in one transaction (one fsync instead of 100,000).
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
        let [a, b, c, _] = match vendor_ip(v) {
            IpAddr::V4(ip) => ip.octets(),
            IpAddr::V6(_) => unreachable!(),
        };
        sqlx::query("INSERT INTO vendor_networks (vendor_id, network) VALUES (?, ?)")
            .bind(format!("v{v}"))
            .bind(format!("{a}.{b}.{c}.0/24"))
            .execute(&mut *tx)
            .await
            .unwrap();
        for t in 0..TECHS_PER_VENDOR {
            sqlx::query(
                "INSERT INTO technicians (id, vendor_id, name, subject, fingerprint_sha256, certificate_pem, not_after, created_at)
                 VALUES (?, ?, ?, ?, ?, '', ?, ?)",
            )
            .bind(format!("t{v}-{t}"))
            .bind(format!("v{v}"))
            .bind(format!("tech {t}"))
            .bind(format!("CN=tech {t}"))
            .bind(fingerprint(v, t).to_hex())
            .bind(now + 1000 * hour)
            .bind(now)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
    }
    // Eight past windows, one open now, one tomorrow.
    seed::devices_and_windows(&mut tx, now, DEVICES, VENDORS, WINDOWS_PER_DEVICE, |w| match w {
        8 => now - hour,
        9 => now + 24 * hour,
        past => now - (24 * (past as i64 + 1)) * hour,
    })
    .await;
    tx.commit().await.unwrap();
}

fn percentiles(mut v: Vec<Duration>) -> String {
    v.sort_unstable();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q) as usize];
    format!(
        "p50 {:>8.2?}  p99 {:>8.2?}  p99.9 {:>8.2?}  max {:>8.2?}  (n = {})",
        at(0.50),
        at(0.99),
        at(0.999),
        v[v.len() - 1],
        v.len()
    )
}

#[tokio::main]
async fn main() {
    // `cargo test --benches` runs this with `--bench` absent: keep that quick.
    if !std::env::args().any(|a| a == "--bench") {
        println!("admission bench: run with `cargo bench --bench admission`");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // PORTIER_BENCH_DB keeps the seeded database for inspection.
    let path = std::env::var_os("PORTIER_BENCH_DB").map_or_else(|| dir.path().join("bench.db"), Into::into);
    let url = format!("sqlite://{}", path.display());
    let store: Arc<dyn Store> = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let t = Instant::now();
    seed(&path).await;
    println!(
        "seeded {VENDORS} vendors, {} technicians, {DEVICES} devices, {} windows in {:.1?}",
        VENDORS * TECHS_PER_VENDOR,
        DEVICES * WINDOWS_PER_DEVICE,
        t.elapsed()
    );

    let clock: SharedClock = Arc::new(SystemClock);
    let cache = AdmissionCache::new(store.clone(), PolicySettings::default(), clock.clone());
    let mut reloads = Vec::new();
    for _ in 0..10 {
        cache.invalidate();
        let t = Instant::now();
        cache.snapshot().await.unwrap();
        reloads.push(t.elapsed());
    }
    println!("snapshot reload after a change:      {}", percentiles(reloads));

    let names: Vec<String> = (0..DEVICES).map(|d| format!("device-{d}")).collect();
    let mut rng_state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state
    };
    let mut samples = Vec::with_capacity(SAMPLES);
    let mut allowed = 0usize;
    for i in 0..SAMPLES {
        let d = (next() % DEVICES as u64) as usize;
        // Mostly the right vendor and address; every 10th a wrong source, every 20th a wrong vendor.
        let v = if i % 20 == 0 { (d + 1) % VENDORS } else { d % VENDORS };
        let ip = if i % 10 == 5 {
            IpAddr::from([192, 0, 2, 1])
        } else {
            vendor_ip(v)
        };
        let fp = fingerprint(v, i % TECHS_PER_VENDOR);
        let t = Instant::now();
        let snap = cache.snapshot().await.unwrap();
        let facts = Facts {
            sni: Some(&names[d]),
            fingerprint: Some(fp),
            source_ip: ip,
        };
        let decision = decide(&facts, &snap, clock.now());
        samples.push(t.elapsed());
        allowed += usize::from(matches!(decision, Decision::Allow(_)));
    }
    println!("admission (cached snapshot + policy): {}", percentiles(samples));
    println!("allowed {allowed} of {SAMPLES}");
}
