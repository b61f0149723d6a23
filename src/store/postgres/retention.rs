//! Secure disposal on PostgreSQL: one transaction, holding the audit chain's
//! lock from before the cut is chosen until it commits, erases the
//! personal fields, deletes the personal rows and a prefix of the audit chain,
//! and moves the anchor (see `Store::purge_personal_data`).

use super::*;
use crate::store::retention::{prefix_verdict, PREFIX_PAGE};

/// Windows whose reasons go: closed (ended, or closed early) before the
/// cut-off, and none the rules still need: not pending, not an emergency grant
/// awaiting review, not one whose report is due, none with an open session.
const ERASE_WINDOWS: &str = "UPDATE windows SET reason = $1,
        decision_reason = CASE WHEN decision_reason IS NULL THEN NULL ELSE $1 END,
        extension_reason = CASE WHEN extension_reason IS NULL THEN NULL ELSE $1 END,
        review_comment = CASE WHEN review_comment IS NULL THEN NULL ELSE $1 END
    WHERE reason <> $1
      AND state <> 'requested'
      AND (ends_at < $2 OR closed_at < $2)
      AND NOT (emergency AND review_verdict IS NULL)
      AND NOT (NOT emergency AND had_session AND state IN ('approved', 'revoked')
               AND NOT EXISTS (SELECT 1 FROM reports r WHERE r.window_id = windows.id))
      AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.window_id = windows.id AND s.ended_at IS NULL)";

impl PgStore {
    pub(super) async fn purge(&self, req: &PurgeRequest, record: Record<'_, PurgeCounts>) -> StoreResult<PurgeCounts> {
        let before = us(req.before);
        // The chain lock first, as every chained write takes it: taking it after
        // the row locks below could deadlock with a window change under way.
        let mut tx = self.begin_chained().await?;
        let mut c = PurgeCounts::default();
        let run = |sql: &'static str| sqlx::query(sql).bind(ERASED).bind(before);

        c.sessions = run(
            "UPDATE sessions SET technician_subject = $1, source_ip = $3, source_port = 0
                WHERE ended_at IS NOT NULL AND ended_at < $2 AND technician_subject <> $1",
        )
        .bind(ERASED_IP)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        c.windows = run(ERASE_WINDOWS).execute(&mut *tx).await?.rows_affected();
        c.reports = run("UPDATE reports SET summary = $1, actions = $1,
                follow_up = CASE WHEN follow_up IS NULL THEN NULL ELSE $1 END
                WHERE filed_at < $2 AND summary <> $1")
        .execute(&mut *tx)
        .await?
        .rows_affected();
        c.report_addenda = run("UPDATE report_addenda SET text = $1 WHERE filed_at < $2 AND text <> $1")
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let delete = |sql: &'static str| sqlx::query(sql).bind(before);
        c.console_sessions = delete("DELETE FROM console_sessions WHERE last_seen_at < $1")
            .execute(&mut *tx)
            .await?
            .rows_affected();
        c.sign_in_records = delete("DELETE FROM sign_in_failures WHERE at < $1")
            .execute(&mut *tx)
            .await?
            .rows_affected()
            + delete("DELETE FROM sign_in_pending WHERE created_at < $1")
                .execute(&mut *tx)
                .await?
                .rows_affected();
        c.notifications =
            delete("DELETE FROM outbox WHERE created_at < $1 AND (delivered_at IS NOT NULL OR failed_at IS NOT NULL)")
                .execute(&mut *tx)
                .await?
                .rows_affected();

        // No append may slip between the cut and the deletion: the chain lock is
        // held since the transaction began.
        // The chain loses a prefix only: up to the event before the first one
        // at or after the cut-off (clocks of several nodes may interleave).
        let cut: i64 = sqlx::query_scalar(
            "SELECT COALESCE((SELECT MIN(seq) FROM audit_events WHERE at >= $1),
                             (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_events)) - 1",
        )
        .bind(before)
        .fetch_one(&mut *tx)
        .await?;
        let (count, last): (i64, Option<String>) = sqlx::query_as(
            "SELECT COUNT(*)::BIGINT, (SELECT hash FROM audit_events WHERE seq = $1) FROM audit_events WHERE seq <= $1",
        )
        .bind(cut)
        .fetch_one(&mut *tx)
        .await?;
        let prior: Option<(i64, String)> = sqlx::query_as("SELECT seq, hash FROM audit_anchor WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await?;
        let moved = last.filter(|_| count > 0).map(|hash| AuditAnchor { seq: cut, hash });
        c.audit_events = u64::try_from(count).unwrap_or_default();
        let prior = prior.map(|(seq, hash)| AuditAnchor { seq, hash });
        if moved.is_some() {
            // Before anything goes, the events to delete must verify: a purge
            // must not erase the evidence of tampering (dry runs say so too).
            Self::verify_prefix(&mut tx, prior.clone(), cut).await?;
        }
        c.prefix_verified = moved.is_some();
        c.audit_anchor = moved.clone().or(prior);

        if req.dry_run {
            tx.rollback().await?;
            return Ok(c);
        }
        // Chained before the deletion: the head survives, so appends continue.
        record_in(&mut tx, &record(&c)).await?;
        if let Some(a) = &moved {
            sqlx::query("DELETE FROM audit_events WHERE seq <= $1")
                .bind(a.seq)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO audit_anchor (id, seq, hash, purged_at, before) VALUES (1, $1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash,
                     purged_at = excluded.purged_at, before = excluded.before",
            )
            .bind(a.seq)
            .bind(&a.hash)
            .bind(us(req.at))
            .bind(before)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(c)
    }

    /// Verifies the audit events from the anchor `prior` (or the genesis)
    /// through `cut`, and that the trail's latest `data.purged` event names
    /// `prior`; `Conflict` naming the first invalid seq otherwise.
    async fn verify_prefix(
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        prior: Option<AuditAnchor>,
        cut: i64,
    ) -> StoreResult<()> {
        let mut after = prior.as_ref().map_or(0, |a| a.seq);
        let mut v = match prior {
            Some(a) => crate::audit::ChainVerifier::from_anchor(a),
            None => crate::audit::ChainVerifier::default(),
        };
        // Through the first kept event: its `prev_hash` must name the last
        // deleted one, or a forged last event (content and hash rewritten)
        // would verify alone and become the anchor.
        loop {
            let rows = sqlx::query("SELECT * FROM audit_events WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3")
                .bind(after)
                .bind(cut + 1)
                .bind(PREFIX_PAGE)
                .fetch_all(&mut **tx)
                .await?;
            for row in &rows {
                let r = Self::audit_row(row)?;
                after = r.seq;
                v.feed(&r);
            }
            if rows.len() < PREFIX_PAGE as usize {
                break;
            }
        }
        // The latest purge after the prefix, which the verifier would read last.
        let latest = sqlx::query("SELECT * FROM audit_events WHERE seq > $1 AND action = $2 ORDER BY seq DESC LIMIT 1")
            .bind(cut)
            .bind(crate::events::Event::DataPurged.as_str())
            .fetch_optional(&mut **tx)
            .await?;
        let latest = latest.as_ref().map(Self::audit_row).transpose()?;
        prefix_verdict(v, latest.as_ref(), cut)
    }

    pub(super) async fn anchor(&self) -> StoreResult<Option<AuditAnchor>> {
        let row: Option<(i64, String)> = sqlx::query_as("SELECT seq, hash FROM audit_anchor WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(seq, hash)| AuditAnchor { seq, hash }))
    }
}
