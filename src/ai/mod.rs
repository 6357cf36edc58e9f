//! A client for OpenAI-compatible chat-completions endpoints (llama.cpp's server, vLLM,
//! Ollama, LM Studio, OpenAI itself), streaming: the domain's [`Model`] for review drafts.
//!
//! Real servers differ, so the stream is read tolerantly ([`parse_event`]): `data:` lines with
//! or without a space, `[DONE]` or not, `finish_reason` absent, `null` or `""`, no `usage`, a
//! `delta` without `content`, comments and other fields ignored, CRLF or LF. An error object in
//! the stream, or the stream ending before a finish reason or `[DONE]`, ends the draft with an
//! error. A server that refuses a request with pictures (some text-only servers answer 500 to
//! `image_url` parts) is asked again once without them. The API key is read from a file at
//! start and never logged.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::domain::drafts::{DraftRequest, DraftStream, Model, ModelError};

/// What one server-sent event line of a chat-completions stream says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A piece of the answer (possibly empty).
    Delta(String),
    /// The model says it is done (`finish_reason` set), with a last piece.
    Finished(String),
    /// `data: [DONE]`.
    Done,
    /// The server reported an error mid-stream.
    Error(String),
    /// Nothing to act on: a comment, a blank line, another field, an empty chunk.
    Skip,
}

/// Longest line of the stream kept; a longer one is an error (no server sends one).
pub const MAX_LINE: usize = 256 * 1024;

/// Reads one line of the event stream (without its line break). Never panics, whatever the
/// bytes.
pub fn parse_event(line: &[u8]) -> Event {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Some(data) = line.strip_prefix(b"data:") else {
        return Event::Skip;
    };
    let data = data.strip_prefix(b" ").unwrap_or(data);
    if data.trim_ascii() == b"[DONE]" {
        return Event::Done;
    }
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return Event::Error("the model server sent something that is not JSON".into());
    };
    if let Some(err) = v.get("error") {
        let msg = err
            .get("message")
            .and_then(Value::as_str)
            .or_else(|| err.as_str())
            .unwrap_or("the model server reported an error");
        return Event::Error(msg.chars().take(300).collect());
    }
    let choice = v.get("choices").and_then(|c| c.get(0));
    let Some(choice) = choice else {
        return Event::Skip;
    };
    let text = choice
        .get("delta")
        .and_then(|d| d.get("content"))
        .and_then(Value::as_str)
        // Some servers send a whole message instead of a delta.
        .or_else(|| {
            choice
                .get("message")
                .and_then(|m| m.get("content"))
                .and_then(Value::as_str)
        })
        .unwrap_or("")
        .to_string();
    let finished = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .is_some_and(|r| !r.is_empty());
    if finished {
        Event::Finished(text)
    } else if text.is_empty() {
        Event::Skip
    } else {
        Event::Delta(text)
    }
}

/// The client.
pub struct OpenAi {
    http: reqwest::Client,
    url: String,
    model: String,
    key: Option<String>,
    vision: bool,
    timeout: Duration,
}

impl std::fmt::Debug for OpenAi {
    /// Without the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAi")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("vision", &self.vision)
            .finish_non_exhaustive()
    }
}

impl OpenAi {
    /// The client for `config`, or `None` when no base URL is configured.
    pub fn from_config(config: &crate::config::AiConfig) -> anyhow::Result<Option<OpenAi>> {
        let Some(base) = config
            .ai_base_url
            .as_deref()
            .filter(|b| !b.trim().is_empty())
        else {
            return Ok(None);
        };
        let base = base.trim().trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            anyhow::bail!("ai_base_url must start with http:// or https://");
        }
        let key = match &config.ai_api_key_file {
            None => None,
            Some(path) => {
                let k = std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!("reading the AI API key file {}: {e}", path.display())
                })?;
                Some(k.trim().to_string()).filter(|k| !k.is_empty())
            }
        };
        let timeout = Duration::from_secs(config.ai_timeout_s);
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(timeout)
            .build()?;
        Ok(Some(OpenAi {
            http,
            url: format!("{base}/chat/completions"),
            model: config.ai_model.clone(),
            key,
            vision: config.ai_vision,
            timeout,
        }))
    }

    fn body(&self, req: &DraftRequest, with_images: bool) -> Value {
        let user: Value = if with_images && !req.images.is_empty() {
            let mut parts = vec![json!({"type": "text", "text": req.user})];
            for url in &req.images {
                parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
            }
            Value::Array(parts)
        } else {
            Value::String(req.user.clone())
        };
        json!({
            "model": self.model,
            "stream": true,
            "max_tokens": req.max_tokens,
            "temperature": 0.7,
            "messages": [
                {"role": "system", "content": req.system},
                {"role": "user", "content": user},
            ],
        })
    }

    async fn send(&self, body: &Value) -> Result<reqwest::Response, ModelError> {
        let mut r = self.http.post(&self.url).json(body);
        if let Some(k) = &self.key {
            r = r.bearer_auth(k);
        }
        let resp = tokio::time::timeout(self.timeout, r.send())
            .await
            .map_err(|_| ModelError::Timeout)?
            .map_err(|e| {
                if is_timeout(&e) {
                    ModelError::Timeout
                } else {
                    ModelError::Failed(format!("the model server cannot be reached: {e}"))
                }
            })?;
        Ok(resp)
    }

    async fn start(&self, req: DraftRequest) -> Result<DraftStream, ModelError> {
        let with_images = self.vision && !req.images.is_empty();
        let mut resp = self.send(&self.body(&req, with_images)).await?;
        if with_images && !resp.status().is_success() {
            tracing::warn!(
                status = resp.status().as_u16(),
                "the model server refused a draft with pictures; asking again without them"
            );
            resp = self.send(&self.body(&req, false)).await?;
        }
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            let why = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| {
                    v.get("error")
                        .and_then(|e| e.get("message").and_then(Value::as_str).or(e.as_str()))
                        .map(String::from)
                })
                .unwrap_or_default();
            return Err(ModelError::Failed(
                format!("the model server answered {status} {why}")
                    .trim()
                    .chars()
                    .take(300)
                    .collect(),
            ));
        }
        let timeout = self.timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut bytes = resp.bytes_stream();
        let stream = async_stream(move |tx| async move {
            let mut buf: Vec<u8> = Vec::new();
            let mut finished = false;
            loop {
                let next = tokio::time::timeout_at(deadline, bytes.next()).await;
                let chunk = match next {
                    Err(_) => {
                        let _ = tx.send(Err(ModelError::Timeout)).await;
                        return;
                    }
                    Ok(None) => break,
                    Ok(Some(Err(e))) if is_timeout(&e) => {
                        let _ = tx.send(Err(ModelError::Timeout)).await;
                        return;
                    }
                    Ok(Some(Err(e))) => {
                        let _ = tx
                            .send(Err(ModelError::Failed(format!(
                                "the model server's answer broke off: {e}"
                            ))))
                            .await;
                        return;
                    }
                    Ok(Some(Ok(c))) => c,
                };
                buf.extend_from_slice(&chunk);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    match parse_event(&line[..line.len() - 1]) {
                        Event::Delta(t) => {
                            if tx.send(Ok(t)).await.is_err() {
                                return;
                            }
                        }
                        Event::Finished(t) => {
                            if !t.is_empty() && tx.send(Ok(t)).await.is_err() {
                                return;
                            }
                            finished = true;
                        }
                        Event::Done => return,
                        Event::Error(m) => {
                            let _ = tx.send(Err(ModelError::Failed(m))).await;
                            return;
                        }
                        Event::Skip => {}
                    }
                }
                if buf.len() > MAX_LINE {
                    let _ = tx
                        .send(Err(ModelError::Failed(
                            "the model server sent an overlong line".into(),
                        )))
                        .await;
                    return;
                }
            }
            if !finished {
                let _ = tx
                    .send(Err(ModelError::Failed(
                        "the model server's answer ended before it was finished".into(),
                    )))
                    .await;
            }
        });
        Ok(stream)
    }
}

