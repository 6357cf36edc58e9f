//! Blobs in an S3-compatible object store (AWS S3, Garage, MinIO, Ceph RGW, R2…), for nodes
//! that share their videos, uploads and photos. Requests are signed with AWS Signature
//! Version 4 by hand over the same `reqwest` client moim uses elsewhere; bodies are streamed
//! (the payload is sent `UNSIGNED-PAYLOAD`, as S3 allows), and a body larger than one part is
//! stored as a multipart upload, so memory per upload is one part whatever the blob's size.
//!
//! Addressing is path-style (`{endpoint}/{bucket}/{prefix}{key}`), which every S3-compatible
//! store accepts. Keys live under the configured prefix, so several sites (or test runs) may
//! share a bucket.

use std::ops::Range;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::blobs::{check_key, Blob, BlobError, Blobs, ByteStream};

/// Bytes buffered per part: a body shorter than this is one `PUT`; a longer one a multipart
/// upload of parts this size (S3's least is 5 MiB, save the last).
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Keys asked for per list request (S3's most).
const LIST_PAGE: usize = 1000;
/// The longest a request may wait for the store's first byte.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the store is and who moim is to it.
#[derive(Clone)]
pub struct S3Config {
    /// `http://host:port` or `https://host`, no path.
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    /// Prepended to every key: empty, or ending with `/`.
    pub prefix: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .finish()
    }
}

impl S3Config {
    /// Reads `s3://bucket[/prefix]?endpoint=URL[&region=R]`; the keys come separately.
    pub fn parse(
        url: &str,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> Result<S3Config, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or("a blob store URL starts with s3:// (or is `local`)")?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !bucket_ok {
            return Err(format!(
                "`{bucket}` is not a bucket name (3-63 of a-z, 0-9, '-' and '.')"
            ));
        }
        let prefix = prefix.trim_matches('/');
        if !prefix.is_empty() {
            check_key(prefix).map_err(|_| format!("`{prefix}` is not a key prefix"))?;
        }
        let mut endpoint = None;
        let mut region = "us-east-1".to_string();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "endpoint" => endpoint = Some(v.trim_end_matches('/').to_string()),
                "region" => region = v.to_string(),
                other => return Err(format!("unknown blob store setting `{other}`")),
            }
        }
        let endpoint = endpoint.ok_or("the blob store URL needs ?endpoint=http(s)://host:port")?;
        let authority = endpoint
            .strip_prefix("http://")
            .or_else(|| endpoint.strip_prefix("https://"))
            .ok_or("the endpoint starts with http:// or https://")?;
        if authority.is_empty() || authority.contains(['/', '@', '?', '#']) {
            return Err(format!(
                "`{endpoint}` is not an endpoint (scheme://host[:port])"
            ));
        }
        if access_key_id.is_empty() || secret_access_key.is_empty() {
            return Err("the blob store needs an access key id and a secret access key".into());
        }
        Ok(S3Config {
            endpoint,
            region,
            bucket: bucket.to_string(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            access_key_id: access_key_id.to_string(),
            secret_access_key: secret_access_key.to_string(),
        })
    }
}

/// Blobs in one bucket (under one prefix) of an S3-compatible store.
pub struct S3Blobs {
    cfg: S3Config,
    host: String,
    http: reqwest::Client,
}

