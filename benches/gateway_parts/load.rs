//! The loopback backend standing in for a device, and the load client: full
//! TLS 1.3 handshakes with a technician certificate, never resumed.
//!
//! The backend's behaviour is chosen by the first byte a tunnel carries, so one
//! backend address serves every proxy: `e` echoes, `u` swallows (upload), `d`
//! sends without end (download).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

pub const ECHO: u8 = b'e';
pub const UPLOAD: u8 = b'u';
pub const DOWNLOAD: u8 = b'd';

/// What throughput tunnels write at a time.
const CHUNK: usize = 64 * 1024;

/// The device: one listener, counting what it swallows.
pub struct Backend {
    pub addr: SocketAddr,
    pub received: Arc<AtomicU64>,
}

impl Backend {
    pub async fn start() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let received = Arc::new(AtomicU64::new(0));
        let counter = received.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(serve(s, counter.clone()));
            }
        });
        Self { addr, received }
    }
}

async fn serve(mut s: TcpStream, received: Arc<AtomicU64>) {
    let _ = s.set_nodelay(true);
    let mut mode = [0u8; 1];
    if s.read_exact(&mut mode).await.is_err() {
        return;
    }
    match mode[0] {
        ECHO => {
            if s.write_all(&mode).await.is_err() {
                return;
            }
            let (mut r, mut w) = s.split();
            let _ = tokio::io::copy(&mut r, &mut w).await;
        }
        UPLOAD => {
            let mut buf = vec![0u8; CHUNK];
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                received.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
        DOWNLOAD => {
            let buf = vec![0x5au8; CHUNK];
            while s.write_all(&buf).await.is_ok() {}
        }
        _ => {}
    }
}

/// The technician's side: one client configuration, connections from rotating
/// loopback addresses (127.0.0.2–254) so that thousands of tunnels neither
/// exhaust one address's ports nor hit a per-source limit.
#[derive(Clone)]
pub struct Client {
    tls: TlsConnector,
    sni: ServerName<'static>,
    next_source: Arc<AtomicUsize>,
}

pub type Tunnel = TlsStream<TcpStream>;

impl Client {
    pub fn new(cfg: rustls::ClientConfig) -> Self {
        Self {
            tls: TlsConnector::from(Arc::new(cfg)),
            sni: ServerName::try_from("mri-1").unwrap(),
            next_source: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The same client asking for device `sni` (Portier routes on it; the
    /// other proxies ignore it).
    pub fn to(&self, sni: &'static str) -> Self {
        Self {
            sni: ServerName::try_from(sni).unwrap(),
            ..self.clone()
        }
    }

    fn source(&self) -> SocketAddr {
        let n = self.next_source.fetch_add(1, Ordering::Relaxed) % 253;
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + n as u8)), 0)
    }

    /// Connects, handshakes, and sends `mode` to the backend; for [`ECHO`], waits
    /// for the byte to come back (the tunnel then reaches the device).
    pub async fn open(&self, server: SocketAddr, mode: u8) -> std::io::Result<Tunnel> {
        let sock = TcpSocket::new_v4()?;
        sock.bind(self.source())?;
        let tcp = sock.connect(server).await?;
        tcp.set_nodelay(true)?;
        let mut s = self.tls.connect(self.sni.clone(), tcp).await?;
        s.write_all(&[mode]).await?;
        s.flush().await?;
        if mode == ECHO {
            let mut back = [0u8; 1];
            s.read_exact(&mut back).await?;
            if back[0] != ECHO {
                // Portier's refusal line starts with 'P'.
                return Err(std::io::Error::other(format!(
                    "refused or garbled: {:?}",
                    back[0] as char
                )));
            }
        }
        Ok(s)
    }

    /// [`Self::open`] bounded by 10 s.
    pub async fn open_within(&self, server: SocketAddr, mode: u8) -> std::io::Result<Tunnel> {
        tokio::time::timeout(Duration::from_secs(10), self.open(server, mode))
            .await
            .map_err(|_| std::io::Error::other("tunnel not open within 10 s"))?
    }

    /// The cipher suite and key exchange group one handshake with `server`
    /// agrees on, in rustls's names.
    pub async fn negotiated(&self, server: SocketAddr) -> std::io::Result<(String, String)> {
        let s = self.open_within(server, ECHO).await?;
        let c = s.get_ref().1;
        let suite = c.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite()));
        let group = c.negotiated_key_exchange_group().map(|g| format!("{:?}", g.name()));
        close(s).await;
        Ok((suite.unwrap_or_default(), group.unwrap_or_default()))
    }
}

