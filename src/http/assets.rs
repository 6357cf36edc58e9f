//! The embedded web UI: the files under `web/` served at `/assets/{*path}`, the favicon, and the
//! page shell (`index.html` with the security headers) for every other GET outside `/api/`, so
//! the list of pages lives only in the UI's route table (`web/router.js`), which also shows the
//! not-found page. Release builds carry the files inside the binary; debug builds read them from
//! disk on each request (edit, reload). The API and media routes are not ours: `http::router`
//! matches them before this module's fallback sees a request.

use axum::extract::{Extension, Path};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rust_embed::{EmbeddedFile, RustEmbed};

use super::error::ApiError;

#[derive(RustEmbed)]
#[folder = "web/"]
#[exclude = "tsconfig.json"]
#[exclude = "*.md"]
struct Web;

/// What every page shell carries, fixed at startup: its security policy.
#[derive(Clone)]
pub struct Pages {
    csp: HeaderValue,
}

impl Pages {
    /// The policy: our own scripts and styles only, nothing inline, no framing; pictures also
    /// from the map's tile server (`MapConfig::tile_source`) when it is on another host.
    pub fn new(tile_source: Option<String>) -> Pages {
        let tiles = tile_source.map(|s| format!(" {s}")).unwrap_or_default();
        let csp = format!(
            "default-src 'self'; img-src 'self' data: blob:{tiles}; media-src 'self' blob:; \
             connect-src 'self'; style-src 'self'; script-src 'self'; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
        );
        Pages {
            // The tile source is checked at startup to hold only host characters.
            csp: HeaderValue::from_str(&csp).expect("the policy is printable ASCII"),
        }
    }
}

/// Path prefixes that never get the page shell: a wrong asset or media URL is a plain 404, so
/// a script or a player never receives HTML. (`/videos` itself is a page; what lies below it is
/// a recording's files.)
const NOT_PAGES: [&str; 3] = ["/assets/", "/live/", "/videos/"];

/// `/assets/{*path}`, `/favicon.ico`, and the page shell as the fallback. The shell needs the
/// [`Pages`] extension on the router.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/assets/{*path}", get(asset))
        .route("/favicon.ico", get(favicon))
        .fallback(shell)
}

/// One file of `web/`. `index.html` is only served as the shell, with its headers.
async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match Web::get(&path) {
        Some(file) if path != "index.html" => file_response(&path, &file, &headers, &[]),
        _ => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// Browsers ask for `/favicon.ico` on pages without a `<link rel=icon>` (a video file, an API
/// URL); they go by the content type, so the SVG serves there too.
async fn favicon(headers: HeaderMap) -> Response {
    match Web::get("favicon.svg") {
        Some(file) => file_response("favicon.svg", &file, &headers, &[]),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The fallback: the page shell for a GET of any other path, the API's JSON 404 under `/api/`.
async fn shell(
    Extension(pages): Extension<Pages>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path();
    if path == "/api" || path.starts_with("/api/") {
        return ApiError::not_found("endpoint").into_response();
    }
    let page = matches!(method, Method::GET | Method::HEAD)
        && !NOT_PAGES.iter().any(|p| path.starts_with(p));
    if !page {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    self::page(&pages, &headers)
}

/// The page shell for a page the server routes itself (a share link, whose status it sets).
pub fn page(pages: &Pages, headers: &HeaderMap) -> Response {
    let Some(file) = Web::get("index.html") else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    file_response(
        "index.html",
        &file,
        headers,
        &[
            (header::CONTENT_SECURITY_POLICY, pages.csp.clone()),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            ),
        ],
    )
}

/// The file with its content type and ETag, or 304 when the client's copy is current.
///
/// Everything is `no-cache`: the URLs carry no content hash, so a browser must ask again, and the
/// ETag (the content's SHA-256) makes that a 304 with no body when nothing changed.
fn file_response(
    path: &str,
    file: &EmbeddedFile,
    headers: &HeaderMap,
    extra: &[(header::HeaderName, HeaderValue)],
) -> Response {
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| etag_matches(v, &etag));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, content_type(path))],
            file.data.clone(),
        )
            .into_response()
    };
    let h = resp.headers_mut();
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).expect("hex in quotes is a valid header value"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    for (name, value) in extra {
        h.insert(name, value.clone());
    }
    resp
}

/// Whether an `If-None-Match` list names `etag` (weak comparison, as RFC 9110 asks for GET).
fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

