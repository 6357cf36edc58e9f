//! The STUN and TURN servers clients are told of, for when the media socket cannot be reached
//! directly (UDP blocked by a firewall: TURN over TCP or TLS carries the media then). TURN
//! credentials are minted per client from the TURN server's shared secret, as coturn's
//! `use-auth-secret` expects (the "REST API" scheme): the username is `EXPIRY:WHO`, the password
//! base64(HMAC-SHA1(secret, username)); they stop working at `EXPIRY` (Unix seconds), so nothing
//! moim hands out lasts. Pages get them from `GET /api/v1/webrtc/ice-servers`, WHIP and WHEP
//! clients in `Link: <…>; rel="ice-server"` headers (RFC 9725 §4.6).

use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::config::Secret;

/// One ICE server as a client configures it (`RTCIceServer`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// The configured servers.
#[derive(Debug)]
pub struct IceServers {
    stun: Vec<String>,
    turn: Vec<String>,
    /// Redacted in `Debug`.
    secret: Option<Secret>,
    ttl_s: u64,
}

impl IceServers {
    /// No servers: clients reach the media socket directly or not at all.
    pub fn none() -> IceServers {
        IceServers {
            stun: Vec::new(),
            turn: Vec::new(),
            secret: None,
            ttl_s: 0,
        }
    }

    /// From `webrtc_ice_servers` (comma-separated `stun:`, `stuns:`, `turn:`, `turns:` URLs),
    /// the TURN secret and how long credentials last. TURN URLs need the secret.
    pub fn new(
        list: Option<&str>,
        secret: Option<Secret>,
        ttl_s: u64,
    ) -> Result<IceServers, String> {
        let mut servers = IceServers {
            secret,
            ttl_s,
            ..IceServers::none()
        };
        for url in list
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            // A URL goes into a Link header between < and >, and into JSON: nothing that
            // could end either.
            if url.len() > 256
                || !url.bytes().all(|b| {
                    b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b'\\' | b',')
                })
            {
                return Err(format!(
                    "webrtc_ice_servers: `{url}` is not an ICE server URL"
                ));
            }
            let (scheme, host) = url.split_once(':').unwrap_or((url, ""));
            let turn = match scheme.to_ascii_lowercase().as_str() {
                "stun" | "stuns" => false,
                "turn" | "turns" => true,
                _ => {
                    return Err(format!(
                        "webrtc_ice_servers: `{url}` is not stun:, stuns:, turn: or turns:"
                    ))
                }
            };
            if host.is_empty() || host.starts_with('/') {
                return Err(format!(
                    "webrtc_ice_servers: `{url}` needs a host (`stun:host:port`, `turn:host:port?transport=tcp`)"
                ));
            }
            if turn {
                servers.turn.push(url.to_string());
            } else {
                servers.stun.push(url.to_string());
            }
        }
        if !servers.turn.is_empty() && servers.secret.is_none() {
            return Err(
                "webrtc_ice_servers names TURN servers: set webrtc_turn_secret (the TURN server's \
                 static-auth-secret) so clients get credentials"
                    .into(),
            );
        }
        Ok(servers)
    }

    /// Whether any server is configured.
    pub fn is_empty(&self) -> bool {
        self.stun.is_empty() && self.turn.is_empty()
    }

    /// What a client is given at `now_unix`: the STUN servers, and when `who` is known (a
    /// signed-in member, a stream key's room) the TURN servers with credentials naming it.
    /// Anonymous viewers get no relay: relaying costs the operator bandwidth, and they have
    /// LL-HLS.
    pub fn for_client(&self, who: Option<&str>, now_unix: u64) -> Vec<IceServer> {
        let mut out = Vec::new();
        if !self.stun.is_empty() {
            out.push(IceServer {
                urls: self.stun.clone(),
                username: None,
                credential: None,
            });
        }
        if let (Some(who), Some(secret), false) = (who, &self.secret, self.turn.is_empty()) {
            let username = format!("{}:{}", now_unix + self.ttl_s, who);
            out.push(IceServer {
                urls: self.turn.clone(),
                credential: Some(turn_password(secret.expose(), &username)),
                username: Some(username),
            });
        }
        out
    }

    /// How long minted credentials last, seconds.
    pub fn ttl_s(&self) -> u64 {
        self.ttl_s
    }
}

/// coturn's REST-API password for `username`: base64(HMAC-SHA1(secret, username)).
pub fn turn_password(secret: &str, username: &str) -> String {
    use base64::Engine as _;
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The `Link` header values for `servers` (RFC 9725 §4.6): one per URL.
pub fn link_headers(servers: &[IceServer]) -> Vec<String> {
    let mut out = Vec::new();
    for s in servers {
        for url in &s.urls {
            let mut v = format!("<{url}>; rel=\"ice-server\"");
            if let (Some(u), Some(c)) = (&s.username, &s.credential) {
                v.push_str(&format!(
                    "; username=\"{u}\"; credential=\"{c}\"; credential-type=\"password\""
                ));
            }
            out.push(v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_passwords_follow_coturns_rest_scheme() {
        // HMAC-SHA1 of "The quick brown fox jumps over the lazy dog" under "key" is
        // de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9 (RFC 2104's construction, a published
        // vector); base64 of those bytes:
        assert_eq!(
            turn_password("key", "The quick brown fox jumps over the lazy dog"),
            "3nybhbi3iqa8ino29wqQcBydtNk="
        );
    }

    #[test]
    fn clients_get_stun_and_only_known_ones_get_turn() {
        let s = IceServers::new(
            Some("stun:stun.example.org:3478, turn:turn.example.org:3478?transport=udp,turns:turn.example.org:443"),
            Some(Secret::new("s3cret")),
            3600,
        )
        .unwrap();
        let anon = s.for_client(None, 1_000);
        assert_eq!(anon.len(), 1);
        assert_eq!(anon[0].urls, ["stun:stun.example.org:3478"]);
        assert!(anon[0].username.is_none());
        let member = s.for_client(Some("u42"), 1_000);
        assert_eq!(member.len(), 2);
        assert_eq!(member[1].urls.len(), 2);
        assert_eq!(member[1].username.as_deref(), Some("4600:u42"));
        assert_eq!(
            member[1].credential.as_deref(),
            Some(turn_password("s3cret", "4600:u42").as_str())
        );
        let links = link_headers(&member);
        assert_eq!(links.len(), 3);
        assert_eq!(links[0], "<stun:stun.example.org:3478>; rel=\"ice-server\"");
        assert!(links[2].starts_with("<turns:turn.example.org:443>; rel=\"ice-server\"; username=\"4600:u42\"; credential=\""));
        assert!(links[2].ends_with("; credential-type=\"password\""));
        // The secret never shows.
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn bad_server_lists_say_what_is_wrong() {
        for (list, says) in [
            ("http://example.org", "is not stun:"),
            ("stun:", "needs a host"),
            ("turn://x", "needs a host"),
            ("stun:a>b", "is not an ICE server URL"),
            ("stun:a\"b", "is not an ICE server URL"),
            ("turn:turn.example.org", "set webrtc_turn_secret"),
        ] {
            let e = IceServers::new(Some(list), None, 60).unwrap_err();
            assert!(e.contains(says), "{list}: {e}");
        }
        assert!(IceServers::new(None, None, 60).unwrap().is_empty());
        assert!(IceServers::new(Some(" , "), None, 60).unwrap().is_empty());
    }
}
