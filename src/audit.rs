//! Audit events and their hash chain.
//!
//! Each stored event carries `hash = SHA-256(prev_hash || canonical)`, where
//! `prev_hash` is the previous event's hash as 32 raw bytes (32 zero bytes for the
//! first event) and `canonical` is the compact JSON array
//! `[seq, at, actor, action, object, outcome, details]`: `seq` a number, `at` an
//! RFC 3339 UTC timestamp with exactly six fractional digits, `details` the stored
//! JSON text as a string. A third party can recompute it from an export.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::events::Event;
use crate::store::AuditAnchor;

/// The hash before the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Actor of events the gateway itself records.
pub const GATEWAY_ACTOR: &str = "gateway";

/// An event to append; the store gives it its sequence number and hash.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub at: DateTime<Utc>,
    /// Who: an API user id, `gateway`, or `cli:<user>`.
    pub actor: String,
    /// What, as a stable dotted name (`session.started`, `admission.denied`, …).
    pub action: String,
    /// On what: the id of the object concerned.
    pub object: String,
    /// `success`, `denied` or `failure`.
    pub outcome: String,
    /// Everything else, as a JSON object.
    pub details: serde_json::Value,
}

impl AuditEvent {
    /// A new event at `at` (truncated to microseconds, the stored precision).
    pub fn new(
        at: DateTime<Utc>,
        actor: &str,
        action: Event,
        object: &str,
        outcome: &str,
        details: serde_json::Value,
    ) -> Self {
        Self {
            at: truncate_micros(at),
            actor: actor.to_owned(),
            action: action.as_str().to_owned(),
            object: object.to_owned(),
            outcome: outcome.to_owned(),
            details,
        }
    }
}

/// A stored event, as exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditRecord {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub object: String,
    pub outcome: String,
    /// The details as stored JSON text (hashed as is).
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Drops sub-microsecond precision, which neither database keeps.
pub fn truncate_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// The timestamp as hashed: RFC 3339, UTC, six fractional digits.
pub fn canonical_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The hash of an event given the previous one's (hex).
#[allow(clippy::too_many_arguments)]
pub fn chain_hash(
    prev_hash: &str,
    seq: i64,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    object: &str,
    outcome: &str,
    details: &str,
) -> String {
    let mut h = Sha256::new();
    // An unparsable previous hash (only possible after tampering) still chains
    // deterministically: its text is hashed instead, and verification flags it.
    let mut raw = [0u8; 32];
    if hex::decode_to_slice(prev_hash, &mut raw).is_ok() {
        h.update(raw);
    } else {
        match hex::decode(prev_hash) {
            Ok(bytes) => h.update(bytes),
            Err(_) => h.update(prev_hash.as_bytes()),
        }
    }
    // The canonical array serialized straight into the hash: the same bytes as
    // building a `json!` array and printing it, without the intermediate values.
    let canonical = (seq, canonical_time(at), actor, action, object, outcome, details);
    if serde_json::to_writer(HashWriter(&mut h), &canonical).is_err() {
        // Unreachable (strings and a number always serialize); hash the
        // `json!` text as before rather than fail.
        let text = serde_json::json!([seq, canonical_time(at), actor, action, object, outcome, details]);
        h.update(text.to_string().as_bytes());
    }
    hex::encode(h.finalize())
}

/// Feeds serialized bytes to a hash.
struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Chains `events` after the head `(seq, hash)` (or the genesis when the trail
/// is empty), in memory: sequence numbers, stored details text and hashes for a
/// whole group-commit batch from one head read.
pub fn link<'a>(head: Option<(i64, String)>, events: impl IntoIterator<Item = &'a AuditEvent>) -> Vec<AuditRecord> {
    let (mut seq, mut prev) = head.unwrap_or_else(|| (0, GENESIS_HASH.to_owned()));
    events
        .into_iter()
        .map(|e| {
            seq += 1;
            let details = e.details.to_string();
            let hash = chain_hash(&prev, seq, e.at, &e.actor, &e.action, &e.object, &e.outcome, &details);
            let prev_hash = std::mem::replace(&mut prev, hash.clone());
            AuditRecord {
                seq,
                at: e.at,
                actor: e.actor.clone(),
                action: e.action.clone(),
                object: e.object.clone(),
                outcome: e.outcome.clone(),
                details,
                prev_hash,
                hash,
            }
        })
        .collect()
}

