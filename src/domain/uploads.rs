//! Resumable uploads (the tus protocol's model, without its HTTP): a member announces a file's
//! length, sends it in pieces at the offsets the server confirms, may stop and resume (even
//! across restarts), and may abandon it. Each accepted piece is one blob,
//! `uploads/{id}/{offset:016}`; the file is their concatenation in key order, streamed, never
//! copied. Unfinished uploads expire and their bytes are freed.

use std::collections::HashSet;
use std::io;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use parking_lot::Mutex;
use sha1::Digest as _;

use super::events::{Broker, Event};
use super::videos::{new_public_id, PROCESS_JOB};
use super::{text, Error, Result};
use crate::auth;
use crate::storage::blobs::{BlobError, Blobs, ByteStream};
use crate::storage::uploads::{self, Upload};
use crate::storage::users::User;
use crate::storage::{jobs, now_ms, videos, Backend, Db};
use crate::views::VideoView;

/// Unfinished uploads one member may have open at once.
pub const MAX_OPEN_PER_USER: i64 = 20;

/// What limits uploads.
#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    /// Largest file, bytes.
    pub max_bytes: u64,
    /// How long an unfinished upload is kept, milliseconds.
    pub expiry_ms: i64,
}

/// The checksum a client sent with a piece (tus checksum extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    Sha1(Vec<u8>),
    Sha256(Vec<u8>),
}

impl Checksum {
    /// Parses `sha256 <base64>` / `sha1 <base64>`; `None` for other algorithms or bad base64.
    pub fn parse(header: &str) -> Option<Checksum> {
        let (algo, b64) = header.trim().split_once(' ')?;
        let digest = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()?;
        match algo {
            "sha256" if digest.len() == 32 => Some(Checksum::Sha256(digest)),
            "sha1" if digest.len() == 20 => Some(Checksum::Sha1(digest)),
            _ => None,
        }
    }
}

/// Why a piece was not taken (besides the usual domain errors).
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The offset is not where the upload stands (tus: 409).
    Offset { expected: i64 },
    /// Another piece of this upload is arriving right now (423).
    Busy,
    /// The piece did not match its checksum (tus: 460); nothing was kept.
    Checksum,
    /// The piece would run past the announced length (413).
    TooLong,
    /// The upload is already complete.
    Complete,
}

/// The upload service; cheap to clone.
#[derive(Clone)]
pub struct Uploads {
    db: Db,
    plans: super::plans::Plans,
    blobs: Arc<dyn Blobs>,
    limits: UploadLimits,
    broker: Arc<dyn Broker>,
    /// Uploads a piece is arriving for on this node.
    busy: Arc<Mutex<HashSet<String>>>,
}

/// Parses tus `Upload-Metadata`: comma-separated `key base64value` pairs (a key alone has an
/// empty value). `None` when a value is not base64 of UTF-8, or there are over 32 pairs.
pub fn parse_metadata(raw: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if out.len() == 32 {
            return None;
        }
        let (key, value) = match pair.split_once(' ') {
            Some((k, v)) => (k, v.trim()),
            None => (pair, ""),
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value)
            .ok()?;
        out.push((key.to_string(), String::from_utf8(bytes).ok()?));
    }
    Some(out)
}

/// Cleans a file name from `Upload-Metadata`: no folders, no control or invisible characters.
pub fn clean_filename(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    match text::clean_line(last, 200) {
        Ok(name) if name != "." && name != ".." => name,
        _ => "upload".to_string(),
    }
}

fn part_key(id: &str, offset: i64, nonce: u32) -> String {
    format!("uploads/{id}/{offset:016}.{nonce:08x}")
}

