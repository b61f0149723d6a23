//! Portier's gateway side by side with a bare TLS proxy (and nginx and HAProxy
//! when installed), each server in a process of its own, one load client.
//!
//! Servers (columns):
//! - baseline: a bare tokio-rustls proxy (this binary re-executed), Portier's own
//!   `gateway_server_config` (TLS 1.3, client certificate required and verified
//!   against the vendor CA, no resumption), `copy_bidirectional` with the
//!   gateway's 64 KiB buffers; no policy, no record;
//! - Portier over SQLite (a file in a temporary directory), and over PostgreSQL
//!   when `PORTIER_TEST_PG_URL` is set (a database of its own, dropped at the
//!   end): a whole node (`App`), seeded through its API;
//! - nginx (`stream`) and HAProxy when installed: same certificate, key, vendor
//!   CA, suite and group; "not installed" otherwise.
//!
//! The device is a loopback backend (echo, sink or source); the load client
//! makes full TLS 1.3 handshakes with a technician certificate, never resumed,
//! from rotating 127.0.0.x addresses. Server CPU (utime + stime of the process
//! and its children) and RSS are read from `/proc` around each case. Figures
//! are medians over interleaved runs (baseline, Portier, …, baseline, Portier, …),
//! each run a fresh server process.
//!
//! Cases: 1–3 throughput (upload with 1 and 8 tunnels, download with 8);
//! 4–6 new tunnels (connect + handshake + 1-byte echo + close) one at a time
//! and 32 at a time, with latency; 7 memory per idle tunnel; 8 (Portier only)
//! tunnels cut when their window ends; 9 the durable write's fsync alone and
//! the journal's commit of a session record.
//!
//! Run with `cargo bench --bench gateway` (`PORTIER_TEST_PG_URL=postgres://…`
//! adds PostgreSQL). Knobs (environment):
//! - `PORTIER_BENCH_SECS` (3): seconds per throughput and per rate case;
//! - `PORTIER_BENCH_RUNS` (2): interleaved runs;
//! - `PORTIER_BENCH_IDLE` (2000): idle tunnels of case 7; a larger count (e.g.
//!   9000) is measured as well as 2,000, a smaller one instead of it;
//! - `PORTIER_BENCH_CUT` (1000): tunnels of case 8, 0 to skip it;
//! - `PORTIER_BENCH_CUT_SECS` (15): seconds from the window's approval to its end
//!   (the tunnels open meanwhile);
//! - `PORTIER_BENCH_SERVERS` (all): a subset of
//!   `baseline,sqlite,postgres,nginx,haproxy`;
//! - `PORTIER_BENCH_PERF` (unset): a directory; each server's new-tunnel cases
//!   are recorded there by `perf record -g` (Debian's `linux-perf`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "gateway_parts/external.rs"]
mod external;
#[path = "gateway_parts/load.rs"]
mod load;
#[path = "gateway_parts/procstat.rs"]
mod procstat;
#[path = "gateway_parts/seed.rs"]
mod seed;
#[path = "gateway_parts/servers.rs"]
mod servers;

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;
use load::{Backend, Client};
use portier::pki::CertAuthority;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use seed::{Api, Db, Scene};
use servers::Server;

const MIB: f64 = 1024.0 * 1024.0;

struct Knobs {
    secs: Duration,
    runs: usize,
    idle: Vec<usize>,
    cut: usize,
    cut_secs: u64,
    servers: Vec<String>,
    perf: Option<std::path::PathBuf>,
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

impl Knobs {
    fn from_env() -> Self {
        // 2,000 always; a larger count as well, a smaller one instead (quick runs).
        let idle = match env_num("PORTIER_BENCH_IDLE", 2000) as usize {
            n if n > 2000 => vec![2000, n],
            n => vec![n.max(1)],
        };
        let servers = std::env::var("PORTIER_BENCH_SERVERS")
            .unwrap_or_else(|_| "baseline,sqlite,postgres,nginx,haproxy".into())
            .split(',')
            .map(|s| s.trim().to_lowercase())
            .collect();
        Self {
            secs: Duration::from_secs(env_num("PORTIER_BENCH_SECS", 3)),
            runs: env_num("PORTIER_BENCH_RUNS", 2).max(1) as usize,
            idle,
            cut: env_num("PORTIER_BENCH_CUT", 1000) as usize,
            cut_secs: env_num("PORTIER_BENCH_CUT_SECS", 15),
            servers,
            perf: std::env::var_os("PORTIER_BENCH_PERF").map(std::path::PathBuf::from),
        }
    }