impl AuditRecord {
    /// Whether this record's hash matches its content and the given previous hash.
    pub fn hash_is_valid(&self, prev_hash: &str) -> bool {
        self.prev_hash == prev_hash
            && chain_hash(
                prev_hash,
                self.seq,
                self.at,
                &self.actor,
                &self.action,
                &self.object,
                &self.outcome,
                &self.details,
            ) == self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let at = DateTime::from_timestamp_micros(1_700_000_000_000_000 + seq).unwrap();
                let hash = chain_hash(&prev, seq, at, "a", "x", "o", "success", "{}");
                let r = AuditRecord {
                    seq,
                    at,
                    actor: "a".into(),
                    action: "x".into(),
                    object: "o".into(),
                    outcome: "success".into(),
                    details: "{}".into(),
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                r
            })
            .collect()
    }

    fn verify(rs: &[AuditRecord]) -> Verification {
        let mut v = ChainVerifier::default();
        rs.iter().for_each(|r| v.feed(r));
        v.finish()
    }

    #[test]
    fn verifier_finds_the_first_broken_link() {
        let good = chain(6);
        assert_eq!(
            verify(&good),
            Verification {
                valid: true,
                events: 6,
                first_invalid_seq: None,
                anchor_seq: None,
            }
        );
        let mut modified = good.clone();
        modified[3].object = "changed".into();
        assert_eq!(verify(&modified).first_invalid_seq, Some(4));
        let mut deleted = good.clone();
        deleted.remove(2);
        assert_eq!(verify(&deleted).first_invalid_seq, Some(3));
        let mut swapped = good.clone();
        swapped.swap(1, 2);
        let (a, b) = (swapped[1].seq, swapped[2].seq);
        swapped[1].seq = b;
        swapped[2].seq = a;
        assert_eq!(verify(&swapped).first_invalid_seq, Some(2));
        assert!(verify(&[]).valid);
    }

    #[test]
    fn hash_depends_on_every_field_and_the_previous_hash() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let base = chain_hash(GENESIS_HASH, 1, at, "a", "b", "c", "d", "{}");
        assert_eq!(base.len(), 64);
        let variants = [
            chain_hash(GENESIS_HASH, 2, at, "a", "b", "c", "d", "{}"),
            chain_hash(
                GENESIS_HASH,
                1,
                at + chrono::Duration::microseconds(1),
                "a",
                "b",
                "c",
                "d",
                "{}",
            ),
            chain_hash(GENESIS_HASH, 1, at, "x", "b", "c", "d", "{}"),
            chain_hash(GENESIS_HASH, 1, at, "a", "x", "c", "d", "{}"),
            chain_hash(GENESIS_HASH, 1, at, "a", "b", "x", "d", "{}"),
            chain_hash(GENESIS_HASH, 1, at, "a", "b", "c", "x", "{}"),
            chain_hash(GENESIS_HASH, 1, at, "a", "b", "c", "d", "{\"k\":1}"),
            chain_hash(&base, 1, at, "a", "b", "c", "d", "{}"),
        ];
        for v in variants {
            assert_ne!(v, base);
        }
    }

    /// The hash streamed into SHA-256 is the one of the `json!` text it
    /// replaced, escapes included: existing trails still verify.
    #[test]
    fn streamed_canonical_form_matches_the_json_text() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let details = r#"{"sni":"a\"b\u0001é","n":1}"#;
        let fields = ["gate\"way", "x.y", "o\n", "success"];
        let text = serde_json::json!([
            42,
            canonical_time(at),
            fields[0],
            fields[1],
            fields[2],
            fields[3],
            details
        ]);
        let mut h = Sha256::new();
        h.update(hex::decode(GENESIS_HASH).unwrap());
        h.update(text.to_string().as_bytes());
        let want = hex::encode(h.finalize());
        assert_eq!(
            chain_hash(
                GENESIS_HASH,
                42,
                at,
                fields[0],
                fields[1],
                fields[2],
                fields[3],
                details
            ),
            want
        );
        // An unparsable previous hash is hashed as text, as before.
        let mut h = Sha256::new();
        h.update(b"not hex");
        h.update(text.to_string().as_bytes());
        assert_eq!(
            chain_hash("not hex", 42, at, fields[0], fields[1], fields[2], fields[3], details),
            hex::encode(h.finalize())
        );
    }

    #[test]
    fn linked_batches_chain_like_single_appends() {
        let events: Vec<AuditEvent> = (0..3)
            .map(|i| AuditEvent {
                at: DateTime::from_timestamp_micros(1_700_000_000_000_000 + i).unwrap(),
                actor: "a".into(),
                action: "x".into(),
                object: format!("o{i}"),
                outcome: "success".into(),
                details: serde_json::json!({"i": i}),
            })
            .collect();
        let first = link(None, events.iter().take(1));
        let rest = link(Some((first[0].seq, first[0].hash.clone())), events.iter().skip(1));
        let all: Vec<AuditRecord> = first.into_iter().chain(rest).collect();
        assert_eq!(all, link(None, events.iter()));
        assert_eq!(verify(&all).events, 3);
        assert!(verify(&all).valid);
    }

    /// After a purge the chain is checked from the anchor, which the latest
    /// `data.purged` event must name.
    #[test]
    fn a_purged_prefix_verifies_from_its_anchor_only_if_a_purge_named_it() {
        let mut all = chain(5);
        let anchor = AuditAnchor {
            seq: 3,
            hash: all[2].hash.clone(),
        };
        // The purge's event, chained as the 6th, two days later; its cut-off is
        // the first kept event's time.
        let purge = |all: &[AuditRecord], before: DateTime<Utc>, at: DateTime<Utc>| {
            let details = serde_json::json!({"audit_anchor": anchor, "before": before}).to_string();
            let prev = all[4].hash.clone();
            AuditRecord {
                seq: 6,
                at,
                actor: "a".into(),
                action: "data.purged".into(),
                object: "o".into(),
                outcome: "success".into(),
                hash: chain_hash(&prev, 6, at, "a", "data.purged", "o", "success", &details),
                details,
                prev_hash: prev,
            }
        };
        let two_days_later = all[4].at + chrono::Duration::days(2);
        let honest = purge(&all, all[3].at, two_days_later);
        // A forged purge hiding the last day: its cut-off is younger than a day.
        let forged = purge(&all, two_days_later - chrono::Duration::hours(1), two_days_later);
        all.push(honest);
        let kept = &all[3..];
        let run = |a: AuditAnchor, rs: &[AuditRecord]| {
            let mut v = ChainVerifier::from_anchor(a);
            rs.iter().for_each(|r| v.feed(r));
            v.finish()
        };
        let ok = run(anchor.clone(), kept);
        assert!(ok.valid, "{ok:?}");
        assert_eq!((ok.events, ok.anchor_seq), (3, Some(3)));
        // Without the anchor, the cut prefix is a break at 1.
        let mut plain = ChainVerifier::default();
        kept.iter().for_each(|r| plain.feed(r));
        assert_eq!(plain.finish().first_invalid_seq, Some(1));
        // A wrong anchor hash breaks at the first kept event.
        let wrong = AuditAnchor {
            seq: 3,
            hash: GENESIS_HASH.into(),
        };
        assert_eq!(run(wrong, kept).first_invalid_seq, Some(4));
        // A prefix cut by hand with an anchor row no purge recorded.
        let by_hand = AuditAnchor {
            seq: 4,
            hash: all[3].hash.clone(),
        };
        assert_eq!(run(by_hand, &all[4..]).first_invalid_seq, Some(5));
        // A purge event naming the anchor, but whose cut-off is under a day old
        // (or after the first kept event): refused.
        let mut with_forged = all[3..5].to_vec();
        with_forged.push(forged);
        assert_eq!(run(anchor.clone(), &with_forged).first_invalid_seq, Some(4));
    }

    /// A trail in memory that a purge rewrites once, right after the first
    /// page is read: what a purge committing during a verification does.
    struct PurgedMidway {
        state: std::sync::Mutex<(Vec<AuditRecord>, Option<AuditAnchor>)>,
        after_first_page: std::sync::Mutex<Option<(Vec<AuditRecord>, Option<AuditAnchor>)>>,
        anchor_reads: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl TrailReader for PurgedMidway {
        async fn trail_anchor(&self) -> Result<Option<AuditAnchor>, crate::store::StoreError> {
            self.anchor_reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(self.state.lock().unwrap().1.clone())
        }
        async fn trail_page(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditRecord>, crate::store::StoreError> {
            let page: Vec<AuditRecord> = {
                let state = self.state.lock().unwrap();
                state
                    .0
                    .iter()
                    .filter(|r| r.seq > after_seq)
                    .take(limit as usize)
                    .cloned()
                    .collect()
            };
            if let Some(purged) = self.after_first_page.lock().unwrap().take() {
                *self.state.lock().unwrap() = purged;
            }
            Ok(page)
        }
    }

    /// Ten events, and the same trail after a purge of 1..=6 (its
    /// `data.purged` event chained as the 11th, two days later).
    fn before_and_after_a_purge() -> (Vec<AuditRecord>, (Vec<AuditRecord>, Option<AuditAnchor>)) {
        let all = chain(10);
        let anchor = AuditAnchor {
            seq: 6,
            hash: all[5].hash.clone(),
        };
        let at = all[9].at + chrono::Duration::days(2);
        let details = serde_json::json!({"audit_anchor": anchor, "before": all[6].at}).to_string();
        let prev = all[9].hash.clone();
        let purge = AuditRecord {
            seq: 11,
            at,
            actor: "a".into(),
            action: "data.purged".into(),
            object: "retention".into(),
            outcome: "success".into(),
            hash: chain_hash(&prev, 11, at, "a", "data.purged", "retention", "success", &details),
            details,
            prev_hash: prev,
        };
        let mut kept = all[6..].to_vec();
        kept.push(purge);
        (all, (kept, Some(anchor)))
    }

    fn reader(before: Vec<AuditRecord>, after: Option<(Vec<AuditRecord>, Option<AuditAnchor>)>) -> PurgedMidway {
        PurgedMidway {
            state: std::sync::Mutex::new((before, None)),
            after_first_page: std::sync::Mutex::new(after),
            anchor_reads: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// A purge committing between two pages is no break: the verification
    /// starts over from the new anchor. A real break is still reported, with
    /// or without a purge in between.
    #[tokio::test]
    async fn a_purge_during_verification_is_not_a_break() {
        let (all, purged) = before_and_after_a_purge();
        // Without the restart, the second page (after 3) starts at 7.
        let r = reader(all.clone(), Some(purged.clone()));
        let v = verify_trail(&r, 3, |_| {}).await.unwrap();
        assert_eq!(
            v,
            Verification {
                valid: true,
                events: 5,
                first_invalid_seq: None,
                anchor_seq: Some(6),
            }
        );
        assert_eq!(r.anchor_reads.load(std::sync::atomic::Ordering::SeqCst), 2);
        // A page as long as the trail: the purge commits after it, no restart needed.
        let r = reader(all.clone(), Some(purged.clone()));
        assert!(verify_trail(&r, 100, |_| {}).await.unwrap().valid);

        // Tampering with a kept event (seq 9), before and after the purge.
        let tamper = |rs: &mut Vec<AuditRecord>| {
            if let Some(r) = rs.iter_mut().find(|r| r.seq == 9) {
                r.object = "forged".into();
            }
        };
        let (mut all_t, (mut kept_t, anchor)) = (all.clone(), purged.clone());
        tamper(&mut all_t);
        tamper(&mut kept_t);
        let r = reader(all_t.clone(), Some((kept_t, anchor)));
        let v = verify_trail(&r, 3, |_| {}).await.unwrap();
        assert_eq!((v.valid, v.first_invalid_seq, v.anchor_seq), (false, Some(9), Some(6)));
        // No purge: the break is reported as found, the anchor read twice.
        let r = reader(all_t, None);
        let v = verify_trail(&r, 3, |_| {}).await.unwrap();
        assert_eq!((v.valid, v.first_invalid_seq, v.events), (false, Some(9), 10));
        assert_eq!(r.anchor_reads.load(std::sync::atomic::Ordering::SeqCst), 2);
        // A gap with the anchor unmoved stays a break.
        let mut gap = all;
        gap.remove(4);
        let r = reader(gap, None);
        assert_eq!(verify_trail(&r, 3, |_| {}).await.unwrap().first_invalid_seq, Some(5));
    }

    #[test]
    fn canonical_time_has_six_digits() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_000_000).unwrap();
        assert_eq!(canonical_time(at), "2023-11-14T22:13:20.000000Z");
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Verification {
    /// Every event chains to the previous one and matches its hash.
    pub valid: bool,
    /// Events read.
    pub events: u64,
    /// The first sequence number where the chain breaks (modified, inserted,
    /// deleted or reordered event).
    pub first_invalid_seq: Option<i64>,
    /// Set after a purge (`portier purge`): the events up to this sequence
    /// number were deleted, and the chain was checked from their last hash on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchor_seq: Option<i64>,
}

/// Checks a trail event by event, in sequence order, holding only the previous
/// hash: memory stays flat whatever the trail's length.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    expected_seq: i64,
    prev_hash: String,
    events: u64,
    first_invalid: Option<i64>,
    anchor: Option<AuditAnchor>,
    /// The latest `data.purged` event read so far: its time and what it names.
    purge_named: Option<(DateTime<Utc>, Option<PurgedDetails>)>,
    /// When the first event after the anchor happened.
    first_at: Option<DateTime<Utc>>,
}

/// The youngest cut-off a purge may have had when it ran (`[retention]
/// min_days` is at least 1): a forged purge cannot hide the last day's events.
const PURGE_MIN_AGE: chrono::Duration = chrono::Duration::days(1);

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            expected_seq: 1,
            prev_hash: GENESIS_HASH.to_owned(),
            events: 0,
            first_invalid: None,
            anchor: None,
            purge_named: None,
            first_at: None,
        }
    }
}