impl S3Blobs {
    pub fn new(cfg: S3Config) -> Result<S3Blobs, BlobError> {
        let host = cfg
            .endpoint
            .split_once("://")
            .map(|(_, h)| h.to_string())
            .unwrap_or_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| BlobError::Io(std::io::Error::other(e)))?;
        Ok(S3Blobs { cfg, host, http })
    }

    /// The object's path: `/{bucket}/{prefix}{key}`, each segment percent-encoded.
    fn path(&self, key: &str) -> String {
        let mut p = format!("/{}/", self.cfg.bucket);
        p.push_str(&encode(&format!("{}{key}", self.cfg.prefix), false));
        p
    }

    /// A signed request. `query` pairs are given unencoded.
    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        let now = time::OffsetDateTime::now_utc();
        let signed = sign(
            &self.cfg,
            &self.host,
            method.as_str(),
            path,
            query,
            headers,
            now,
        );
        let mut url = format!("{}{path}", self.cfg.endpoint);
        if !signed.query.is_empty() {
            url.push('?');
            url.push_str(&signed.query);
        }
        let mut req = self.http.request(method, url);
        for (k, v) in signed.headers {
            req = req.header(k, v);
        }
        req
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, BlobError> {
        req.send().await.map_err(io_err)
    }

    async fn put_whole(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        let len = body.len().to_string();
        let req = self
            .request(
                reqwest::Method::PUT,
                &self.path(key),
                &[],
                &[("content-length", &len)],
            )
            .body(body);
        let resp = self.send(req).await?;
        expect_ok(resp, "storing a blob").await.map(|_| ())
    }

    async fn put_multipart(
        &self,
        key: &str,
        first: Bytes,
        mut body: ByteStream,
    ) -> Result<u64, BlobError> {
        let path = self.path(key);
        let resp = self
            .send(self.request(reqwest::Method::POST, &path, &[("uploads", "")], &[]))
            .await?;
        let text = expect_ok(resp, "starting a multipart upload").await?;
        let upload_id = xml_values(&text, "UploadId")
            .into_iter()
            .next()
            .ok_or_else(|| store_err("the store gave no UploadId"))?;
        let uploaded = async {
            let mut etags = Vec::new();
            let mut total = 0u64;
            let mut part = Some(first);
            let mut buf = BytesMut::new();
            let mut ended = false;
            while let Some(p) = part.take() {
                total += p.len() as u64;
                let n = (etags.len() + 1).to_string();
                let len = p.len().to_string();
                let req = self
                    .request(
                        reqwest::Method::PUT,
                        &path,
                        &[("partNumber", &n), ("uploadId", &upload_id)],
                        &[("content-length", &len)],
                    )
                    .body(p);
                let resp = self.send(req).await?;
                if !resp.status().is_success() {
                    return Err(status_err(resp, "storing a part").await);
                }
                let etag = resp
                    .headers()
                    .get("etag")
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| store_err("the store gave no ETag for a part"))?
                    .to_string();
                etags.push(etag);
                // The next part: filled from the body, up to a part's size.
                while !ended && buf.len() < PART_SIZE {
                    match body.next().await {
                        Some(chunk) => buf.extend_from_slice(&chunk?),
                        None => ended = true,
                    }
                }
                if !buf.is_empty() {
                    let take = buf.len().min(PART_SIZE);
                    part = Some(buf.split_to(take).freeze());
                }
            }
            let mut xml = String::from("<CompleteMultipartUpload>");
            for (i, etag) in etags.iter().enumerate() {
                xml.push_str(&format!(
                    "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
                    i + 1,
                    xml_escape(etag)
                ));
            }
            xml.push_str("</CompleteMultipartUpload>");
            let len = xml.len().to_string();
            let req = self
                .request(
                    reqwest::Method::POST,
                    &path,
                    &[("uploadId", &upload_id)],
                    &[("content-length", &len)],
                )
                .body(xml);
            let resp = self.send(req).await?;
            let text = expect_ok(resp, "completing a multipart upload").await?;
            // S3 may answer 200 with an error inside.
            if text.contains("<Error>") {
                return Err(store_err(&format!(
                    "completing a multipart upload: {}",
                    xml_values(&text, "Code").join(", ")
                )));
            }
            Ok(total)
        }
        .await;
        if uploaded.is_err() {
            // Whole or nothing: the parts stored so far go.
            let abort = self.request(
                reqwest::Method::DELETE,
                &path,
                &[("uploadId", &upload_id)],
                &[],
            );
            if let Err(e) = self.send(abort).await {
                tracing::warn!(error = %e, "aborting a multipart upload failed (the store's lifecycle rules remove it)");
            }
        }
        uploaded
    }
}