impl Uploads {
    pub fn new(
        db: Db,
        plans: super::plans::Plans,
        blobs: Arc<dyn Blobs>,
        limits: UploadLimits,
        broker: Arc<dyn Broker>,
    ) -> Uploads {
        Uploads {
            db,
            plans,
            blobs,
            limits,
            broker,
            busy: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    pub fn limits(&self) -> UploadLimits {
        self.limits
    }

    /// Announces an upload of `length` bytes.
    pub async fn create(
        &self,
        user: &User,
        length: u64,
        filename: Option<&str>,
        title: Option<&str>,
    ) -> Result<Upload> {
        if length > self.limits.max_bytes {
            return Err(Error::TooLarge(format!(
                "files are at most {} bytes",
                self.limits.max_bytes
            )));
        }
        if length == 0 {
            return Err(Error::invalid("empty_upload", "the file is empty"));
        }

        let filename = clean_filename(filename.unwrap_or("upload"));
        let title = title
            .and_then(|t| text::clean_line(t, 200).ok())
            .unwrap_or_else(|| {
                filename
                    .rsplit_once('.')
                    .map_or(filename.as_str(), |(stem, _)| stem)
                    .to_string()
            });
        let now = now_ms();
        // The checks and the insert in one transaction, with the member's announcements
        // serialised, so parallel requests cannot all pass a limit only one of them fits.
        let mut tx = self.db.begin().await?;
        uploads::lock_user(&mut tx, user.id, self.db.backend == Backend::Postgres).await?;
        if uploads::open_count(&mut *tx, user.id).await? >= MAX_OPEN_PER_USER {
            return Err(Error::conflict(
                "too_many_uploads",
                format!("at most {MAX_OPEN_PER_USER} unfinished uploads; finish or cancel one"),
            ));
        }
        self.plans
            .check_upload(&mut tx, user, length as i64)
            .await?;
        let upload = Upload {
            id: auth::random_secret()[..22].to_string(),
            user_id: user.id,
            length: length as i64,
            received: 0,
            filename,
            title,
            created_at: now,
            expires_at: now + self.limits.expiry_ms,
            completed_at: None,
        };
        uploads::create(&mut *tx, &upload).await?;
        uploads::note_start(&mut *tx, user.id, now).await?;
        tx.commit().await?;
        Ok(upload)
    }

    /// The caller's upload; someone else's, an unknown or an expired one is "not found" (an
    /// expired one is removed on the way).
    pub async fn get(&self, user: &User, id: &str) -> Result<Upload> {
        let found = uploads::get(&self.db.pool, id).await?;
        match found {
            Some(u) if u.user_id == user.id => {
                if u.completed_at.is_none() && u.expires_at <= now_ms() {
                    self.remove(&u.id).await?;
                    return Err(Error::not_found("upload"));
                }
                Ok(u)
            }
            Some(_) => Err(Error::not_found("upload")),
            // Once its video holds the file, the upload itself is gone; it still answers as
            // complete (a client resuming a finished upload learns it is done).
            None => match videos::by_upload(&self.db.pool, id).await? {
                Some(v) if v.owner_id == user.id => Ok(Upload {
                    id: id.to_string(),
                    user_id: v.owner_id,
                    length: v.original_bytes,
                    received: v.original_bytes,
                    filename: v.filename,
                    title: v.title,
                    created_at: v.created_at,
                    expires_at: v.created_at,
                    completed_at: Some(v.created_at),
                }),
                _ => Err(Error::not_found("upload")),
            },
        }
    }

    /// Stores the piece `body` at `offset`: returns the new offset, or why it was refused. A
    /// piece cut off early is kept as far as it arrived (so the client resumes from there),
    /// unless it carried a checksum, which a partial piece cannot match.
    pub async fn append(
        &self,
        user: &User,
        id: &str,
        offset: i64,
        body: ByteStream,
        checksum: Option<Checksum>,
    ) -> Result<std::result::Result<i64, Refused>> {
        let upload = self.get(user, id).await?;
        if upload.completed_at.is_some() {
            return Ok(Err(Refused::Complete));
        }
        if offset != upload.received {
            return Ok(Err(Refused::Offset {
                expected: upload.received,
            }));
        }
        if !self.busy.lock().insert(id.to_string()) {
            return Ok(Err(Refused::Busy));
        }
        let _release = Release(self.busy.clone(), id.to_string());
        // Read again now that this node's turn is ours: a piece may have landed in between.
        let upload = self.get(user, id).await?;
        if upload.completed_at.is_some() {
            return Ok(Err(Refused::Complete));
        }
        if offset != upload.received {
            return Ok(Err(Refused::Offset {
                expected: upload.received,
            }));
        }
        let room = (upload.length - offset) as u64;
        let state = Arc::new(Mutex::new(PieceState::new(checksum.as_ref())));
        let body = guarded(body, room, state.clone());
        // Each attempt has a blob of its own: one that loses the race below deletes only that.
        let key = part_key(id, offset, rand::random::<u32>());
        // Not synced piece by piece: see `verify` for what a power loss costs and how it is
        // caught. The whole file is synced before it becomes a video.
        // A piece with a checksum is synced before it is acknowledged: its client asked for
        // certainty about these bytes, which a size check after a power loss cannot give.
        let put = if checksum.is_some() {
            self.blobs.put(&key, body)
        } else {
            self.blobs.put_unsynced(&key, body)
        };
        let stored = match put.await {
            Ok(n) => n,
            Err(BlobError::Io(_)) if state.lock().over => {
                return Ok(Err(Refused::TooLong));
            }
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context("storing an upload piece")
                    .into())
            }
        };
        let (over, cut, matches) = {
            let s = state.lock();
            (s.over, s.cut, s.matches(checksum.as_ref()))
        };
        let drop_piece = over || (checksum.is_some() && (cut || !matches)) || stored == 0;
        if drop_piece {
            let _ = self.blobs.delete(&key).await;
            return Ok(if over {
                Err(Refused::TooLong)
            } else if checksum.is_some() && !cut {
                Err(Refused::Checksum)
            } else {
                Ok(offset)
            });
        }
        let to = offset + stored as i64;
        if to == upload.length {
            let mut keys: Vec<String> = uploads::pieces(&self.db.pool, id)
                .await?
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            keys.push(key.clone());
            if let Err(e) = self.blobs.sync(&keys).await {
                let _ = self.blobs.delete(&key).await;
                return Err(anyhow::Error::new(e)
                    .context("syncing an upload's pieces")
                    .into());
            }
        }
        let now = now_ms();
        let advanced = async {
            let mut tx = self.db.begin().await?;
            let won = uploads::advance(
                &mut tx,
                id,
                offset,
                to,
                &key,
                now,
                now + self.limits.expiry_ms,
            )
            .await?;
            // The last byte: the video and the job that processes it, with the upload's end.
            let mut video = None;
            if won && to == upload.length {
                let public_id = new_public_id();
                videos::create_uploaded(
                    &mut *tx,
                    &public_id,
                    upload.user_id,
                    &upload.title,
                    &upload.filename,
                    &upload.id,
                    upload.length,
                    now,
                )
                .await?;
                jobs::enqueue(&mut *tx, PROCESS_JOB, &public_id, now).await?;
                video = videos::get(&mut *tx, &public_id).await?;
            }
            tx.commit().await?;
            Ok::<_, crate::storage::DbError>((won, video))
        }
        .await?;
        let (advanced, video) = advanced;
        if let Some(v) = video {
            self.broker
                .publish(Event::Video {
                    owner_id: v.owner_id,
                    video: VideoView::from(&v),
                })
                .await;
        }
        if !advanced {
            // Another node took this offset first: this piece is not the upload's.
            let _ = self.blobs.delete(&key).await;
            let now = uploads::get(&self.db.pool, id)
                .await?
                .map_or(0, |u| u.received);
            return Ok(Err(Refused::Offset { expected: now }));
        }
        Ok(Ok(to))
    }

