//! The room WebSocket endpoint: checks origin and room, performs the RFC 6455 handshake itself
//! (so the session owns the raw socket for direct fan-out writes, see `realtime::conn`), then
//! hands the connection to `realtime::session`.

use axum::extract::ConnectInfo;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use super::error::{ApiError, ApiPath, ApiQuery, ApiResult};
use super::extract::MaybeUser;
use super::serve::Admitted;
use crate::metrics::Refusal;
use crate::realtime::conn::{wire_close, wire_text, ConnIo, SharedIo};
use crate::realtime::protocol::{error_frame, MAX_CLIENT_FRAME};
use crate::realtime::session::{self, Opened, CLOSE_BANNED};
use crate::state::AppState;
use crate::storage::now_ms;
use crate::storage::rooms::SanctionKind;

#[derive(Deserialize)]
pub struct WsQuery {
    since: Option<i64>,
}

fn header_has(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The `Sec-WebSocket-Accept` value for a valid upgrade request.
fn accept_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let bad = |m: &str| ApiError::invalid("websocket_required", m.to_string());
    if !header_has(headers, header::CONNECTION, "upgrade")
        || !header_has(headers, header::UPGRADE, "websocket")
    {
        return Err(bad("this endpoint speaks WebSocket only"));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err(bad("Sec-WebSocket-Version must be 13"));
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or_else(|| bad("Sec-WebSocket-Key is missing"))?;
    Ok(derive_accept_key(key.as_bytes()))
}

pub async fn room_ws(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    headers: HeaderMap,
    ApiPath(slug): ApiPath<String>,
    ApiQuery(q): ApiQuery<WsQuery>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    mut req: Request,
) -> ApiResult<Response> {
    // Browsers always send Origin on WebSocket handshakes; a foreign one would ride the
    // cookie, and a foreign Host is a rebound DNS name. A program signed in by its token is
    // neither (with an Authorization header the cookie is not consulted).
    let by_token = user.is_some() && headers.contains_key(header::AUTHORIZATION);
    let checked = state
        .site
        .check_host(&headers)
        .and_then(|()| state.site.check_origin(&headers));
    if let (false, Err(why)) = (by_token, checked) {
        state.metrics.refused(match why {
            crate::auth::origin::Refusal::Host => Refusal::WrongHost,
            _ => Refusal::CrossSite,
        });
        return Err(ApiError::Other(
            StatusCode::FORBIDDEN,
            "csrf_rejected",
            why.message().into(),
        ));
    }
    let accept = accept_key(&headers)?;
    if state.shutdown.is_cancelled() {
        return Err(ApiError::Unavailable("server is restarting".into()));
    }
    let room = state.rooms.find_visible(user.as_ref(), &slug).await?;
    let info = state.hub.room_info(&room).await?;
    let banned = user
        .as_ref()
        .is_some_and(|u| info.sanction(u.id, SanctionKind::Ban, now_ms()).is_some());
    let client_ip = super::auth::client_ip(&state, &headers, peer);
    // The connection's place under the limits stays with the socket after the upgrade. Behind
    // a trusted proxy the accept loop could not see the client, so its sockets count here.
    let admitted = req.extensions().get::<Admitted>().cloned();
    let proxied = if state.config.http.trust_proxy {
        match state.proxied_sockets.admit(Some(client_ip)) {
            Ok(p) => Some(p),
            Err(_) => {
                state.metrics.refused(Refusal::ConnectionsPerAddress);
                return Err(ApiError::Other(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_connections",
                    "too many connections from your address; close some and try again".into(),
                ));
            }
        }
    } else {
        None
    };
    let client = crate::live::client_hash(client_ip);
    // Every resume may replay up to `resume_limit` messages: an address asking too often gets
    // the recent history instead (marked truncated), which costs no more than a fresh join.
    let replay_refused = q.since.is_some()
        && state
            .replays_by_ip
            .check(&crate::limits::address_key(client_ip))
            .is_err();
    if replay_refused {
        state.metrics.refused(Refusal::ReplayRateLimited);
    }
    let since = q.since.filter(|_| !replay_refused);
    let on_upgrade = hyper::upgrade::on(&mut req);
    let token = state.sessions.token();
    tokio::spawn(async move {
        let _token = token;
        let _places = (admitted, proxied);
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => return tracing::debug!(error = %e, "WebSocket upgrade failed"),
        };
        let Ok(parts) = upgraded.downcast::<TokioIo<TcpStream>>() else {
            return tracing::error!("WebSocket upgrade on an unexpected transport");
        };
        let cfg = &state.config;
        let io = ConnIo::new(parts.io.into_inner(), cfg.chat.room_buffer);
        // Copied: hyper's leftover buffer is a view into its (much larger) read buffer, which
        // would otherwise stay allocated for the life of the connection.
        let shared = SharedIo {
            io: io.clone(),
            pre: bytes::Bytes::copy_from_slice(&parts.read_buf),
        };
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(2048)
            .max_message_size(Some(MAX_CLIENT_FRAME))
            .max_frame_size(Some(MAX_CLIENT_FRAME));
        let ws = WebSocketStream::from_raw_socket(shared, Role::Server, Some(ws_config)).await;
        if banned {
            let f = error_frame("banned", "you are banned from this room", None);
            io.unpause(wire_text(&f), i64::MAX);
            io.finish(false, &[wire_close(CLOSE_BANNED, "banned")]);
            return session::drain_final(&io).await;
        }
        let settings = session::Settings {
            reconnect_jitter: cfg.http.drain_jitter(),
            history_limit: cfg.chat.history_limit,
            resume_limit: cfg.chat.resume_limit,
            max_welcome_bytes: cfg.limits.max_welcome_kib * 1024,
            parties: state.parties.clone(),
            pins: state.pins.clone(),
            polls: state.polls.clone(),
            broker: state.broker.clone(),
        };
        let opened = Opened {
            room,
            info,
            user,
            since,
            replay_refused,
            client,
        };
        session::run(
            state.hub.clone(),
            io,
            ws,
            opened,
            state.shutdown.clone(),
            settings,
        )
        .await;
    });
    Ok((
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::CONNECTION, HeaderValue::from_static("upgrade")),
            (header::UPGRADE, HeaderValue::from_static("websocket")),
            (
                header::SEC_WEBSOCKET_ACCEPT,
                HeaderValue::from_str(&accept).expect("base64 is a valid header value"),
            ),
        ],
    )
        .into_response())
}