    fn wants(&self, s: &str) -> bool {
        self.servers.iter().any(|x| x == s)
    }
}

fn main() {
    if servers::child_main() {
        return;
    }
    // `cargo test --benches` runs this without `--bench`: keep that quick.
    if !std::env::args().any(|a| a == "--bench") {
        println!("gateway bench: run with `cargo bench --bench gateway`");
        return;
    }
    servers::raise_nofile();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(Knobs::from_env()));
}

/// A column of the table.
enum Kind {
    Baseline,
    Portier(usize),
    Nginx,
    Haproxy,
}

struct Column {
    title: String,
    kind: Kind,
    /// Why the column is empty.
    absent: Option<String>,
    runs: Vec<Measures>,
    negotiated: String,
    cut: Option<String>,
}

/// One run's figures for one server.
#[derive(Default)]
struct Measures {
    up1: (f64, f64),
    up8: (f64, f64),
    down8: (f64, f64),
    rate1: (f64, f64),
    rate32: (f64, f64),
    p50: f64,
    p99: f64,
    /// Bytes per idle tunnel, per count.
    idle: Vec<f64>,
    failures: u64,
}

/// A Portier store and what its seeding created.
struct Store {
    db: Db,
    scene: Scene,
}

/// The environment shared by every case.
struct Bench {
    dir: tempfile::TempDir,
    backend: Backend,
    client: Client,
    knobs: Knobs,
    nodes: std::sync::atomic::AtomicUsize,
}

impl Bench {
    fn config_dir(&self) -> &Path {
        self.dir.path()
    }

    fn certs(&self) -> std::path::PathBuf {
        self.dir.path().join("certs")
    }

    async fn portier(&self, store: &Db) -> Server {
        let n = self.nodes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Server::portier(
            &format!("Portier ({})", store.label),
            self.config_dir(),
            &store.url,
            &format!("bench-{n}"),
        )
        .await
    }
}

