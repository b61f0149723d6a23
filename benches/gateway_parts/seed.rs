//! A store of the bench's own (an SQLite file, or a PostgreSQL database created
//! and dropped), seeded through Portier's API as an operator would: vendor,
//! technician, two devices on the loopback backend, and an approved window.
//! Also the durable write's cost: an fsync alone, and the journal's commit.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use portier::audit::AuditEvent;
use portier::domain::Role;
use portier::events::Event;
use portier::store::{Effects, NewUser};
use serde_json::{json, Value};

/// Where a store lives; a PostgreSQL database is dropped by [`Db::drop_it`].
pub struct Db {
    pub label: &'static str,
    pub url: String,
    pg: Option<(String, String)>,
}

impl Db {
    pub fn sqlite(dir: &Path) -> Self {
        Self {
            label: "SQLite",
            url: format!("sqlite://{}", dir.join("portier.db").display()),
            pg: None,
        }
    }

    pub async fn postgres(admin: &str) -> Self {
        let name = format!("portier_bench_{}", uuid::Uuid::new_v4().simple());
        let pool = sqlx::PgPool::connect(admin)
            .await
            .expect("PORTIER_TEST_PG_URL unreachable");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        Self {
            label: "PostgreSQL",
            url: with_database(admin, &name),
            pg: Some((admin.to_owned(), name)),
        }
    }

