//! What the hostile tests share: polling with a deadline, and a PostgreSQL
//! server of a test's own that it may stop and start (never the shared one).

use std::path::PathBuf;
use std::sync::Arc;

use portier::audit::AuditRecord;
use portier::domain::SessionId;
use portier::store::{AuditFilter, Store};
use std::process::Command;
use std::time::{Duration, Instant};

/// The `session.ended` audit events of one session.
pub async fn ended_events(store: &Arc<dyn Store>, id: &SessionId) -> Vec<AuditRecord> {
    store
        .list_audit(&AuditFilter {
            action: Some("session.ended".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.object == id.as_str())
        .collect()
}

/// Polls `f` until it returns `Some`, for at most `secs` seconds.
pub async fn within<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "{what}: not within {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Says a test cannot run here; under CI (`PORTIER_REQUIRE_HOSTILE` set by
/// `.ci/run`) that is a failure, so a green run never hides an unchecked attack.
pub fn skip(why: &str) {
    assert!(
        std::env::var_os("PORTIER_REQUIRE_HOSTILE").is_none(),
        "cannot run: {why} (PORTIER_REQUIRE_HOSTILE is set)"
    );
    eprintln!("skipped: {why}");
}

/// The newest installed PostgreSQL server's binaries (Debian's layout).
fn pg_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// A PostgreSQL server of this test's own, on a free port, in a temporary directory.
pub struct OwnPostgres {
    bin: PathBuf,
    base: PathBuf,
    port: u16,
}

impl OwnPostgres {
    pub fn start() -> Option<Self> {
        let Some(bin) = pg_bin() else {
            skip("no PostgreSQL server binaries under /usr/lib/postgresql");
            return None;
        };
        let base = tempfile::Builder::new()
            .prefix("portier-pg-")
            .tempdir_in("/tmp")
            .unwrap()
            .keep();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let me = Self { bin, base, port };
        if is_root() {
            // initdb refuses root: the cluster belongs to the postgres account.
            assert!(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&me.base)
                .status()
                .unwrap()
                .success());
        }
        me.run(
            "initdb",
            &[
                "-D",
                &me.data(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        me.start_server();
        Some(me)
    }

    fn data(&self) -> String {
        self.base.join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let bin = self.bin.join(tool).display().to_string();
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", &bin]);
            c
        } else {
            Command::new(&bin)
        };
        let out = cmd.args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn start_server(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60",
            self.port,
            self.base.display()
        );
        let log = self.base.join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-o", &opts, "-l", &log, "-w", "-t", "30", "start"],
        );
    }

    pub fn stop_server(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "-t", "30", "stop"]);
    }

    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/portier", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let bin = self.bin.join("pg_ctl").display().to_string();
        let data = self.data();
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let _ = if is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--", &bin])
                .args(args)
                .output()
        } else {
            Command::new(&bin).args(args).output()
        };
        let _ = std::fs::remove_dir_all(&self.base);
    }
}
