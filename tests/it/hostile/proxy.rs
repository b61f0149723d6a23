//! Behind a load balancer: a PROXY protocol v2 header is required from the
//! configured balancer (its carried address is the technician's, for the
//! declared-IP rule, the session record and the audit trail) and refused from
//! anyone else.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use portier::admission::AdmissionCache;
use portier::clock::{SharedClock, SystemClock};
use portier::gateway::{proxy, Gateway, GatewayDeps, GatewaySettings, Registry};
use portier::policy::PolicySettings;
use portier::store::{AuditFilter, Journal, SessionFilter, Store};
use rustls::pki_types::ServerName;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

use crate::common::*;
use crate::on_both_backends;

/// The load balancer's address in these tests.
const BALANCER: &str = "127.0.0.4";

/// A gateway that takes PROXY headers from [`BALANCER`] only.
async fn gateway(store: Arc<dyn Store>, pki: &Pki) -> (SocketAddr, CancellationToken) {
    gateway_with(store, pki, GatewaySettings::default().max_connections_per_source).await
}

/// [`gateway`] with a per-source limit of `per_source`.
async fn gateway_with(store: Arc<dyn Store>, pki: &Pki, per_source: usize) -> (SocketAddr, CancellationToken) {
    let clock: SharedClock = Arc::new(SystemClock);
    let (journal, _task) = Journal::start(store.clone());
    let deps = GatewayDeps {
        cache: Arc::new(AdmissionCache::new(store, PolicySettings::default(), clock.clone())),
        journal,
        registry: Arc::new(Registry::default()),
        clock,
        notifier: portier::notify::Notifier::disabled(),
        metrics: portier::metrics::Metrics::default(),
    };
    let settings = GatewaySettings {
        handshake_timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(2),
        linger: Duration::from_millis(500),
        proxy_protocol_from: vec![format!("{BALANCER}/32").parse().unwrap()],
        max_connections_per_source: per_source,
        ..GatewaySettings::default()
    };
    let gw = Gateway::bind("127.0.0.1:0".parse().unwrap(), pki.gateway_tls(), settings, deps)
        .await
        .unwrap();
    let addr = gw.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(gw.run(shutdown.clone()));
    (addr, shutdown)
}

/// A PROXY v2 header for TCP over IPv4 from `source` to `dest`, with one TLV
/// (skipped by the gateway).
fn v2_header(source: SocketAddr, dest: SocketAddr) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (source.ip(), dest.ip()) else {
        panic!("IPv4 only here");
    };
    let mut payload = Vec::new();
    payload.extend_from_slice(&s.octets());
    payload.extend_from_slice(&d.octets());
    payload.extend_from_slice(&source.port().to_be_bytes());
    payload.extend_from_slice(&dest.port().to_be_bytes());
    payload.extend_from_slice(&[0x05, 0x00, 0x03, b'a', b'b', b'c']); // PP2_TYPE_UNIQUE_ID
    let mut h = proxy::SIGNATURE.to_vec();
    h.extend_from_slice(&[0x21, 0x11]);
    h.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
    h.extend_from_slice(&payload);
    h
}

/// Connects from `from`, sends `header` (if any), then does the TLS handshake.
async fn connect_via(
    from: &str,
    gateway: SocketAddr,
    header: Option<&[u8]>,
    cfg: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(from.parse().unwrap(), 0))?;
    let mut tcp = sock.connect(gateway).await?;
    if let Some(h) = header {
        tcp.write_all(h).await?;
    }
    let name = ServerName::try_from("mri-1".to_owned()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), TlsConnector::from(cfg).connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("handshake timeout"))?
}

