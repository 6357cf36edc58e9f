//! Site-wide settings as key → JSON text (blocked terms and the like).

use sqlx::Row;

use super::{DbError, Exec};

pub async fn get(ex: impl Exec<'_>, key: &str) -> Result<Option<String>, DbError> {
    let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
        .bind(key)
        .fetch_optional(ex)
        .await?;
    row.map(|r| r.try_get("value")).transpose()
}

pub async fn put(ex: impl Exec<'_>, key: &str, value: &str) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES ($1, $2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(ex)
    .await?;
    Ok(())
}