/// The content type for a file of `web/`, by its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map_or("", |(_, ext)| ext) {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "svg" => "image/svg+xml",
        "json" => "application/json",
        "png" => "image/png",
        "webp" => "image/webp",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    /// The routes as `http::router` mounts them, with the default map's page policy.
    fn with_pages() -> Router {
        routes::<()>().layer(Extension(Pages::new(Some("https://tiles.example".into()))))
    }

    async fn get(path: &str, if_none_match: Option<&str>) -> Response {
        let mut req = Request::get(path);
        if let Some(tag) = if_none_match {
            req = req.header(header::IF_NONE_MATCH, tag);
        }
        with_pages()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    fn header_of(resp: &Response, name: header::HeaderName) -> &str {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    async fn body(resp: Response) -> String {
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn assets_have_their_content_type() {
        for (path, ctype) in [
            ("/assets/app.js", "text/javascript; charset=utf-8"),
            (
                "/assets/vendor/hls.light.min.js",
                "text/javascript; charset=utf-8",
            ),
            ("/assets/style.css", "text/css; charset=utf-8"),
            ("/assets/favicon.svg", "image/svg+xml"),
            ("/favicon.ico", "image/svg+xml"),
        ] {
            let resp = get(path, None).await;
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            assert_eq!(header_of(&resp, header::CONTENT_TYPE), ctype, "{path}");
            assert_eq!(
                header_of(&resp, header::CACHE_CONTROL),
                "no-cache",
                "{path}"
            );
            assert_eq!(header_of(&resp, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        }
        assert_eq!(content_type("a/b.woff2"), "font/woff2");
        assert_eq!(content_type("README"), "application/octet-stream");
    }

    #[tokio::test]
    async fn missing_and_excluded_files_are_404() {
        for path in [
            "/assets/nope.js",
            "/assets/tsconfig.json",
            "/assets/vendor/README.md",
            "/assets/index.html",
            "/assets/",
            "/assets/../Cargo.toml",
        ] {
            let resp = get(path, None).await;
            assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
            assert!(!header_of(&resp, header::CONTENT_TYPE).starts_with("text/html"));
        }
    }

    #[tokio::test]
    async fn etag_revalidates_with_304() {
        let resp = get("/assets/app.js", None).await;
        let etag = header_of(&resp, header::ETAG).to_string();
        assert!(etag.starts_with('"') && etag.len() == 34, "{etag}");
        assert!(body(resp).await.contains("import"));

        let resp = get("/assets/app.js", Some(&etag)).await;
        assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(header_of(&resp, header::ETAG), etag);
        assert_eq!(header_of(&resp, header::CACHE_CONTROL), "no-cache");
        assert!(body(resp).await.is_empty());

        let list = format!("\"other\", W/{etag}");
        assert_eq!(
            get("/assets/app.js", Some(&list)).await.status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            get("/assets/app.js", Some("*")).await.status(),
            StatusCode::NOT_MODIFIED
        );
        // Another file's tag is no match.
        assert_eq!(
            get("/assets/style.css", Some(&etag)).await.status(),
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn pages_get_the_shell_with_its_headers() {
        for path in [
            "/",
            "/r/some-room",
            "/videos",
            "/v/abc",
            "/admin",
            "/no/such/page",
        ] {
            let resp = get(path, None).await;
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            assert_eq!(
                header_of(&resp, header::CONTENT_TYPE),
                "text/html; charset=utf-8"
            );
            assert!(header_of(&resp, header::CONTENT_SECURITY_POLICY).contains("script-src 'self'"));
            assert_eq!(header_of(&resp, header::REFERRER_POLICY), "same-origin");
            assert_eq!(header_of(&resp, header::CACHE_CONTROL), "no-cache");
            let html = body(resp).await;
            assert!(html.contains("/assets/app.js") && html.contains("/assets/favicon.svg"));
        }
        let etag = header_of(&get("/", None).await, header::ETAG).to_string();
        let resp = get("/r/x", Some(&etag)).await;
        assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
        assert!(header_of(&resp, header::CONTENT_SECURITY_POLICY).contains("frame-ancestors"));
    }

    #[tokio::test]
    async fn api_and_media_paths_never_get_the_shell() {
        for path in ["/api/v1/nope", "/api/v2", "/api"] {
            let resp = get(path, None).await;
            assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
            assert_eq!(header_of(&resp, header::CONTENT_TYPE), "application/json");
            assert!(body(resp).await.contains("\"error\":\"not_found\""));
        }
        for path in [
            "/live/room/unknown",
            "/videos/abc/s1.m4s/x",
            "/assets/nope.js",
        ] {
            let resp = get(path, None).await;
            assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        }
        // The pages above them are pages.
        assert_eq!(get("/videos", None).await.status(), StatusCode::OK);
        let post = Request::post("/somewhere").body(Body::empty()).unwrap();
        let resp = with_pages().oneshot(post).await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    }
}
