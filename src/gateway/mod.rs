//! The TLS gateway: accepts technicians' connections, asks the policy, records
//! the session durably, then pumps bytes to the device until the tunnel ends.

pub mod proxy;
mod registry;
pub mod tls;
mod tunnel;

use crate::events::Event;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info_span, Instrument};

use crate::admission::AdmissionCache;
use crate::audit::{AuditEvent, GATEWAY_ACTOR};
use crate::budget::{bounded, AuditBudget};
use crate::clock::SharedClock;
use crate::conn_limit::{ConnLimiter, ConnPermit};
use crate::domain::{EndReason, Fingerprint, SessionId};
use crate::pki::CertInfo;
use crate::policy::{self, Admission, Decision, Denial, DenyReason, Facts};
use crate::store::{Journal, JournalEntry, Session, SessionEnd};

pub use registry::{LiveInfo, LiveSession, Registry};
pub use tls::HandshakeFailure;
pub use tunnel::{drive, Pump, BUF_SIZE};

/// Tunable limits of the gateway.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// A client must finish its TLS handshake within this.
    pub handshake_timeout: Duration,
    /// Connecting to the device must succeed within this.
    pub connect_timeout: Duration,
    /// Connections handled at once; beyond, new ones are closed at once.
    pub max_connections: usize,
    /// Connections one source address may hold at once; beyond, closed at once.
    pub max_connections_per_source: usize,
    /// After one side closes, the other has this long to finish.
    pub linger: Duration,
    /// This node's name, recorded with its sessions.
    pub node: String,
    /// Load balancers that must open each connection with a PROXY protocol v2
    /// header; empty: PROXY protocol off.
    pub proxy_protocol_from: Vec<ipnet::IpNet>,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            max_connections: 10_000,
            max_connections_per_source: 64,
            linger: Duration::from_secs(2),
            node: "local".into(),
            proxy_protocol_from: Vec::new(),
        }
    }
}

/// What the gateway shares with the rest of Portier.
#[derive(Clone)]
pub struct GatewayDeps {
    pub cache: Arc<AdmissionCache>,
    pub journal: Journal,
    pub registry: Arc<Registry>,
    pub clock: SharedClock,
    pub notifier: crate::notify::Notifier,
    pub metrics: crate::metrics::Metrics,
}

/// At most this many handshake failures per second reach the audit trail in
/// all, and at most [`HANDSHAKE_AUDITS_PER_KEY_PER_SECOND`] per (source address,
/// failure class); the rest are counted, so a flood of garbage cannot flood the
/// trail, nor one source hide the failures of the others.
const HANDSHAKE_AUDITS_PER_SECOND: u64 = 20;
/// See [`HANDSHAKE_AUDITS_PER_SECOND`].
const HANDSHAKE_AUDITS_PER_KEY_PER_SECOND: u64 = 2;
/// Characters of a handshake error's text kept in the trail (rustls and I/O
/// errors can quote what the peer sent).
const HANDSHAKE_ERROR_CHARS: usize = 256;

/// At most this many `admission.denied` events per second reach the audit trail
/// in all, and at most [`DENIAL_AUDITS_PER_KEY_PER_SECOND`] per (source address,
/// reason); the rest are counted and reported in the next event of their key
/// (`suppressed_since_last`). Any holder of a vendor-CA certificate can cause denials.
const DENIAL_AUDITS_PER_SECOND: u64 = 50;
/// See [`DENIAL_AUDITS_PER_SECOND`].
const DENIAL_AUDITS_PER_KEY_PER_SECOND: u64 = 5;
/// Characters of the server name and certificate subject kept in a denial event.
const DENIAL_FIELD_CHARS: usize = 256;

/// Encrypted bytes rustls may queue towards one technician (its default is 64 KiB).
const TLS_SEND_BUFFER: usize = 32 * 1024;

/// Denials within one minute that make a burst worth telling security about.
const DENIAL_BURST: u64 = 10;

struct Shared {
    denial_minute: AtomicI64,
    denials_this_minute: AtomicU64,
    settings: GatewaySettings,
    deps: GatewayDeps,
    acceptor: TlsAcceptor,
    handshake_audits: AuditBudget<(IpAddr, HandshakeFailure)>,
    limits: ConnLimiter,
    denial_audits: AuditBudget<(IpAddr, DenyReason)>,
}

