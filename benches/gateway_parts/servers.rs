//! The servers under test, each in a process of its own so that its CPU time
//! and memory are its own: the bench binary re-executes itself with
//! `PORTIER_BENCH_ROLE` set to `baseline` or `portier`, the child prints
//! `READY <port> [<api port>]` and runs until its stdin closes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

use portier::gateway::tls;

const ROLE: &str = "PORTIER_BENCH_ROLE";
const CERTS: &str = "PORTIER_BENCH_CERTS";
const BACKEND: &str = "PORTIER_BENCH_BACKEND";
const CONFIG_DIR: &str = "PORTIER_BENCH_CONFIG_DIR";
const DB_URL: &str = "PORTIER_BENCH_DB_URL";
const NODE: &str = "PORTIER_BENCH_NODE";

/// The baseline's buffer per direction: the gateway's (`BUF_SIZE` in
/// src/gateway/tunnel.rs).
const BUF_SIZE: usize = 64 * 1024;

/// Raises the soft descriptor limit to the hard one (thousands of idle tunnels).
pub fn raise_nofile() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let l = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: l.maximum,
            maximum: l.maximum,
        },
    );
}

/// Runs this process as a server when it was started as one; `false` otherwise.
pub fn child_main() -> bool {
    let Ok(role) = std::env::var(ROLE) else {
        return false;
    };
    raise_nofile();
    // The same runtime as `portier serve` (`#[tokio::main]`: one worker per core).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    match role.as_str() {
        "baseline" => rt.block_on(baseline()),
        "portier" => rt.block_on(portier_node()),
        other => panic!("unknown {ROLE} {other}"),
    }
    true
}

async fn until_stdin_closes() {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while let Ok(n) = stdin.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

/// The bare proxy Portier is measured against: the gateway's own rustls
/// configuration, a handshake deadline, a connect to the device,
/// `copy_bidirectional` with the gateway's buffer size. No policy, no record.
async fn baseline() {
    let certs = PathBuf::from(std::env::var(CERTS).unwrap());
    let backend: SocketAddr = std::env::var(BACKEND).unwrap().parse().unwrap();
    let cfg = tls::gateway_server_config(
        tls::load_certs(&certs.join("server.pem")).unwrap(),
        tls::load_key(&certs.join("server.key")).unwrap(),
        tls::load_certs(&certs.join("vendor-ca.pem")).unwrap(),
        &[&rustls::version::TLS13],
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("READY {}", listener.local_addr().unwrap().port());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let accept = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp));
                let Ok(Ok(mut tls)) = accept.await else { return };
                let connect = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(backend));
                let Ok(Ok(mut device)) = connect.await else { return };
                let _ = device.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional_with_sizes(&mut tls, &mut device, BUF_SIZE, BUF_SIZE).await;
            });
        }
    });
    until_stdin_closes().await;
}

/// The configuration of a bench node: development PKI under `dir/certs`,
/// loopback listeners, and room for thousands of tunnels from one address range.
pub fn portier_settings(dir: &Path, url: &str, node: &str) -> portier::config::Settings {
    let text = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nnode = \"{node}\"\nlockdown_file = \"lockdown-{node}\"\n\
         max_connections = 9500\nmax_connections_per_source = 9500\n\
         [api]\nlisten = \"127.0.0.1:0\"\n[database]\nurl = \"{url}\"\n[log]\nfilter = \"warn\"\n"
    );
    portier::config::Settings::from_toml(&text, dir, Vec::<(String, String)>::new()).unwrap()
}

/// A whole Portier node (`App`: gateway, API, scheduler, journal, feed), logging
/// at `warn` as a quiet production node would.
async fn portier_node() {
    let dir = PathBuf::from(std::env::var(CONFIG_DIR).unwrap());
    let settings = portier_settings(&dir, &std::env::var(DB_URL).unwrap(), &std::env::var(NODE).unwrap());
    portier::telemetry::init(settings.log.format, &settings.log.filter);
    let app = portier::app::App::start(&settings).await.unwrap();
    println!("READY {} {}", app.gateway_addr.port(), app.api_addr.port());
    until_stdin_closes().await;
    app.stop().await;
}

/// A server under test, running in a process of its own.
pub struct Server {
    pub name: String,
    pub addr: SocketAddr,
    pub api: Option<SocketAddr>,
    pub pid: u32,
    child: Child,
    /// How to stop it: close stdin (our children) or SIGTERM (nginx, HAProxy).
    by_signal: bool,
    _keep: Option<Arc<tempfile::TempDir>>,
}

impl Server {
    /// Starts the bench binary as the baseline proxy.
    pub async fn baseline(certs: &Path, backend: SocketAddr) -> Self {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.env(ROLE, "baseline")
            .env(CERTS, certs)
            .env(BACKEND, backend.to_string());
        Self::ours("baseline", cmd).await
    }

    /// Starts the bench binary as a Portier node over `url`.
    pub async fn portier(name: &str, config_dir: &Path, url: &str, node: &str) -> Self {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.env(ROLE, "portier")
            .env(CONFIG_DIR, config_dir)
            .env(DB_URL, url)
            .env(NODE, node);
        Self::ours(name, cmd).await
    }

    async fn ours(name: &str, mut cmd: Command) -> Self {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().unwrap();
        let pid = child.id().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("{name} did not start within 60 s"))
            .unwrap()
            .unwrap_or_else(|| panic!("{name} exited before listening"));
        // Whatever else it prints goes on to our stderr (a closed pipe would fail its writes).
        tokio::spawn(async move {
            while let Ok(Some(l)) = lines.next_line().await {
                eprintln!("{l}");
            }
        });
        let ports: Vec<u16> = line
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("{name} said {line:?}"))
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        let at = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        Self {
            name: name.to_owned(),
            addr: at(ports[0]),
            api: ports.get(1).copied().map(at),
            pid,
            child,
            by_signal: false,
            _keep: None,
        }
    }

    /// A server started from an external binary, listening on `addr` once
    /// it accepts connections; stopped with SIGTERM.
    pub async fn external(
        name: &str,
        mut cmd: Command,
        addr: SocketAddr,
        keep: Arc<tempfile::TempDir>,
    ) -> Option<Self> {
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{name}: cannot start: {e}");
                return None;
            }
        };
        let pid = child.id()?;
        for _ in 0..100 {
            if TcpStream::connect(addr).await.is_ok() {
                return Some(Self {
                    name: name.to_owned(),
                    addr,
                    api: None,
                    pid,
                    child,
                    by_signal: true,
                    _keep: Some(keep),
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                eprintln!("{name}: exited at start ({status})");
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!("{name}: not listening on {addr} after 5 s; stopping it");
        let _ = child.kill().await;
        None
    }

    /// Stops the server (its own PID only) and waits for it.
    pub async fn stop(mut self) {
        if self.by_signal {
            // SIGTERM: nginx's master stops its workers, HAProxy stops.
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &self.pid.to_string()])
                .status();
        } else {
            drop(self.child.stdin.take());
        }
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            eprintln!("{} did not stop within 30 s: killed", self.name);
            let _ = self.child.kill().await;
        }
    }
}
