//! The journal's group commit on SQLite. sqlx runs each connection on a worker
//! thread of its own and crosses threads for every statement, so a batch is
//! sent as few multi-statement queries as possible: the session rows, window
//! marks and session ends as multi-row statements, the audit events chained in
//! memory from one head and inserted as one statement, `BEGIN` and `COMMIT`
//! riding along. A batch of session starts whose windows are already marked
//! is a single query; otherwise two.
//!
//! The chain head is kept from this writer's last commit. Another writer
//! (the API, the CLI) may have appended since: the first `seq` the batch takes
//! is then already used, the insert fails on the primary key inside the still
//! open transaction, and the batch is chained again from the head read there
//! (`BEGIN IMMEDIATE` holds every other writer off by then).

use std::collections::HashSet;
use std::sync::Mutex;

use sqlx::sqlite::SqliteArguments;
use sqlx::{Arguments, Encode, Type};

use super::{outbox, us, SqliteStore, Tx};
use crate::audit::{self, AuditEvent, AuditRecord};
use crate::store::{canonical_ip, Change, JournalEntry, Session, SessionEnd, StoreError, StoreResult, VendorId};

/// Window ids remembered as marked `had_session` (a mark is never undone); the
/// set is emptied when it grows past this.
const MARKED_WINDOWS_MAX: usize = 4096;
/// Queries for at most this many entries stay prepared; larger batches vary in
/// size and would churn the statement cache.
const PREPARED_ENTRIES_MAX: usize = 8;

/// What the writer remembers between batches.
#[derive(Debug, Default)]
pub(super) struct JournalCache {
    /// The chain head after this writer's last commit; taken while a batch is
    /// written, so a failed batch leaves nothing to trust.
    head: Mutex<Option<(i64, String)>>,
    /// Windows known to be marked `had_session`.
    marked: Mutex<HashSet<String>>,
}

/// A multi-statement query being built.
struct Sql<'q> {
    text: String,
    args: SqliteArguments<'q>,
}

impl<'q> Sql<'q> {
    fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            args: SqliteArguments::default(),
        }
    }

    fn bind<T: Encode<'q, sqlx::Sqlite> + Type<sqlx::Sqlite> + 'q>(&mut self, v: T) -> StoreResult<()> {
        self.args.add(v).map_err(|e| StoreError::from(sqlx::Error::Encode(e)))
    }

    /// `(?, ?, …)` rows of `width` placeholders.
    fn rows(&mut self, n: usize, width: usize) {
        let row = format!("({})", vec!["?"; width].join(", "));
        self.text.push_str(&vec![row; n].join(", "));
    }
}

/// One session-start row per start.
fn push_sessions<'q>(sql: &mut Sql<'q>, starts: &[&'q Session]) -> StoreResult<()> {
    if starts.is_empty() {
        return Ok(());
    }
    sql.text.push_str(
        "INSERT INTO sessions (id, window_id, vendor_id, technician_id, technician_subject, device_id, source_ip, source_port, node, started_at) VALUES ",
    );
    sql.rows(starts.len(), 10);
    sql.text.push(';');
    for s in starts {
        sql.bind(s.id.as_str())?;
        sql.bind(s.window_id.as_str())?;
        sql.bind(s.vendor_id.as_str())?;
        sql.bind(s.technician_id.as_str())?;
        sql.bind(s.technician_subject.as_str())?;
        sql.bind(s.device_id.as_str())?;
        sql.bind(canonical_ip(s.source_ip).to_string())?;
        sql.bind(i64::from(s.source_port))?;
        sql.bind(s.node.as_str())?;
        sql.bind(us(s.started_at))?;
    }
    Ok(())
}

/// The audit rows, the feed entries for windows whose first session this batch
/// records (`reports`: index into `records`, vendor), and the commit.
fn push_tail<'q>(sql: &mut Sql<'q>, records: &'q [AuditRecord], reports: &[(usize, &'q VendorId)]) -> StoreResult<()> {
    if !records.is_empty() {
        sql.text.push_str(
            "INSERT INTO audit_events (seq, at, actor, action, object, outcome, details, prev_hash, hash) VALUES ",
        );
        sql.rows(records.len(), 9);
        sql.text.push(';');
        for r in records {
            sql.bind(r.seq)?;
            sql.bind(us(r.at))?;
            sql.bind(r.actor.as_str())?;
            sql.bind(r.action.as_str())?;
            sql.bind(r.object.as_str())?;
            sql.bind(r.outcome.as_str())?;
            sql.bind(r.details.as_str())?;
            sql.bind(r.prev_hash.as_str())?;
            sql.bind(r.hash.as_str())?;
        }
    }
    for &(i, vendor) in reports {
        let Some(r) = records.get(i) else { continue };
        // The vendor's overdue state may move: every node re-reads it (feed).
        // One writer at a time (BEGIN IMMEDIATE): MAX + 1 grows in commit order.
        let change = Change::Reports(vendor.clone());
        sql.text.push_str(
            "INSERT INTO changes (seq, at, kind, object, audit_seq) SELECT COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ? FROM changes;",
        );
        sql.bind(us(r.at))?;
        sql.bind(change.kind())?;
        sql.bind(vendor.as_str())?;
        sql.bind(r.seq)?;
    }
    sql.text.push_str("COMMIT;");
    Ok(())
}

