//! This node's identity and heartbeat. At start a node claims its name in the
//! store (refused while another live process holds it: two processes with one
//! name would close each other's sessions). While it runs, it beats every few
//! seconds and checkpoints the byte counts of its live tunnels, so that after a
//! crash the next start dates the lost sessions' ends by the last beat and keeps
//! their counts (issue 8). Every node also closes, as `node_lost`, the sessions
//! of other nodes whose beat went stale (issue 9), but only once its own beats
//! have succeeded for `stale_after` in a row. The beat is also the store's
//! write probe: its result opens or closes the store's breaker, which `/readyz`
//! reports.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::gateway::Registry;
use crate::store::{Heartbeat, NodeIdentity, Store};

/// How often a node beats and checkpoints, and when a silent one counts as dead.
#[derive(Debug, Clone)]
pub struct HeartbeatSettings {
    pub every: Duration,
    pub checkpoint_every: Duration,
    /// A node whose last beat is older than this is dead: its name may be taken
    /// and its open sessions are no longer listed as active.
    pub stale_after: Duration,
}

impl Default for HeartbeatSettings {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(2),
            checkpoint_every: Duration::from_secs(5),
            stale_after: Duration::from_secs(10),
        }
    }
}

/// While the store is down, beat (probe) at least this often.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// A beat that takes longer than this counts as failed.
const BEAT_TIMEOUT: Duration = Duration::from_secs(5);

/// A new identity for this process under `name`.
pub fn identity(name: &str, clock: &SharedClock) -> NodeIdentity {
    NodeIdentity {
        name: name.to_owned(),
        instance_id: uuid::Uuid::new_v4().to_string(),
        pid: std::process::id(),
        host: hostname(),
        started_at: crate::audit::truncate_micros(clock.now()),
    }
}