async fn audit_details(store: &dyn Store, action: &str) -> Vec<serde_json::Value> {
    store
        .list_audit(&AuditFilter {
            action: Some(action.into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap()
        .iter()
        .map(|e| serde_json::from_str(&e.details).unwrap())
        .collect()
}

/// Waits for a `tls.handshake_failed` event of `class` and returns it.
async fn handshake_failure(store: &dyn Store, class: &str) -> serde_json::Value {
    eventually(|| async {
        audit_details(store, "tls.handshake_failed")
            .await
            .into_iter()
            .find(|d| d["class"] == class)
    })
    .await
}

async fn admitted_with_the_carried_address(db: TestDb) {
    let pki = Pki::generate();
    let device = echo_device().await;
    let sc = scene(db.store.as_ref(), &pki, device).await;
    let (gw, shutdown) = gateway(db.store.clone(), &pki).await;
    let cfg = pki.client_tls(Some(&sc.tech_cert), TLS13);

    // (1) Through the balancer, from inside the vendor's declared network.
    let carried: SocketAddr = "127.0.0.2:40001".parse().unwrap();
    let mut tls = connect_via(BALANCER, gw, Some(&v2_header(carried, gw)), cfg.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut tls, b"ping").await, b"ping");
    let sessions = db.store.list_sessions(&SessionFilter::default()).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!((sessions[0].source_ip, sessions[0].source_port), (carried.ip(), 40001));
    let started = audit_details(db.store.as_ref(), "session.started").await;
    assert_eq!(started[0]["source_ip"], "127.0.0.2");
    assert_eq!(started[0]["source_port"], 40001);
    drop(tls);

    // (2) Through the balancer, from outside the declared networks: the
    // balancer's own address does not stand in for the technician's.
    let outside: SocketAddr = "192.0.2.7:40002".parse().unwrap();
    let mut tls = connect_via(BALANCER, gw, Some(&v2_header(outside, gw)), cfg)
        .await
        .unwrap();
    let said = read_all(&mut tls).await.unwrap();
    assert!(said.starts_with("PORTIER DENIED source_ip_not_declared"), "{said}");
    let denied = audit_details(db.store.as_ref(), "admission.denied").await;
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["source_ip"], "192.0.2.7");
    assert_eq!(denied[0]["source_port"], 40002);
    shutdown.cancel();
}
on_both_backends!(proxy_admitted, super::admitted_with_the_carried_address);

async fn refused_from_others_required_from_the_balancer(db: TestDb) {
    let pki = Pki::generate();
    let device = echo_device().await;
    let sc = scene(db.store.as_ref(), &pki, device).await;
    let (gw, shutdown) = gateway(db.store.clone(), &pki).await;
    let cfg = pki.client_tls(Some(&sc.tech_cert), TLS13);

    // (3) A header from an address that is not a balancer is never trusted,
    // even when it claims a declared address.
    let claimed: SocketAddr = "127.0.0.2:40003".parse().unwrap();
    let r = connect_via("127.0.0.2", gw, Some(&v2_header(claimed, gw)), cfg.clone()).await;
    assert!(r.is_err(), "no handshake after an untrusted PROXY header");
    let ev = handshake_failure(db.store.as_ref(), "proxy_header_untrusted").await;
    assert_eq!(ev["source_ip"], "127.0.0.2");

    // (4) The balancer without a header: closed, audited with its address.
    let r = connect_via(BALANCER, gw, None, cfg.clone()).await;
    assert!(r.is_err(), "no handshake without the required header");
    let ev = handshake_failure(db.store.as_ref(), "proxy_header_invalid").await;
    assert_eq!(ev["source_ip"], BALANCER);

    // A LOCAL header (the balancer's health check) is closed quietly.
    let mut local = proxy::SIGNATURE.to_vec();
    local.extend_from_slice(&[0x20, 0x00, 0x00, 0x00]);
    assert!(connect_via(BALANCER, gw, Some(&local), cfg).await.is_err());

    assert!(db
        .store
        .list_sessions(&SessionFilter::default())
        .await
        .unwrap()
        .is_empty());
    shutdown.cancel();
}
on_both_backends!(proxy_refused, super::refused_from_others_required_from_the_balancer);

/// The per-source limit counts the carried address, not the balancer's: with a
/// limit of one, a second tunnel from the same technician address is refused
/// while another technician behind the same balancer still gets through.
async fn per_source_limit_counts_the_carried_address(db: TestDb) {
    let pki = Pki::generate();
    let device = echo_device().await;
    let sc = scene(db.store.as_ref(), &pki, device).await;
    let (gw, shutdown) = gateway_with(db.store.clone(), &pki, 1).await;
    let cfg = pki.client_tls(Some(&sc.tech_cert), TLS13);

    let first: SocketAddr = "127.0.0.2:40010".parse().unwrap();
    let mut held = connect_via(BALANCER, gw, Some(&v2_header(first, gw)), cfg.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut held, b"one").await, b"one");

    let again: SocketAddr = "127.0.0.2:40011".parse().unwrap();
    let r = connect_via(BALANCER, gw, Some(&v2_header(again, gw)), cfg.clone()).await;
    assert!(r.is_err(), "the same technician address beyond its limit is closed");
    let limited = eventually(|| async {
        audit_details(db.store.as_ref(), "connection.limited")
            .await
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(
        (limited["source_ip"].as_str(), limited["limit"].as_str()),
        (Some("127.0.0.2"), Some("per_source"))
    );

    // Another address behind the same balancer is not limited by the first:
    // it reaches the policy (and is denied there, being undeclared).
    let other: SocketAddr = "192.0.2.9:40012".parse().unwrap();
    let mut tls = connect_via(BALANCER, gw, Some(&v2_header(other, gw)), cfg)
        .await
        .unwrap();
    let said = read_all(&mut tls).await.unwrap();
    assert!(said.starts_with("PORTIER DENIED source_ip_not_declared"), "{said}");
    drop(held);
    shutdown.cancel();
}
on_both_backends!(proxy_per_source, super::per_source_limit_counts_the_carried_address);

/// The whole node reads `gateway.proxy_protocol_from` from its configuration,
/// admits through the balancer and lists the balancer in the flow matrix.
async fn configured_node_lists_the_balancer_flow(db: TestDb) {
    let t = TestApp::spawn_config(
        db,
        &format!("gateway.proxy_protocol_from = [\"{BALANCER}/32\"]"),
        "",
        Arc::new(SystemClock),
    )
    .await;
    assert_eq!(t.settings().gateway_settings().proxy_protocol_from.len(), 1);
    let auditor = t.token("auditor", "audit", None).await;
    let csv = t
        .http
        .get(t.url("/api/v1/flows?format=csv"))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        csv.lines()
            .any(|l| l.starts_with("balancer-1,") && l.contains("127.0.0.4/32 (load balancer)")),
        "{csv}"
    );
    // A direct connection to this node (not from the balancer) with a header is refused.
    let gw = t.app.gateway_addr;
    let mut tcp = {
        let sock = TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.3:0".parse().unwrap()).unwrap();
        sock.connect(gw).await.unwrap()
    };
    tcp.write_all(&v2_header("127.0.0.2:1".parse().unwrap(), gw))
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut tcp, &mut buf),
    )
    .await
    .unwrap()
    .unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    let ev = handshake_failure(t.app.store.as_ref(), "proxy_header_untrusted").await;
    assert_eq!(ev["source_ip"], "127.0.0.3");
    t.stop().await;
}
on_both_backends!(proxy_configured, super::configured_node_lists_the_balancer_flow);