    /// Abandons the caller's upload; its bytes go.
    pub async fn terminate(&self, user: &User, id: &str) -> Result<()> {
        let upload = self.get(user, id).await?;
        self.remove(&upload.id).await
    }

    /// The whole file of a complete upload, streamed piece by piece (the accepted pieces, which
    /// must add up to its length).
    pub async fn read(&self, upload: &Upload) -> Result<ByteStream> {
        let pieces = uploads::pieces(&self.db.pool, &upload.id).await?;
        let total: i64 = pieces.iter().map(|(_, n)| n).sum();
        if upload.completed_at.is_none() || total != upload.length {
            return Err(Error::Internal(anyhow::anyhow!(
                "upload {} holds {total} of {} bytes",
                upload.id,
                upload.length
            )));
        }
        let blobs = self.blobs.clone();
        let body = stream::iter(pieces)
            .then(move |(key, _)| {
                let blobs = blobs.clone();
                async move {
                    blobs
                        .get(&key, None)
                        .await
                        .map(|b| b.body)
                        .map_err(|e| io::Error::other(e.to_string()))
                }
            })
            .map(|r| match r {
                Ok(body) => body,
                Err(e) => stream::once(std::future::ready(Err(e))).boxed(),
            })
            .flatten()
            .boxed();
        Ok(body)
    }