/// The nodes of `nodes` that may be running at `now`, as a node claiming a
/// name decides it: not stopped cleanly and beaten within `stale_after`; one
/// on this host whose process is gone is known dead without waiting.
pub fn running(
    nodes: Vec<crate::store::NodeRecord>,
    now: chrono::DateTime<chrono::Utc>,
    stale_after: chrono::Duration,
) -> Vec<crate::store::NodeRecord> {
    let host = hostname();
    // A bound too far back to compute: every unstopped node may be running.
    let fresh_since = now.checked_sub_signed(stale_after);
    nodes
        .into_iter()
        .filter(|n| {
            n.stopped_at.is_none()
                && fresh_since.is_none_or(|since| n.last_seen >= since)
                // On another host, or its process still there.
                && (n.host != host || crate::store::process_exists(n.pid))
        })
        .collect()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

/// The heartbeat task of one node.
pub struct NodeBeat {
    pub store: Arc<dyn Store>,
    pub registry: Arc<Registry>,
    pub clock: SharedClock,
    pub node: NodeIdentity,
    pub settings: HeartbeatSettings,
}

impl NodeBeat {
    /// Closes, as `node_lost`, the sessions of nodes whose heartbeat is stale
    /// (crashed, partitioned away): every surviving node does this, at the
    /// checkpoint cadence; the store makes it happen once per session.
    async fn sweep_lost_nodes(&self) {
        let Ok(stale) = chrono::Duration::from_std(self.settings.stale_after) else {
            return;
        };
        let Some(stale_before) = self.clock.now().checked_sub_signed(stale) else {
            return;
        };
        match tokio::time::timeout(
            BEAT_TIMEOUT,
            self.store.close_lost_node_sessions(&self.node.name, stale_before),
        )
        .await
        {
            Ok(Ok(0)) => {}
            Ok(Ok(closed)) => tracing::warn!(
                closed,
                "sessions of a lost node (heartbeat older than database.node_stale_secs) closed as node_lost"
            ),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "closing the sessions of lost nodes failed; retried at the next checkpoint")
            }
            Err(_) => tracing::warn!("closing the sessions of lost nodes timed out; retried at the next checkpoint"),
        }
    }

    /// Beats until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let health = self.store.health();
        let mut last_checkpoint = Instant::now();
        let mut told_taken = false;
        // Since when this node's beats have all succeeded (`None` after a failed
        // one). It sweeps only once this is `stale_after` old: after a database
        // outage every node's `last_seen` is old, and the first node back must
        // give the others time to beat again before judging them lost, or it
        // would close live sessions as `node_lost`. Process start counts as the
        // start of a healthy run (a fresh node has seen no one beat yet).
        let mut healthy_since = Some(Instant::now());
        loop {
            let wait = if health.is_up() {
                self.settings.every
            } else {
                self.settings.every.min(PROBE_EVERY)
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            let checkpoint = last_checkpoint.elapsed() >= self.settings.checkpoint_every;
            let beat = Heartbeat {
                node: self.node.clone(),
                at: crate::audit::truncate_micros(self.clock.now()),
                checkpoints: if checkpoint {
                    self.registry.byte_counts()
                } else {
                    Vec::new()
                },
            };
            match tokio::time::timeout(BEAT_TIMEOUT, self.store.node_heartbeat(&beat)).await {
                Ok(Ok(ours)) => {
                    health.mark_up();
                    let since = *healthy_since.get_or_insert_with(Instant::now);
                    if checkpoint {
                        last_checkpoint = Instant::now();
                        if since.elapsed() >= self.settings.stale_after {
                            self.sweep_lost_nodes().await;
                        }
                    }
                    if !ours && !told_taken {
                        told_taken = true;
                        tracing::error!(
                            node = %self.node.name,
                            "another process has taken this node name (this one was silent too long): give each node its own gateway.node"
                        );
                    }
                }
                Ok(Err(e)) if e.is_unavailable() => {
                    healthy_since = None;
                    health.mark_down(&e.to_string());
                }
                Ok(Err(e)) => {
                    healthy_since = None;
                    tracing::warn!(error = %e, "heartbeat failed");
                }
                Err(_) => {
                    healthy_since = None;
                    health.mark_down("heartbeat timed out");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_nodes_are_those_that_beat_recently_and_did_not_stop() {
        let now = chrono::Utc::now();
        let node = |name: &str, host: String, pid: u32, seen_secs_ago: i64, stopped: bool| crate::store::NodeRecord {
            name: name.into(),
            instance_id: name.into(),
            pid,
            host,
            started_at: now - chrono::Duration::hours(1),
            last_seen: now - chrono::Duration::seconds(seen_secs_ago),
            stopped_at: stopped.then_some(now),
            open_sessions: 0,
        };
        let here = hostname();
        let nodes = vec![
            node("alive-here", here.clone(), std::process::id(), 1, false),
            node("alive-elsewhere", "another-host".into(), 1, 1, false),
            node("stopped", "another-host".into(), 1, 1, true),
            node("silent", "another-host".into(), 1, 60, false),
            // A pid no process has on this host (above pid_max).
            node("crashed-here", here, u32::MAX, 1, false),
        ];
        let names: Vec<String> = running(nodes, now, chrono::Duration::seconds(10))
            .into_iter()
            .map(|n| n.name)
            .collect();
        assert_eq!(names, ["alive-here", "alive-elsewhere"]);
    }

    #[test]
    fn a_staleness_bound_too_large_for_a_date_counts_every_unstopped_node_as_running() {
        let now = chrono::Utc::now();
        let node = |name: &str, stopped: bool| crate::store::NodeRecord {
            name: name.into(),
            instance_id: name.into(),
            pid: 1,
            host: "another-host".into(),
            started_at: now - chrono::Duration::days(400),
            last_seen: now - chrono::Duration::days(365),
            stopped_at: stopped.then_some(now),
            open_sessions: 0,
        };
        // What `rotate` falls back to for a bound `chrono` cannot hold: no panic.
        let names: Vec<String> = running(
            vec![node("old", false), node("stopped", true)],
            now,
            chrono::Duration::MAX,
        )
        .into_iter()
        .map(|n| n.name)
        .collect();
        assert_eq!(names, ["old"]);
    }
}
