//! Blobs: named byte objects (recordings' segments and playlists today; uploads, originals and
//! photos later) behind one small trait, so the same code runs on a local directory (the
//! embedded default) and on an S3-compatible store (scale-out).
//!
//! Keys are `/`-separated relative names of `[A-Za-z0-9._-]` segments, e.g.
//! `videos/{public_id}/s12.m4s`. They name objects, not paths: nothing may assume a blob is a
//! file on this machine.

use std::io;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// A stream of body chunks.
pub type ByteStream = BoxStream<'static, io::Result<Bytes>>;

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("no such blob")]
    NotFound,
    #[error("invalid blob key `{0}`")]
    InvalidKey(String),
    #[error("the range is outside the blob")]
    BadRange,
    #[error("blob store: {0}")]
    Io(#[from] io::Error),
}

/// A blob being read: its full size, the byte range the body covers, and the body.
pub struct Blob {
    pub size: u64,
    pub range: Range<u64>,
    pub body: ByteStream,
}

impl Blob {
    /// Reads the whole body into memory (for small blobs: playlists, init segments).
    pub async fn bytes(mut self) -> io::Result<Bytes> {
        let mut out = Vec::with_capacity((self.range.end - self.range.start) as usize);
        while let Some(chunk) = self.body.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(Bytes::from(out))
    }
}

/// Where blobs live.
pub trait Blobs: Send + Sync {
    /// Stores `body` under `key`, replacing what was there; readers see the old blob or the
    /// whole new one, never part of it. Returns the size stored.
    fn put(&self, key: &str, body: ByteStream) -> BoxFuture<'_, Result<u64, BlobError>>;
    /// Like [`put`](Blobs::put), but the store need not have the bytes on disk when it
    /// returns, only where every reader sees them (a local store: in the page cache, which a
    /// crash of this process does not lose; a power loss may). [`sync`](Blobs::sync) makes
    /// them durable. Stores that are durable anyway just put.
    fn put_unsynced(&self, key: &str, body: ByteStream) -> BoxFuture<'_, Result<u64, BlobError>> {
        self.put(key, body)
    }
    /// Makes blobs stored with [`put_unsynced`](Blobs::put_unsynced) durable.
    fn sync<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<(), BlobError>> {
        let _ = keys;
        Box::pin(std::future::ready(Ok(())))
    }
    /// Reads `range` of the blob (all of it when `None`).
    fn get(&self, key: &str, range: Option<Range<u64>>) -> BoxFuture<'_, Result<Blob, BlobError>>;
    /// Deletes the blob; deleting a missing blob is not an error.
    fn delete(&self, key: &str) -> BoxFuture<'_, Result<(), BlobError>>;
    /// Keys starting with `prefix`, sorted.
    fn list(&self, prefix: &str) -> BoxFuture<'_, Result<Vec<String>, BlobError>>;
    /// Deletes every blob under `prefix` (which ends with `/`), and whatever a store keeps
    /// there besides (a local store's half-written files); returns how many blobs there were.
    fn delete_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<usize, BlobError>> {
        Box::pin(async move {
            let keys = self.list(prefix).await?;
            for key in &keys {
                self.delete(key).await?;
            }
            Ok(keys.len())
        })
    }
    /// The blob as a file on this machine, when the store keeps it as one (for programs such as
    /// ffmpeg that read files, which must not write to it); `None` means copy it out first.
    fn local_path(&self, key: &str) -> Option<PathBuf> {
        let _ = key;
        None
    }
}

/// Deletes every blob under `prefix`; returns how many there were.
pub async fn delete_all(blobs: &dyn Blobs, prefix: &str) -> Result<usize, BlobError> {
    if prefix.ends_with('/') {
        return blobs.delete_prefix(prefix).await;
    }
    let keys = blobs.list(prefix).await?;
    for key in &keys {
        blobs.delete(key).await?;
    }
    Ok(keys.len())
}

/// A body of one chunk.
pub fn once(data: impl Into<Bytes>) -> ByteStream {
    stream::once(std::future::ready(Ok(data.into()))).boxed()
}

