//! Accounts of the hospital's directory on SQLite (issue 11).

use super::*;

impl SqliteStore {
    pub(super) async fn directory_set_account(
        &self,
        id: &UserId,
        dn: &str,
        role: Role,
        record: Record<'_, User>,
    ) -> StoreResult<User> {
        let mut tx = Tx::begin(&self.pool, "BEGIN IMMEDIATE").await?;
        let done = sqlx::query("UPDATE api_users SET directory_dn = ?, role = ? WHERE id = ?")
            .bind(dn)
            .bind(role.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("user"));
        }
        let user = Self::user_in(&mut tx, id).await?;
        self.finish(tx, user, record, false).await
    }
}
