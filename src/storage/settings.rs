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

/// Stores `value` unless the key has one; returns the value that is kept (the first writer's,
/// when nodes race).
pub async fn put_if_absent(ex: &sqlx::AnyPool, key: &str, value: &str) -> Result<String, DbError> {
    sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
        .bind(key)
        .bind(value)
        .execute(ex)
        .await?;
    Ok(get(ex, key).await?.unwrap_or_else(|| value.to_string()))
}