/// Whether `e` is the audit insert finding its first `seq` taken: the cached
/// head was stale.
fn stale_head(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation() && d.message().contains("audit_events.seq"))
}

impl SqliteStore {
    /// Writes one group-commit batch in a single transaction (see the module).
    pub(super) async fn write_journal_batch(&self, entries: &[JournalEntry]) -> StoreResult<()> {
        let cached = self.journal.head.lock().ok().and_then(|mut h| h.take());
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
        let mut unmarked: Vec<&str> = Vec::new();
        if let Ok(marked) = self.journal.marked.lock() {
            for s in &starts {
                let w = s.window_id.as_str();
                if !marked.contains(w) && !unmarked.contains(&w) {
                    unmarked.push(w);
                }
            }
        }
        let persistent = entries.len() <= PREPARED_ENTRIES_MAX;

        // Not begun yet: `BEGIN IMMEDIATE` is the first statement of the first query.
        let mut tx = Tx::unbegun(&self.pool).await?;
        let mut head = cached.clone();
        let mut flipped: HashSet<String> = HashSet::new();
        let mut ended: HashSet<String> = HashSet::new();
        let mut sql = Sql::new("BEGIN IMMEDIATE;");
        push_sessions(&mut sql, &starts)?;
        let read_first = head.is_none() || !unmarked.is_empty() || !ends.is_empty() || !notices.is_empty();
        if read_first {
            if !unmarked.is_empty() {
                // The first session of a window makes its report mandatory.
                sql.text
                    .push_str("UPDATE windows SET had_session = 1 WHERE had_session = 0 AND id IN (");
                sql.text.push_str(&vec!["?"; unmarked.len()].join(", "));
                sql.text.push_str(") RETURNING 'w' AS k, id AS v, NULL AS n;");
                for w in &unmarked {
                    sql.bind(*w)?;
                }
            }
            if !ends.is_empty() {
                // Only still-open sessions: a retried end whose first attempt did
                // commit records nothing twice.
                sql.text.push_str(
                    "UPDATE sessions SET ended_at = v.column2, bytes_from_vendor = v.column3, bytes_to_vendor = v.column4, end_reason = v.column5 FROM (VALUES ",
                );
                sql.rows(ends.len(), 5);
                sql.text.push_str(
                    ") AS v WHERE sessions.id = v.column1 AND sessions.ended_at IS NULL RETURNING 'e' AS k, id AS v, NULL AS n;",
                );
                for end in &ends {
                    sql.bind(end.id.as_str())?;
                    sql.bind(us(end.ended_at))?;
                    sql.bind(i64::try_from(end.bytes_from_vendor).unwrap_or(i64::MAX))?;
                    sql.bind(i64::try_from(end.bytes_to_vendor).unwrap_or(i64::MAX))?;
                    sql.bind(end.end_reason.as_str())?;
                }
            }
            if head.is_none() {
                sql.text.push_str(
                    "SELECT 'h' AS k, hash AS v, seq AS n FROM (SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1);",
                );
            }
            let rows: Vec<(String, String, Option<i64>)> = sqlx::query_as_with(&sql.text, sql.args)
                .persistent(persistent)
                .fetch_all(&mut *tx)
                .await?;
            for (kind, value, seq) in rows {
                match (kind.as_str(), seq) {
                    ("w", _) => {
                        flipped.insert(value);
                    }
                    ("e", _) => {
                        ended.insert(value);
                    }
                    ("h", Some(seq)) => head = Some((seq, value)),
                    _ => return Err(StoreError::Corrupt(format!("journal batch row {kind:?}"))),
                }
            }
            for (notice, at) in &notices {
                outbox::insert_in(&mut tx, notice, *at).await?;
            }
            sql = Sql::new("");
        }

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
        let records = audit::link(head.clone(), events.iter().copied());
        push_tail(&mut sql, &records, &reports)?;
        let result = sqlx::query_with(&sql.text, sql.args)
            .persistent(persistent)
            .execute(&mut *tx)
            .await;
        let records = match result {
            Ok(_) => records,
            Err(e) if cached.is_some() && stale_head(&e) => {
                // Another writer appended since our last batch; the transaction
                // is still open (only the insert failed): chain from the real head.
                tracing::debug!("audit chain head moved since the last batch: re-read");
                let fresh: Option<(i64, String)> =
                    sqlx::query_as("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
                        .fetch_optional(&mut *tx)
                        .await?;
                head = fresh;
                let records = audit::link(head.clone(), events.iter().copied());
                let mut sql = Sql::new("");
                push_tail(&mut sql, &records, &reports)?;
                sqlx::query_with(&sql.text, sql.args)
                    .persistent(false)
                    .execute(&mut *tx)
                    .await?;
                records
            }
            Err(e) => return Err(e.into()),
        };
        tx.committed();

        let new_head = records.last().map(|r| (r.seq, r.hash.clone())).or(head);
        if let Ok(mut h) = self.journal.head.lock() {
            *h = new_head;
        }
        if !unmarked.is_empty() {
            if let Ok(mut marked) = self.journal.marked.lock() {
                if marked.len() + unmarked.len() > MARKED_WINDOWS_MAX {
                    marked.clear();
                }
                marked.extend(unmarked.iter().map(|w| (*w).to_owned()));
            }
        }
        if !reports.is_empty() {
            self.generation.bump();
        }
        Ok(())
    }
}
