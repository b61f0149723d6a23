//! Cross-node cut latency: two nodes (`App`s, in this process) on one PostgreSQL
//! database; a tunnel live on node B, its window revoked through node A's API.
//! Measured over 100 trials, each with a window of its own (requested and
//! approved through B, so B admits it at once):
//!
//! - change → closed: from the change's timestamp (`changes.at`, taken just
//!   before its transaction commits, so an upper bound of commit → closed) to
//!   the technician's side of the tunnel on B reading its end;
//! - request → closed: from sending the revocation to A to the same end.
//!
//! A trial whose tunnel is still open 2 s after the call counts as missed; the
//! run stops after 3 misses in a row (a node that does not follow the change
//! feed cuts nothing) and in any case after 3 minutes.
//!
//! Run with `PORTIER_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/test cargo
//! bench --bench cluster`; without it the bench says it is skipped. It creates a
//! database of its own on that server and drops it at the end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use portier::app::App;
use portier::audit::AuditEvent;
use portier::config::Settings;
use portier::domain::Role;
use portier::events::Event;
use portier::pki::CertAuthority;
use portier::store::{Effects, NewUser};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};

const TRIALS: usize = 100;
/// A tunnel still open this long after the revocation is a missed cut.
const TRIAL_WAIT: Duration = Duration::from_secs(2);
/// Stop after this many missed cuts in a row.
const MISSES_IN_A_ROW: usize = 3;
/// The whole run, setup excluded.
const BUDGET: Duration = Duration::from_secs(180);

fn main() {
    let Some(admin) = std::env::var("PORTIER_TEST_PG_URL").ok().filter(|s| !s.is_empty()) else {
        println!(
            "cluster bench skipped: PORTIER_TEST_PG_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/test)"
        );
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let db = rt.block_on(Database::create(&admin));
    rt.block_on(run(&db.url));
    rt.block_on(db.drop_it());
}

/// A database of the bench's own on the server `PORTIER_TEST_PG_URL` designates.
struct Database {
    admin: String,
    name: String,
    url: String,
}

impl Database {
    async fn create(admin: &str) -> Self {
        let name = format!("portier_bench_{}", uuid::Uuid::new_v4().simple());
        let pool = sqlx::PgPool::connect(admin)
            .await
            .expect("PORTIER_TEST_PG_URL unreachable");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let url = with_database(admin, &name);
        Self {
            admin: admin.to_owned(),
            name,
            url,
        }
    }

    async fn drop_it(self) {
        if let Ok(pool) = sqlx::PgPool::connect(&self.admin).await {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
                .execute(&pool)
                .await;
            pool.close().await;
        }
    }
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

fn settings(dir: &Path, url: &str, node: &str) -> Settings {
    let text = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nnode = \"{node}\"\nlinger_secs = 1\nlockdown_file = \"lockdown-{node}\"\n\
         [api]\nlisten = \"127.0.0.1:0\"\n[database]\nurl = \"{url}\"\n"
    );
    Settings::from_toml(&text, dir, Vec::<(String, String)>::new()).unwrap()
}

/// One node's admin API.
struct Api {
    http: reqwest::Client,
    port: u16,
}

impl Api {
    fn new(ca: &Path, addr: SocketAddr) -> Self {
        let ca = std::fs::read(ca).unwrap();
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .resolve("localhost", addr)
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Self {
            http,
            port: addr.port(),
        }
    }

    async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>, want: u16) -> Value {
        let mut req = self
            .http
            .request(
                method.parse().unwrap(),
                format!("https://localhost:{}{path}", self.port),
            )
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let v: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap_or(Value::Null);
        assert_eq!(status, want, "{method} {path}: {v}");
        v
    }
}

async fn echo_device() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

type Tunnel = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

async fn tunnel(gateway: SocketAddr, tls: Arc<rustls::ClientConfig>) -> Tunnel {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new("127.0.0.2".parse::<IpAddr>().unwrap(), 0))
        .unwrap();
    let tcp = sock.connect(gateway).await.unwrap();
    let mut s = tokio_rustls::TlsConnector::from(tls)
        .connect(ServerName::try_from("mri-1").unwrap(), tcp)
        .await
        .unwrap();
    s.write_all(b"p").await.unwrap();
    s.flush().await.unwrap();
    let mut back = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut back))
        .await
        .expect("the tunnel on B did not echo: was the window admitted?")
        .unwrap();
    s
}