/// A bound gateway, ready to [`run`](Gateway::run).
pub struct Gateway {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl Gateway {
    /// Binds the listener. Use port 0 to let the system choose (tests).
    pub async fn bind(
        addr: SocketAddr,
        tls: Arc<rustls::ServerConfig>,
        settings: GatewaySettings,
        deps: GatewayDeps,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Self::from_listener(listener, tls, settings, deps))
    }

    /// Wraps an already-bound listener.
    pub fn from_listener(
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
        settings: GatewaySettings,
        deps: GatewayDeps,
    ) -> Self {
        let limits = ConnLimiter::new(
            "gateway",
            &settings.node,
            settings.max_connections,
            settings.max_connections_per_source,
            deps.journal.clone(),
            deps.clock.clone(),
        );
        Self {
            listener,
            shared: Arc::new(Shared {
                limits,
                settings,
                deps,
                acceptor: TlsAcceptor::from(tls),
                denial_minute: AtomicI64::new(0),
                denials_this_minute: AtomicU64::new(0),
                handshake_audits: AuditBudget::new(HANDSHAKE_AUDITS_PER_SECOND, HANDSHAKE_AUDITS_PER_KEY_PER_SECOND),
                denial_audits: AuditBudget::new(DENIAL_AUDITS_PER_SECOND, DENIAL_AUDITS_PER_KEY_PER_SECOND),
            }),
        }
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections until `shutdown`, then cuts the live tunnels
    /// (`gateway_shutdown`) and waits for their records to be written.
    pub async fn run(self, shutdown: CancellationToken) {
        let tasks = TaskTracker::new();
        if let Ok(addr) = self.listener.local_addr() {
            tracing::info!(%addr, "gateway listening");
        }
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                a = self.listener.accept() => a,
            };
            let (tcp, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Checked before any TLS work; beyond a limit the connection is
            // dropped here, closed at once (logged and audited within a budget).
            // Behind a balancer every client shares its address: the
            // per-source limit waits for the address its PROXY header carries.
            let relayed = self.shared.is_balancer(peer.ip());
            let permit = if relayed {
                self.shared.limits.admit_relayed(peer)
            } else {
                self.shared.limits.admit(peer)
            };
            let Some(permit) = permit else {
                continue;
            };
            let shared = self.shared.clone();
            tasks.spawn(async move {
                handle(shared, tcp, peer, relayed, permit).await;
            });
        }
        let cut = self.shared.deps.registry.cut_all(EndReason::GatewayShutdown);
        tracing::info!(cut, "gateway stopping");
        tasks.close();
        if tokio::time::timeout(Duration::from_secs(10), tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not finish within 10 s of shutdown");
        }
    }
}

impl Shared {
    /// Whether `ip` is a configured load balancer (PROXY header required).
    fn is_balancer(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.settings.proxy_protocol_from.iter().any(|n| n.contains(&ip))
    }

    /// Counts denials per minute; the burst threshold is notified once per minute.
    fn note_denial(&self, peer: SocketAddr, reason: DenyReason) {
        let minute = self.deps.clock.now().timestamp() / 60;
        if self.denial_minute.swap(minute, Ordering::AcqRel) != minute {
            self.denials_this_minute.store(0, Ordering::Release);
        }
        if self.denials_this_minute.fetch_add(1, Ordering::AcqRel) + 1 == DENIAL_BURST {
            self.deps.notifier.send(
                Event::AdmissionDeniedBurst,
                json!({"denials_this_minute": DENIAL_BURST, "last_source_ip": peer.ip().to_canonical().to_string(), "last_reason": reason.code(), "node": self.settings.node}),
            );
        }
    }
}

/// The facts the policy needs, from a completed handshake.
struct Presented {
    sni: Option<String>,
    fingerprint: Option<Fingerprint>,
    leaf: Option<Vec<u8>>,
    /// When the handshake completed: where admission latency starts.
    handshake_done: std::time::Instant,
}

fn presented(tls: &TlsStream<TcpStream>) -> Presented {
    let conn = tls.get_ref().1;
    let leaf = conn.peer_certificates().and_then(|c| c.first());
    Presented {
        sni: conn.server_name().map(str::to_owned),
        fingerprint: leaf.map(|c| Fingerprint::of_der(c.as_ref())),
        leaf: leaf.map(|c| c.as_ref().to_vec()),
        handshake_done: std::time::Instant::now(),
    }
}