impl Blobs for S3Blobs {
    fn put(&self, key: &str, mut body: ByteStream) -> BoxFuture<'_, Result<u64, BlobError>> {
        let key = key.to_string();
        Box::pin(async move {
            check_key(&key)?;
            let mut buf = BytesMut::new();
            while buf.len() < PART_SIZE {
                match body.next().await {
                    Some(chunk) => buf.extend_from_slice(&chunk?),
                    None => {
                        let n = buf.len() as u64;
                        self.put_whole(&key, buf.freeze()).await?;
                        return Ok(n);
                    }
                }
            }
            let first = buf.split_to(PART_SIZE).freeze();
            let rest = futures_util::stream::iter((!buf.is_empty()).then(|| Ok(buf.freeze())))
                .chain(body)
                .boxed();
            self.put_multipart(&key, first, rest).await
        })
    }

    fn get(&self, key: &str, range: Option<Range<u64>>) -> BoxFuture<'_, Result<Blob, BlobError>> {
        let key = key.to_string();
        Box::pin(async move {
            check_key(&key)?;
            if let Some(r) = &range {
                if r.start >= r.end {
                    // An empty range of a blob: its size tells whether it lies inside.
                    let size = self.size(&key).await?;
                    if r.start > size {
                        return Err(BlobError::BadRange);
                    }
                    return Ok(Blob {
                        size,
                        range: r.clone(),
                        body: futures_util::stream::empty().boxed(),
                    });
                }
            }
            let header = range
                .as_ref()
                .map(|r| format!("bytes={}-{}", r.start, r.end - 1));
            let mut headers = Vec::new();
            if let Some(h) = &header {
                headers.push(("range", h.as_str()));
            }
            let resp = self
                .send(self.request(reqwest::Method::GET, &self.path(&key), &[], &headers))
                .await?;
            let status = resp.status();
            if status == reqwest::StatusCode::NOT_FOUND {
                return Err(BlobError::NotFound);
            }
            if status == reqwest::StatusCode::RANGE_NOT_SATISFIABLE {
                return Err(BlobError::BadRange);
            }
            if !status.is_success() {
                return Err(status_err(resp, "reading a blob").await);
            }
            let len = resp.content_length().unwrap_or(0);
            let (size, got) = if status == reqwest::StatusCode::PARTIAL_CONTENT {
                let cr = resp
                    .headers()
                    .get("content-range")
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_content_range)
                    .ok_or_else(|| store_err("a ranged read without Content-Range"))?;
                (cr.1, cr.0)
            } else {
                (len, 0..len)
            };
            // A store that ignores the range sends all of it: cut out what was asked.
            let want = range.clone().unwrap_or(0..size);
            if want.end > size {
                return Err(BlobError::BadRange);
            }
            let body = resp
                .bytes_stream()
                .map(|c| c.map_err(std::io::Error::other));
            let body = trim(body.boxed(), got.start, want.clone());
            Ok(Blob {
                size,
                range: want,
                body,
            })
        })
    }

    fn delete(&self, key: &str) -> BoxFuture<'_, Result<(), BlobError>> {
        let key = key.to_string();
        Box::pin(async move {
            check_key(&key)?;
            let resp = self
                .send(self.request(reqwest::Method::DELETE, &self.path(&key), &[], &[]))
                .await?;
            if resp.status().is_success() || resp.status() == reqwest::StatusCode::NOT_FOUND {
                Ok(())
            } else {
                Err(status_err(resp, "deleting a blob").await)
            }
        })
    }

    fn list(&self, prefix: &str) -> BoxFuture<'_, Result<Vec<String>, BlobError>> {
        let prefix = prefix.to_string();
        Box::pin(async move {
            let full = format!("{}{prefix}", self.cfg.prefix);
            let mut keys = Vec::new();
            let mut token: Option<String> = None;
            let page = LIST_PAGE.to_string();
            loop {
                let mut query = vec![
                    ("list-type", "2"),
                    ("max-keys", page.as_str()),
                    ("prefix", full.as_str()),
                ];
                if let Some(t) = &token {
                    query.push(("continuation-token", t.as_str()));
                }
                let path = format!("/{}", self.cfg.bucket);
                let resp = self
                    .send(self.request(reqwest::Method::GET, &path, &query, &[]))
                    .await?;
                let text = expect_ok(resp, "listing blobs").await?;
                for key in xml_values(&text, "Key") {
                    if let Some(k) = key.strip_prefix(&self.cfg.prefix) {
                        keys.push(k.to_string());
                    }
                }
                let truncated = xml_values(&text, "IsTruncated")
                    .first()
                    .is_some_and(|v| v == "true");
                token = xml_values(&text, "NextContinuationToken")
                    .into_iter()
                    .next();
                if !truncated || token.is_none() {
                    break;
                }
            }
            keys.sort();
            Ok(keys)
        })
    }
}

