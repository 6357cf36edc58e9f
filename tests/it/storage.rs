//! Storage under concurrency, through the library (no server): many connections hitting the
//! same decision at the same instant, on both backends.

use std::sync::Arc;

use moim::storage::users::{self, Role};
use moim::storage::Db;

use crate::helpers::Backend;

backend_tests!(
    racing_first_accounts_make_exactly_one_admin,
    the_janitor_removes_expired_uploads_with_their_bytes,
);

/// A fresh database on backend `b` (its own PostgreSQL database, or SQLite in a new folder),
/// and the folder for its files.
async fn fresh_db(b: &Backend, name: &str) -> (Db, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "moim-{name}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = match b {
        Backend::Sqlite => None,
        Backend::Postgres(_) => match Backend::postgres().await {
            Some(Backend::Postgres(url)) => Some(url),
            _ => unreachable!("PostgreSQL was configured for this test"),
        },
    };
    (Db::connect(url.as_deref(), &dir).await.unwrap(), dir)
}

/// Twelve accounts created at the same instant on a fresh database, ten times over: exactly one
/// admin each time. (Deciding "no users yet?" inside the insert let several win on PostgreSQL.)
async fn racing_first_accounts_make_exactly_one_admin(b: Backend) {
    for round in 0..10 {
        let (db, dir) = fresh_db(&b, &format!("race-{round}")).await;
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

/// The janitor's pass (`Uploads::expire`) removes every unfinished upload past its expiry and
/// its pieces, and leaves finished ones alone.
async fn the_janitor_removes_expired_uploads_with_their_bytes(b: Backend) {
    use moim::domain::plans::Plans;
    use moim::domain::uploads::{UploadLimits, Uploads};
    use moim::storage::blobs::{self, Blobs, LocalBlobs};

    let (db, dir) = fresh_db(&b, "expire").await;
    let mut tx = db.begin().await.unwrap();
    let user = users::create(&mut tx, "keeper", "keeper", "x", 0)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let store: Arc<dyn Blobs> = Arc::new(LocalBlobs::new(dir.join("blobs")));
    let limits = UploadLimits {
        max_bytes: 1 << 20,
        expiry_ms: 3_600_000,
    };
    let uploads = Uploads::new(
        db.clone(),
        Plans::new(db.clone(), None),
        store.clone(),
        limits,
        moim::domain::events::LocalBroker::new(),
    );
    let stale = uploads
        .create(&user, 100, Some("a.mp4"), None)
        .await
        .unwrap();
    let piece = uploads
        .append(&user, &stale.id, 0, blobs::once(vec![1u8; 40]), None)
        .await
        .unwrap();
    assert_eq!(piece, Ok(40));
    let done = uploads
        .create(&user, 10, Some("b.mp4"), None)
        .await
        .unwrap();
    let piece = uploads
        .append(&user, &done.id, 0, blobs::once(vec![2u8; 10]), None)
        .await
        .unwrap();
    assert_eq!(piece, Ok(10));
    assert_eq!(
        store
            .list(&format!("uploads/{}/", stale.id))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(uploads.expire().await.unwrap(), 0, "nothing is due yet");

    // An hour later, as far as the stored expiry says.
    sqlx::query("UPDATE uploads SET expires_at = 0")
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(uploads.expire().await.unwrap(), 1);
    assert!(store
        .list(&format!("uploads/{}/", stale.id))
        .await
        .unwrap()
        .is_empty());
    assert!(moim::storage::uploads::get(&db.pool, &stale.id)
        .await
        .unwrap()
        .is_none());
    // The finished one stays, whole.
    let kept = moim::storage::uploads::get(&db.pool, &done.id)
        .await
        .unwrap()
        .unwrap();
    let body = uploads.read(&kept).await.unwrap();
    let bytes: Vec<u8> = futures_util::StreamExt::collect::<Vec<_>>(body)
        .await
        .into_iter()
        .flat_map(|c| c.unwrap().to_vec())
        .collect();
    assert_eq!(bytes, vec![2u8; 10]);
    assert_eq!(uploads.expire().await.unwrap(), 0);
    db.pool.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
