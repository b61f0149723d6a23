//! Local passwords, second factors and sign-in attempts on PostgreSQL.

use super::*;

fn credentials_row(row: &PgRow) -> StoreResult<Credentials> {
    Ok(Credentials {
        password_hash: row.try_get("password_hash")?,
        must_change_password: row.try_get("must_change_password")?,
        totp_secret: row.try_get("totp_secret")?,
        totp_enabled_at: opt_from_us(row.try_get("totp_enabled_at")?)?,
        totp_last_step: row.try_get("totp_last_step")?,
        directory_dn: row.try_get("directory_dn")?,
    })
}

fn pending_row(row: &PgRow) -> StoreResult<PendingSignIn> {
    Ok(PendingSignIn {
        id_sha256: row.try_get("id_sha256")?,
        user_id: UserId(row.try_get("user_id")?),
        stage: row.try_get("stage")?,
        created_at: from_us(row.try_get("created_at")?)?,
        source_ip: row.try_get("source_ip")?,
    })
}

impl PgStore {
    pub(super) async fn identity_by_name(&self, name: &str) -> StoreResult<Option<(User, Credentials)>> {
        let row = sqlx::query("SELECT * FROM api_users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((Self::user_row(&r)?, credentials_row(&r)?))).transpose()
    }

    pub(super) async fn identity_all_credentials(&self) -> StoreResult<Vec<(UserId, Credentials)>> {
        let rows = sqlx::query("SELECT * FROM api_users ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((UserId(r.try_get("id")?), credentials_row(r)?)))
            .collect()
    }

    pub(super) async fn identity_credentials(&self, id: &UserId) -> StoreResult<Credentials> {
        let row = sqlx::query("SELECT * FROM api_users WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("user"))?;
        credentials_row(&row)
    }

    pub(super) async fn identity_set_password(
        &self,
        id: &UserId,
        hash: &str,
        must_change: bool,
        record: Record<'_, User>,
    ) -> StoreResult<User> {
        let mut tx = self.begin_chained().await?;
        let done = sqlx::query("UPDATE api_users SET password_hash = $1, must_change_password = $2 WHERE id = $3")
            .bind(hash)
            .bind(must_change)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("user"));
        }
        let user = Self::user_in(&mut tx, id).await?;
        self.finish(tx, user, record, false).await
    }

    pub(super) async fn identity_set_totp(
        &self,
        id: &UserId,
        secret: Option<&str>,
        enabled_at: Option<DateTime<Utc>>,
        last_step: Option<i64>,
        recovery_sha256: &[String],
        record: Record<'_, User>,
    ) -> StoreResult<User> {
        let mut tx = self.begin_chained().await?;
        let done = sqlx::query(
            "UPDATE api_users SET totp_secret = $1, totp_enabled_at = $2, totp_last_step = $3 WHERE id = $4",
        )
        .bind(secret)
        .bind(enabled_at.map(us))
        .bind(last_step)
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("user"));
        }
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        for code in recovery_sha256 {
            sqlx::query("INSERT INTO recovery_codes (user_id, code_sha256) VALUES ($1, $2)")
                .bind(id.as_str())
                .bind(code)
                .execute(&mut *tx)
                .await?;
        }
        let user = Self::user_in(&mut tx, id).await?;
        self.finish(tx, user, record, false).await
    }

    pub(super) async fn identity_replace_totp_secret(&self, id: &UserId, old: &str, new: &str) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE api_users SET totp_secret = $1 WHERE id = $2 AND totp_secret = $3")
            .bind(new)
            .bind(id.as_str())
            .bind(old)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn identity_use_step(&self, id: &UserId, step: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE api_users SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $3)",
        )
        .bind(step)
        .bind(id.as_str())
        .bind(step)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn identity_use_recovery(
        &self,
        id: &UserId,
        code_sha256: &str,
        at: DateTime<Utc>,
        record: Record<'_, ()>,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_chained().await?;
        let done = sqlx::query(
            "UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_sha256 = $3 AND used_at IS NULL",
        )
        .bind(us(at))
        .bind(id.as_str())
        .bind(code_sha256)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            // Nothing changed: dropping the transaction rolls it back.
            return Ok(false);
        }
        self.finish(tx, (), record, false).await?;
        Ok(true)
    }

    pub(super) async fn identity_add_failure(
        &self,
        keys: &[String],
        at: DateTime<Utc>,
        count_since: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> StoreResult<Vec<i64>> {
        let mut tx = self.pool.begin().await?;
        // Every key's old failures: one-off keys (a mistyped name) do not stay.
        sqlx::query("DELETE FROM sign_in_failures WHERE at < $1")
            .bind(us(forget_before))
            .execute(&mut *tx)
            .await?;
        let mut counts = Vec::with_capacity(keys.len());
        for key in keys {
            sqlx::query("INSERT INTO sign_in_failures (key, at) VALUES ($1, $2)")
                .bind(key)
                .bind(us(at))
                .execute(&mut *tx)
                .await?;
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sign_in_failures WHERE key = $1 AND at >= $2")
                .bind(key)
                .bind(us(count_since))
                .fetch_one(&mut *tx)
                .await?;
            counts.push(n);
        }
        tx.commit().await?;
        Ok(counts)
    }

    pub(super) async fn identity_failures(
        &self,
        key: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<(i64, Option<DateTime<Utc>>)> {
        let row =
            sqlx::query("SELECT COUNT(*) AS n, MAX(at) AS last FROM sign_in_failures WHERE key = $1 AND at >= $2")
                .bind(key)
                .bind(us(since))
                .fetch_one(&self.pool)
                .await?;
        Ok((row.try_get("n")?, opt_from_us(row.try_get("last")?)?))
    }

    pub(super) async fn identity_clear_failures(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sign_in_failures WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) async fn identity_create_pending(
        &self,
        p: &PendingSignIn,
        expired_before: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM sign_in_pending WHERE created_at < $1")
            .bind(us(expired_before))
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO sign_in_pending (id_sha256, user_id, stage, created_at, source_ip) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&p.id_sha256)
        .bind(p.user_id.as_str())
        .bind(&p.stage)
        .bind(us(p.created_at))
        .bind(&p.source_ip)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn identity_pending(&self, id_sha256: &str) -> StoreResult<Option<PendingSignIn>> {
        sqlx::query("SELECT * FROM sign_in_pending WHERE id_sha256 = $1")
            .bind(id_sha256)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(pending_row)
            .transpose()
    }

    pub(super) async fn identity_end_pending(&self, id_sha256: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sign_in_pending WHERE id_sha256 = $1")
            .bind(id_sha256)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