/// Closes a tunnel as a client would: close_notify, FIN, drop.
async fn close(mut s: Tunnel) {
    let _ = tokio::time::timeout(Duration::from_secs(1), s.shutdown()).await;
}

/// New tunnels (connect + handshake + 1-byte echo + close) by `concurrency`
/// workers for `duration`: the count, the failures, and each tunnel's latency
/// up to its echo.
pub struct Rate {
    pub done: u64,
    pub failed: u64,
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
}

pub async fn new_tunnels(client: &Client, server: SocketAddr, concurrency: usize, duration: Duration) -> Rate {
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        workers.push(tokio::spawn(async move {
            let (mut lat, mut failed) = (Vec::new(), 0u64);
            while Instant::now() < deadline {
                let t = Instant::now();
                match client.open_within(server, ECHO).await {
                    Ok(s) => {
                        lat.push(t.elapsed());
                        close(s).await;
                    }
                    Err(_) => {
                        failed += 1;
                        // A refusing server must not turn this into a busy loop.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            (lat, failed)
        }));
    }
    let mut out = Rate {
        done: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for w in workers {
        let (lat, failed) = w.await.unwrap();
        out.done += lat.len() as u64;
        out.failed += failed;
        out.latencies.extend(lat);
    }
    out.elapsed = started.elapsed();
    out
}

/// Bulk transfer through `conns` tunnels: bytes delivered and the span, counted
/// where they arrive (the backend for uploads, the client for downloads) over
/// `duration` after a short warm-up. `measure` is called at the start and the
/// end of the measured span (the caller samples the server's CPU there).
pub async fn throughput(
    client: &Client,
    backend: &Backend,
    server: SocketAddr,
    mode: u8,
    conns: usize,
    duration: Duration,
    mut measure: impl FnMut(),
) -> std::io::Result<(u64, Duration)> {
    let mut tunnels = Vec::new();
    for _ in 0..conns {
        tunnels.push(client.open_within(server, mode).await?);
    }
    let downloaded = Arc::new(AtomicU64::new(0));
    let stop = tokio_util::sync::CancellationToken::new();
    let mut tasks = Vec::new();
    for mut s in tunnels {
        let (downloaded, stop) = (downloaded.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut buf = vec![0x5au8; CHUNK];
            loop {
                let step = async {
                    if mode == UPLOAD {
                        s.write_all(&buf).await.map(|()| 0)
                    } else {
                        s.read(&mut buf).await
                    }
                };
                tokio::select! {
                    _ = stop.cancelled() => break,
                    r = step => match r {
                        Ok(0) if mode != UPLOAD => break,
                        Ok(n) => { downloaded.fetch_add(n as u64, Ordering::Relaxed); }
                        Err(_) => break,
                    },
                }
            }
            // Abrupt end: a download never ends on its own, and closing politely
            // would wait behind megabytes in flight.
            drop(s);
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let counter = if mode == UPLOAD { &backend.received } else { &downloaded };
    measure();
    let (b0, t0) = (counter.load(Ordering::Relaxed), Instant::now());
    tokio::time::sleep(duration).await;
    let (b1, t1) = (counter.load(Ordering::Relaxed), Instant::now());
    measure();
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
    Ok((b1 - b0, t1 - t0))
}

/// Opens `count` echo tunnels, 32 at a time, and keeps them open.
pub async fn open_many(client: &Client, server: SocketAddr, count: usize) -> std::io::Result<Vec<Tunnel>> {
    use futures_like::buffered;
    buffered(count, 32, |_| {
        let client = client.clone();
        async move { client.open_within(server, ECHO).await }
    })
    .await
}

/// A tiny "buffer_unordered" without the futures crate.
mod futures_like {
    use std::future::Future;

    pub async fn buffered<T, F, Fut>(count: usize, width: usize, make: F) -> std::io::Result<Vec<T>>
    where
        T: Send + 'static,
        F: Fn(usize) -> Fut,
        Fut: Future<Output = std::io::Result<T>> + Send + 'static,
    {
        let mut set = tokio::task::JoinSet::new();
        let mut out = Vec::with_capacity(count);
        let mut next = 0;
        while out.len() < count {
            while next < count && set.len() < width {
                set.spawn(make(next));
                next += 1;
            }
            match set.join_next().await {
                Some(r) => out.push(r.unwrap()?),
                None => break,
            }
        }
        Ok(out)
    }
}
