//! The journal's group commit on PostgreSQL: a fixed handful of round trips
//! per batch, whatever its size. One statement writes the session rows, marks
//! the windows, closes the ended sessions (arrays through `UNNEST`) and takes
//! the chain's lock; the next reads the chain head (after the lock, so with a
//! snapshot that sees every earlier append by any node); the audit events,
//! chained in memory, go in as one more. Several nodes append, so the head is
//! read under the lock in every batch, never cached.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::{outbox, PgStore, AUDIT_CHAIN_LOCK, CHANGES_CHANNEL};
use crate::audit::{self, AuditEvent};
use crate::store::{canonical_ip, Change, JournalEntry, SessionEnd, StoreResult, VendorId};

/// Window ids remembered as marked `had_session` (a mark is never undone); the
/// set is emptied when it grows past this.
const MARKED_WINDOWS_MAX: usize = 4096;

/// Windows known to be marked `had_session`, so a session start skips the mark.
#[derive(Debug, Default)]
pub(super) struct MarkedWindows(Mutex<HashSet<String>>);

const WRITE_ROWS: &str = "WITH s AS (
    INSERT INTO sessions (id, window_id, vendor_id, technician_id, technician_subject, device_id, source_ip, source_port, node, started_at)
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::inet[], $8::int4[], $9::text[], $10::timestamptz[])
), w AS (
    UPDATE windows SET had_session = TRUE WHERE id = ANY($11::text[]) AND NOT had_session RETURNING id
), ending AS (
    -- Rows locked in id order, as the heartbeat's checkpoint locks them: two
    -- writers taking the same rows in different orders deadlock.
    SELECT id FROM sessions WHERE id = ANY($12::text[]) AND ended_at IS NULL ORDER BY id FOR UPDATE
), e AS (
    UPDATE sessions SET ended_at = v.ended_at, bytes_from_vendor = v.up, bytes_to_vendor = v.down, end_reason = v.reason
    FROM UNNEST($12::text[], $13::timestamptz[], $14::int8[], $15::int8[], $16::text[]) AS v(id, ended_at, up, down, reason),
         ending
    WHERE sessions.id = v.id AND ending.id = v.id AND sessions.ended_at IS NULL RETURNING sessions.id
), l AS (
    SELECT pg_advisory_xact_lock($17)
)
SELECT 'w', id FROM w UNION ALL SELECT 'e', id FROM e UNION ALL SELECT 'l', '' FROM l";

const INSERT_AUDIT: &str = "INSERT INTO audit_events (seq, at, actor, action, object, outcome, details, prev_hash, hash)
    SELECT * FROM UNNEST($1::int8[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])";

