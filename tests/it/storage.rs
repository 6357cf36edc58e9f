//! Storage under concurrency, through the library (no server): many connections hitting the
//! same decision at the same instant, on both backends.

use std::sync::Arc;

use moim::storage::users::{self, Role};
use moim::storage::Db;

use crate::helpers::Backend;

backend_tests!(racing_first_accounts_make_exactly_one_admin);

/// Twelve accounts created at the same instant on a fresh database, ten times over: exactly one
/// admin each time. (Deciding "no users yet?" inside the insert let several win on PostgreSQL.)
async fn racing_first_accounts_make_exactly_one_admin(b: Backend) {
    for round in 0..10 {
        let dir = std::env::temp_dir().join(format!(
            "moim-race-{}-{round}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let url = match &b {
            Backend::Sqlite => None,
            Backend::Postgres(_) => match Backend::postgres().await {
                Some(Backend::Postgres(url)) => Some(url),
                _ => unreachable!("PostgreSQL was configured for this test"),
            },
        };
        let db = Db::connect(url.as_deref(), &dir).await.unwrap();
        let start = Arc::new(tokio::sync::Barrier::new(12));
        let racers: Vec<_> = (0..12)
            .map(|i| {
                let (db, start) = (db.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    let mut tx = db.begin().await.unwrap();
                    let name = format!("racer{i}");
                    let u = users::create(&mut tx, &name, &name, "x", 0).await.unwrap();
                    tx.commit().await.unwrap();
                    u.role
                })
            })
            .collect();
        let mut admins = 0;
        for r in racers {
            if r.await.unwrap() == Role::Admin {
                admins += 1;
            }
        }
        assert_eq!(admins, 1, "round {round}: {admins} admins");
        db.pool.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