/// The part of a `data.purged` event's details the verifier checks.
#[derive(Debug, Clone, serde::Deserialize)]
struct PurgedDetails {
    audit_anchor: Option<AuditAnchor>,
    before: DateTime<Utc>,
}

impl ChainVerifier {
    /// A verifier for a trail whose events up to `anchor.seq` were purged: the
    /// first event must be `anchor.seq + 1` and chain to `anchor.hash`, and the
    /// latest `data.purged` event must name this very anchor (so deleting a
    /// prefix and writing an anchor row by hand does not pass).
    pub fn from_anchor(anchor: AuditAnchor) -> Self {
        Self {
            expected_seq: anchor.seq + 1,
            prev_hash: anchor.hash.clone(),
            anchor: Some(anchor),
            ..Self::default()
        }
    }

    /// Feeds the next record (records must come in ascending `seq`).
    pub fn feed(&mut self, r: &AuditRecord) {
        self.events += 1;
        self.first_at.get_or_insert(r.at);
        if self.first_invalid.is_none() {
            if r.seq != self.expected_seq {
                // A gap (deleted event) or a jump: the chain breaks at the missing number.
                self.first_invalid = Some(self.expected_seq.min(r.seq));
            } else if !r.hash_is_valid(&self.prev_hash) {
                self.first_invalid = Some(r.seq);
            }
        }
        if r.action == Event::DataPurged.as_str() {
            // Unreadable details name no anchor: the check below then fails.
            self.purge_named = Some((r.at, serde_json::from_str::<PurgedDetails>(&r.details).ok()));
        }
        self.expected_seq = r.seq + 1;
        self.prev_hash = r.hash.clone();
    }

