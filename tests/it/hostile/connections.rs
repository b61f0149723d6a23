//! Hostile tests: connections. Silent and half-open API connections are closed
//! within their deadlines; a saturated API does not starve the gateway; one
//! source address cannot fill either listener (checked before TLS, audited
//! within a budget); files are created owner-only.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use portier::clock::SystemClock;
use portier::gateway::tls;
use portier::store::{AuditFilter, Store};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::common::*;
use crate::on_both_backends;

/// The HTTP/2 client connection preface.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty HTTP/2 SETTINGS frame (length 0, type 4, no flags, stream 0).
const H2_EMPTY_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

/// A TCP connection from `source` (a loopback address).
async fn tcp_from(source: &str, to: SocketAddr) -> TcpStream {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(source.parse::<IpAddr>().unwrap(), 0))
        .unwrap();
    sock.connect(to).await.unwrap()
}

/// Reads until the peer closes; returns what it sent and when it closed, or
/// `None` if it is still open after `limit`.
async fn until_closed<S: AsyncRead + Unpin>(s: &mut S, limit: Duration) -> Option<(Vec<u8>, Instant)> {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.checked_sub(start.elapsed())?;
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some((got, Instant::now())),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Whether the peer closed the connection within `limit`.
async fn closed_within<S: AsyncRead + Unpin>(s: &mut S, limit: Duration) -> bool {
    until_closed(s, limit).await.is_some()
}

/// A TLS connection to the API from `source`, offering `alpn`.
async fn tls_to_api(t: &TestApp, source: &str, alpn: &[&[u8]]) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(t.server_ca()).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_protocol_versions(TLS13)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tcp_from(source, t.app.api_addr).await;
    let name = ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(
        Duration::from_secs(5),
        TlsConnector::from(Arc::new(cfg)).connect(name, tcp),
    )
    .await
    .map_err(|_| std::io::Error::other("handshake timeout"))?
}