impl S3Blobs {
    /// The blob's size (a `HEAD`).
    async fn size(&self, key: &str) -> Result<u64, BlobError> {
        let resp = self
            .send(self.request(reqwest::Method::HEAD, &self.path(key), &[], &[]))
            .await?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(BlobError::NotFound);
        }
        if !resp.status().is_success() {
            return Err(status_err(resp, "asking a blob's size").await);
        }
        resp.headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .ok_or_else(|| store_err("no Content-Length"))
    }
}

/// Cuts a body that starts at byte `from` of the blob down to `want` (a store that ignored the
/// range sent more).
fn trim(body: ByteStream, from: u64, want: Range<u64>) -> ByteStream {
    let mut pos = from;
    body.filter_map(move |chunk| {
        let out = chunk.map(|c| {
            let start = pos;
            pos += c.len() as u64;
            let a = want.start.saturating_sub(start).min(c.len() as u64) as usize;
            let b = want.end.saturating_sub(start).min(c.len() as u64) as usize;
            c.slice(a..b.max(a))
        });
        std::future::ready(match out {
            Ok(c) if c.is_empty() => None,
            other => Some(other),
        })
    })
    .boxed()
}

/// `bytes START-END/SIZE` → (START..END+1, SIZE).
pub fn parse_content_range(v: &str) -> Option<(Range<u64>, u64)> {
    let rest = v.strip_prefix("bytes ")?;
    let (span, size) = rest.split_once('/')?;
    let (a, b) = span.split_once('-')?;
    let (a, b, size): (u64, u64, u64) = (a.parse().ok()?, b.parse().ok()?, size.parse().ok()?);
    // `then`, not `then_some`: its argument would be computed (and overflow) first.
    (a <= b && b < size).then(|| (a..b + 1, size))
}

fn io_err(e: reqwest::Error) -> BlobError {
    // reqwest's error names the URL, which holds no secret (signatures go in headers).
    BlobError::Io(std::io::Error::other(format!("blob store: {e}")))
}

fn store_err(what: &str) -> BlobError {
    BlobError::Io(std::io::Error::other(format!("blob store: {what}")))
}

async fn status_err(resp: reqwest::Response, doing: &str) -> BlobError {
    let status = resp.status();
    let text = read_limited(resp).await.unwrap_or_default();
    let code = xml_values(&text, "Code").join(", ");
    store_err(&format!("{doing}: {status} {code}"))
}

/// The body of a successful answer (an error status becomes the error).
async fn expect_ok(resp: reqwest::Response, doing: &str) -> Result<String, BlobError> {
    if !resp.status().is_success() {
        return Err(status_err(resp, doing).await);
    }
    read_limited(resp).await
}

/// The store's XML answers are small; one that is not is cut off (and then fails to parse).
async fn read_limited(resp: reqwest::Response) -> Result<String, BlobError> {
    const MAX: usize = 4 * 1024 * 1024;
    let mut body = resp.bytes_stream();
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(io_err)?;
        out.extend_from_slice(&chunk[..chunk.len().min(MAX - out.len())]);
        if out.len() >= MAX {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The text of every `<tag>…</tag>` in `xml`, entities decoded. S3's answers are flat enough
/// that this is all moim reads of them (keys, tokens, upload ids, error codes).
pub fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        rest = &rest[i + open.len()..];
        let Some(j) = rest.find(&close) else { break };
        out.push(xml_unescape(&rest[..j]));
        rest = &rest[j + close.len()..];
    }
    out
}