/// Whether a body error is the read timeout (reqwest reports it inside a decode error).
fn is_timeout(e: &reqwest::Error) -> bool {
    if e.is_timeout() {
        return true;
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = cur {
        if let Some(re) = err.downcast_ref::<reqwest::Error>() {
            if re.is_timeout() {
                return true;
            }
        }
        if err.to_string().contains("timed out") {
            return true;
        }
        cur = err.source();
    }
    false
}

/// A stream fed by a task through a small channel; dropping the stream stops the task.
fn async_stream<F, Fut>(f: F) -> DraftStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<String, ModelError>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let task = tokio::spawn(f(tx));
    let abort = task.abort_handle();
    struct Guard(tokio::task::AbortHandle);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let guard = Guard(abort);
    Box::pin(futures_util::stream::unfold(
        (rx, guard),
        |(mut rx, guard)| async move { rx.recv().await.map(|item| (item, (rx, guard))) },
    ))
}

impl Model for OpenAi {
    fn vision(&self) -> bool {
        self.vision
    }

    fn stream(
        &self,
        req: DraftRequest,
    ) -> futures_util::future::BoxFuture<'_, Result<DraftStream, ModelError>> {
        Box::pin(self.start(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_quirks_are_read_alike() {
        use Event::*;
        let cases: &[(&[u8], Event)] = &[
            (b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}", Delta("Hi".into())),
            (b"data:{\"choices\":[{\"delta\":{\"content\":\" there\"},\"finish_reason\":\"\"}]}\r", Delta(" there".into())),
            (b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}", Skip),
            (b"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}", Finished(String::new())),
            (b"data: {\"choices\":[{\"delta\":{\"content\":\"!\"},\"finish_reason\":\"length\"}]}", Finished("!".into())),
            (b"data: {\"choices\":[{\"message\":{\"content\":\"whole\"}}]}", Delta("whole".into())),
            (b"data: {\"choices\":[]}", Skip),
            (b"data: {\"id\":\"x\",\"usage\":{\"total_tokens\":3}}", Skip),
            (b"data: [DONE]", Done),
            (b"data: [DONE] \r", Done),
            (b": keep-alive", Skip),
            (b"", Skip),
            (b"event: message", Skip),
            (b"data: {\"error\":{\"message\":\"out of memory\"}}", Error("out of memory".into())),
            (b"data: {\"error\":\"boom\"}", Error("boom".into())),
        ];
        for (line, want) in cases {
            assert_eq!(
                &parse_event(line),
                want,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        assert!(matches!(parse_event(b"data: {not json"), Error(_)));
        assert!(matches!(parse_event(b"data: \xff\xfe"), Error(_)));
    }

    /// Every fuzz seed (and any crash the fuzzer saved there) is read without a panic.
    #[test]
    fn fuzz_corpus_is_read() {
        let dir = source_dir!().join("fuzz/corpus/model_stream");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("corpus folder exists") {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            for line in bytes.split(|b| *b == b'\n') {
                if let Event::Error(m) = parse_event(line) {
                    assert!(m.chars().count() <= 300);
                }
            }
            seen += 1;
        }
        assert!(seen >= 10, "corpus has {seen} seeds");
    }
}