async fn run(knobs: Knobs) {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    portier::pki::generate_dev_pki(&certs).unwrap();
    let ca = CertAuthority::load(
        &std::fs::read_to_string(certs.join("vendor-ca.pem")).unwrap(),
        &std::fs::read_to_string(certs.join("vendor-ca.key")).unwrap(),
    )
    .unwrap();
    let tech = ca.issue_client("tech-acme", Some("Acme"), 30).unwrap();
    let tls = portier::gateway::tls::technician_client_config(
        CertificateDer::pem_file_iter(certs.join("server-ca.pem"))
            .unwrap()
            .map(Result::unwrap)
            .collect(),
        "localhost",
        vec![CertificateDer::from_pem_slice(tech.cert_pem.as_bytes()).unwrap()],
        PrivateKeyDer::from_pem_slice(tech.key_pem.as_bytes()).unwrap(),
        &[&rustls::version::TLS13],
    )
    .unwrap();
    // Full handshakes only: the gateway refuses resumption anyway; the others
    // are not given the chance.
    let mut tls = (*tls).clone();
    tls.resumption = rustls::client::Resumption::disabled();
    let backend = Backend::start().await;
    let bench = Bench {
        client: Client::new(tls),
        backend,
        dir,
        knobs,
        nodes: std::sync::atomic::AtomicUsize::new(0),
    };
    let k = &bench.knobs;

    // The stores, seeded through a node's API.
    let mut stores = Vec::new();
    let mut columns = Vec::new();
    let column = |title: &str, kind: Kind, absent: Option<String>| Column {
        title: title.to_owned(),
        kind,
        absent,
        runs: Vec::new(),
        negotiated: String::new(),
        cut: None,
    };
    columns.push(column("bare rustls proxy", Kind::Baseline, None));
    let pg = std::env::var("PORTIER_TEST_PG_URL").ok().filter(|s| !s.is_empty());
    for (key, title) in [("sqlite", "Portier (SQLite)"), ("postgres", "Portier (PostgreSQL)")] {
        if !k.wants(key) {
            columns.push(column(title, Kind::Portier(0), Some("not run".into())));
            continue;
        }
        let db = match (key, &pg) {
            ("sqlite", _) => Db::sqlite(bench.dir.path()),
            (_, Some(url)) => Db::postgres(url).await,
            (_, None) => {
                columns.push(column(
                    title,
                    Kind::Portier(0),
                    Some("PORTIER_TEST_PG_URL not set".into()),
                ));
                continue;
            }
        };
        let admin = db.admin().await;
        let node = bench.portier(&db).await;
        let api = Api::new(&bench.certs().join("server-ca.pem"), node.api.unwrap());
        let scene = seed::scene(&api, &admin, &tech.cert_pem, bench.backend.addr).await;
        node.stop().await;
        stores.push(Store { db, scene });
        columns.push(column(title, Kind::Portier(stores.len() - 1), None));
    }

    // The suite and group the gateway's configuration agrees on, for nginx and HAProxy.
    let probe = Server::baseline(&bench.certs(), bench.backend.addr).await;
    let (suite, group) = bench.client.negotiated(probe.addr).await.unwrap();
    probe.stop().await;
    let crypto = external::Crypto {
        suite: suite.replace("TLS13_", "TLS_"),
        group: match group.as_str() {
            "secp256r1" => "P-256".into(),
            "secp384r1" => "P-384".into(),
            other => other.to_owned(),
        },
    };
    let mut nginx = column("nginx stream", Kind::Nginx, None);
    let mut haproxy = column("HAProxy", Kind::Haproxy, None);
    for (c, key) in [(&mut nginx, "nginx"), (&mut haproxy, "haproxy")] {
        if !k.wants(key) {
            c.absent = Some("not run".into());
        }
    }
    columns.push(nginx);
    columns.push(haproxy);
    if !k.wants("baseline") {
        columns[0].absent = Some("not run".into());
    }

    let started = Instant::now();
    for run in 0..k.runs {
        for c in columns.iter_mut().filter(|c| c.absent.is_none()) {
            let server = match c.kind {
                Kind::Baseline => Server::baseline(&bench.certs(), bench.backend.addr).await,
                Kind::Portier(i) => bench.portier(&stores[i].db).await,
                Kind::Nginx => match external::nginx(&bench.certs(), bench.backend.addr, &crypto).await {
                    Ok(s) => s,
                    Err(why) => {
                        c.absent = Some(why);
                        continue;
                    }
                },
                Kind::Haproxy => match external::haproxy(&bench.certs(), bench.backend.addr, &crypto).await {
                    Ok(s) => s,
                    Err(why) => {
                        c.absent = Some(why);
                        continue;
                    }
                },
            };
            eprintln!("run {}/{}: {} (pid {})", run + 1, k.runs, c.title, server.pid);
            if let Ok((s, g)) = bench.client.negotiated(server.addr).await {
                c.negotiated = format!("{s}, {g}");
            }
            let m = measure(&bench, &server).await;
            if m.failures > 0 {
                eprintln!("  {} tunnels failed to open", m.failures);
            }
            c.runs.push(m);
            server.stop().await;
        }
    }
    eprintln!("interleaved runs: {:.0?}", started.elapsed());

    // 8: the window's end, once per store, on a fresh node.
    for c in columns.iter_mut().filter(|c| c.absent.is_none()) {
        if let (Kind::Portier(i), true) = (&c.kind, k.cut > 0) {
            let store = &stores[*i];
            let node = bench.portier(&store.db).await;
            c.cut = Some(window_end(&bench, &node, store).await);
            node.stop().await;
        }
    }

    // 9: the durable write.
    let mut fsync = seed::fsync_latencies(bench.dir.path(), 200);
    let mut journal = Vec::new();
    for s in &stores {
        let mut l = seed::journal_latencies(&s.db.url, &s.scene, 200).await;
        journal.push((s.db.label, percentiles(&mut l)));
    }

    print_table(&bench, &columns);
    println!();
    println!(
        "9. fsync of a 128-byte append in the bench's temporary directory (the SQLite file's filesystem): {}",
        percentiles(&mut fsync)
    );
    for (label, p) in journal {
        println!("   session record committed through the journal ({label}, one at a time, no load): {p}");
    }
    for s in stores {
        s.db.drop_it().await;
    }
}

/// Waits until the server's CPU time stops growing (tunnels closed by the
/// previous case finish their records), at most 60 s (thousands of session
/// ends to write).
async fn settle(pid: u32) {
    let mut last = procstat::cpu_seconds(pid);
    for _ in 0..240 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = procstat::cpu_seconds(pid);
        if now - last < 0.015 {
            return;
        }
        last = now;
    }
}