/// Checks a key's shape (see the module docs).
pub fn check_key(key: &str) -> Result<(), BlobError> {
    let ok = !key.is_empty()
        && key.len() <= 512
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    if ok {
        Ok(())
    } else {
        Err(BlobError::InvalidKey(key.chars().take(80).collect()))
    }
}

/// Blobs as files under a directory (`{data_dir}/blobs`): key `a/b` is the file `{root}/a/b`.
#[derive(Debug, Clone)]
pub struct LocalBlobs {
    root: Arc<PathBuf>,
}

/// Chunks of a body waiting for the thread that writes them.
const WRITE_QUEUE: usize = 32;

/// Bytes written before the disk is asked to start writing them (see [`start_writeback`]).
const WRITEBACK_STEP: u64 = 1 << 20;

/// Asks the kernel to start writing `len` bytes at `from` to the disk now, without waiting:
/// the disk works while the rest of the body arrives, and the closing `fsync` finds little
/// left to do. On a virtual disk here it took a 256 MiB file in 8 MiB pieces, each synced,
/// from about 0.9 to 1.4 GB/s. Advice only: if it fails, the `fsync` does the work.
#[cfg(target_os = "linux")]
fn start_writeback(f: &std::fs::File, from: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for the duration of the call; the call only reads it.
    unsafe {
        libc::sync_file_range(
            f.as_raw_fd(),
            from as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_f: &std::fs::File, _from: u64, _len: u64) {}

/// Writes `body` to a new file at `path` and, if `durable`, syncs it; returns its length. The chunks go to
/// one blocking thread as they are (no copy into a buffer on the way: a body's bytes are
/// copied once, into the page cache), so the runtime's threads only move pointers.
async fn write_file(path: PathBuf, mut body: ByteStream, durable: bool) -> io::Result<u64> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(WRITE_QUEUE);
    // Set once the whole body was handed over. If the caller gives up first (its future is
    // dropped: a cancelled request, a stopped worker), the writer sees the channel close
    // without it and removes the partial file instead of keeping it.
    let complete = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let whole = complete.clone();
    let writer = tokio::task::spawn_blocking(move || -> io::Result<u64> {
        use std::io::Write;
        let written = (|| {
            let mut f = create_in_dir(&path)?;
            let mut n = 0u64;
            let mut flushed = 0u64;
            while let Some(chunk) = rx.blocking_recv() {
                f.write_all(&chunk)?;
                n += chunk.len() as u64;
                if n - flushed >= WRITEBACK_STEP {
                    start_writeback(&f, flushed, n - flushed);
                    flushed = n;
                }
            }
            if !whole.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(io::Error::other("the body was abandoned"));
            }
            // On disk before it is renamed into place: a database row may point at it.
            if durable {
                f.sync_all()?;
            }
            Ok(n)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&path);
        }
        written
    });
    let fed = async {
        while let Some(chunk) = body.next().await {
            if tx.send(chunk?).await.is_err() {
                return Ok(()); // the writer failed; its error is the one to report
            }
        }
        complete.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok::<_, io::Error>(())
    }
    .await;
    drop(tx);
    let wrote = writer
        .await
        .map_err(|e| io::Error::other(format!("blob writer: {e}")))?;
    fed?;
    wrote
}

/// Creates the file at `path`, and the directories above it. A `delete` removing the last blob
/// of a directory may take a directory away between the steps; then they run again.
fn create_in_dir(path: &std::path::Path) -> io::Result<std::fs::File> {
    let mut tries = 0;
    loop {
        let made = match path.parent() {
            Some(dir) => std::fs::create_dir_all(dir),
            None => Ok(()),
        }
        .and_then(|()| std::fs::File::create(path));
        match made {
            Err(e) if e.kind() == io::ErrorKind::NotFound && tries < 8 => tries += 1,
            other => return other,
        }
    }
}

/// Size of the chunks a local blob is read in.
const READ_CHUNK: usize = 64 * 1024;