/// The technician's address: from the PROXY header on a balancer's connection
/// (`None`: closed, already reported), else the TCP peer, which must not send a
/// PROXY header. Bounded by `deadline`; reads exactly the header, no TLS byte.
async fn source_of(
    shared: &Shared,
    id: &SessionId,
    tcp: &mut TcpStream,
    peer: SocketAddr,
    relayed: bool,
    permit: &mut ConnPermit,
    deadline: tokio::time::Instant,
) -> Option<SocketAddr> {
    if !relayed {
        // A TLS record never starts with the signature's first byte, so one
        // peek tells a PROXY header from a ClientHello; errors and EOF are left
        // for the handshake to report.
        let mut first = [0u8; proxy::SIGNATURE.len()];
        return match tokio::time::timeout_at(deadline, tcp.peek(&mut first)).await {
            Ok(Ok(n)) if proxy::looks_like_header(first.get(..n).unwrap_or_default()) => {
                let error = "PROXY protocol header from an address not in gateway.proxy_protocol_from";
                handshake_failed(shared, id, peer, HandshakeFailure::ProxyHeaderUntrusted, error).await;
                None
            }
            Ok(_) => Some(peer),
            Err(_) => {
                handshake_failed(shared, id, peer, HandshakeFailure::Timeout, "handshake timeout").await;
                None
            }
        };
    }
    let source = match tokio::time::timeout_at(deadline, proxy::read(tcp)).await {
        Ok(Ok(proxy::ProxyHeader::Proxied { source })) => SocketAddr::new(source.ip().to_canonical(), source.port()),
        Ok(Ok(proxy::ProxyHeader::Local)) => {
            // The balancer's health check: no client, nothing to admit or audit.
            tracing::debug!("PROXY LOCAL (health check): closed");
            return None;
        }
        Ok(Err(e)) => {
            handshake_failed(shared, id, peer, HandshakeFailure::ProxyHeaderInvalid, &e.to_string()).await;
            return None;
        }
        Err(_) => {
            handshake_failed(shared, id, peer, HandshakeFailure::Timeout, "PROXY header timeout").await;
            return None;
        }
    };
    tracing::Span::current().record("source", tracing::field::display(source));
    // The per-source limit, skipped at accept for the balancer, bites here
    // (refusal logged and audited as `connection.limited` for the technician's address).
    shared.limits.attach_source(permit, source.ip()).then_some(source)
}

async fn handle(shared: Arc<Shared>, mut tcp: TcpStream, peer: SocketAddr, relayed: bool, mut permit: ConnPermit) {
    let id = SessionId::generate();
    let span = info_span!("conn", %peer, id = %id, source = tracing::field::Empty);
    async move {
        let _ = tcp.set_nodelay(true);
        // One deadline for the PROXY header and the TLS handshake together.
        let deadline = tokio::time::Instant::now() + shared.settings.handshake_timeout;
        // From here on `peer` is the technician's address (declared-IP rule,
        // session record, audit); the permit is held until the connection ends.
        let Some(peer) = source_of(&shared, &id, &mut tcp, peer, relayed, &mut permit, deadline).await else {
            return;
        };
        let handshake = tokio::time::timeout_at(deadline, shared.acceptor.accept(tcp)).await;
        let mut tls = match handshake {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => return handshake_failed(&shared, &id, peer, HandshakeFailure::of(&e), &e.to_string()).await,
            Err(_) => {
                return handshake_failed(&shared, &id, peer, HandshakeFailure::Timeout, "handshake timeout").await
            }
        };
        // Bounds what rustls queues for a technician who reads slowly: with the
        // pump's own buffer, a stalled tunnel holds at most both.
        tls.get_mut().1.set_buffer_limit(Some(TLS_SEND_BUFFER));
        let facts = presented(&tls);
        let decision = match shared.deps.cache.snapshot().await {
            Ok(snap) => {
                let f = Facts {
                    sni: facts.sni.as_deref(),
                    fingerprint: facts.fingerprint,
                    source_ip: peer.ip(),
                };
                let d = policy::decide(&f, &snap, shared.deps.clock.now());
                match d {
                    Decision::Allow(a) => {
                        let found = facts.sni.as_deref().and_then(|n| snap.device_by_name(n));
                        let address = found.map(|d| d.address.clone()).unwrap_or_default();
                        let subject = facts
                            .fingerprint
                            .and_then(|f| snap.technicians.get(&f))
                            .map(|t| t.subject.clone())
                            .unwrap_or_default();
                        Ok((a, address, subject))
                    }
                    Decision::Deny(d) => Err(d),
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "admission state unavailable");
                // Refused either way; a lockdown this node holds, or the last state
                // it read, is the truer reason than the store's (a stale feed
                // right after an outage must not hide that access is locked down).
                let cache = &shared.deps.cache;
                let locked = cache.guard().locked() || cache.cached_lockdown() == Some(true);
                Err(Denial {
                    reason: if locked {
                        DenyReason::Lockdown
                    } else {
                        DenyReason::StoreUnavailable
                    },
                    vendor_id: None,
                    technician_id: None,
                    device_id: None,
                })
            }
        };
        match decision {
            Ok((admission, address, subject)) => {
                tunnel(&shared, tls, &id, peer, admission, &address, subject, &facts).await
            }
            Err(denial) => {
                record_denial(&shared, &id, peer, &facts, &denial).await;
                deny_on_wire(&mut tls, denial.reason, &id).await;
            }
        }
    }
    .instrument(span)
    .await;
}

