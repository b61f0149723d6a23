//! The notification outbox on SQLite (see [`OutboxItem`]). One process
//! delivers, but claims still go through the lease columns: the code and its
//! guarantees are the PostgreSQL backend's, and a restart frees the claims of
//! the run it replaces at once.

use super::*;
use crate::store::outbox::{parse_sinks_done, sinks_done_text};

/// Inserts one notice, due at once, inside an open write transaction.
pub(super) async fn insert_in(conn: &mut SqliteConnection, notice: &Notice, at: DateTime<Utc>) -> StoreResult<()> {
    sqlx::query("INSERT INTO outbox (created_at, event, data, next_attempt_at) VALUES (?, ?, ?, ?)")
        .bind(us(at))
        .bind(notice.event.as_str())
        .bind(notice.data.to_string())
        .bind(us(at))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn item_row(row: &SqliteRow) -> StoreResult<OutboxItem> {
    let seq: i64 = row.try_get("seq")?;
    let sinks_done: String = row.try_get("sinks_done")?;
    Ok(OutboxItem {
        seq,
        created_at: from_us(row.try_get("created_at")?)?,
        event: row.try_get("event")?,
        data: row.try_get("data")?,
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
        sinks_done: parse_sinks_done(seq, &sinks_done),
    })
}

impl SqliteStore {
    pub(super) async fn outbox_enqueue(&self, notices: &[Notice], at: DateTime<Utc>) -> StoreResult<()> {
        if notices.is_empty() {
            return Ok(());
        }
        let mut tx = Tx::begin(&self.pool, "BEGIN IMMEDIATE").await?;
        for n in notices {
            insert_in(&mut tx, n, at).await?;
        }
        tx.commit().await
    }

    pub(super) async fn outbox_claim(
        &self,
        node: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxItem>> {
        // One statement: atomic on its own (SQLite has one writer).
        let rows = sqlx::query(
            "UPDATE outbox SET claimed_by = ?, claimed_until = ?, attempts = attempts + 1
             WHERE seq IN (
                 SELECT seq FROM outbox
                 WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?
                   AND (claimed_until IS NULL OR claimed_until <= ?)
                 ORDER BY seq LIMIT ?)
             RETURNING seq, created_at, event, data, attempts, sinks_done",
        )
        .bind(node)
        .bind(us(until))
        .bind(us(now))
        .bind(us(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut items = rows.iter().map(item_row).collect::<StoreResult<Vec<_>>>()?;
        items.sort_by_key(|i| i.seq);
        Ok(items)
    }

    pub(super) async fn outbox_release(&self, node: &str) -> StoreResult<u64> {
        let r = sqlx::query(
            "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL
             WHERE claimed_by = ? AND delivered_at IS NULL AND failed_at IS NULL",
        )
        .bind(node)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    pub(super) async fn outbox_mark_delivered(&self, seq: i64, at: DateTime<Utc>) -> StoreResult<()> {
        // Whoever holds it now: it was delivered, and a late "failed" must not win.
        sqlx::query(
            "UPDATE outbox SET delivered_at = ?, failed_at = NULL, last_error = NULL, claimed_by = NULL, claimed_until = NULL
             WHERE seq = ? AND delivered_at IS NULL",
        )
        .bind(us(at))
        .bind(seq)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn outbox_mark_retry(
        &self,
        seq: i64,
        node: &str,
        next_attempt_at: DateTime<Utc>,
        error: &str,
        sinks_done: &[String],
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE outbox SET next_attempt_at = ?, last_error = ?, sinks_done = ?, claimed_by = NULL, claimed_until = NULL
             WHERE seq = ? AND claimed_by = ? AND delivered_at IS NULL AND failed_at IS NULL",
        )
        .bind(us(next_attempt_at))
        .bind(error)
        .bind(sinks_done_text(sinks_done))
        .bind(seq)
        .bind(node)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn outbox_mark_failed(
        &self,
        seq: i64,
        node: &str,
        at: DateTime<Utc>,
        error: &str,
        sinks_done: &[String],
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE outbox SET failed_at = ?, last_error = ?, sinks_done = ?, claimed_by = NULL, claimed_until = NULL
             WHERE seq = ? AND claimed_by = ? AND delivered_at IS NULL AND failed_at IS NULL",
        )
        .bind(us(at))
        .bind(error)
        .bind(sinks_done_text(sinks_done))
        .bind(seq)
        .bind(node)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn outbox_purge(
        &self,
        settled_before: DateTime<Utc>,
        expire_before: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> StoreResult<OutboxPurge> {
        let mut tx = Tx::begin(&self.pool, "BEGIN IMMEDIATE").await?;
        let expired = sqlx::query(
            "UPDATE outbox SET failed_at = ?, last_error = COALESCE(last_error, 'not delivered within the retry horizon')
             WHERE delivered_at IS NULL AND failed_at IS NULL AND created_at < ?
               AND (claimed_until IS NULL OR claimed_until <= ?)",
        )
        .bind(us(at))
        .bind(us(expire_before))
        .bind(us(at))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let deleted = sqlx::query(
            "DELETE FROM outbox WHERE created_at < ? AND (delivered_at IS NOT NULL OR failed_at IS NOT NULL)",
        )
        .bind(us(settled_before))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(OutboxPurge { deleted, expired })
    }

    pub(super) async fn outbox_count(&self) -> StoreResult<OutboxBacklog> {
        let (pending, oldest, failed): (i64, Option<i64>, i64) = sqlx::query_as(
            "SELECT
                 COUNT(*) FILTER (WHERE delivered_at IS NULL AND failed_at IS NULL),
                 MIN(created_at) FILTER (WHERE delivered_at IS NULL AND failed_at IS NULL),
                 COUNT(*) FILTER (WHERE delivered_at IS NULL AND failed_at IS NOT NULL)
             FROM outbox",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(OutboxBacklog {
            pending: u64::try_from(pending).unwrap_or(0),
            oldest_pending_at: opt_from_us(oldest)?,
            failed: u64::try_from(failed).unwrap_or(0),
        })
    }
}
