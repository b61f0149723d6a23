//! Connection limits shared by the gateway and the admin API: a cap on the
//! connections a listener holds at once and a cap per source address, both
//! checked right after `accept`, before any TLS work, so that one source cannot
//! take what the others need. A refusal closes the connection at once and
//! writes a rate-limited `connection.limited` audit event.

use crate::events::Event;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::audit::AuditEvent;
use crate::budget::AuditBudget;
use crate::clock::SharedClock;
use crate::store::{Journal, JournalEntry};

/// At most this many `connection.limited` events per second per listener…
const LIMITED_AUDITS_PER_SECOND: u64 = 10;
/// …and this many per (source, limit); the rest are counted in `suppressed_since_last`.
const LIMITED_AUDITS_PER_KEY_PER_SECOND: u64 = 1;

/// Which limit refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// The listener holds its maximum of connections.
    Global,
    /// The source address holds its maximum of connections.
    PerSource,
}

impl Limit {
    /// The name in audit events and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Global => "global",
            Limit::PerSource => "per_source",
        }
    }
}

/// Connections held per canonical source address. An entry exists only while
/// its count is above zero, so the map is bounded by the connections held.
#[derive(Debug)]
struct SourceCounts {
    max: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

impl SourceCounts {
    fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<SourceSlot> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let n = held.entry(ip).or_insert(0);
        if *n >= self.max {
            if *n == 0 {
                // Only with max == 0; never leave an empty entry behind.
                held.remove(&ip);
            }
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            counts: self.clone(),
            ip,
        })
    }

    fn held_by(&self, ip: IpAddr) -> usize {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.get(&ip).copied().unwrap_or(0)
    }

    fn sources(&self) -> usize {
        self.held.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// One connection's place in its source's count; dropping it gives it back.
#[derive(Debug)]
struct SourceSlot {
    counts: Arc<SourceCounts>,
    ip: IpAddr,
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut held = self.counts.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = held.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

/// Held for as long as an admitted connection lives.
#[derive(Debug)]
pub struct ConnPermit {
    /// `None` until known when the peer is a load balancer speaking the PROXY
    /// protocol: the balancer's own address is not the client's.
    _source: Option<SourceSlot>,
    _total: OwnedSemaphorePermit,
}

/// The limits of one listener.
pub struct ConnLimiter {
    listener: &'static str,
    node: String,
    max_connections: usize,
    max_per_source: usize,
    total: Arc<Semaphore>,
    sources: Arc<SourceCounts>,
    audits: AuditBudget<(IpAddr, Limit)>,
    journal: Journal,
    clock: SharedClock,
}

impl ConnLimiter {
    /// Limits for `listener` (`gateway`, `api`): at most `max_connections` at
    /// once, at most `max_per_source` of them from one address.
    pub fn new(
        listener: &'static str,
        node: &str,
        max_connections: usize,
        max_per_source: usize,
        journal: Journal,
        clock: SharedClock,
    ) -> Self {
        Self {
            listener,
            node: node.to_owned(),
            max_connections,
            max_per_source,
            total: Arc::new(Semaphore::new(max_connections)),
            sources: Arc::new(SourceCounts {
                max: max_per_source,
                held: Mutex::new(HashMap::new()),
            }),
            audits: AuditBudget::new(LIMITED_AUDITS_PER_SECOND, LIMITED_AUDITS_PER_KEY_PER_SECOND),
            journal,
            clock,
        }
    }

    /// A permit for a connection just accepted from `peer`, or `None` when a
    /// limit bites (then the caller closes the connection; the refusal is
    /// logged and, within the audit budget, recorded).
    pub fn admit(&self, peer: SocketAddr) -> Option<ConnPermit> {
        // IPv4-mapped IPv6 counts as the IPv4 address it is.
        let ip = peer.ip().to_canonical();
        let refused = match self.sources.acquire(ip) {
            None => Limit::PerSource,
            Some(slot) => match self.total.clone().try_acquire_owned() {
                Ok(total) => {
                    return Some(ConnPermit {
                        _source: Some(slot),
                        _total: total,
                    })
                }
                Err(_) => Limit::Global,
            },
        };
        self.refused(ip, refused);
        None
    }

    /// A permit under the global limit only, for a connection from a load
    /// balancer: every client behind it shares its address, so the per-source
    /// limit is applied to the client's address once the PROXY header names it
    /// ([`attach_source`](Self::attach_source)).
    pub fn admit_relayed(&self, peer: SocketAddr) -> Option<ConnPermit> {
        match self.total.clone().try_acquire_owned() {
            Ok(total) => Some(ConnPermit {
                _source: None,
                _total: total,
            }),
            Err(_) => {
                self.refused(peer.ip().to_canonical(), Limit::Global);
                None
            }
        }
    }

    /// Counts `permit` against the per-source limit of `source` (the address a
    /// PROXY header carried); `false` when that source holds its maximum (then
    /// the caller closes the connection; the refusal is logged and audited).
    pub fn attach_source(&self, permit: &mut ConnPermit, source: IpAddr) -> bool {
        let ip = source.to_canonical();
        match self.sources.acquire(ip) {
            Some(slot) => {
                permit._source = Some(slot);
                true
            }
            None => {
                self.refused(ip, Limit::PerSource);
                false
            }
        }
    }

    /// Connections `ip` holds now.
    pub fn held_by(&self, ip: IpAddr) -> usize {
        self.sources.held_by(ip.to_canonical())
    }

    /// Distinct sources holding connections now.
    pub fn sources(&self) -> usize {
        self.sources.sources()
    }

    fn refused(&self, ip: IpAddr, limit: Limit) {
        let max = match limit {
            Limit::Global => self.max_connections,
            Limit::PerSource => self.max_per_source,
        };
        let now = self.clock.now();
        let Some(suppressed) = self.audits.admit((ip, limit), now) else {
            tracing::debug!(listener = self.listener, source_ip = %ip, limit = limit.as_str(), "connection refused: limit reached");
            return;
        };
        tracing::warn!(
            listener = self.listener,
            source_ip = %ip,
            limit = limit.as_str(),
            max,
            suppressed_since_last = suppressed,
            "connection refused: limit reached"
        );
        let event = AuditEvent::new(
            now,
            self.listener,
            Event::ConnectionLimited,
            &ip.to_string(),
            "denied",
            json!({
                "listener": self.listener,
                "limit": limit.as_str(),
                "max": max,
                "source_ip": ip.to_string(),
                "suppressed_since_last": suppressed,
                "node": self.node,
            }),
        );
        // Not awaited: the accept loop must not wait on the store. The budget
        // bounds how many of these writes can be pending.
        let journal = self.journal.clone();
        tokio::spawn(async move {
            if let Err(e) = journal.write(JournalEntry::Audit(event)).await {
                tracing::warn!(error = %e, "connection limit event not recorded");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(max: usize) -> Arc<SourceCounts> {
        Arc::new(SourceCounts {
            max,
            held: Mutex::new(HashMap::new()),
        })
    }

    #[test]
    fn per_source_slots_are_given_back_and_entries_removed() {
        let c = counts(2);
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let s1 = c.acquire(a).unwrap();
        let s2 = c.acquire(a).unwrap();
        assert!(c.acquire(a).is_none(), "third from the same source");
        let s3 = c.acquire(b).unwrap();
        assert_eq!((c.held_by(a), c.held_by(b), c.sources()), (2, 1, 2));
        drop(s1);
        assert_eq!(c.held_by(a), 1);
        let s4 = c.acquire(a).unwrap();
        drop((s2, s3, s4));
        assert_eq!(c.sources(), 0, "no entry left once every connection ended");
    }

    #[test]
    fn a_zero_limit_leaves_no_entry() {
        let c = counts(0);
        assert!(c.acquire("10.0.0.1".parse().unwrap()).is_none());
        assert_eq!(c.sources(), 0);
    }

    #[tokio::test]
    async fn both_limits_bite_and_ipv4_mapped_ipv6_counts_as_ipv4() {
        // The store is never migrated: refusals' audit writes fail and are only logged.
        let store = crate::store::connect("sqlite::memory:").await.unwrap();
        let (journal, _task) = Journal::start(store);
        let clock: SharedClock = Arc::new(crate::clock::SystemClock);
        let l = ConnLimiter::new("test", "n1", 3, 2, journal, clock);
        let v4: SocketAddr = "192.0.2.7:1000".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:192.0.2.7]:1001".parse().unwrap();
        let a = l.admit(v4).unwrap();
        let b = l.admit(mapped).unwrap();
        assert!(l.admit(v4).is_none(), "per source, whatever the address family");
        assert_eq!(l.held_by(v4.ip()), 2);
        let c = l.admit("192.0.2.8:1".parse().unwrap()).unwrap();
        assert!(l.admit("192.0.2.9:1".parse().unwrap()).is_none(), "global");
        drop((a, b, c));
        assert_eq!(l.sources(), 0);
        assert!(l.admit("192.0.2.9:1".parse().unwrap()).is_some());
    }
}