impl LocalBlobs {
    /// Blobs under `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> LocalBlobs {
        LocalBlobs {
            root: Arc::new(root.into()),
        }
    }

    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        check_key(key)?;
        Ok(self.root.join(key))
    }
}

fn not_found(e: io::Error) -> BlobError {
    if e.kind() == io::ErrorKind::NotFound {
        BlobError::NotFound
    } else {
        BlobError::Io(e)
    }
}

impl LocalBlobs {
    fn put_file(
        &self,
        key: &str,
        body: ByteStream,
        durable: bool,
    ) -> BoxFuture<'_, Result<u64, BlobError>> {
        let path = self.path(key);
        Box::pin(async move {
            let path = path?;
            // Written beside it, then renamed over it: readers never see half a blob. The `~`
            // keeps the temporary name out of the key space (and out of `list`).
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let tmp = path.with_file_name(format!("{name}~{:08x}", rand::random::<u32>()));
            let written = write_file(tmp.clone(), body, durable).await;
            match written {
                Ok(n) => {
                    tokio::fs::rename(&tmp, &path).await?;
                    Ok(n)
                }
                Err(e) => {
                    let _ = tokio::fs::remove_file(&tmp).await;
                    Err(e.into())
                }
            }
        })
    }
}

impl Blobs for LocalBlobs {
    fn put(&self, key: &str, body: ByteStream) -> BoxFuture<'_, Result<u64, BlobError>> {
        self.put_file(key, body, true)
    }

    fn put_unsynced(&self, key: &str, body: ByteStream) -> BoxFuture<'_, Result<u64, BlobError>> {
        self.put_file(key, body, false)
    }

    fn sync<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            let paths = keys
                .iter()
                .map(|k| self.path(k))
                .collect::<Result<Vec<_>, _>>()?;
            let root = self.root.clone();
            tokio::task::spawn_blocking(move || -> io::Result<()> {
                // Their data first, then the directories that name them (the renames).
                // (and those above, up to the store's own).
                let mut dirs: Vec<&std::path::Path> = Vec::new();
                for p in &paths {
                    std::fs::File::open(p)?.sync_all()?;
                    let mut up = p.parent();
                    while let Some(d) = up.filter(|d| d.starts_with(root.as_path())) {
                        if !dirs.contains(&d) {
                            dirs.push(d);
                        }
                        up = d.parent();
                    }
                }
                for d in dirs {
                    std::fs::File::open(d)?.sync_all()?;
                }
                Ok(())
            })
            .await
            .map_err(|e| io::Error::other(format!("blob sync: {e}")))??;
            Ok(())
        })
    }

    fn get(&self, key: &str, range: Option<Range<u64>>) -> BoxFuture<'_, Result<Blob, BlobError>> {
        let path = self.path(key);
        Box::pin(async move {
            let mut f = tokio::fs::File::open(path?).await.map_err(not_found)?;
            let size = f.metadata().await?.len();
            let range = range.unwrap_or(0..size);
            if range.start > range.end || range.end > size {
                return Err(BlobError::BadRange);
            }
            f.seek(io::SeekFrom::Start(range.start)).await?;
            let left = range.end - range.start;
            let body = stream::try_unfold((f, left), |(mut f, left)| async move {
                if left == 0 {
                    return Ok(None);
                }
                let mut buf = vec![0u8; left.min(READ_CHUNK as u64) as usize];
                let n = f.read(&mut buf).await?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "blob shrank while being read",
                    ));
                }
                buf.truncate(n);
                Ok(Some((Bytes::from(buf), (f, left - n as u64))))
            })
            .boxed();
            Ok(Blob { size, range, body })
        })
    }

    fn delete(&self, key: &str) -> BoxFuture<'_, Result<(), BlobError>> {
        let path = self.path(key);
        Box::pin(async move {
            let path = path?;
            match tokio::fs::remove_file(&path).await {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
            // Directories the key's prefixes made go with their last blob (removing a
            // directory that is not empty fails, which ends the walk).
            let mut dir = path.parent();
            while let Some(d) = dir.filter(|d| *d != self.root.as_path()) {
                if tokio::fs::remove_dir(d).await.is_err() {
                    break;
                }
                dir = d.parent();
            }
            Ok(())
        })
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.path(key).ok()
    }

    fn delete_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<usize, BlobError>> {
        Box::pin(async move {
            let keys = self.list(prefix).await?;
            let dir = self.path(prefix.trim_end_matches('/'))?;
            // The whole directory: temporary files a crashed writer left (`name~…`, which
            // `list` does not show) go with the blobs.
            match tokio::fs::remove_dir_all(&dir).await {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
            let mut up = dir.parent();
            while let Some(d) = up.filter(|d| *d != self.root.as_path()) {
                if tokio::fs::remove_dir(d).await.is_err() {
                    break;
                }
                up = d.parent();
            }
            Ok(keys.len())
        })
    }

    fn list(&self, prefix: &str) -> BoxFuture<'_, Result<Vec<String>, BlobError>> {
        let prefix = prefix.to_string();
        Box::pin(async move {
            // Walk only the directory the prefix names (up to its last `/`).
            let dir_part = prefix.rsplit_once('/').map_or("", |(d, _)| d);
            if !dir_part.is_empty() {
                check_key(dir_part)?;
            }
            let mut out = Vec::new();
            let mut todo = vec![(self.root.join(dir_part), dir_part.to_string())];
            while let Some((dir, key)) = todo.pop() {
                let mut entries = match tokio::fs::read_dir(&dir).await {
                    Ok(e) => e,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e.into()),
                };
                while let Some(entry) = entries.next_entry().await? {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let full = if key.is_empty() {
                        name.clone()
                    } else {
                        format!("{key}/{name}")
                    };
                    if entry.file_type().await?.is_dir() {
                        if full.starts_with(&prefix) || prefix.starts_with(&format!("{full}/")) {
                            todo.push((entry.path(), full));
                        }
                    } else if full.starts_with(&prefix) && check_key(&full).is_ok() {
                        out.push(full);
                    }
                }
            }
            out.sort();
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (LocalBlobs, PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "moim-blobs-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        (LocalBlobs::new(&dir), dir)
    }

    #[tokio::test]
    async fn put_get_ranges_list_delete() {
        let (blobs, dir) = store();
        let chunks: ByteStream = stream::iter([
            Ok(Bytes::from_static(b"hello ")),
            Ok(Bytes::from_static(b"world")),
        ])
        .boxed();
        assert_eq!(blobs.put("videos/a1/s1.m4s", chunks).await.unwrap(), 11);
        blobs.put("videos/a1/s2.m4s", once("x")).await.unwrap();
        blobs.put("videos/b2/s1.m4s", once("y")).await.unwrap();
        let all = blobs.get("videos/a1/s1.m4s", None).await.unwrap();
        assert_eq!((all.size, all.range.clone()), (11, 0..11));
        assert_eq!(all.bytes().await.unwrap(), "hello world");
        let part = blobs.get("videos/a1/s1.m4s", Some(6..11)).await.unwrap();
        assert_eq!(part.bytes().await.unwrap(), "world");
        let empty = blobs.get("videos/a1/s1.m4s", Some(11..11)).await.unwrap();
        assert_eq!(empty.bytes().await.unwrap(), "");
        assert!(matches!(
            blobs.get("videos/a1/s1.m4s", Some(5..12)).await,
            Err(BlobError::BadRange)
        ));
        assert_eq!(
            blobs.list("videos/a1/").await.unwrap(),
            ["videos/a1/s1.m4s", "videos/a1/s2.m4s"]
        );
        assert_eq!(blobs.list("videos/").await.unwrap().len(), 3);
        assert_eq!(blobs.list("videos/a").await.unwrap().len(), 2);
        assert!(blobs.list("nothing/").await.unwrap().is_empty());
        // Replacing is whole; deleting twice is fine; a missing blob is NotFound.
        blobs.put("videos/a1/s2.m4s", once("new")).await.unwrap();
        let again = blobs.get("videos/a1/s2.m4s", None).await.unwrap();
        assert_eq!(again.bytes().await.unwrap(), "new");
        blobs.delete("videos/a1/s2.m4s").await.unwrap();
        blobs.delete("videos/a1/s2.m4s").await.unwrap();
        assert!(matches!(
            blobs.get("videos/a1/s2.m4s", None).await,
            Err(BlobError::NotFound)
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn directories_go_with_their_last_blob() {
        let (blobs, dir) = store();
        blobs.put("videos/a1/720p/s1.m4s", once("x")).await.unwrap();
        blobs.put("videos/a1/index.m3u8", once("y")).await.unwrap();
        blobs.put("videos/b2/index.m3u8", once("z")).await.unwrap();
        blobs.delete("videos/a1/720p/s1.m4s").await.unwrap();
        assert!(!dir.join("videos/a1/720p").exists());
        assert!(dir.join("videos/a1").is_dir(), "it still holds a blob");
        blobs.delete("videos/a1/index.m3u8").await.unwrap();
        assert!(!dir.join("videos/a1").exists());
        assert!(dir.join("videos/b2").is_dir());
        blobs.delete("videos/b2/index.m3u8").await.unwrap();
        assert!(!dir.join("videos").exists());
        assert!(dir.is_dir(), "the store's own directory stays");
        // Deleting a prefix takes what a crashed writer left there too.
        blobs.put("videos/c3/s1.m4s", once("v")).await.unwrap();
        std::fs::write(dir.join("videos/c3/s2.m4s~0badf00d"), "half").unwrap();
        assert_eq!(delete_all(&blobs, "videos/c3/").await.unwrap(), 1);
        assert!(!dir.join("videos/c3").exists());
        // A put after its directory went makes it again.
        blobs.put("videos/b2/index.m3u8", once("w")).await.unwrap();
        let back = blobs.get("videos/b2/index.m3u8", None).await.unwrap();
        assert_eq!(back.bytes().await.unwrap(), "w");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn keys_cannot_leave_the_store() {
        let (blobs, _dir) = store();
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "a/./b",
            "a/b/",
            "a\\b",
            "a b",
            "ü",
        ] {
            assert!(
                matches!(
                    blobs.put(bad, once("x")).await,
                    Err(BlobError::InvalidKey(_))
                ),
                "{bad:?}"
            );
            assert!(
                matches!(blobs.get(bad, None).await, Err(BlobError::InvalidKey(_))),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_failed_upload_leaves_the_old_blob() {
        let (blobs, dir) = store();
        blobs.put("k/v", once("old")).await.unwrap();
        let failing: ByteStream = stream::iter([
            Ok(Bytes::from_static(b"new")),
            Err(io::Error::other("client went away")),
        ])
        .boxed();
        assert!(blobs.put("k/v", failing).await.is_err());
        let kept = blobs.get("k/v", None).await.unwrap();
        assert_eq!(kept.bytes().await.unwrap(), "old");
        assert_eq!(blobs.list("k/").await.unwrap(), ["k/v"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn an_abandoned_put_leaves_no_partial_file() {
        let (blobs, dir) = store();
        // One chunk, then a body that never ends: the caller gives up on it.
        let stalled: ByteStream = stream::iter([Ok(Bytes::from_static(b"partial"))])
            .chain(stream::pending())
            .boxed();
        let put = blobs.put("k/v", stalled);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(100), put)
                .await
                .is_err()
        );
        // The writer thread notices and removes its temporary file.
        let folder = dir.join("k");
        let mut left = usize::MAX;
        for _ in 0..200 {
            left = std::fs::read_dir(&folder).map_or(0, |d| d.count());
            if left == 0 {
                break;
            }
            tokio::task::yield_now().await;
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(left, 0, "a partial file was left behind");
        assert!(matches!(
            blobs.get("k/v", None).await,
            Err(BlobError::NotFound)
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