/// `PORTIER DENIED <reason> <id>`, then close_notify.
async fn deny_on_wire(tls: &mut TlsStream<TcpStream>, reason: DenyReason, id: &SessionId) {
    let line = format!("PORTIER DENIED {} {}\n", reason.code(), id);
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        tls.write_all(line.as_bytes()).await?;
        tls.shutdown().await
    })
    .await;
}

async fn record_denial(shared: &Shared, id: &SessionId, peer: SocketAddr, facts: &Presented, denial: &Denial) {
    // Debug-formatted: the SNI is the client's, escaped so it cannot forge log lines.
    tracing::info!(reason = denial.reason.code(), sni = ?facts.sni.as_deref().unwrap_or_default(), "tunnel denied");
    let _observed_on_return = shared.deps.metrics.denied(denial.reason, facts.handshake_done);
    shared.note_denial(peer, denial.reason);
    let now = shared.deps.clock.now();
    let source = peer.ip().to_canonical();
    let Some(suppressed) = shared.denial_audits.admit((source, denial.reason), now) else {
        // Counted; the client still hears why on the wire.
        return;
    };
    let subject = facts
        .leaf
        .as_deref()
        .and_then(|der| CertInfo::from_der(der).ok())
        .map(|c| bounded(&c.subject, DENIAL_FIELD_CHARS));
    let event = AuditEvent::new(
        now,
        GATEWAY_ACTOR,
        Event::AdmissionDenied,
        id.as_str(),
        "denied",
        json!({
            "reason": denial.reason.code(),
            "source_ip": source.to_string(),
            "source_port": peer.port(),
            "sni": facts.sni.as_deref().map(|n| bounded(n, DENIAL_FIELD_CHARS)),
            "certificate_fingerprint": facts.fingerprint.map(|f| f.to_hex()),
            "certificate_subject": subject,
            "vendor_id": denial.vendor_id,
            "technician_id": denial.technician_id,
            "device_id": denial.device_id,
            "suppressed_since_last": suppressed,
            "node": shared.settings.node,
        }),
    );
    // Waits for the write so the trail holds the denial before the client hears
    // of it; bounded, because a stalled store must not stall the refusal.
    match tokio::time::timeout(
        Duration::from_secs(2),
        shared.deps.journal.write(JournalEntry::Audit(event)),
    )
    .await
    {
        Ok(Ok(crate::store::Durability::Durable)) => {}
        Ok(Ok(crate::store::Durability::Queued)) => {
            tracing::debug!("denial queued: the store is down, it is written when it is back");
        }
        Ok(Err(e)) => tracing::error!(error = %e, "denial not recorded"),
        Err(_) => tracing::error!("denial not recorded: store too slow"),
    }
}

