//! Accounts of the hospital's directory on PostgreSQL (issue 11).

use super::*;

impl PgStore {
    pub(super) async fn directory_set_account(
        &self,
        id: &UserId,
        dn: &str,
        role: Role,
        record: Record<'_, User>,
    ) -> StoreResult<User> {
        let mut tx = self.begin_chained().await?;
        let done = sqlx::query("UPDATE api_users SET directory_dn = $1, role = $2 WHERE id = $3")
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
