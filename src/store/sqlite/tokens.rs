//! Personal API tokens on SQLite (see [`ApiToken`]).

use super::*;
use crate::domain::TokenId;

/// A token's last use is written back at most this often.
pub(crate) const NOTE_USE_EVERY_SECS: i64 = 60;

fn token_row(row: &SqliteRow) -> StoreResult<ApiToken> {
    Ok(ApiToken {
        id: TokenId(row.try_get("id")?),
        user_id: UserId(row.try_get("user_id")?),
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        created_at: from_us(row.try_get("created_at")?)?,
        expires_at: opt_from_us(row.try_get("expires_at")?)?,
        last_used_at: opt_from_us(row.try_get("last_used_at")?)?,
        revoked_at: opt_from_us(row.try_get("revoked_at")?)?,
    })
}

impl SqliteStore {
    /// Inserts a token in an open transaction.
    pub(super) async fn insert_token_in(
        conn: &mut SqliteConnection,
        id: &TokenId,
        t: &NewApiToken,
        at: DateTime<Utc>,
    ) -> StoreResult<ApiToken> {
        sqlx::query(
            "INSERT INTO api_tokens (id, user_id, name, prefix, token_sha256, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.as_str())
        .bind(t.user_id.as_str())
        .bind(&t.name)
        .bind(&t.prefix)
        .bind(&t.token_sha256)
        .bind(us(at))
        .bind(t.expires_at.map(us))
        .execute(&mut *conn)
        .await?;
        Self::token_in(conn, id).await
    }

    async fn token_in(conn: &mut SqliteConnection, id: &TokenId) -> StoreResult<ApiToken> {
        let row = sqlx::query("SELECT * FROM api_tokens WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(StoreError::NotFound("token"))?;
        token_row(&row)
    }

    pub(super) async fn tokens_create(
        &self,
        t: &NewApiToken,
        at: DateTime<Utc>,
        record: Record<'_, ApiToken>,
    ) -> StoreResult<ApiToken> {
        let mut tx = Tx::begin(&self.pool, "BEGIN IMMEDIATE").await?;
        // The account must exist (the foreign key would say so in less clear words).
        Self::user_in(&mut tx, &t.user_id).await?;
        let token = Self::insert_token_in(&mut tx, &TokenId::generate(), t, at).await?;
        self.finish(tx, token, record, false).await
    }

    pub(super) async fn tokens_get(&self, id: &TokenId) -> StoreResult<ApiToken> {
        let mut conn = self.pool.acquire().await?;
        Self::token_in(&mut conn, id).await
    }

    pub(super) async fn tokens_list(&self, user: Option<&UserId>) -> StoreResult<Vec<ApiToken>> {
        sqlx::query("SELECT * FROM api_tokens WHERE ? IS NULL OR user_id = ? ORDER BY created_at DESC, id")
            .bind(user.map(UserId::as_str))
            .bind(user.map(UserId::as_str))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(token_row)
            .collect()
    }

    pub(super) async fn tokens_revoke(
        &self,
        id: &TokenId,
        at: DateTime<Utc>,
        record: Record<'_, ApiToken>,
    ) -> StoreResult<ApiToken> {
        let mut tx = Tx::begin(&self.pool, "BEGIN IMMEDIATE").await?;
        let done = sqlx::query("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?")
            .bind(us(at))
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("token"));
        }
        let token = Self::token_in(&mut tx, id).await?;
        self.finish(tx, token, record, false).await
    }

    pub(super) async fn tokens_authenticate(
        &self,
        token_sha256: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<User>> {
        let mut conn = self.pool.acquire().await?;
        let Some(row) = sqlx::query("SELECT * FROM api_tokens WHERE token_sha256 = ?")
            .bind(token_sha256)
            .fetch_optional(&mut *conn)
            .await?
        else {
            return Ok(None);
        };
        let token = token_row(&row)?;
        if !token.live_at(now) {
            return Ok(None);
        }
        let user = Self::user_in(&mut conn, &token.user_id).await?;
        if user.disabled_at.is_some() {
            return Ok(None);
        }
        let stale = token
            .last_used_at
            .is_none_or(|t| now - t >= chrono::Duration::seconds(NOTE_USE_EVERY_SECS));
        if stale {
            // Best effort: a read-only or busy database still authenticates.
            let noted = sqlx::query(
                "UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
            )
            .bind(us(now))
            .bind(token.id.as_str())
            .bind(us(now))
            .execute(&mut *conn)
            .await;
            if let Err(e) = noted {
                tracing::debug!(error = %e, token = %token.id, "last use of a token not noted");
            }
        }
        Ok(Some(user))
    }
}
