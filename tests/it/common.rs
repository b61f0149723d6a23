//! Test helpers: fresh databases (SQLite always, PostgreSQL when
//! `PORTIER_TEST_PG_URL` is set), a generated PKI, an echo device, a gateway on
//! port 0 and technician clients bound to chosen loopback addresses.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use portier::admission::AdmissionCache;
use portier::clock::{SharedClock, SystemClock};
use portier::domain::{DeviceName, WindowState};
use portier::gateway::{tls, Gateway, GatewayDeps, GatewaySettings, Registry};
use portier::pki::{CertAuthority, CertInfo, Issued};
use portier::policy::PolicySettings;
use portier::store::{
    self, Device, Effects, Journal, NewDevice, NewTechnician, NewVendor, NewWindow, Store, Technician, Vendor, Window,
    WindowTransition,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

/// Defines one test per backend: `<name>::sqlite` and `<name>::postgres`
/// (the latter says it is skipped when `PORTIER_TEST_PG_URL` is not set).
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $body:path) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $body($crate::common::TestDb::sqlite().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match $crate::common::TestDb::postgres().await {
                    Some(db) => $body(db).await,
                    None => eprintln!("skipped: PORTIER_TEST_PG_URL is not set"),
                }
            }
        }
    };
}

/// What a test's direct store change records: one audit event, nothing for the
/// feed or the outbox (a test that needs those builds its own [`Effects`]).
/// A struct literal, so it does not depend on how events are named.
pub fn test_effects() -> Effects {
    Effects::audit(portier::audit::AuditEvent {
        at: portier::audit::truncate_micros(Utc::now()),
        actor: "test".into(),
        action: "test.change".into(),
        object: String::new(),
        outcome: "success".into(),
        details: serde_json::json!({}),
    })
}

/// A fresh, migrated database that disappears with the value.
pub struct TestDb {
    pub url: String,
    pub store: Arc<dyn Store>,
    pub kind: Backend,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl TestDb {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("portier.db").display());
        let store = store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        Self {
            url,
            store,
            kind: Backend::Sqlite,
            _dir: Some(dir),
            pg: None,
        }
    }

    pub async fn postgres() -> Option<Self> {
        let admin = std::env::var("PORTIER_TEST_PG_URL").ok().filter(|s| !s.is_empty())?;
        Some(Self::postgres_at(&admin).await)
    }

    /// A fresh database on the PostgreSQL server `admin` designates.
    pub async fn postgres_at(admin: &str) -> Self {
        let admin = admin.to_owned();
        let name = format!("portier_t_{}", uuid::Uuid::new_v4().simple());
        let admin_store = sqlx::PgPool::connect(&admin)
            .await
            .expect("PORTIER_TEST_PG_URL unreachable");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin_store)
            .await
            .unwrap();
        admin_store.close().await;
        let url = with_database(&admin, &name);
        let store = store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        Self {
            url,
            store,
            kind: Backend::Postgres,
            _dir: None,
            pg: Some((admin, name)),
        }
    }

    /// A database this test manages itself (e.g. on a filesystem it fills, or a
    /// server it stops), migrated; nothing is removed when the value is dropped.
    pub async fn at(url: &str) -> Self {
        let store = store::connect(url).await.unwrap();
        store.migrate().await.unwrap();
        Self {
            url: url.to_owned(),
            store,
            kind: if url.starts_with("sqlite:") {
                Backend::Sqlite
            } else {
                Backend::Postgres
            },
            _dir: None,
            pg: None,
        }
    }

    /// The same database, opened so that every write fails.
    pub fn read_only_url(&self) -> String {
        match self.kind {
            Backend::Sqlite => format!("{}?mode=ro", self.url),
            Backend::Postgres => format!("{}?options=-c%20default_transaction_read_only%3Don", self.url),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            // Drop the database from a thread of its own: Drop cannot await.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(pool) = sqlx::PgPool::connect(&admin).await {
                        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&pool)
                            .await;
                        pool.close().await;
                    }
                });
            })
            .join();
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