async fn handshake_failed(shared: &Shared, id: &SessionId, peer: SocketAddr, class: HandshakeFailure, error: &str) {
    let error = bounded(error, HANDSHAKE_ERROR_CHARS);
    // Debug-formatted: the text may quote the peer, escaped so it cannot forge log lines.
    tracing::info!(class = class.code(), error = ?error, "TLS handshake failed");
    shared.deps.metrics.handshake_failed(class);
    let now = shared.deps.clock.now();
    let source = peer.ip().to_canonical();
    let Some(suppressed) = shared.handshake_audits.admit((source, class), now) else {
        return;
    };
    let event = AuditEvent::new(
        now,
        GATEWAY_ACTOR,
        Event::TlsHandshakeFailed,
        id.as_str(),
        "denied",
        json!({
            "source_ip": source.to_string(),
            "source_port": peer.port(),
            "class": class.code(),
            "error": error,
            "suppressed_since_last": suppressed,
            "node": shared.settings.node,
        }),
    );
    // Not awaited: nobody is waiting on the other end of a failed handshake.
    let journal = shared.deps.journal.clone();
    tokio::spawn(async move {
        if let Err(e) = journal.write(JournalEntry::Audit(event)).await {
            tracing::warn!(error = %e, "handshake failure not recorded");
        }
    });
}