fn xml_unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest.find(';').filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let ent = &rest[1..e];
            let c = match ent {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => {
                    let n = if let Some(h) = ent.strip_prefix("#x") {
                        u32::from_str_radix(h, 16).ok()
                    } else {
                        ent.strip_prefix('#').and_then(|d| d.parse().ok())
                    };
                    n.and_then(char::from_u32)
                }
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// RFC 3986 percent-encoding of everything but the unreserved characters (and `/` when
/// `slash` is false), as Signature Version 4 wants it.
fn encode(s: &str, slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (b == b'/' && !slash)
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What [`sign`] produced: the canonical query string to send and the headers to add.
struct Signed {
    query: String,
    headers: Vec<(String, String)>,
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key");
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// Signs a request with AWS Signature Version 4 (the payload unsigned).
fn sign(
    cfg: &S3Config,
    host: &str,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    extra: &[(&str, &str)],
    now: time::OffsetDateTime,
) -> Signed {
    sign_payload(
        cfg,
        host,
        method,
        path,
        query,
        extra,
        now,
        "UNSIGNED-PAYLOAD",
    )
}

/// [`sign`] with the payload's hash given (`UNSIGNED-PAYLOAD`, or the hex SHA-256 of the body).
#[allow(clippy::too_many_arguments)]
fn sign_payload(
    cfg: &S3Config,
    host: &str,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    extra: &[(&str, &str)],
    now: time::OffsetDateTime,
    payload: &str,
) -> Signed {
    let date = format!("{:04}{:02}{:02}", now.year(), now.month() as u8, now.day());
    let stamp = format!(
        "{date}T{:02}{:02}{:02}Z",
        now.hour(),
        now.minute(),
        now.second()
    );
    let mut q: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (encode(k, true), encode(v, true)))
        .collect();
    q.sort();
    let query = q
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), host.to_string()),
        ("x-amz-content-sha256".into(), payload.to_string()),
        ("x-amz-date".into(), stamp.clone()),
    ];
    headers.extend(
        extra
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string())),
    );
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical =
        format!("{method}\n{path}\n{query}\n{canonical_headers}\n{signed_headers}\n{payload}");
    let scope = format!("{date}/{}/s3/aws4_request", cfg.region);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let k = hmac(format!("AWS4{}", cfg.secret_access_key).as_bytes(), &date);
    let k = hmac(&k, &cfg.region);
    let k = hmac(&k, "s3");
    let k = hmac(&k, "aws4_request");
    let signature = hex::encode(hmac(&k, &to_sign));
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        cfg.access_key_id
    );
    // `host` is set by the client from the URL.
    let mut out: Vec<(String, String)> = headers.into_iter().filter(|(k, _)| k != "host").collect();
    out.push(("authorization".into(), auth));
    Signed {
        query,
        headers: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> S3Config {
        S3Config::parse(
            "s3://examplebucket?endpoint=https://s3.amazonaws.com",
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        )
        .unwrap()
    }

    #[test]
    fn urls_are_read_and_bad_ones_named() {
        let c = S3Config::parse(
            "s3://moim/site-a/?endpoint=http://127.0.0.1:3900/&region=garage",
            "id",
            "secret",
        )
        .unwrap();
        assert_eq!(c.bucket, "moim");
        assert_eq!(c.prefix, "site-a/");
        assert_eq!(c.endpoint, "http://127.0.0.1:3900");
        assert_eq!(c.region, "garage");
        assert!(!format!("{c:?}").contains("secret\""));
        for (url, says) in [
            ("http://moim", "s3://"),
            ("s3://Moim?endpoint=http://h", "bucket"),
            ("s3://moim", "endpoint"),
            ("s3://moim?endpoint=ftp://h", "http"),
            ("s3://moim?endpoint=http://u:p@h", "endpoint"),
            ("s3://moim?endpoint=http://h&style=x", "style"),
            ("s3://moim/../x?endpoint=http://h", "prefix"),
        ] {
            let err = S3Config::parse(url, "id", "secret").unwrap_err();
            assert!(err.contains(says), "{url}: {err}");
        }
        assert!(S3Config::parse("s3://moim?endpoint=http://h", "", "").is_err());
    }

    /// The example of AWS's Signature Version 4 documentation for S3 ("GET Object": the
    /// first ten bytes of examplebucket's test.txt, an empty payload hashed), to the byte.
    #[test]
    fn requests_are_signed_as_signature_version_4_says() {
        let now = time::macros::datetime!(2013-05-24 00:00:00 UTC);
        let s = sign_payload(
            &cfg(),
            "examplebucket.s3.amazonaws.com",
            "GET",
            "/test.txt",
            &[],
            &[("range", "bytes=0-9")],
            now,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        );
        let auth = &s
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .unwrap()
            .1;
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        assert!(s.headers.iter().all(|(k, _)| k != "host"));
    }

    #[test]
    fn query_strings_are_sorted_and_encoded() {
        let s = sign(
            &cfg(),
            "h",
            "GET",
            "/b",
            &[
                ("prefix", "videos/a b"),
                ("list-type", "2"),
                ("continuation-token", "x+y="),
            ],
            &[],
            time::OffsetDateTime::UNIX_EPOCH,
        );
        assert_eq!(
            s.query,
            "continuation-token=x%2By%3D&list-type=2&prefix=videos%2Fa%20b"
        );
        assert_eq!(encode("videos/a b~", false), "videos/a%20b~");
    }

    #[test]
    fn xml_values_and_entities() {
        let xml = "<ListBucketResult><Contents><Key>a/1</Key></Contents><Contents><Key>a&amp;b&#x41;&#66;</Key></Contents>\
                   <IsTruncated>true</IsTruncated><NextContinuationToken>t&lt;1&gt;</NextContinuationToken></ListBucketResult>";
        assert_eq!(xml_values(xml, "Key"), ["a/1", "a&bAB"]);
        assert_eq!(xml_values(xml, "NextContinuationToken"), ["t<1>"]);
        assert_eq!(xml_values("<Key>open", "Key"), Vec::<String>::new());
        assert_eq!(
            xml_unescape("&bogus; & &#xZZ; &#1114112;"),
            "&bogus; & &#xZZ; &#1114112;"
        );
    }

    /// Every fuzz seed (and any crash the fuzzer saved there) is read without a panic.
    #[test]
    fn fuzz_corpus_is_read() {
        let dir = source_dir!().join("fuzz/corpus/s3_answer");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("corpus folder exists") {
            let text = String::from_utf8_lossy(&std::fs::read(entry.unwrap().path()).unwrap())
                .into_owned();
            for tag in ["Key", "UploadId", "Code", "NextContinuationToken"] {
                let _ = xml_values(&text, tag);
            }
            if let Some((r, size)) = parse_content_range(&text) {
                assert!(r.start < r.end && r.end <= size);
            }
            seen += 1;
        }
        assert!(seen >= 10, "corpus has {seen} seeds");
    }

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("bytes 0-9/100"), Some((0..10, 100)));
        assert_eq!(parse_content_range("bytes 9-0/100"), None);
        assert_eq!(parse_content_range("bytes 0-100/100"), None);
        assert_eq!(parse_content_range("bytes */100"), None);
    }

    #[tokio::test]
    async fn a_body_is_cut_to_the_range_asked() {
        let body: ByteStream = futures_util::stream::iter(
            ["0123", "4567", "89"].map(|s| Ok(Bytes::from_static(s.as_bytes()))),
        )
        .boxed();
        let got = Blob {
            size: 10,
            range: 3..7,
            body: trim(body, 0, 3..7),
        }
        .bytes()
        .await
        .unwrap();
        assert_eq!(&got[..], b"3456");
    }
}