async fn measure(bench: &Bench, server: &Server) -> Measures {
    let (client, pid, addr, secs) = (&bench.client, server.pid, server.addr, bench.knobs.secs);
    let mut m = Measures::default();
    // Warm-up: allocator, runtime threads, admission snapshot, database pool.
    let warm = load::new_tunnels(client, addr, 8, Duration::from_millis(500)).await;
    m.failures += warm.failed;
    settle(pid).await;

    // 7. Memory per idle tunnel (first, before bulk transfers grow the heap).
    for &count in &bench.knobs.idle {
        let before = procstat::rss_bytes(pid);
        let tunnels = load::open_many(client, addr, count).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = procstat::rss_bytes(pid);
        match tunnels {
            Ok(t) => {
                m.idle.push(after.saturating_sub(before) as f64 / count as f64);
                drop(t);
            }
            Err(e) => {
                eprintln!("  {count} idle tunnels: {e}");
                m.idle.push(f64::NAN);
            }
        }
        settle(pid).await;
    }

    // 4–6. New tunnels.
    for (concurrency, slot) in [(1, &mut m.rate1), (32, &mut m.rate32)] {
        let perf = profile(bench, server, concurrency);
        let cpu = procstat::cpu_seconds(pid);
        let mut r = load::new_tunnels(client, addr, concurrency, secs).await;
        let cpu = procstat::cpu_seconds(pid) - cpu;
        if let Some(perf) = perf {
            perf.stop();
        }
        *slot = if r.done == 0 {
            (f64::NAN, f64::NAN)
        } else {
            (r.done as f64 / r.elapsed.as_secs_f64(), r.done as f64 / cpu.max(0.01))
        };
        m.failures += r.failed;
        if concurrency == 32 {
            r.latencies.sort_unstable();
            let at = |q: f64| {
                r.latencies
                    .get(((r.latencies.len() as f64 - 1.0) * q) as usize)
                    .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
            };
            (m.p50, m.p99) = (at(0.50), at(0.99));
        }
        settle(pid).await;
    }

    // 1–3. Throughput.
    for (mode, conns, slot) in [
        (load::UPLOAD, 1, &mut m.up1),
        (load::UPLOAD, 8, &mut m.up8),
        (load::DOWNLOAD, 8, &mut m.down8),
    ] {
        let mut cpu = Vec::new();
        let rate = load::throughput(client, &bench.backend, addr, mode, conns, secs, || {
            cpu.push(procstat::cpu_seconds(pid));
        })
        .await;
        match rate {
            Ok((bytes, span)) => {
                let cpu = (cpu[1] - cpu[0]).max(0.01);
                let mib = bytes as f64 / MIB;
                *slot = (mib / span.as_secs_f64(), mib / cpu);
            }
            Err(e) => {
                eprintln!("  throughput: {e}");
                *slot = (f64::NAN, f64::NAN);
            }
        }
        settle(pid).await;
    }
    m
}

/// `perf record` of one server during one new-tunnel case, when
/// `PORTIER_BENCH_PERF=DIR` is set: `DIR/<server>-c<concurrency>.data`, read
/// with `perf report -i … --no-children`.
fn profile(bench: &Bench, server: &Server, concurrency: usize) -> Option<procstat::Perf> {
    let dir = bench.knobs.perf.as_ref()?;
    let name: String = server.name.chars().filter(char::is_ascii_alphanumeric).collect();
    let out = dir.join(format!("{}-c{concurrency}.data", name.to_lowercase()));
    procstat::Perf::record(server.pid, &out)
}

