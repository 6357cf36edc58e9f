//! The two migration folders stay in step: after migrating, SQLite and PostgreSQL have the same
//! tables, the same columns in each, and the same named indexes.

use std::collections::BTreeSet;

use moim::storage::Db;
use sqlx::Row;

use crate::helpers::Backend;

/// `table.column` and `index:name on table` lines describing a migrated database.
async fn shape(db: &Db) -> BTreeSet<String> {
    let (tables, columns, indexes) = match db.backend {
        moim::storage::Backend::Sqlite => (
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
            "SELECT name FROM pragma_table_info($1)",
            "SELECT name, tbl_name AS tab FROM sqlite_master WHERE type = 'index' \
             AND name NOT LIKE 'sqlite_autoindex_%'",
        ),
        moim::storage::Backend::Postgres => (
            "SELECT table_name::text AS name FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'",
            "SELECT column_name::text AS name FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = $1",
            // Indexes made by PRIMARY KEY and UNIQUE constraints are SQLite's autoindexes.
            // (Names are cast to text: the Any driver reads no `name` type.)
            "SELECT indexname::text AS name, tablename::text AS tab FROM pg_indexes WHERE schemaname = 'public' \
             AND indexname NOT IN (SELECT conname FROM pg_constraint)",
        ),
    };
    let mut out = BTreeSet::new();
    let names: Vec<String> = sqlx::query(tables)
        .fetch_all(&db.pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("name"))
        .collect();
    for t in names {
        let cols = sqlx::query(columns)
            .bind(&t)
            .fetch_all(&db.pool)
            .await
            .unwrap();
        assert!(!cols.is_empty(), "table {t} has no columns");
        for c in cols {
            out.insert(format!("{t}.{}", c.get::<String, _>("name")));
        }
    }
    for r in sqlx::query(indexes).fetch_all(&db.pool).await.unwrap() {
        out.insert(format!(
            "index:{} on {}",
            r.get::<String, _>("name"),
            r.get::<String, _>("tab")
        ));
    }
    out
}

#[tokio::test]
async fn migration_folders_make_the_same_schema() {
    let Some(Backend::Postgres(url)) = Backend::postgres().await else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("moim-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let lite = Db::connect(None, &dir).await.unwrap();
    let pg = Db::connect(Some(&url), &dir).await.unwrap();
    let (a, b) = (shape(&lite).await, shape(&pg).await);
    assert!(a.contains("messages.seq") && a.contains("index:sessions_user on sessions"));
    let only_sqlite: Vec<_> = a.difference(&b).collect();
    let only_pg: Vec<_> = b.difference(&a).collect();
    assert!(
        only_sqlite.is_empty() && only_pg.is_empty(),
        "migrations/sqlite and migrations/postgres differ:\n only SQLite: {only_sqlite:?}\n only PostgreSQL: {only_pg:?}"
    );
    lite.pool.close().await;
    pg.pool.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