    /// A finished upload by id, for whoever processes it.
    pub async fn finished(&self, id: &str) -> Result<Option<Upload>> {
        Ok(uploads::get(&self.db.pool, id)
            .await?
            .filter(|u| u.completed_at.is_some()))
    }

    /// Deletes a finished upload and its pieces, once its video holds the file.
    pub async fn discard(&self, id: &str) -> Result<()> {
        self.remove(id).await
    }

    /// Checks, at start, that every piece the unfinished uploads recorded is whole in the
    /// store, and cuts each upload back to the pieces that are: its `HEAD` then offers that
    /// offset and the client sends the rest again. Pieces are acknowledged once every reader
    /// sees them, before they are on disk (one `fsync` per piece would cost about a third of
    /// the upload's speed); a crash of moim loses nothing, and after a power loss the
    /// filesystem shows a piece that did not reach the disk shorter or missing (ext4 and XFS
    /// set a file's size on disk only when its data is written). Finished uploads were synced
    /// whole before they became videos. Returns how many uploads were cut back.
    pub async fn verify(&self) -> Result<usize> {
        let mut cut = 0;
        for id in uploads::unfinished(&self.db.pool).await? {
            let pieces = uploads::pieces(&self.db.pool, &id).await?;
            let mut at = 0i64;
            let mut broken = None;
            for (i, (key, length)) in pieces.iter().enumerate() {
                let whole = match self.blobs.get(key, Some(0..0)).await {
                    Ok(b) => b.size == *length as u64,
                    Err(BlobError::NotFound) => false,
                    Err(e) => {
                        // One unreadable piece must not keep the server from starting.
                        tracing::warn!(upload = %id, error = %e, "cannot check an upload's piece");
                        break;
                    }
                };
                if !whole {
                    broken = Some(i);
                    break;
                }
                at += length;
            }
            if let Some(from) = broken {
                let was: i64 = pieces.iter().map(|(_, n)| n).sum();
                let mut tx = self.db.begin().await?;
                let cut_here = uploads::cut_back(&mut tx, &id, was, at).await?;
                tx.commit().await?;
                if !cut_here {
                    continue; // it moved meanwhile (another node): not this check's to cut
                }
                for (key, _) in &pieces[from..] {
                    self.blobs.delete(key).await.map_err(blob_error)?;
                }
                tracing::warn!(upload = %id, offset = at, "an upload lost pieces that never reached the disk; it resumes from the last whole one");
                cut += 1;
            }
        }
        Ok(cut)
    }

    /// Removes unfinished uploads past their expiry, with their bytes; returns how many.
    pub async fn expire(&self) -> Result<usize> {
        let now = now_ms();
        uploads::prune_starts(&self.db.pool, now - 24 * 3600 * 1000).await?;
        let ids = uploads::expired(&self.db.pool, now, 100).await?;
        let mut removed = 0;
        for id in &ids {
            // One that cannot be removed now must not hold up the others.
            match self.remove(id).await {
                Ok(()) => removed += 1,
                Err(e) => {
                    tracing::warn!(upload = %id, error = %e, "removing an expired upload failed")
                }
            }
        }
        Ok(removed)
    }

    async fn remove(&self, id: &str) -> Result<()> {
        crate::storage::blobs::delete_all(&*self.blobs, &format!("uploads/{id}/"))
            .await
            .map_err(blob_error)?;
        uploads::delete(&self.db.pool, id).await?;
        Ok(())
    }
}

fn blob_error(e: BlobError) -> Error {
    Error::Internal(anyhow::Error::new(e).context("upload blobs"))
}

/// Takes an upload off the busy list when the piece is done, however it ends.
struct Release(Arc<Mutex<HashSet<String>>>, String);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.lock().remove(&self.1);
    }
}

/// What happened to a piece's body on its way to the blob.
struct PieceState {
    sha1: Option<sha1::Sha1>,
    sha256: Option<sha2::Sha256>,
    received: u64,
    /// The body ended in an error (the client went away): what arrived is kept.
    cut: bool,
    /// The body ran past the upload's length.
    over: bool,
}

impl PieceState {
    fn new(checksum: Option<&Checksum>) -> PieceState {
        PieceState {
            sha1: matches!(checksum, Some(Checksum::Sha1(_))).then(sha1::Sha1::new),
            sha256: matches!(checksum, Some(Checksum::Sha256(_))).then(sha2::Sha256::new),
            received: 0,
            cut: false,
            over: false,
        }
    }