    /// Takes note of the trail's latest `data.purged` event, read out of
    /// sequence (after a prefix, by a purge checking what it deletes): the
    /// anchor must be the one it names. Its own chain link is not checked here.
    pub fn note_latest_purge(&mut self, r: &AuditRecord) {
        if r.action == Event::DataPurged.as_str() {
            self.purge_named = Some((r.at, serde_json::from_str::<PurgedDetails>(&r.details).ok()));
        }
    }

    /// The result so far.
    pub fn finish(&self) -> Verification {
        let mut first_invalid = self.first_invalid;
        if let Some(anchor) = &self.anchor {
            // The anchor must be the one the latest purge recorded, that purge's
            // cut-off at least a day older than the purge itself, and no event
            // kept may predate it: otherwise the prefix was cut by hand (or a
            // purge was forged to hide recent events).
            let recorded = match &self.purge_named {
                Some((at, Some(d))) => {
                    d.audit_anchor.as_ref() == Some(anchor)
                        && d.before <= *at - PURGE_MIN_AGE
                        && self.first_at.is_none_or(|first| first >= d.before)
                }
                _ => false,
            };
            if first_invalid.is_none() && !recorded {
                first_invalid = Some(anchor.seq + 1);
            }
        }
        Verification {
            valid: first_invalid.is_none(),
            events: self.events,
            first_invalid_seq: first_invalid,
            anchor_seq: self.anchor.as_ref().map(|a| a.seq),
        }
    }
}