#[allow(clippy::too_many_arguments)]
async fn tunnel(
    shared: &Shared,
    mut tls: TlsStream<TcpStream>,
    id: &SessionId,
    peer: SocketAddr,
    a: Admission,
    address: &str,
    subject: String,
    facts: &Presented,
) {
    let deps = &shared.deps;
    let started_at = crate::audit::truncate_micros(deps.clock.now());
    let session = Session {
        id: id.clone(),
        window_id: a.window_id.clone(),
        vendor_id: a.vendor_id.clone(),
        technician_id: a.technician_id.clone(),
        technician_subject: subject,
        device_id: a.device_id.clone(),
        source_ip: peer.ip().to_canonical(),
        source_port: peer.port(),
        node: shared.settings.node.clone(),
        started_at,
        ended_at: None,
        bytes_from_vendor: 0,
        bytes_to_vendor: 0,
        end_reason: None,
    };
    let event = AuditEvent::new(
        started_at,
        GATEWAY_ACTOR,
        Event::SessionStarted,
        id.as_str(),
        "success",
        json!({
            "window_id": a.window_id,
            "vendor_id": a.vendor_id,
            "technician_id": a.technician_id,
            "technician_subject": session.technician_subject,
            "device_id": a.device_id,
            "source_ip": session.source_ip.to_string(),
            "source_port": session.source_port,
            "deadline": a.deadline,
            "certificate_not_after": a.certificate_not_after,
            "emergency": a.emergency,
            "report_overdue_warning": a.report_overdue_warning,
            "node": shared.settings.node,
        }),
    );
    let live = Arc::new(
        LiveSession::new(
            id.clone(),
            a.window_id.clone(),
            a.vendor_id.clone(),
            a.technician_id.clone(),
            a.device_id.clone(),
            started_at,
            a.deadline,
        )
        .with_certificate_expiry(a.certificate_not_after)
        .with_source(session.source_ip),
    );
    // Registered before the record is written (issue 9): a revocation, termination,
    // lockdown or disable committed while the write is under way finds the tunnel
    // and cuts it, instead of missing it and letting it run to its deadline.
    deps.registry.insert(live.clone());
    // Invariant 2: no byte reaches the device before the session is on disk.
    if let Err(e) = deps.journal.write(JournalEntry::SessionStarted(session, event)).await {
        deps.registry.remove(id);
        tracing::error!(error = %e, "session record not written: refusing the tunnel");
        let denial = Denial {
            reason: DenyReason::StoreUnavailable,
            vendor_id: Some(a.vendor_id),
            technician_id: Some(a.technician_id),
            device_id: Some(a.device_id),
        };
        record_denial(shared, id, peer, facts, &denial).await;
        deny_on_wire(&mut tls, DenyReason::StoreUnavailable, id).await;
        return;
    }
    deps.metrics.admitted(facts.handshake_done);
    // A change committed after admission read its snapshot but before the insert
    // above cut nothing: decide again on the current state.
    if live.cut_reason().is_none() {
        if let Some(reason) = recheck(shared, &live, facts).await {
            tracing::info!(
                reason = reason.as_str(),
                "admission withdrawn while the session was being recorded"
            );
            live.cut(reason);
        }
    }
    deps.notifier.send(
        Event::SessionStarted,
        json!({"session_id": id, "window_id": a.window_id, "vendor_id": a.vendor_id, "technician_id": a.technician_id, "device_id": a.device_id, "source_ip": peer.ip().to_canonical().to_string(), "emergency": a.emergency}),
    );
    tracing::info!(vendor = %a.vendor_id, technician = %a.technician_id,device = %a.device_id, window = %a.window_id, deadline = %a.deadline, "tunnel admitted");

    // A tunnel cut before or while connecting never reaches the device.
    let connected = match live.cut_reason() {
        Some(reason) => Err(reason),
        None => tokio::select! {
            biased;
            () = live.cut_requested() => Err(live.cut_reason().unwrap_or(EndReason::Error)),
            c = tokio::time::timeout(shared.settings.connect_timeout, TcpStream::connect(address)) => Ok(c),
        },
    };
    let (reason, up, down, detail) = match connected {
        Err(cut) => (cut, 0, 0, None),
        Ok(Ok(Ok(mut device))) => {
            let _ = device.set_nodelay(true);
            let mut pump = Pump::new(&mut tls, &mut device);
            let reason = drive(&mut pump, &live, &deps.clock, shared.settings.linger).await;
            (reason, pump.bytes_from_vendor(), pump.bytes_to_vendor(), None)
        }
        Ok(Ok(Err(e))) => (EndReason::Error, 0, 0, Some(format!("device_unreachable: {e}"))),
        Ok(Err(_)) => (
            EndReason::Error,
            0,
            0,
            Some("device_unreachable: connect timeout".to_owned()),
        ),
    };
    deps.metrics.tunnel_ended(reason, up, down);
    deps.registry.remove(id);
    if detail.is_some() {
        tracing::warn!(
            address,
            detail = detail.as_deref().unwrap_or_default(),
            "device unreachable"
        );
        deny_on_wire(&mut tls, DenyReason::DeviceUnreachable, id).await;
    } else {
        let _ = tokio::time::timeout(Duration::from_secs(1), tls.shutdown()).await;
    }
    drop(tls);

    let ended_at = crate::audit::truncate_micros(deps.clock.now());
    let end = SessionEnd {
        id: id.clone(),
        ended_at,
        bytes_from_vendor: up,
        bytes_to_vendor: down,
        end_reason: reason,
    };
    let event = AuditEvent::new(
        ended_at,
        GATEWAY_ACTOR,
        Event::SessionEnded,
        id.as_str(),
        "success",
        json!({
            "end_reason": reason.as_str(),
            "bytes_from_vendor": up,
            "bytes_to_vendor": down,
            "detail": detail,
            "window_id": a.window_id,
            "vendor_id": a.vendor_id,
        }),
    );
    tracing::info!(
        reason = reason.as_str(),
        bytes_from_vendor = up,
        bytes_to_vendor = down,
        "tunnel ended"
    );
    deps.notifier.send(
        Event::SessionEnded,
        json!({"session_id": id, "window_id": a.window_id, "vendor_id": a.vendor_id, "end_reason": reason.as_str(), "bytes_from_vendor": up, "bytes_to_vendor": down}),
    );
    match deps.journal.write(JournalEntry::SessionEnded(end, event)).await {
        Ok(crate::store::Durability::Durable) => {}
        Ok(crate::store::Durability::Queued) => {
            tracing::warn!("session end queued: the store is down, it is written when it is back");
        }
        // Only if the writer stopped (the node is stopping): the start is on record,
        // and the next start closes it from the last heartbeat and byte checkpoint.
        Err(e) => tracing::error!(error = %e, "session end not recorded"),
    }
}

/// Decides again, on the current snapshot, for a tunnel just registered: the reason
/// to cut it if a change that cuts live tunnels was committed since admission read
/// its snapshot. The rule is the change-feed follower's own ([`crate::cluster::forbids_on`]),
/// so every change that cuts a live tunnel (a revocation, a lockdown, a device
/// disabled or unassigned, networks narrowed...) cuts this one too. A store
/// outage here does not, since the record is already durable and live tunnels are
/// not cut for one either.
async fn recheck(shared: &Shared, live: &LiveSession, facts: &Presented) -> Option<EndReason> {
    let snap = match shared.deps.cache.snapshot().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "admission state unavailable for the re-check");
            return None;
        }
    };
    if shared.deps.clock.now() >= live.deadline() {
        // The deadline already passed: the pump ends it with the right reason.
        return None;
    }
    crate::cluster::forbids_on(live, &snap, facts.fingerprint.as_ref(), facts.sni.as_deref())
}