    fn matches(&self, checksum: Option<&Checksum>) -> bool {
        match checksum {
            None => true,
            Some(Checksum::Sha1(want)) => self
                .sha1
                .clone()
                .is_some_and(|h| h.finalize().as_slice() == want.as_slice()),
            Some(Checksum::Sha256(want)) => self
                .sha256
                .clone()
                .is_some_and(|h| h.finalize().as_slice() == want.as_slice()),
        }
    }
}

/// The piece's body, hashed on the way, ended quietly when the client goes away (so the bytes
/// that did arrive are stored), and failed when it runs past `room`.
fn guarded(body: ByteStream, room: u64, state: Arc<Mutex<PieceState>>) -> ByteStream {
    stream::unfold(
        (body, state, false),
        move |(mut body, state, done)| async move {
            if done {
                return None;
            }
            match body.next().await {
                Some(Ok(chunk)) => {
                    let mut s = state.lock();
                    s.received += chunk.len() as u64;
                    if s.received > room {
                        s.over = true;
                        drop(s);
                        let err = io::Error::other("the piece runs past the upload's length");
                        return Some((Err(err), (body, state, true)));
                    }
                    if let Some(h) = s.sha1.as_mut() {
                        h.update(&chunk);
                    }
                    if let Some(h) = s.sha256.as_mut() {
                        h.update(&chunk);
                    }
                    drop(s);
                    Some((Ok::<Bytes, io::Error>(chunk), (body, state, false)))
                }
                Some(Err(_)) => {
                    state.lock().cut = true;
                    None
                }
                None => None,
            }
        },
    )
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_parse_only_known_algorithms_of_the_right_length() {
        let sha256 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert_eq!(
            Checksum::parse(&format!("sha256 {sha256}")),
            Some(Checksum::Sha256(vec![7; 32]))
        );
        let sha1 = base64::engine::general_purpose::STANDARD.encode([1u8; 20]);
        assert!(matches!(
            Checksum::parse(&format!("sha1 {sha1}")),
            Some(Checksum::Sha1(_))
        ));
        assert_eq!(Checksum::parse(&format!("md5 {sha1}")), None);
        assert_eq!(Checksum::parse(&format!("sha256 {sha1}")), None);
        assert_eq!(Checksum::parse("sha256 !!!"), None);
        assert_eq!(Checksum::parse("sha256"), None);
    }

    #[test]
    fn metadata_pairs_parse_or_are_refused() {
        let meta = parse_metadata("filename Y2xpcC5tcDQ=, title 7Jes7ZaJ,empty").unwrap();
        assert_eq!(
            meta,
            [
                ("filename".into(), "clip.mp4".into()),
                ("title".into(), "여행".into()),
                ("empty".into(), String::new())
            ]
        );
        assert_eq!(parse_metadata("filename %%%"), None);
        assert_eq!(parse_metadata("bin /w=="), None, "not UTF-8");
        assert!(parse_metadata(&"k,".repeat(40)).is_none());
        assert_eq!(parse_metadata(""), Some(vec![]));
    }

    /// Every fuzz seed of the tus headers parses or is refused, never panics.
    #[test]
    fn fuzz_corpus_is_answered() {
        let dir = source_dir!().join("fuzz/corpus/tus_headers");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("corpus folder exists") {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            if let Some(meta) = parse_metadata(&text) {
                for (_, v) in meta {
                    assert!(!clean_filename(&v).contains(['/', '\\']));
                }
            }
            let _ = Checksum::parse(&text);
            seen += 1;
        }
        assert!(seen >= 8, "corpus has {seen} seeds");
    }

    #[test]
    fn file_names_lose_folders_and_invisible_characters() {
        assert_eq!(clean_filename("../../etc/passwd"), "passwd");
        assert_eq!(clean_filename("C:\\\\Users\\\\me\\\\clip.mp4"), "clip.mp4");
        assert_eq!(clean_filename("clip\u{0}\u{202E}4pm.exe"), "clip4pm.exe");
        assert_eq!(clean_filename(".."), "upload");
        assert_eq!(clean_filename("\u{200B}"), "upload");
        assert_eq!(clean_filename("가족 여행.mov"), "가족 여행.mov");
    }
}