/// The PKI of a test: server CA + gateway certificate, vendor CA.
pub struct Pki {
    pub server_ca: CertAuthority,
    pub server: Issued,
    pub vendor_ca: CertAuthority,
    pub dir: tempfile::TempDir,
}

impl Pki {
    pub fn generate() -> Self {
        let server_ca = CertAuthority::generate("test server CA", 2).unwrap();
        let server = server_ca.issue_server(&["localhost", "127.0.0.1"], 2).unwrap();
        let vendor_ca = CertAuthority::generate("test vendor CA", 2).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("server-ca.pem"), server_ca.cert_pem()).unwrap();
        Self {
            server_ca,
            server,
            vendor_ca,
            dir,
        }
    }

    pub fn server_ca_path(&self) -> PathBuf {
        self.dir.path().join("server-ca.pem")
    }

    pub fn gateway_tls(&self) -> Arc<rustls::ServerConfig> {
        let chain = vec![CertificateDer::from_pem_slice(self.server.cert_pem.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(self.server.key_pem.as_bytes()).unwrap();
        let vendor_ca = vec![CertificateDer::from_pem_slice(self.vendor_ca.cert_pem().as_bytes()).unwrap()];
        tls::gateway_server_config(chain, key, vendor_ca, &[&rustls::version::TLS13]).unwrap()
    }

    /// A client configuration presenting `cert` (or no certificate).
    pub fn client_tls(
        &self,
        cert: Option<&Issued>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<rustls::ClientConfig> {
        let ca = vec![CertificateDer::from_pem_slice(self.server_ca.cert_pem().as_bytes()).unwrap()];
        match cert {
            Some(c) => tls::technician_client_config(
                ca,
                "localhost",
                vec![CertificateDer::from_pem_slice(c.cert_pem.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes()).unwrap(),
                versions,
            )
            .unwrap(),
            None => {
                let mut roots = rustls::RootCertStore::empty();
                roots.add(ca[0].clone()).unwrap();
                Arc::new(
                    rustls::ClientConfig::builder_with_provider(tls::provider())
                        .with_protocol_versions(versions)
                        .unwrap()
                        .with_root_certificates(roots)
                        .with_no_client_auth(),
                )
            }
        }
    }
}

/// An echo server standing in for a device.
pub async fn echo_device() -> SocketAddr {
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

/// A gateway on 127.0.0.1:0 over `store`.
pub struct TestGateway {
    pub addr: SocketAddr,
    pub registry: Arc<Registry>,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
}

impl TestGateway {
    pub async fn spawn(store: Arc<dyn Store>, pki: &Pki) -> Self {
        Self::spawn_with(store, pki, PolicySettings::default()).await
    }

    pub async fn spawn_with(store: Arc<dyn Store>, pki: &Pki, policy: PolicySettings) -> Self {
        Self::spawn_clocked(store, pki, policy, Arc::new(SystemClock)).await
    }

    /// A gateway whose admission and deadlines follow `clock` (a test's
    /// `ManualClock`: moving it past a deadline cuts at once).
    pub async fn spawn_clocked(store: Arc<dyn Store>, pki: &Pki, policy: PolicySettings, clock: SharedClock) -> Self {
        let (journal, _task) = Journal::start(store.clone());
        let registry = Arc::new(Registry::default());
        let deps = GatewayDeps {
            cache: Arc::new(AdmissionCache::new(store, policy, clock.clone())),
            journal,
            registry: registry.clone(),
            clock,
            notifier: portier::notify::Notifier::disabled(),
            metrics: portier::metrics::Metrics::default(),
        };
        let settings = GatewaySettings {
            handshake_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(2),
            linger: Duration::from_millis(500),
            ..GatewaySettings::default()
        };
        let gw = Gateway::bind("127.0.0.1:0".parse().unwrap(), pki.gateway_tls(), settings, deps)
            .await
            .unwrap();
        let addr = gw.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(gw.run(shutdown.clone()));
        Self {
            addr,
            registry,
            shutdown,
            task,
        }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// Connects from `source` (a loopback address) to the gateway, asking for `sni`.
pub async fn connect_from(
    source: &str,
    gateway: SocketAddr,
    sni: &str,
    cfg: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream<tokio::net::TcpStream>> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(source.parse::<IpAddr>().unwrap(), 0))?;
    let tcp = sock.connect(gateway).await?;
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), TlsConnector::from(cfg).connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("handshake timeout"))?
}

/// Reads what the gateway says until it closes (bounded).
pub async fn read_all(tls: &mut TlsStream<tokio::net::TcpStream>) -> std::io::Result<String> {
    let mut out = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut out))
        .await
        .map_err(|_| std::io::Error::other("no close within 5 s"))?;
    match r {
        Ok(_) => Ok(String::from_utf8_lossy(&out).into_owned()),
        // A peer closing without waiting for our close_notify is fine once we have the line.
        Err(_) if !out.is_empty() => Ok(String::from_utf8_lossy(&out).into_owned()),
        Err(e) => Err(e),
    }
}

/// Sends `data` and reads the same number of bytes back.
pub async fn echo_roundtrip(tls: &mut TlsStream<tokio::net::TcpStream>, data: &[u8]) -> Vec<u8> {
    tls.write_all(data).await.unwrap();
    tls.flush().await.unwrap();
    let mut back = vec![0; data.len()];
    tokio::time::timeout(Duration::from_secs(5), tls.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    back
}

/// The standard scene: vendor "acme" declaring 127.0.0.2/32, technician "alice",
/// device "mri-1" (the echo server) assigned to acme, and an approved window
/// around now.
pub struct Scene {
    pub vendor: Vendor,
    pub tech: Technician,
    pub tech_cert: Issued,
    pub device: Device,
    pub window: Window,
}

pub async fn approved_window(
    store: &dyn Store,
    vendor: &Vendor,
    device: &Device,
    starts: DateTime<Utc>,
    ends: DateTime<Utc>,
) -> Window {
    let w = store
        .create_window(
            &NewWindow {
                vendor_id: vendor.id.clone(),
                device_ids: vec![device.id.clone()],
                starts_at: starts,
                ends_at: ends,
                reason: "firmware update".into(),
                requested_by: "vendor-user".into(),
                emergency: false,
                approved_by: None,
                extra_networks: vec![],
            },
            Utc::now(),
            &|_| test_effects(),
        )
        .await
        .unwrap();
    store
        .transition_window(
            &w.id,
            &WindowTransition {
                from: vec![WindowState::Requested],
                to: WindowState::Approved,
                by: "security-user".into(),
                reason: None,
                at: Utc::now(),
            },
            &|_| test_effects(),
        )
        .await
        .unwrap()
}

pub async fn technician(store: &dyn Store, pki: &Pki, vendor: &Vendor, name: &str) -> (Technician, Issued) {
    let cert = pki.vendor_ca.issue_client(name, Some(&vendor.name), 2).unwrap();
    let info = CertInfo::from_pem(&cert.cert_pem).unwrap();
    let tech = store
        .add_technician(
            &NewTechnician {
                vendor_id: vendor.id.clone(),
                name: name.into(),
                subject: info.subject,
                fingerprint: info.fingerprint,
                certificate_pem: cert.cert_pem.clone(),
                not_before: info.not_before,
                not_after: info.not_after,
            },
            Utc::now(),
            &|_| test_effects(),
        )
        .await
        .unwrap();
    (tech, cert)
}

/// The scenes' vendor "Acme Imaging" (security contact soc@acme.example),
/// declared from `network`, stored directly.
pub async fn acme(store: &dyn Store, network: &str) -> Vendor {
    store
        .create_vendor(
            &NewVendor {
                name: "Acme Imaging".into(),
                networks: vec![portier::domain::parse_network(network).unwrap()],
                security_contact: Some("soc@acme.example".into()),
            },
            Utc::now(),
            &|_| test_effects(),
        )
        .await
        .unwrap()
}

/// The scenes' device "mri-1" at `address`, assigned to `vendor`, stored directly.
pub async fn mri(store: &dyn Store, vendor: &Vendor, address: &str, protocol: &str) -> Device {
    store
        .create_device(
            &NewDevice {
                name: "mri-1".parse::<DeviceName>().unwrap(),
                address: address.to_owned(),
                protocol: protocol.into(),
                description: None,
                vendor_ids: vec![vendor.id.clone()],
            },
            Utc::now(),
            &|_| test_effects(),
        )
        .await
        .unwrap()
}

/// The audit events named `action`, oldest first.
pub async fn audit_events(store: &dyn Store, action: &str) -> Vec<portier::audit::AuditRecord> {
    store
        .list_audit(&portier::store::AuditFilter {
            action: Some(action.into()),
            ..Default::default()
        })
        .await
        .unwrap()
}

pub async fn scene(store: &dyn Store, pki: &Pki, device_addr: SocketAddr) -> Scene {
    let vendor = acme(store, "127.0.0.2").await;
    let (tech, tech_cert) = technician(store, pki, &vendor, "alice").await;
    let device = mri(store, &vendor, &device_addr.to_string(), "echo").await;
    let now = Utc::now();
    let window = approved_window(
        store,
        &vendor,
        &device,
        now - chrono::Duration::minutes(5),
        now + chrono::Duration::hours(1),
    )
    .await;
    Scene {
        vendor,
        tech,
        tech_cert,
        device,
        window,
    }
}

/// Polls `f` until it returns `Some`, for at most 5 s.
pub async fn eventually<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "condition not met within 5 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub const TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// A whole Portier node (`App`: gateway + API) over a test database, with a
/// development PKI in a temporary directory and an admin token.
pub struct TestApp {
    pub app: portier::app::App,
    settings: portier::config::Settings,
    clock: SharedClock,
    pub db: TestDb,
    pub dir: tempfile::TempDir,
    pub admin: String,
    pub http: reqwest::Client,
}

impl TestApp {
    pub async fn spawn(db: TestDb) -> Self {
        Self::spawn_with(db, "", Arc::new(SystemClock)).await
    }

    /// `extra` is merged into the configuration (e.g. `[policy]` or `[notify]`
    /// tables; keys of `[gateway]` and `[api]` add to the test's own).
    pub async fn spawn_with(db: TestDb, extra: &str, clock: SharedClock) -> Self {
        Self::spawn_config(db, "", extra, clock).await
    }

    /// [`TestApp::spawn_with`], with `database` keys added to `[database]` (and
    /// `gateway` keys to `[gateway]`).
    pub async fn spawn_config(db: TestDb, sections: &str, extra: &str, clock: SharedClock) -> Self {
        let dir = tempfile::tempdir().unwrap();
        portier::pki::generate_dev_pki(&dir.path().join("certs")).unwrap();
        let mut database = String::new();
        let mut gateway = String::new();
        for line in sections.lines() {
            if let Some(kv) = line.strip_prefix("database.") {
                database.push_str(kv);
                database.push('\n');
            } else if let Some(kv) = line.strip_prefix("gateway.") {
                gateway.push_str(kv);
                gateway.push('\n');
            }
        }
        // Test accounts sign in to the console with their tokens, which a role
        // in `require_mfa` may not do without a second factor: none is required
        // here, and the tests of the second factor (identity, ldap, the
        // browser's sign-in) ask for it explicitly.
        let base = format!(
            "[gateway]\nlisten = \"127.0.0.1:0\"\nlinger_secs = 1\n{gateway}[api]\nlisten = \"127.0.0.1:0\"\n[database]\nurl = \"{}\"\n{database}[auth]\nrequire_mfa = []\n",
            db.url
        );
        let mut doc: toml::Table = base.parse().unwrap();
        for (key, value) in extra.parse::<toml::Table>().unwrap() {
            match (doc.get_mut(&key), value) {
                (Some(toml::Value::Table(mine)), toml::Value::Table(more)) => mine.extend(more),
                (_, value) => {
                    doc.insert(key, value);
                }
            }
        }
        let toml = toml::to_string(&doc).unwrap();
        std::fs::write(dir.path().join("portier.toml"), &toml).unwrap();
        let settings = portier::config::Settings::from_toml(&toml, dir.path(), Vec::<(String, String)>::new()).unwrap();
        let app = portier::app::App::start_with_clock(&settings, clock.clone())
            .await
            .unwrap();
        let (admin, hash) = portier::token::generate();
        app.store
            .create_user(
                &portier::store::NewUser {
                    name: "admin".into(),
                    role: portier::domain::Role::Admin,
                    vendor_id: None,
                    token_sha256: hash,
                    token_prefix: "ptk_".into(),
                    token_expires_at: None,
                    email: None,
                },
                Utc::now(),
                &|_| test_effects(),
            )
            .await
            .unwrap();
        let http = https_client(&dir.path().join("certs/server-ca.pem"), app.api_addr);
        Self {
            app,
            settings,
            clock,
            db,
            dir,
            admin,
            http,
        }
    }

    /// Stops the node, then starts a new one on the same database and configuration
    /// (in this order: a second live process with the same node name is refused).
    pub async fn restart(&mut self) {
        self.app.shutdown().await;
        self.start_again().await;
    }

    /// Starts a new node on the same database and configuration in place of the
    /// current one, which must be stopped or aborted already (a simulated crash).
    pub async fn start_again(&mut self) {
        let fresh = portier::app::App::start_with_clock(&self.settings, self.clock.clone())
            .await
            .unwrap();
        drop(std::mem::replace(&mut self.app, fresh));
        self.http = https_client(&self.server_ca(), self.app.api_addr);
    }

    /// The configuration the node was started with.
    pub fn settings(&self) -> &portier::config::Settings {
        &self.settings
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{}", self.app.api_addr.port(), path)
    }

    pub fn server_ca(&self) -> PathBuf {
        self.dir.path().join("certs/server-ca.pem")
    }

    /// Sends a request; returns status and JSON body (Null when not JSON).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self.http.request(method.parse().unwrap(), self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }

    /// Creates an account through the API; returns its token.
    pub async fn token(&self, role: &str, name: &str, vendor: Option<&str>) -> String {
        let (st, body) = self
            .call(
                "POST",
                "/api/v1/users",
                Some(&self.admin),
                Some(serde_json::json!({"name": name, "role": role, "vendor_id": vendor})),
            )
            .await;
        assert_eq!(st, 201, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// A technician client configuration for a certificate and key in PEM.
    pub fn technician_tls(&self, cert_pem: &str, key_pem: &str) -> Arc<rustls::ClientConfig> {
        let ca = CertificateDer::pem_file_iter(self.server_ca())
            .unwrap()
            .map(Result::unwrap)
            .collect();
        tls::technician_client_config(
            ca,
            "localhost",
            vec![CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap(),
            TLS13,
        )
        .unwrap()
    }

    pub async fn stop(self) {
        self.app.stop().await;
    }
}

/// Reads from a tunnel until it closes; returns when, or panics after 10 s.
pub async fn wait_closed(tls: &mut TlsStream<tokio::net::TcpStream>) -> DateTime<Utc> {
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Utc::now(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("tunnel still open after 10 s"),
        }
    }
}

pub fn https_client(ca: &std::path::Path, api: SocketAddr) -> reqwest::Client {
    let ca = std::fs::read(ca).unwrap();
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .resolve("localhost", api)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// A vendor (declaring `network`), a technician with a certificate signed by the
/// app's vendor CA, and a device (`device_name` at `device_addr`), through the API.
pub struct ApiScene {
    pub vendor_id: String,
    pub device_id: String,
    pub tls: Arc<rustls::ClientConfig>,
}

pub async fn api_scene(
    t: &TestApp,
    vendor_name: &str,
    network: &str,
    device_name: &str,
    device_addr: SocketAddr,
) -> ApiScene {
    let (st, v) = t
        .call(
            "POST",
            "/api/v1/vendors",
            Some(&t.admin),
            Some(serde_json::json!({"name": vendor_name, "networks": [network]})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let vendor_id = v["id"].as_str().unwrap().to_owned();
    let ca = CertAuthority::load(
        &std::fs::read_to_string(t.dir.path().join("certs/vendor-ca.pem")).unwrap(),
        &std::fs::read_to_string(t.dir.path().join("certs/vendor-ca.key")).unwrap(),
    )
    .unwrap();
    // Valid 30 days: tests that move the gateway's clock by a day or more must not
    // meet `certificate_expired` (admission checks the certificate's validity).
    let cert = ca
        .issue_client(&format!("tech-{vendor_name}"), Some(vendor_name), 30)
        .unwrap();
    let (st, tech) = t
        .call(
            "POST",
            &format!("/api/v1/vendors/{vendor_id}/technicians"),
            Some(&t.admin),
            Some(serde_json::json!({"name": "tech", "certificate_pem": cert.cert_pem})),
        )
        .await;
    assert_eq!(st, 201, "{tech}");
    let (st, d) = t
        .call(
            "POST",
            "/api/v1/devices",
            Some(&t.admin),
            Some(serde_json::json!({"name": device_name, "address": device_addr.to_string(), "protocol": "echo", "vendor_ids": [vendor_id]})),
        )
        .await;
    assert_eq!(st, 201, "{d}");
    ApiScene {
        vendor_id,
        device_id: d["id"].as_str().unwrap().to_owned(),

        tls: t.technician_tls(&cert.cert_pem, &cert.key_pem),
    }
}

impl TestApp {
    /// The usual start of a gateway test: vendor "Acme" (127.0.0.2) with a
    /// technician, device "mri-1" at `device`, a vendor and a security account, and
    /// a window open from a minute ago for an hour. Returns (scene, vendor, security).
    pub async fn open_window_scene(&self, device: SocketAddr) -> (ApiScene, String, String) {
        let sc = api_scene(self, "Acme", "127.0.0.2", "mri-1", device).await;
        let vendor = self.token("vendor", "desk", Some(&sc.vendor_id)).await;
        let security = self.token("security", "soc", None).await;
        let now = Utc::now();
        self.approved_window(
            &vendor,
            &security,
            &sc.device_id,
            now - chrono::Duration::minutes(1),
            now + chrono::Duration::hours(1),
        )
        .await;
        (sc, vendor, security)
    }

    /// Requests (as `requester`) and approves (as `approver`) a window; returns its id.
    pub async fn approved_window(
        &self,
        requester: &str,
        approver: &str,
        device_id: &str,
        starts: DateTime<Utc>,
        ends: DateTime<Utc>,
    ) -> String {
        let (st, w) = self
            .call(
                "POST",
                "/api/v1/windows",
                Some(requester),
                Some(serde_json::json!({"device_ids": [device_id], "starts_at": starts, "ends_at": ends, "reason": "maintenance"})),
            )
            .await;
        assert_eq!(st, 201, "{w}");
        let id = w["id"].as_str().unwrap().to_owned();
        let (st, b) = self
            .call("POST", &format!("/api/v1/windows/{id}/approve"), Some(approver), None)
            .await;
        assert_eq!(st, 200, "{b}");
        id
    }
}

// --- A worked maintenance period, and raw SQL (retention.rs, evidence.rs) ---

/// A node whose clock the test moves, standing at `start`.
pub async fn clocked_app(db: TestDb, start: DateTime<Utc>) -> (TestApp, Arc<portier::clock::ManualClock>) {
    let clock = Arc::new(portier::clock::ManualClock::new(start));
    let t = TestApp::spawn_with(db, "", clock.clone()).await;
    (t, clock)
}

/// One maintenance period that happened: vendor `vendor_name` (127.0.0.2)
/// with a technician, device "mri-1" (an echo device), a vendor desk and a
/// security account, a window approved from a minute before `start` for an
/// hour, and one session through it that carried "ping" (4 bytes each way)
/// and ended.
pub struct WorkedPeriod {
    pub scene: ApiScene,
    /// The vendor desk's token.
    pub vendor: String,
    /// The security account's token.
    pub security: String,
    pub window: String,
    pub session: String,
}

pub async fn worked_period(t: &TestApp, vendor_name: &str, start: DateTime<Utc>) -> WorkedPeriod {
    let device = echo_device().await;
    let scene = api_scene(t, vendor_name, "127.0.0.2", "mri-1", device).await;
    let vendor = t.token("vendor", "desk", Some(&scene.vendor_id)).await;
    let security = t.token("security", "soc", None).await;
    let window = t
        .approved_window(
            &vendor,
            &security,
            &scene.device_id,
            start - chrono::Duration::minutes(1),
            start + chrono::Duration::hours(1),
        )
        .await;
    {
        let mut s = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", scene.tls.clone())
            .await
            .unwrap();
        assert_eq!(echo_roundtrip(&mut s, b"ping").await, b"ping");
    }
    let session = eventually(|| async {
        let list = t
            .app
            .store
            .list_sessions(&portier::store::SessionFilter::default())
            .await
            .ok()?;
        list.into_iter()
            .find(|s| s.ended_at.is_some() && s.window_id.as_str() == window)
    })
    .await;
    WorkedPeriod {
        scene,
        vendor,
        security,
        window,
        session: session.id.to_string(),
    }
}

/// Raw access to the database, as an attacker with the file or a DB account would have.
pub async fn raw_sql<S: AsRef<str>>(t: &TestApp, statements: &[S]) {
    match t.db.kind {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&t.db.url).await.unwrap();
            for s in statements {
                sqlx::query(s.as_ref()).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&t.db.url).await.unwrap();
            for s in statements {
                sqlx::query(s.as_ref()).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
    }
}

/// A `portier serve` process a test started (the real binary, logging JSON),
/// killed by its pid if still running when dropped.
pub struct ServeProcess {
    pub child: std::process::Child,
    /// Its bound addresses, from its `portier serving` line.
    pub gateway: SocketAddr,
    pub api: SocketAddr,
    /// Its standard error so far, line by line.
    pub log: Arc<std::sync::Mutex<String>>,
}

impl ServeProcess {
    /// Spawns `cmd` (a `portier serve` with `log.format = "json"` and
    /// listeners on port 0) and waits until it serves; `Err` with its exit
    /// status and output if it exits first. Panics if it neither serves nor
    /// exits within `within`.
    pub async fn start(
        mut cmd: std::process::Command,
        within: Duration,
    ) -> Result<Self, (std::process::ExitStatus, String)> {
        use std::io::BufRead;
        use std::process::Stdio;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let reader = {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                        let f = &v["fields"];
                        if f["message"] == "portier serving" {
                            let addr = |k: &str| f[k].as_str().and_then(|s| s.parse::<SocketAddr>().ok());
                            if let (Some(g), Some(a)) = (addr("gateway"), addr("api")) {
                                let _ = tx.send((g, a));
                            }
                        }
                    }
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            })
        };
        let start = std::time::Instant::now();
        loop {
            if let Ok((gateway, api)) = rx.try_recv() {
                return Ok(Self {
                    child,
                    gateway,
                    api,
                    log,
                });
            }
            if let Some(status) = child.try_wait().unwrap() {
                let _ = reader.join();
                let out = log.lock().unwrap().clone();
                return Err((status, out));
            }
            if start.elapsed() > within {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{cmd:?} not serving within {within:?}:\n{}", log.lock().unwrap());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM (the clean stop), then its exit status; panics if it still
    /// runs 20 s later.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("still running 20 s after SIGTERM:\n{}", self.log.lock().unwrap());
    }

    /// `kill -9`: nothing is cut, recorded or released.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