/// What verification reads: the anchor and the trail, a page at a time. The
/// store is one; tests put a reader in between to purge during a verification.
#[async_trait::async_trait]
pub trait TrailReader: Send + Sync {
    /// Where the kept trail starts (`None`: at the genesis).
    async fn trail_anchor(&self) -> Result<Option<AuditAnchor>, crate::store::StoreError>;
    /// Up to `limit` events after `after_seq`, in sequence order.
    async fn trail_page(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditRecord>, crate::store::StoreError>;
}

/// A store's trail, as [`verify_store`] reads it.
pub struct StoreTrail<'a>(pub &'a dyn crate::store::Store);

#[async_trait::async_trait]
impl TrailReader for StoreTrail<'_> {
    async fn trail_anchor(&self) -> Result<Option<AuditAnchor>, crate::store::StoreError> {
        self.0.audit_anchor().await
    }
    async fn trail_page(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditRecord>, crate::store::StoreError> {
        self.0
            .list_audit(&crate::store::AuditFilter {
                after_seq: Some(after_seq),
                limit: Some(limit),
                ..Default::default()
            })
            .await
    }
}

/// Events read per page by [`verify_store`].
pub const VERIFY_PAGE: u32 = 5_000;

/// Verifies the whole trail of a store, page by page; `progress` is called after
/// each page with the number of events read so far.
pub async fn verify_store(
    store: &dyn crate::store::Store,
    progress: impl FnMut(u64),
) -> Result<Verification, crate::store::StoreError> {
    verify_trail(&StoreTrail(store), VERIFY_PAGE, progress).await
}

