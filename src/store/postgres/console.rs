//! Console sessions and account preferences on PostgreSQL.

use super::*;

fn session_row(row: &PgRow) -> StoreResult<ConsoleSession> {
    Ok(ConsoleSession {
        id_sha256: row.try_get("id_sha256")?,
        user_id: UserId(row.try_get("user_id")?),
        created_at: from_us(row.try_get("created_at")?)?,
        last_seen_at: from_us(row.try_get("last_seen_at")?)?,
        source_ip: row.try_get("source_ip")?,
    })
}

impl PgStore {
    pub(super) async fn console_set_lang(
        &self,
        id: &UserId,
        lang: Option<&str>,
        record: Record<'_, User>,
    ) -> StoreResult<User> {
        let mut tx = self.begin_chained().await?;
        let done = sqlx::query("UPDATE api_users SET lang = $1 WHERE id = $2")
            .bind(lang)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("user"));
        }
        let user = Self::user_in(&mut tx, id).await?;
        self.finish(tx, user, record, false).await
    }

    pub(super) async fn console_create(
        &self,
        session: &ConsoleSession,
        record: Record<'_, ConsoleSession>,
    ) -> StoreResult<ConsoleSession> {
        let mut tx = self.begin_chained().await?;
        sqlx::query(
            "INSERT INTO console_sessions (id_sha256, user_id, created_at, last_seen_at, source_ip) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&session.id_sha256)
        .bind(session.user_id.as_str())
        .bind(us(session.created_at))
        .bind(us(session.last_seen_at))
        .bind(&session.source_ip)
        .execute(&mut *tx)
        .await?;
        // A console session starts at a sign-in: the accounts list shows the last one.
        sqlx::query("UPDATE api_users SET last_sign_in_at = $1 WHERE id = $2")
            .bind(us(session.created_at))
            .bind(session.user_id.as_str())
            .execute(&mut *tx)
            .await?;
        self.finish(tx, session.clone(), record, false).await
    }

    pub(super) async fn console_lookup(&self, id_sha256: &str) -> StoreResult<Option<(ConsoleSession, User)>> {
        let mut conn = self.pool.acquire().await?;
        let Some(row) = sqlx::query("SELECT * FROM console_sessions WHERE id_sha256 = $1")
            .bind(id_sha256)
            .fetch_optional(&mut *conn)
            .await?
        else {
            return Ok(None);
        };
        let session = session_row(&row)?;
        let user = Self::user_in(&mut conn, &session.user_id).await?;
        Ok(user.disabled_at.is_none().then_some((session, user)))
    }

    pub(super) async fn console_touch(&self, id_sha256: &str, at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE console_sessions SET last_seen_at = GREATEST(last_seen_at, $1) WHERE id_sha256 = $2")
            .bind(us(at))
            .bind(id_sha256)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) async fn console_end(
        &self,
        user: &UserId,
        only: Option<&str>,
        record: Record<'_, u64>,
    ) -> StoreResult<u64> {
        let mut tx = self.begin_chained().await?;
        let done =
            sqlx::query("DELETE FROM console_sessions WHERE user_id = $1 AND ($2::text IS NULL OR id_sha256 = $3)")
                .bind(user.as_str())
                .bind(only)
                .bind(only)
                .execute(&mut *tx)
                .await?;
        self.finish(tx, done.rows_affected(), record, false).await
    }

    pub(super) async fn console_prune(
        &self,
        idle_before: DateTime<Utc>,
        created_before: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM console_sessions WHERE last_seen_at < $1 OR created_at < $2")
            .bind(us(idle_before))
            .bind(us(created_before))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
