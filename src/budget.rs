//! Budgets for audit events an unauthenticated party can cause (handshake
//! failures, denials, refused API calls, limits that bite): at most a fixed
//! number per second reach the trail, per kind and key; the rest are counted
//! and reported in the next written event's `suppressed_since_last`, so a flood
//! cannot grow the trail faster than the budget.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// Distinct keys remembered at most; beyond, the table is reset (a flood of
/// distinct keys is itself bounded by the global budget).
const MAX_KEYS: usize = 4096;

#[derive(Debug, Default)]
struct Counter {
    second: i64,
    written: u64,
    suppressed: u64,
}

/// A per-second budget, global and per key (e.g. per (source, reason)).
#[derive(Debug)]
pub struct AuditBudget<K: Eq + Hash> {
    global_per_second: u64,
    per_key_per_second: u64,
    state: Mutex<(Counter, HashMap<K, Counter>)>,
}

impl<K: Eq + Hash> AuditBudget<K> {
    /// At most `global_per_second` events per second in all, and at most
    /// `per_key_per_second` for any one key.
    pub fn new(global_per_second: u64, per_key_per_second: u64) -> Self {
        Self {
            global_per_second,
            per_key_per_second,
            state: Mutex::new((Counter::default(), HashMap::new())),
        }
    }

    /// `Some(suppressed_since_last)` if an event for `key` may be written at
    /// `now` (the count of events of this key suppressed since the last one
    /// written), `None` if it must be suppressed (it is counted).
    pub fn admit(&self, key: K, now: DateTime<Utc>) -> Option<u64> {
        let second = now.timestamp();
        let mut guard = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (global, keys) = &mut *guard;
        if global.second != second {
            global.second = second;
            global.written = 0;
        }
        if keys.len() >= MAX_KEYS && !keys.contains_key(&key) {
            keys.clear();
        }
        let entry = keys.entry(key).or_default();
        if entry.second != second {
            entry.second = second;
            entry.written = 0;
        }
        if global.written >= self.global_per_second || entry.written >= self.per_key_per_second {
            entry.suppressed += 1;
            global.suppressed += 1;
            return None;
        }
        global.written += 1;
        entry.written += 1;
        let suppressed = std::mem::take(&mut entry.suppressed);
        global.suppressed = global.suppressed.saturating_sub(suppressed);
        Some(suppressed)
    }
}

/// `text` cut to at most `max_chars` characters for an audit field an outsider
/// controls (a path, a server name, a certificate subject). A cut value ends with
/// a marker giving the original length, so the trail says it was truncated.
pub fn bounded(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some((cut, _)) => format!(
            "{}…[truncated, {} bytes]",
            text.get(..cut).unwrap_or_default(),
            text.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::{bounded, AuditBudget};

    #[test]
    fn bounded_cuts_on_characters_and_says_so() {
        assert_eq!(bounded("short", 10), "short");
        assert_eq!(bounded("exactly10!", 10), "exactly10!");
        assert_eq!(bounded("éééé", 2), "éé…[truncated, 8 bytes]");
        let long = "/".repeat(60_000);
        assert!(bounded(&long, 200).chars().count() < 240);
    }

    use chrono::{Duration, TimeZone, Utc};

    #[test]
    fn caps_per_second_and_reports_what_was_suppressed() {
        let b = AuditBudget::new(3, 2);
        let t = Utc
            .with_ymd_and_hms(2026, 11, 28, 12, 0, 0)
            .single()
            .unwrap_or_default();
        assert_eq!(b.admit("a", t), Some(0));
        assert_eq!(b.admit("a", t), Some(0));
        assert_eq!(b.admit("a", t), None, "per-key budget");
        assert_eq!(b.admit("b", t), Some(0));
        assert_eq!(b.admit("c", t), None, "global budget");
        let next = t + Duration::seconds(1);
        assert_eq!(b.admit("a", next), Some(1));
        assert_eq!(b.admit("c", next), Some(1));
    }
}
