//! nginx (`stream` module) and HAProxy as TLS-terminating TCP proxies, when
//! installed: the same certificate, key and vendor CA, client certificates
//! required, TLS 1.3 only with the cipher suite and group the rustls proxies
//! negotiate, no session resumption, 64 KiB buffers. Configurations are
//! written to a temporary directory; the servers listen on loopback.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::process::Command;

use super::servers::Server;

/// The suite and group to configure, in OpenSSL's names.
pub struct Crypto {
    pub suite: String,
    pub group: String,
}

fn which(binary: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
        .map(|d| Path::new(d).join(binary))
        .find(|p| p.is_file())
}

/// A free loopback port (bound then released: the external server binds it).
fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Why nginx cannot run here, or how to load its stream module.
fn nginx_stream(nginx: &Path) -> Result<Option<PathBuf>, String> {
    let out = std::process::Command::new(nginx)
        .arg("-V")
        .output()
        .map_err(|e| e.to_string())?;
    let v = String::from_utf8_lossy(&out.stderr);
    if v.contains("--with-stream ") || v.trim_end().ends_with("--with-stream") {
        return Ok(None);
    }
    if v.contains("--with-stream=dynamic") {
        for dir in [
            "/usr/lib/nginx/modules",
            "/usr/lib64/nginx/modules",
            "/usr/share/nginx/modules",
        ] {
            let m = Path::new(dir).join("ngx_stream_module.so");
            if m.is_file() {
                return Ok(Some(m));
            }
        }
    }
    Err("no stream module".into())
}

/// nginx with `stream { ssl … proxy_pass }`, or why not.
pub async fn nginx(certs: &Path, backend: SocketAddr, crypto: &Crypto) -> Result<Server, String> {
    let nginx = which("nginx").ok_or("not installed")?;
    let module = nginx_stream(&nginx)?;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let addr = free_port();
    let load = module.map_or(String::new(), |m| format!("load_module {};\n", m.display()));
    let c = |f: &str| certs.join(f).display().to_string();
    let conf = format!(
        "{load}daemon off;\nmaster_process on;\nworker_processes 2;\nworker_rlimit_nofile 20000;\n\
         pid {pid};\nerror_log {err} warn;\n\
         events {{ worker_connections 10000; }}\n\
         stream {{\n  server {{\n    listen {addr} ssl backlog=4096;\n\
         ssl_certificate {cert};\n    ssl_certificate_key {key};\n\
         ssl_client_certificate {ca};\n    ssl_verify_client on;\n    ssl_verify_depth 2;\n\
         ssl_protocols TLSv1.3;\n    ssl_conf_command Ciphersuites {suite};\n    ssl_ecdh_curve {group};\n\
         ssl_session_cache off;\n    ssl_session_tickets off;\n\
         proxy_pass {backend};\n    proxy_buffer_size 64k;\n    proxy_timeout 1h;\n  }}\n}}\n",
        pid = dir.path().join("nginx.pid").display(),
        err = dir.path().join("error.log").display(),
        cert = c("server.pem"),
        key = c("server.key"),
        ca = c("vendor-ca.pem"),
        suite = crypto.suite,
        group = crypto.group,
    );
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let mut cmd = Command::new(nginx);
    cmd.arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&path)
        .arg("-e")
        .arg(dir.path().join("error.log"));
    Server::external("nginx", cmd, addr, dir.clone())
        .await
        .ok_or_else(|| format!("failed to start (see {})", dir.path().join("error.log").display()))
}

/// HAProxy in TCP mode with an `ssl … verify required` bind, or why not.
pub async fn haproxy(certs: &Path, backend: SocketAddr, crypto: &Crypto) -> Result<Server, String> {
    let haproxy = which("haproxy").ok_or("not installed")?;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let addr = free_port();
    // HAProxy takes the certificate and its key in one file.
    let bundle = dir.path().join("server-bundle.pem");
    let pem = std::fs::read_to_string(certs.join("server.pem")).unwrap()
        + &std::fs::read_to_string(certs.join("server.key")).unwrap();
    std::fs::write(&bundle, pem).unwrap();
    let conf = format!(
        "global\n  nbthread 2\n  maxconn 9500\n  tune.bufsize 65536\n  tune.ssl.cachesize 0\n\
         defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 1h\n  timeout server 1h\n\
         frontend gw\n  bind {addr} ssl crt {bundle} ca-file {ca} verify required ssl-min-ver TLSv1.3 \
         ciphersuites {suite} curves {group} no-tls-tickets\n  default_backend device\n\
         backend device\n  server d {backend}\n",
        bundle = bundle.display(),
        ca = certs.join("vendor-ca.pem").display(),
        suite = crypto.suite,
        group = crypto.group,
    );
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, conf).unwrap();
    let mut cmd = Command::new(haproxy);
    cmd.arg("-db").arg("-f").arg(&path);
    Server::external("HAProxy", cmd, addr, dir)
        .await
        .ok_or_else(|| "failed to start".to_owned())
}