/// [`verify_store`] with pages of `page` events (tests use small ones).
///
/// A purge that commits while the pages are read deletes the events the next
/// page was to start with and moves the anchor: the trail then looks broken
/// where it is not. So a break found is checked against the anchor read again:
/// if it moved, the verification starts over once, from the new anchor, and
/// its answer is final (a real break is reported by it as well).
pub async fn verify_trail(
    reader: &dyn TrailReader,
    page: u32,
    mut progress: impl FnMut(u64),
) -> Result<Verification, crate::store::StoreError> {
    let page = page.max(1);
    let anchor = reader.trail_anchor().await?;
    let v = verify_from(reader, anchor.clone(), page, &mut progress).await?;
    if v.valid {
        return Ok(v);
    }
    let now = reader.trail_anchor().await?;
    if now == anchor {
        return Ok(v);
    }
    tracing::info!(
        first_invalid_seq = ?v.first_invalid_seq,
        anchor_seq = ?now.as_ref().map(|a| a.seq),
        "a purge moved the audit anchor during verification: verifying again from the new anchor"
    );
    verify_from(reader, now, page, &mut progress).await
}

/// One pass over the trail from `anchor` (or the genesis) to the head.
async fn verify_from(
    reader: &dyn TrailReader,
    anchor: Option<AuditAnchor>,
    page: u32,
    progress: &mut impl FnMut(u64),
) -> Result<Verification, crate::store::StoreError> {
    let (mut v, mut after) = match anchor {
        Some(anchor) => {
            let seq = anchor.seq;
            (ChainVerifier::from_anchor(anchor), seq)
        }
        None => (ChainVerifier::default(), 0),
    };
    loop {
        let records = reader.trail_page(after, page).await?;
        for r in &records {
            v.feed(r);
        }
        progress(v.events);
        match records.last() {
            Some(last) if records.len() == page as usize => after = last.seq,
            _ => return Ok(v.finish()),
        }
    }
}
