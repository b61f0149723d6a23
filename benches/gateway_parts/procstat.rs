//! CPU time and resident memory of a server process and its descendants (nginx's
//! workers are children of its master), read from `/proc`.

use std::collections::HashMap;

/// Clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`): 100 on every Linux
/// architecture Portier runs on.
const TICKS_PER_SECOND: f64 = 100.0;

/// `(ppid, utime + stime in ticks)` of one process.
fn stat(pid: u32) -> Option<(u32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: split after it.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the name, from 0: state(0) ppid(1) … utime(11) stime(12).
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((ppid, utime + stime))
}

/// `pid` and every live descendant of it.
fn tree(pid: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(p) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some((ppid, _)) = stat(p) {
                children.entry(ppid).or_default().push(p);
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        if let Some(c) = children.get(&out[i]) {
            out.extend_from_slice(c);
        }
        i += 1;
    }
    out
}

/// CPU seconds (user + system) spent so far by `pid` and its descendants.
pub fn cpu_seconds(pid: u32) -> f64 {
    let ticks: u64 = tree(pid).into_iter().filter_map(stat).map(|(_, t)| t).sum();
    ticks as f64 / TICKS_PER_SECOND
}

/// Resident memory of `pid` and its descendants, in bytes (`VmRSS`; pages
/// shared between nginx's master and workers are counted once per process,
/// which cancels out in a before/after difference).
pub fn rss_bytes(pid: u32) -> u64 {
    tree(pid)
        .into_iter()
        .filter_map(|p| {
            let text = std::fs::read_to_string(format!("/proc/{p}/status")).ok()?;
            let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .sum()
}

/// A `perf record -g` attached to one process, stopped (SIGINT, so it writes
/// its file) by [`Perf::stop`].
pub struct Perf(std::process::Child);

impl Perf {
    /// `None` (with a message) when `perf` cannot be started.
    pub fn record(pid: u32, out: &std::path::Path) -> Option<Self> {
        let child = std::process::Command::new("perf")
            .args(["record", "-F", "1999", "-g", "-q", "-o"])
            .arg(out)
            .args(["-p", &pid.to_string()])
            .stdout(std::process::Stdio::null())
            .spawn();
        match child {
            Ok(c) => {
                // perf attaches in a few milliseconds; give it a moment.
                std::thread::sleep(std::time::Duration::from_millis(200));
                Some(Self(c))
            }
            Err(e) => {
                eprintln!("  perf record: {e}");
                None
            }
        }
    }

    pub fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}