async fn run(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    portier::pki::generate_dev_pki(&dir.path().join("certs")).unwrap();
    let clock: portier::clock::SharedClock = Arc::new(portier::clock::SystemClock);
    let a = App::start_with_clock(&settings(dir.path(), url, "bench-a"), clock.clone())
        .await
        .unwrap();
    let b = App::start_with_clock(&settings(dir.path(), url, "bench-b"), clock.clone())
        .await
        .unwrap();
    let (admin, hash) = portier::token::generate();
    let now = Utc::now();
    let event = AuditEvent::new(
        now,
        "bench",
        Event::UserCreated,
        "admin",
        "success",
        json!({"name": "admin"}),
    );
    a.store
        .create_user(
            &NewUser {
                name: "admin".into(),
                role: Role::Admin,
                vendor_id: None,
                token_sha256: hash,
                token_prefix: "ptk_".into(),
                token_expires_at: None,
                email: None,
            },
            now,
            &|_| Effects::audit(event.clone()),
        )
        .await
        .unwrap();
    let certs = dir.path().join("certs");
    let api_a = Api::new(&certs.join("server-ca.pem"), a.api_addr);
    let api_b = Api::new(&certs.join("server-ca.pem"), b.api_addr);

    // The scene, through B.
    let device = echo_device().await;
    let v = api_b
        .call(
            "POST",
            "/api/v1/vendors",
            &admin,
            Some(json!({"name": "Acme", "networks": ["127.0.0.2"]})),
            201,
        )
        .await;
    let vendor_id = v["id"].as_str().unwrap().to_owned();
    let ca = CertAuthority::load(
        &std::fs::read_to_string(certs.join("vendor-ca.pem")).unwrap(),
        &std::fs::read_to_string(certs.join("vendor-ca.key")).unwrap(),
    )
    .unwrap();
    let cert = ca.issue_client("tech-acme", Some("Acme"), 30).unwrap();
    api_b
        .call(
            "POST",
            &format!("/api/v1/vendors/{vendor_id}/technicians"),
            &admin,
            Some(json!({"name": "tech", "certificate_pem": cert.cert_pem})),
            201,
        )
        .await;
    let d = api_b
        .call(
            "POST",
            "/api/v1/devices",
            &admin,
            Some(
                json!({"name": "mri-1", "address": device.to_string(), "protocol": "echo", "vendor_ids": [vendor_id]}),
            ),
            201,
        )
        .await;
    let device_id = d["id"].as_str().unwrap().to_owned();
    let user = |name: &str, role: &str, vendor: Option<&str>| json!({"name": name, "role": role, "vendor_id": vendor});
    let vendor = api_b
        .call(
            "POST",
            "/api/v1/users",
            &admin,
            Some(user("desk", "vendor", Some(&vendor_id))),
            201,
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let security = api_b
        .call(
            "POST",
            "/api/v1/users",
            &admin,
            Some(user("soc", "security", None)),
            201,
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let tls = portier::gateway::tls::technician_client_config(
        CertificateDer::pem_file_iter(certs.join("server-ca.pem"))
            .unwrap()
            .map(Result::unwrap)
            .collect(),
        "localhost",
        vec![CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).unwrap()],
        PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap(),
        &[&rustls::version::TLS13],
    )
    .unwrap();
    let db = sqlx::PgPool::connect(url).await.unwrap();

    let mut from_change = Vec::with_capacity(TRIALS);
    let mut from_request = Vec::with_capacity(TRIALS);
    let (mut missed, mut misses_in_a_row) = (0usize, 0usize);
    let started = Instant::now();
    let mut stopped_early = None;
    for _ in 0..TRIALS {
        if started.elapsed() > BUDGET {
            stopped_early = Some(format!("time budget of {} s spent", BUDGET.as_secs()));
            break;
        }
        let now = Utc::now();
        let w = api_b
            .call(
                "POST",
                "/api/v1/windows",
                &vendor,
                Some(
                    json!({"device_ids": [device_id], "starts_at": now - chrono::Duration::minutes(1),
                    "ends_at": now + chrono::Duration::hours(1), "reason": "bench"}),
                ),
                201,
            )
            .await;
        let window = w["id"].as_str().unwrap().to_owned();
        api_b
            .call(
                "POST",
                &format!("/api/v1/windows/{window}/approve"),
                &security,
                None,
                200,
            )
            .await;
        let mut s = tunnel(b.gateway_addr, tls.clone()).await;
        let mut reader = tokio::spawn(async move {
            let mut buf = [0u8; 256];
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return (Utc::now(), Instant::now()),
                    Ok(_) => {}
                }
            }
        });
        let sent = Instant::now();
        api_a
            .call(
                "POST",
                &format!("/api/v1/windows/{window}/revoke"),
                &security,
                Some(json!({"reason": "bench"})),
                200,
            )
            .await;
        let closed = tokio::time::timeout(TRIAL_WAIT, &mut reader).await;
        let Ok(Ok((closed_wall, closed_at))) = closed else {
            // Close the tunnel ourselves (a detached reader would keep it open).
            reader.abort();
            missed += 1;
            misses_in_a_row += 1;
            if misses_in_a_row >= MISSES_IN_A_ROW {
                stopped_early = Some(format!(
                    "{MISSES_IN_A_ROW} tunnels in a row still open {} s after the revocation: node B does not follow the change feed",
                    TRIAL_WAIT.as_secs()
                ));
                break;
            }
            continue;
        };
        misses_in_a_row = 0;
        let change_at: DateTime<Utc> = sqlx::query_scalar(
            "SELECT at FROM changes WHERE kind = 'window' AND object = $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(&window)
        .fetch_one(&db)
        .await
        .unwrap();
        from_change.push((closed_wall - change_at).to_std().unwrap_or(Duration::ZERO));
        from_request.push(closed_at.duration_since(sent));
    }
    db.close().await;

    println!("cross-node cut: window revoked through node A's API, tunnel live on node B (one PostgreSQL)");
    println!();
    println!("| measure | trials | p50 | p99 | max |");
    println!("| --- | --- | --- | --- | --- |");
    for (name, samples) in [
        ("change committed → tunnel closed on B", &mut from_change),
        ("revoke request sent to A → tunnel closed on B", &mut from_request),
    ] {
        println!("| {name} | {} | {} |", samples.len(), percentiles(samples));
    }
    println!();
    println!(
        "missed (still open {} s after the revocation): {missed}",
        TRIAL_WAIT.as_secs()
    );
    if let Some(why) = stopped_early {
        println!("stopped early: {why}");
    }
    a.stop().await;
    b.stop().await;
}

/// `p50 | p99 | max` of `samples` (sorted in place); dashes when empty.
fn percentiles(samples: &mut [Duration]) -> String {
    if samples.is_empty() {
        return "– | – | –".into();
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    format!(
        "{:.1?} | {:.1?} | {:.1?}",
        at(0.50),
        at(0.99),
        samples[samples.len() - 1]
    )
}