    pub async fn drop_it(self) {
        if let Some((admin, name)) = self.pg {
            if let Ok(pool) = sqlx::PgPool::connect(&admin).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&pool)
                    .await;
                pool.close().await;
            }
        }
    }

    /// Migrates the store and creates the admin account; returns its token.
    pub async fn admin(&self) -> String {
        let store = portier::store::connect(&self.url).await.unwrap();
        store.migrate().await.unwrap();
        let (token, hash) = portier::token::generate();
        let now = Utc::now();
        let event = AuditEvent::new(
            now,
            "bench",
            Event::UserCreated,
            "admin",
            "success",
            json!({"name": "admin"}),
        );
        store
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
        token
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

/// A node's admin API.
pub struct Api {
    http: reqwest::Client,
    port: u16,
}

impl Api {
    pub fn new(server_ca: &Path, addr: SocketAddr) -> Self {
        let ca = std::fs::read(server_ca).unwrap();
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

    pub async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>, want: u16) -> Value {
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

/// What the seeding created that later steps use.
pub struct Scene {
    pub vendor_id: String,
    pub technician_id: String,
    /// `mri-1`: the long window every case uses.
    pub device_id: String,
    pub window_id: String,
    /// `mri-2`: no window yet (the cut case gives it one).
    pub cut_device_id: String,
    pub vendor_token: String,
    pub security_token: String,
}

/// Seeds through `api`: vendor Acme (sources 127.0.0.0/16, the broadest the policy allows), the technician whose
/// certificate is `tech_pem`, devices `mri-1` and `mri-2` at `backend`, a vendor
/// and a security account, and an approved window on `mri-1` for 11 hours.
pub async fn scene(api: &Api, admin: &str, tech_pem: &str, backend: SocketAddr) -> Scene {
    let v = api
        .call(
            "POST",
            "/api/v1/vendors",
            admin,
            Some(json!({"name": "Acme", "networks": ["127.0.0.0/16"]})),
            201,
        )
        .await;
    let vendor_id = v["id"].as_str().unwrap().to_owned();
    let t = api
        .call(
            "POST",
            &format!("/api/v1/vendors/{vendor_id}/technicians"),
            admin,
            Some(json!({"name": "tech", "certificate_pem": tech_pem})),
            201,
        )
        .await;
    let technician_id = t["id"].as_str().unwrap().to_owned();
    let mut devices = Vec::new();
    for name in ["mri-1", "mri-2"] {
        let d = api
            .call(
                "POST",
                "/api/v1/devices",
                admin,
                Some(json!({"name": name, "address": backend.to_string(), "protocol": "echo", "vendor_ids": [vendor_id]})),
                201,
            )
            .await;
        devices.push(d["id"].as_str().unwrap().to_owned());
    }
    let user = |name: &str, role: &str, vendor: Option<&str>| json!({"name": name, "role": role, "vendor_id": vendor});
    let vendor_token = api
        .call(
            "POST",
            "/api/v1/users",
            admin,
            Some(user("desk", "vendor", Some(&vendor_id))),
            201,
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let security_token = api
        .call("POST", "/api/v1/users", admin, Some(user("soc", "security", None)), 201)
        .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut scene = Scene {
        vendor_id,
        technician_id,
        device_id: devices[0].clone(),
        window_id: String::new(),
        cut_device_id: devices[1].clone(),
        vendor_token,
        security_token,
    };
    let now = Utc::now();
    let (id, _) = window(api, &scene, &scene.device_id, now + chrono::Duration::hours(11)).await;
    scene.window_id = id;
    scene
}

/// Requests (vendor) and approves (security) a window on `device` from a
/// minute ago to `ends_at`; returns its id and its end as stored.
pub async fn window(api: &Api, scene: &Scene, device: &str, ends_at: DateTime<Utc>) -> (String, DateTime<Utc>) {
    let w = api
        .call(
            "POST",
            "/api/v1/windows",
            &scene.vendor_token,
            Some(
                json!({"device_ids": [device], "starts_at": Utc::now() - chrono::Duration::minutes(1),
                "ends_at": ends_at, "reason": "bench"}),
            ),
            201,
        )
        .await;
    let id = w["id"].as_str().unwrap().to_owned();
    let w = api
        .call(
            "POST",
            &format!("/api/v1/windows/{id}/approve"),
            &scene.security_token,
            None,
            200,
        )
        .await;
    let end = w["ends_at"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map_or(ends_at, |d| d.with_timezone(&Utc));
    (id, end)
}

/// Latencies of `n` fsyncs, each after appending 128 bytes to a file in `dir`
/// (what bounds one durable commit on this filesystem).
pub fn fsync_latencies(dir: &Path, n: usize) -> Vec<Duration> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("fsync-probe"))
        .unwrap();
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f.write_all(&[0x42; 128]).unwrap();
            f.sync_data().unwrap();
            t.elapsed()
        })
        .collect()
}

/// Latencies of `n` session records (`SessionStarted`: the row and its audit
/// event, what the gateway writes before a byte flows) committed one at a time
/// through the journal of a store on `url`; no node runs on it meanwhile.
pub async fn journal_latencies(url: &str, scene: &Scene, n: usize) -> Vec<Duration> {
    use portier::domain::{DeviceId, SessionId, TechnicianId, VendorId, WindowId};
    use portier::store::{Journal, JournalEntry, Session};
    let store = portier::store::connect(url).await.unwrap();
    let (journal, task) = Journal::start(Arc::clone(&store));
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let id = SessionId::generate();
        let now = portier::audit::truncate_micros(Utc::now());
        let session = Session {
            id: id.clone(),
            window_id: WindowId::from(scene.window_id.as_str()),
            vendor_id: VendorId::from(scene.vendor_id.as_str()),
            technician_id: TechnicianId::from(scene.technician_id.as_str()),
            technician_subject: "CN=tech".into(),
            device_id: DeviceId::from(scene.device_id.as_str()),
            source_ip: "127.0.0.2".parse().unwrap(),
            source_port: 40000,
            node: "bench-journal".into(),
            started_at: now,
            ended_at: None,
            bytes_from_vendor: 0,
            bytes_to_vendor: 0,
            end_reason: None,
        };
        let event = AuditEvent::new(
            now,
            portier::audit::GATEWAY_ACTOR,
            Event::SessionStarted,
            id.as_str(),
            "success",
            json!({"node": "bench-journal"}),
        );
        let t = Instant::now();
        journal
            .write(JournalEntry::SessionStarted(session, event))
            .await
            .unwrap();
        out.push(t.elapsed());
    }
    drop(journal);
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    out
}