/// Case 8: `knobs.cut` tunnels under one window that ends `knobs.cut_secs` after
/// its approval; when does each technician see its tunnel end?
async fn window_end(bench: &Bench, node: &Server, store: &Store) -> String {
    let k = &bench.knobs;
    let api = Api::new(&bench.certs().join("server-ca.pem"), node.api.unwrap());
    let ends = Utc::now() + chrono::Duration::seconds(k.cut_secs as i64);
    let (_, ends) = seed::window(&api, &store.scene, &store.scene.cut_device_id, ends).await;
    let client = bench.client.to("mri-2");
    // The approval reaches the node's admission state at once; allow for a feed poll.
    let first = Instant::now();
    while client.open_within(node.addr, load::ECHO).await.is_err() {
        if first.elapsed() > Duration::from_secs(5) {
            return "window not admitted within 5 s".into();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tunnels = match load::open_many(&client, node.addr, k.cut).await {
        Ok(t) => t,
        Err(e) => return format!("could not open {} tunnels: {e}", k.cut),
    };
    let opened_at = Utc::now();
    if opened_at >= ends {
        return format!(
            "{} tunnels took longer than PORTIER_BENCH_CUT_SECS={} to open",
            k.cut, k.cut_secs
        );
    }
    let mut readers = tokio::task::JoinSet::new();
    for mut t in tunnels {
        readers.spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut buf = [0u8; 256];
            loop {
                match t.read(&mut buf).await {
                    Ok(0) | Err(_) => return Utc::now(),
                    Ok(_) => {}
                }
            }
        });
    }
    let limit = (ends - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(10);
    let mut delays = Vec::new();
    let _ = tokio::time::timeout(limit, async {
        while let Some(Ok(at)) = readers.join_next().await {
            delays.push((at - ends).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0);
        }
    })
    .await;
    readers.abort_all();
    let early = delays.iter().filter(|d| **d < 0.0).count();
    let within = delays.iter().filter(|d| (0.0..=1000.0).contains(*d)).count();
    let max = delays.iter().copied().fold(f64::NAN, f64::max);
    let mut note = String::new();
    if early > 0 {
        note = format!(", {early} before the end");
    }
    if delays.len() < k.cut {
        note += &format!(", {} still open 10 s after", k.cut - delays.len());
    }
    format!(
        "{within}/{} within 1 s, max {max:.0} ms{note} (open {:.1} s before the end)",
        k.cut,
        (ends - opened_at).num_milliseconds() as f64 / 1000.0
    )
}

/// `p50 … p99 … max …` of `samples` (sorted in place).
fn percentiles(samples: &mut [Duration]) -> String {
    if samples.is_empty() {
        return "–".into();
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    format!(
        "p50 {:.2?}, p99 {:.2?}, max {:.2?} (n = {})",
        at(0.5),
        at(0.99),
        samples[samples.len() - 1],
        samples.len()
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| !x.is_nan());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn print_table(bench: &Bench, columns: &[Column]) {
    let k = &bench.knobs;
    let secs = k.secs.as_secs();
    println!();
    println!(
        "Gateway side by side: medians of {} interleaved runs, {secs} s per throughput and rate case; ratio to the bare proxy in parentheses",
        k.runs
    );
    println!();
    let mut head = "| case |".to_owned();
    let mut rule = "| --- |".to_owned();
    for c in columns {
        head += &format!(" {} |", c.title);
        rule += " --- |";
    }
    println!("{head}\n{rule}");
    type Pick = fn(&Measures) -> f64;
    let row = |label: &str, pick: Pick, digits: usize| {
        let base = columns
            .first()
            .filter(|c| c.absent.is_none())
            .map(|c| median(c.runs.iter().map(pick).collect()));
        let mut line = format!("| {label} |");
        for (i, c) in columns.iter().enumerate() {
            if let Some(why) = &c.absent {
                line += &format!(" {why} |");
                continue;
            }
            let v = median(c.runs.iter().map(pick).collect());
            if v.is_nan() {
                line += " – |";
                continue;
            }
            match base {
                Some(b) if i > 0 && b > 0.0 && !v.is_nan() => {
                    line += &format!(" {v:.digits$} ({:.2}×) |", v / b);
                }
                _ => line += &format!(" {v:.digits$} |"),
            }
        }
        println!("{line}");
    };
    row("1. upload, 1 tunnel (MiB/s)", |m| m.up1.0, 0);
    row("   … per server CPU second (MiB)", |m| m.up1.1, 0);
    row("2. upload, 8 tunnels (MiB/s)", |m| m.up8.0, 0);
    row("   … per server CPU second (MiB)", |m| m.up8.1, 0);
    row("3. download, 8 tunnels (MiB/s)", |m| m.down8.0, 0);
    row("   … per server CPU second (MiB)", |m| m.down8.1, 0);
    row("4. new tunnels/s, one at a time", |m| m.rate1.0, 0);
    row("   … per server CPU second", |m| m.rate1.1, 0);
    row("5. new tunnels/s, 32 concurrent", |m| m.rate32.0, 0);
    row("   … per server CPU second", |m| m.rate32.1, 0);
    row("6. new-tunnel latency at 32 concurrent, p50 (ms)", |m| m.p50, 2);
    row("   … p99 (ms)", |m| m.p99, 2);
    let idle: [Pick; 2] = [
        |m| m.idle.first().copied().unwrap_or(f64::NAN) / 1024.0,
        |m| m.idle.get(1).copied().unwrap_or(f64::NAN) / 1024.0,
    ];
    for (i, count) in k.idle.iter().enumerate() {
        row(
            &format!("7. memory per idle tunnel, {count} open (KiB RSS)"),
            idle[i.min(1)],
            1,
        );
    }
    let mut line = format!("| 8. window end, {} tunnels: cut within 1 s of the end |", k.cut);
    for c in columns {
        match (&c.absent, &c.kind, &c.cut) {
            (Some(why), _, _) => line += &format!(" {why} |"),
            (None, Kind::Portier(_), Some(cut)) => line += &format!(" {cut} |"),
            _ => line += " n/a |",
        }
    }
    println!("{line}");
    let mut line = "| TLS agreed (suite, group) |".to_owned();
    for c in columns {
        line += &format!(" {} |", c.absent.as_deref().unwrap_or(&c.negotiated));
    }
    println!("{line}");
}