impl PgStore {
    /// Writes one group-commit batch in a single transaction (see the module).
    pub(super) async fn write_journal_batch(&self, entries: &[JournalEntry]) -> StoreResult<()> {
        let mut starts = Vec::new();
        let mut ends: Vec<&SessionEnd> = Vec::new();
        let mut notices = Vec::new();
        for entry in entries {
            match entry {
                JournalEntry::SessionStarted(s, _) => starts.push(s),
                // A retried end listed twice is written once, as before.
                JournalEntry::SessionEnded(end, _) if !ends.iter().any(|e| e.id == end.id) => ends.push(end),
                JournalEntry::SessionEnded(..) | JournalEntry::Audit(_) => {}
                JournalEntry::Notice(notice, at) => notices.push((notice, *at)),
            }
        }
        let mut unmarked: Vec<String> = Vec::new();
        if let Ok(marked) = self.marked.0.lock() {
            for s in &starts {
                let w = s.window_id.as_str();
                if !marked.contains(w) && !unmarked.iter().any(|u| u == w) {
                    unmarked.push(w.to_owned());
                }
            }
        }

        let mut tx = self.pool.begin().await?;
        let rows: Vec<(String, String)> = sqlx::query_as(WRITE_ROWS)
            .bind(starts.iter().map(|s| s.id.as_str()).collect::<Vec<_>>())
            .bind(starts.iter().map(|s| s.window_id.as_str()).collect::<Vec<_>>())
            .bind(starts.iter().map(|s| s.vendor_id.as_str()).collect::<Vec<_>>())
            .bind(starts.iter().map(|s| s.technician_id.as_str()).collect::<Vec<_>>())
            .bind(starts.iter().map(|s| s.technician_subject.as_str()).collect::<Vec<_>>())
            .bind(starts.iter().map(|s| s.device_id.as_str()).collect::<Vec<_>>())
            .bind(
                starts
                    .iter()
                    .map(|s| canonical_ip(s.source_ip))
                    .collect::<Vec<IpAddr>>(),
            )
            .bind(starts.iter().map(|s| i32::from(s.source_port)).collect::<Vec<_>>())
            .bind(starts.iter().map(|s| s.node.as_str()).collect::<Vec<_>>())
            .bind(starts.iter().map(|s| s.started_at).collect::<Vec<DateTime<Utc>>>())
            .bind(&unmarked)
            .bind(ends.iter().map(|e| e.id.as_str()).collect::<Vec<_>>())
            .bind(ends.iter().map(|e| e.ended_at).collect::<Vec<DateTime<Utc>>>())
            .bind(
                ends.iter()
                    .map(|e| i64::try_from(e.bytes_from_vendor).unwrap_or(i64::MAX))
                    .collect::<Vec<_>>(),
            )
            .bind(
                ends.iter()
                    .map(|e| i64::try_from(e.bytes_to_vendor).unwrap_or(i64::MAX))
                    .collect::<Vec<_>>(),
            )
            .bind(ends.iter().map(|e| e.end_reason.as_str()).collect::<Vec<_>>())
            .bind(AUDIT_CHAIN_LOCK)
            .fetch_all(&mut *tx)
            .await?;
        let mut flipped: HashSet<String> = HashSet::new();
        let mut ended: HashSet<String> = HashSet::new();
        for (kind, id) in rows {
            match kind.as_str() {
                "w" => {
                    flipped.insert(id);
                }
                "e" => {
                    ended.insert(id);
                }
                _ => {}
            }
        }
        // Read under the lock taken above, in a statement of its own: its
        // snapshot sees every append committed before the lock was granted.
        let head: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;

        // The audit events in entry order; the changes feed hears of each window
        // whose first session this batch records.
        let mut events: Vec<&AuditEvent> = Vec::with_capacity(entries.len());
        let mut reports: Vec<(usize, &VendorId)> = Vec::new();
        for entry in entries {
            match entry {
                JournalEntry::SessionStarted(s, event) => {
                    if flipped.remove(s.window_id.as_str()) {
                        reports.push((events.len(), &s.vendor_id));
                    }
                    events.push(event);
                }
                JournalEntry::SessionEnded(end, event) => {
                    if ended.remove(end.id.as_str()) {
                        events.push(event);
                    }
                }
                JournalEntry::Audit(event) => events.push(event),
                JournalEntry::Notice(..) => {}
            }
        }
        let records = audit::link(head, events.iter().copied());
        if !records.is_empty() {
            sqlx::query(INSERT_AUDIT)
                .bind(records.iter().map(|r| r.seq).collect::<Vec<_>>())
                .bind(records.iter().map(|r| r.at).collect::<Vec<DateTime<Utc>>>())
                .bind(records.iter().map(|r| r.actor.as_str()).collect::<Vec<_>>())
                .bind(records.iter().map(|r| r.action.as_str()).collect::<Vec<_>>())
                .bind(records.iter().map(|r| r.object.as_str()).collect::<Vec<_>>())
                .bind(records.iter().map(|r| r.outcome.as_str()).collect::<Vec<_>>())
                .bind(records.iter().map(|r| r.details.as_str()).collect::<Vec<_>>())
                .bind(records.iter().map(|r| r.prev_hash.as_str()).collect::<Vec<_>>())
                .bind(records.iter().map(|r| r.hash.as_str()).collect::<Vec<_>>())
                .execute(&mut *tx)
                .await?;
        }
        // The vendor's overdue state may move: every node re-reads it (feed).
        // The feed's MAX + 1 is assigned under the chain lock, held until commit.
        let mut last_change = None;
        for &(i, vendor) in &reports {
            let Some(r) = records.get(i) else { continue };
            let change = Change::Reports(vendor.clone());
            let seq: i64 = sqlx::query_scalar(
                "INSERT INTO changes (seq, at, kind, object, audit_seq)
                 SELECT COALESCE(MAX(seq), 0) + 1, $1, $2, $3, $4 FROM changes RETURNING seq",
            )
            .bind(r.at)
            .bind(change.kind())
            .bind(change.object())
            .bind(r.seq)
            .fetch_one(&mut *tx)
            .await?;
            last_change = Some(seq);
        }
        if let Some(seq) = last_change {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANGES_CHANNEL)
                .bind(seq.to_string())
                .execute(&mut *tx)
                .await?;
        }
        for (notice, at) in &notices {
            outbox::insert_in(&mut tx, notice, *at).await?;
        }
        tx.commit().await?;

        if !unmarked.is_empty() {
            if let Ok(mut marked) = self.marked.0.lock() {
                if marked.len() + unmarked.len() > MARKED_WINDOWS_MAX {
                    marked.clear();
                }
                marked.extend(unmarked);
            }
        }
        if !reports.is_empty() {
            self.generation.bump();
        }
        Ok(())
    }
}