/// `GET /healthz` over a fresh connection from `source`; the status line.
async fn healthz_from(t: &TestApp, source: &str) -> std::io::Result<String> {
    let mut s = tls_to_api(t, source, &[]).await?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let (got, _) = until_closed(&mut s, Duration::from_secs(5))
        .await
        .ok_or_else(|| std::io::Error::other("no answer"))?;
    let text = String::from_utf8_lossy(&got);
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

/// `connection.limited` events recorded so far, as (details) JSON.
async fn limited_events(store: &dyn Store) -> Vec<serde_json::Value> {
    store
        .list_audit(&AuditFilter {
            action: Some("connection.limited".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap()
        .iter()
        .map(|e| serde_json::from_str(&e.details).unwrap())
        .collect()
}

/// Waits until `f` returns `Some`, for at most `limit`.
async fn within<T, F, Fut>(limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < limit, "condition not met within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Defect 2: a TCP connection that never starts TLS, a TLS connection that then
/// stays silent, one that sends only the HTTP/2 preface, an HTTP/2 client that
/// never sends a request, half a request line, and a kept-alive connection
/// after its request: each is closed within its (1 s / 2 s) deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_connections_without_a_request_are_closed_within_the_deadlines() {
    let t = TestApp::spawn_with(
        TestDb::sqlite().await,
        "[api]\nhandshake_timeout_secs = 1\nheader_read_timeout_secs = 1\nidle_timeout_secs = 2\n",
        Arc::new(SystemClock),
    )
    .await;
    let limit = Duration::from_secs(8);

    // Each deadline runs from the server's side of the connection, which
    // starts after the client begins to connect: the instant is taken before,
    // so a client descheduled between its connect and its clock read (a
    // loaded machine) cannot make the server look early.
    let mut opened = Vec::new();
    opened.push(Instant::now());
    let mut no_tls = tcp_from("127.0.0.1", t.app.api_addr).await;
    opened.push(Instant::now());
    let mut silent = tls_to_api(&t, "127.0.0.1", &[]).await.unwrap();
    opened.push(Instant::now());
    let mut preface_only = tls_to_api(&t, "127.0.0.1", &[b"h2"]).await.unwrap();
    preface_only.write_all(H2_PREFACE).await.unwrap();
    preface_only.flush().await.unwrap();
    opened.push(Instant::now());
    let mut h2_idle = tls_to_api(&t, "127.0.0.1", &[b"h2"]).await.unwrap();
    h2_idle
        .write_all(&[H2_PREFACE, H2_EMPTY_SETTINGS].concat())
        .await
        .unwrap();
    h2_idle.flush().await.unwrap();
    opened.push(Instant::now());
    let mut half_request = tls_to_api(&t, "127.0.0.1", &[b"http/1.1"]).await.unwrap();
    half_request
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    half_request.flush().await.unwrap();
    opened.push(Instant::now());
    let mut kept_alive = tls_to_api(&t, "127.0.0.1", &[b"http/1.1"]).await.unwrap();
    kept_alive
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    kept_alive.flush().await.unwrap();

    let (no_tls, silent, preface_only, h2_idle, half_request, kept_alive) = tokio::join!(
        until_closed(&mut no_tls, limit),
        until_closed(&mut silent, limit),
        until_closed(&mut preface_only, limit),
        until_closed(&mut h2_idle, limit),
        until_closed(&mut half_request, limit),
        until_closed(&mut kept_alive, limit),
    );
    for ((what, deadline, closed), opened) in [
        ("TCP without TLS", 1, &no_tls),
        ("silent TLS", 1, &silent),
        ("HTTP/2 preface only", 1, &preface_only),
        ("HTTP/2 without a request", 1, &h2_idle),
        ("half an HTTP/1 request", 1, &half_request),
        ("kept alive after a request", 2, &kept_alive),
    ]
    .into_iter()
    .zip(opened)
    {
        let (_, at) = closed
            .as_ref()
            .unwrap_or_else(|| panic!("{what}: still open after {limit:?}"));
        // The deadline, not something else, closed it.
        let after = at.duration_since(opened);
        assert!(after >= Duration::from_secs(deadline), "{what}: closed after {after:?}");
    }
    let (answer, _) = kept_alive.unwrap();
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "the kept-alive connection was served first"
    );
    // The API still serves.
    assert_eq!(healthz_from(&t, "127.0.0.1").await.unwrap(), "HTTP/1.1 200 OK");
    t.stop().await;
}

/// How the node ended a TLS connection, as a TLS client sees it.
#[derive(Debug, PartialEq, Eq)]
enum TlsEnd {
    /// A TLS close_notify, then the end of the stream.
    CloseNotify,
    /// The stream ended without close_notify (`UnexpectedEof`) or broke.
    Unclean(std::io::ErrorKind),
    /// Still open after the time limit.
    Open,
}

/// Reads until the node ends the connection: what it sent, and how it ended.
async fn until_tls_end(s: &mut TlsStream<TcpStream>, limit: Duration) -> (Vec<u8>, TlsEnd) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let Some(left) = limit.checked_sub(start.elapsed()) else {
            return (got, TlsEnd::Open);
        };
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return (got, TlsEnd::Open),
            Ok(Ok(0)) => return (got, TlsEnd::CloseNotify),
            Ok(Err(e)) => return (got, TlsEnd::Unclean(e.kind())),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// A TLS connection to the API that has sent `bytes`.
async fn api_sent(t: &TestApp, alpn: &[&[u8]], bytes: &[u8]) -> TlsStream<TcpStream> {
    let mut s = tls_to_api(t, "127.0.0.1", alpn).await.unwrap();
    s.write_all(bytes).await.unwrap();
    s.flush().await.unwrap();
    s
}

/// A client that reuses a kept-alive connection must be able to tell a closed
/// one from a broken one: every way the API ends a connection (idle deadline,
/// first-request deadline, header-read timeout, a malformed request answered
/// 400, `Connection: close`, an HTTP/2 client without a request) ends it with a
/// TLS close_notify, not a bare TCP close (an "unclean EOF" that Python's
/// ssl reports as "EOF occurred in violation of protocol").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_connections_end_with_a_tls_close_notify() {
    let t = TestApp::spawn_with(
        TestDb::sqlite().await,
        "[api]\nheader_read_timeout_secs = 1\nidle_timeout_secs = 2\n",
        Arc::new(SystemClock),
    )
    .await;
    let limit = Duration::from_secs(8);
    const GET: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let cases: [(&str, &[&[u8]], Vec<u8>, Option<&str>); 7] = [
        (
            "kept alive past the idle deadline",
            &[],
            GET.to_vec(),
            Some("HTTP/1.1 200"),
        ),
        ("silent past the first-request deadline", &[], Vec::new(), None),
        (
            "a malformed request line",
            &[],
            b"NOT A REQUEST\r\n\r\n".to_vec(),
            Some("HTTP/1.1 400"),
        ),
        (
            "an invalid header, with a body",
            &[],
            b"POST /healthz HTTP/1.1\r\nHost: localhost\r\nBad Header: x\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
            Some("HTTP/1.1 400"),
        ),
        (
            "half a second request, past the header-read timeout",
            &[],
            [GET, b"GET /healthz HTTP/1.1\r\nHost: local".as_slice()].concat(),
            Some("HTTP/1.1 200"),
        ),
        (
            "Connection: close",
            &[],
            b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".to_vec(),
            Some("HTTP/1.1 200"),
        ),
        (
            "HTTP/2 without a request",
            &[b"h2"],
            [H2_PREFACE, H2_EMPTY_SETTINGS].concat(),
            None,
        ),
    ];
    let mut conns = Vec::new();
    for (what, alpn, bytes, answer) in cases {
        let s = api_sent(&t, alpn, &bytes).await;
        conns.push(tokio::spawn(async move {
            let mut s = s;
            let (got, end) = until_tls_end(&mut s, limit).await;
            (what, answer, got, end)
        }));
    }
    let mut wrong = Vec::new();
    for c in conns {
        let (what, answer, got, end) = c.await.unwrap();
        let got = String::from_utf8_lossy(&got);
        if end != TlsEnd::CloseNotify || answer.is_some_and(|a| !got.starts_with(a)) {
            wrong.push(format!("{what}: {end:?} after {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    t.stop().await;
}

/// A request the API refuses before reading its body (an invalid header,
/// answered 400): the body that arrives after the answer must not make the
/// node reset the connection, which could destroy the answer and the
/// close_notify before the client reads them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_body_arriving_late_does_not_reset_the_answer() {
    let t = TestApp::spawn(TestDb::sqlite().await).await;
    let mut s = api_sent(
        &t,
        &[],
        b"PUT /api/v1/vendors/x/networks HTTP/1.1\r\nHost: localhost\r\nBad Header: x\r\nContent-Length: 200000\r\n\r\n",
    )
    .await;
    // The node answers and closes its side before the body comes; then the
    // client reads (a failed write is ignored, as HTTP clients do, to read the answer).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let wrote = async {
        s.write_all(&vec![b'a'; 200_000]).await?;
        s.flush().await
    };
    let _ = wrote.await;
    let (got, end) = until_tls_end(&mut s, Duration::from_secs(5)).await;
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 400"), "{got:?}");
    assert_eq!(end, TlsEnd::CloseNotify);
    t.stop().await;
}

/// Stopping the node ends its kept-alive API connections with a TLS close_notify too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_shutdown_ends_api_connections_with_a_tls_close_notify() {
    let t = TestApp::spawn(TestDb::sqlite().await).await;
    let mut s = api_sent(&t, &[], b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    let mut answer = [0u8; 12];
    s.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    // Idle well within its 30 s deadline when the node stops.
    let reader = tokio::spawn(async move { until_tls_end(&mut s, Duration::from_secs(10)).await.1 });
    t.stop().await;
    assert_eq!(reader.await.unwrap(), TlsEnd::CloseNotify);
}

/// Defect 2: with the API at its connection limit (silent TLS connections), a
/// new API connection is closed at once, the gateway still admits a tunnel, and
/// the API serves again once the silent connections reach their deadline.
async fn api_at_its_limit_does_not_starve_the_gateway(db: TestDb) {
    let mut t = TestApp::spawn_with(
        db,
        "[api]\nmax_connections = 4\nmax_connections_per_source = 4\nheader_read_timeout_secs = 4\nidle_timeout_secs = 4\n",
        Arc::new(SystemClock),
    )
    .await;
    let device = echo_device().await;
    let (sc, _, _) = t.open_window_scene(device).await;

    // The test's own HTTP client holds kept-alive connections: let them go, then
    // fill the API with silent connections.
    t.http = reqwest::Client::new();
    let silent = within(Duration::from_secs(10), || async {
        let mut held = Vec::new();
        for i in 0..4 {
            held.push(tls_to_api(&t, &format!("127.0.0.{}", 10 + i), &[]).await.ok()?);
        }
        Some(held)
    })
    .await;
    // At the limit, a new connection from a fresh source is closed before TLS.
    let refused = tls_to_api(&t, "127.0.0.30", &[]).await;
    assert!(
        refused.is_err(),
        "a connection beyond api.max_connections completed TLS"
    );

    // The gateway is not affected.
    let mut tunnel = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut tunnel, b"still here").await, b"still here");
    drop(tunnel);

    // The silent ones are closed at their deadline; then the API serves again.
    let status = within(Duration::from_secs(20), || async {
        healthz_from(&t, "127.0.0.1").await.ok()
    })
    .await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    for mut s in silent {
        assert!(closed_within(&mut s, Duration::from_secs(5)).await);
    }
    let events = within(Duration::from_secs(5), || async {
        let e = limited_events(t.app.store.as_ref()).await;
        e.iter()
            .any(|d| d["listener"] == "api" && d["limit"] == "global")
            .then_some(e)
    })
    .await;
    let global = events.iter().find(|d| d["limit"] == "global").unwrap();
    assert_eq!(global["max"], 4);
    assert!(global["suppressed_since_last"].is_u64());
    t.stop().await;
}

on_both_backends!(api_at_its_limit, super::api_at_its_limit_does_not_starve_the_gateway);

/// Opens `held` idle TCP connections from `source`, then `extra` more: each of
/// the extra ones must be closed at once. Returns the held ones and how long it took.
async fn flood(source: &str, to: SocketAddr, held: usize, extra: usize) -> (Vec<TcpStream>, Duration) {
    let start = Instant::now();
    let mut kept = Vec::new();
    for _ in 0..held {
        kept.push(tcp_from(source, to).await);
    }
    for i in 0..extra {
        let mut s = tcp_from(source, to).await;
        assert!(
            closed_within(&mut s, Duration::from_secs(3)).await,
            "connection {} from {source} beyond the per-source limit was not closed at once",
            held + i + 1
        );
    }
    // The held ones are still open (their handshake deadline is far).
    for s in &mut kept {
        assert!(!closed_within(s, Duration::from_millis(50)).await);
    }
    (kept, start.elapsed())
}

/// The `connection.limited` events for `listener` and `source`, once at least one is written.
async fn per_source_events(store: &dyn Store, listener: &str, source: &str) -> Vec<serde_json::Value> {
    within(Duration::from_secs(5), || async {
        let e: Vec<_> = limited_events(store)
            .await
            .into_iter()
            .filter(|d| d["listener"] == listener && d["limit"] == "per_source" && d["source_ip"] == source)
            .collect();
        (!e.is_empty()).then_some(e)
    })
    .await
}

/// Defect 6: one address holding its share of gateway connections cannot stop
/// another technician; the extra connections are closed before TLS and the
/// refusals are audited within a budget (at most one event per second per
/// source).
async fn one_source_cannot_fill_the_gateway(db: TestDb) {
    let t = TestApp::spawn_with(db, "[gateway]\nmax_connections_per_source = 4\n", Arc::new(SystemClock)).await;
    let device = echo_device().await;
    let sc = api_scene(&t, "Acme", "127.0.0.2/31", "mri-1", device).await;
    let vendor = t.token("vendor", "desk", Some(&sc.vendor_id)).await;
    let security = t.token("security", "soc", None).await;
    let now = Utc::now();
    t.approved_window(
        &vendor,
        &security,
        &sc.device_id,
        now - chrono::Duration::minutes(1),
        now + chrono::Duration::hours(1),
    )
    .await;

    let gw = t.app.gateway_addr;
    let (held, took) = flood("127.0.0.2", gw, 4, 30).await;
    // Another address of the same vendor still gets its tunnel.
    let mut tunnel = connect_from("127.0.0.3", gw, "mri-1", sc.tls.clone()).await.unwrap();
    assert_eq!(echo_roundtrip(&mut tunnel, b"admitted").await, b"admitted");
    drop(tunnel);
    // The flooding address is refused before TLS, even with a good certificate.
    assert!(connect_from("127.0.0.2", gw, "mri-1", sc.tls.clone()).await.is_err());

    let events = per_source_events(t.app.store.as_ref(), "gateway", "127.0.0.2").await;
    assert!(
        events.len() as u64 <= took.as_secs() + 2,
        "{} events for 31 refusals in {took:?}",
        events.len()
    );
    assert_eq!(events[0]["max"], 4);
    assert!(events[0]["suppressed_since_last"].is_u64());

    // The slots are given back when the connections end.
    drop(held);
    let mut back = within(Duration::from_secs(5), || async {
        connect_from("127.0.0.2", gw, "mri-1", sc.tls.clone()).await.ok()
    })
    .await;
    assert_eq!(echo_roundtrip(&mut back, b"again").await, b"again");
    drop(back);
    t.stop().await;
}

on_both_backends!(gateway_per_source, super::one_source_cannot_fill_the_gateway);

/// Defect 6, the API side: one address holding its share of API connections
/// does not stop another from being served.
async fn one_source_cannot_fill_the_api(db: TestDb) {
    let t = TestApp::spawn_with(db, "[api]\nmax_connections_per_source = 3\n", Arc::new(SystemClock)).await;
    let (held, took) = flood("127.0.0.2", t.app.api_addr, 3, 20).await;
    assert_eq!(healthz_from(&t, "127.0.0.3").await.unwrap(), "HTTP/1.1 200 OK");
    let (st, _) = t.call("GET", "/api/v1/me", Some(&t.admin), None).await;
    assert_eq!(st, 200);
    assert!(
        healthz_from(&t, "127.0.0.2").await.is_err(),
        "the flooding address is refused"
    );
    let events = per_source_events(t.app.store.as_ref(), "api", "127.0.0.2").await;
    assert!(
        events.len() as u64 <= took.as_secs() + 3,
        "{} events for 21 refusals in {took:?}",
        events.len()
    );
    assert_eq!(events[0]["max"], 3);
    drop(held);
    let status = within(Duration::from_secs(5), || async {
        healthz_from(&t, "127.0.0.2").await.ok()
    })
    .await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    t.stop().await;
}

on_both_backends!(api_per_source, super::one_source_cannot_fill_the_api);

/// Defect 13: `portier init` and `portier serve` create owner-only files: the
/// configuration, the database and its WAL (the one `init` makes, and one
/// SQLite creates under the process umask), keys; directories 0700.
#[cfg(unix)]
#[test]
fn files_are_created_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Command, Stdio};

    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let out = Command::new(env!("CARGO_BIN_EXE_portier"))
        .args(["init", "--json", "--dir"])
        .arg(&site)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in ["portier.toml", "portier.db", "certs/server.key", "certs/vendor-ca.key"] {
        assert_eq!(mode(&site.join(f)), 0o600, "{f}");
    }
    for d in ["", "certs"] {
        assert_eq!(mode(&site.join(d)), 0o700, "{d:?}");
    }

    // `serve` on a database it creates itself: SQLite follows the umask.
    let fresh = site.join("fresh.db");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_portier"))
        .args(["serve", "--config"])
        .arg(site.join("portier.toml"))
        .env("PORTIER_GATEWAY_LISTEN", "127.0.0.1:0")
        .env("PORTIER_API_LISTEN", "127.0.0.1:0")
        .env("PORTIER_DATABASE_URL", format!("sqlite://{}", fresh.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let wal = site.join("fresh.db-wal");
    let start = Instant::now();
    while !wal.exists() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let modes: Vec<_> = ["fresh.db", "fresh.db-wal", "fresh.db-shm"]
        .iter()
        .map(|f| (*f, site.join(f).exists().then(|| mode(&site.join(f)))))
        .collect();
    serve.kill().unwrap();
    serve.wait().unwrap();
    for (f, m) in modes {
        assert_eq!(m, Some(0o600), "{f}");
    }
}

/// A client that asks for large answers and reads nothing: an answer in flight is
/// not idleness, so before `api.send_timeout_secs` such a client held its
/// connection (and its place under the limits) for ever. It is cut once its
/// socket has stayed full for the send timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_client_that_reads_nothing_is_cut_off() {
    let t = TestApp::spawn_with(
        TestDb::sqlite().await,
        "[api]\nsend_timeout_secs = 1\nidle_timeout_secs = 120\nheader_read_timeout_secs = 120\n",
        Arc::new(SystemClock),
    )
    .await;
    // Pipelined requests for the OpenAPI document (well over 100 KB each):
    // far more than loopback's socket buffers hold.
    const REQUESTS: usize = 300;
    let one = b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut s = api_sent(&t, &[b"http/1.1"], &one.repeat(REQUESTS)).await;
    // Read nothing for a while: the node's writes block, then it cuts.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (got, end) = until_tls_end(&mut s, Duration::from_secs(20)).await;
    let answers = got.windows(15).filter(|w| w == b"HTTP/1.1 200 OK").count();
    assert_ne!(end, TlsEnd::Open, "still open after {answers} answers");
    assert!(answers < REQUESTS, "every answer was delivered: the client was not cut");
    // The API still serves others.
    assert_eq!(healthz_from(&t, "127.0.0.1").await.unwrap(), "HTTP/1.1 200 OK");
    t.stop().await;
}
