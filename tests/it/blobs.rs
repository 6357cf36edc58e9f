//! The blob stores' one contract, checked against the local directory and against a real
//! S3-compatible store (Garage on loopback in CI): whole-or-nothing puts of one part and of
//! many, ranged reads, listing past a page, deletes, and prefixes that keep sites apart.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{stream, StreamExt};
use moim::storage::blobs::{self, BlobError, Blobs, ByteStream, LocalBlobs};
use moim::storage::s3::{S3Blobs, S3Config, PART_SIZE};

/// An S3 store under a prefix of its own, from `MOIM_TEST_S3_URL` and the `AWS_*` keys; None
/// (skipped; a failure under `MOIM_REQUIRE_ALL=1`) when unset.
pub fn s3_store(name: &str) -> Option<S3Blobs> {
    let url = crate::helpers::s3_url(name)?;
    let id = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_default();
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_default();
    Some(S3Blobs::new(S3Config::parse(&url, &id, &secret).unwrap()).unwrap())
}

fn local_store(name: &str) -> LocalBlobs {
    LocalBlobs::new(std::env::temp_dir().join(format!(
        "moim-blobs-{name}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )))
}

/// A body of `len` bytes (a pattern, so ranges can be checked) in chunks of `chunk`.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn chunked(data: &[u8], chunk: usize) -> ByteStream {
    let parts: Vec<std::io::Result<Bytes>> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    stream::iter(parts).boxed()
}

/// A body that fails after `good` bytes, as a client that goes away.
fn failing(data: &[u8], good: usize) -> ByteStream {
    let head = Bytes::copy_from_slice(&data[..good]);
    stream::iter(vec![
        Ok(head),
        Err(std::io::Error::other("the client went away")),
    ])
    .boxed()
}

async fn read(store: &dyn Blobs, key: &str, range: Option<std::ops::Range<u64>>) -> Vec<u8> {
    store
        .get(key, range)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

async fn contract(store: Arc<dyn Blobs>) {
    // One part, then a body of several parts (not a multiple of the part size).
    let small = pattern(100_000);
    assert_eq!(
        store
            .put("v/a/small", chunked(&small, 7_000))
            .await
            .unwrap(),
        100_000
    );
    let big = pattern(2 * PART_SIZE + 12_345);
    assert_eq!(
        store.put("v/a/big", chunked(&big, 1 << 20)).await.unwrap(),
        big.len() as u64
    );
    assert_eq!(read(&*store, "v/a/small", None).await, small);
    assert_eq!(read(&*store, "v/a/big", None).await, big);
    // Ranges: the start, across a part boundary, the end.
    let n = big.len() as u64;
    for r in [0..10, PART_SIZE as u64 - 5..PART_SIZE as u64 + 5, n - 3..n] {
        let b = store.get("v/a/big", Some(r.clone())).await.unwrap();
        assert_eq!((b.size, b.range.clone()), (n, r.clone()));
        assert_eq!(
            b.bytes().await.unwrap().to_vec(),
            big[r.start as usize..r.end as usize].to_vec()
        );
    }
    assert!(matches!(
        store.get("v/a/small", Some(100_000..100_010)).await.err(),
        Some(BlobError::BadRange)
    ));
    assert!(matches!(
        store.get("v/a/none", None).await.err(),
        Some(BlobError::NotFound)
    ));
    // Replacing is whole: readers see the new blob.
    store.put("v/a/small", blobs::once("new")).await.unwrap();
    assert_eq!(read(&*store, "v/a/small", None).await, b"new");
    // A body that fails leaves nothing (one part) or the old blob (many parts).
    assert!(store.put("v/a/cut", failing(&small, 50_000)).await.is_err());
    assert!(matches!(
        store.get("v/a/cut", None).await.err(),
        Some(BlobError::NotFound)
    ));
    let huge = pattern(PART_SIZE + 1000);
    let mut body = chunked(&huge[..PART_SIZE + 500], 1 << 20);
    body = body
        .chain(stream::iter(vec![Err(std::io::Error::other("gone"))]))
        .boxed();
    assert!(store.put("v/a/big", body).await.is_err());
    assert_eq!(read(&*store, "v/a/big", None).await, big);
    // Listing past one page of the store's answers, by prefix, sorted.
    let keys: Vec<String> = (0..1003).map(|i| format!("v/many/{i:05}")).collect();
    stream::iter(keys.clone())
        .for_each_concurrent(32, |k| {
            let store = store.clone();
            async move {
                store.put(&k, blobs::once("x")).await.unwrap();
            }
        })
        .await;
    assert_eq!(store.list("v/many/").await.unwrap(), keys);
    assert_eq!(store.list("v/a/").await.unwrap(), ["v/a/big", "v/a/small"]);
    // Deletes, of one and of a prefix; a missing blob is no error.
    store.delete("v/a/small").await.unwrap();
    store.delete("v/a/small").await.unwrap();
    assert_eq!(store.list("v/a/").await.unwrap(), ["v/a/big"]);
    assert_eq!(blobs::delete_all(&*store, "v/").await.unwrap(), 1004);
    assert!(store.list("v/").await.unwrap().is_empty());
    assert!(matches!(
        store.put("../escape", blobs::once("x")).await.err(),
        Some(BlobError::InvalidKey(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_store_keeps_the_contract() {
    contract(Arc::new(local_store("contract"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_store_keeps_the_contract() {
    let Some(store) = s3_store("contract") else {
        return;
    };
    contract(Arc::new(store)).await;
}

/// Two sites sharing a bucket under different prefixes see only their own blobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_keep_sites_apart_in_one_bucket() {
    let (Some(a), Some(b)) = (s3_store("site-a"), s3_store("site-b")) else {
        return;
    };
    a.put("videos/x/original", blobs::once("a")).await.unwrap();
    b.put("videos/x/original", blobs::once("b")).await.unwrap();
    assert_eq!(read(&a, "videos/x/original", None).await, b"a");
    assert_eq!(b.list("videos/").await.unwrap(), ["videos/x/original"]);
    assert_eq!(blobs::delete_all(&a, "videos/").await.unwrap(), 1);
    assert_eq!(read(&b, "videos/x/original", None).await, b"b");
    b.delete("videos/x/original").await.unwrap();
}
