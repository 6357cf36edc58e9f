//! Sign-in through outside providers, as their client: the authorization request (code flow
//! with PKCE S256, `state`, `nonce`), the code exchange and who the provider says the person is.
//! OpenID Connect providers (Google, Kakao, any issuer) through `openidconnect`: discovery,
//! the ID token's signature against the provider's JWKS (cached, fetched again once when a
//! token names a key it does not hold), `iss`, `aud`, `exp`, `iat` and `nonce`. Naver speaks
//! OAuth 2.0 only: its user comes from its profile API over the same TLS client. Owns no
//! cookies, accounts or routes (those are `http::signin`'s and `domain::accounts`').

use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreJsonWebKeySet,
    CoreProviderMetadata,
};
use openidconnect::{
    AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, SignatureVerificationError, TokenResponse,
};
use serde::Deserialize;

use crate::config::{OidcProvider, ProviderKind};

/// How long a discovery document is used before it is fetched again.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// After a failed discovery, how long before it is tried again (meanwhile a document fetched
/// before is used, or sign-ins fail at once instead of each waiting for the provider).
const DISCOVERY_RETRY: Duration = Duration::from_secs(30);
/// The JWKS is fetched again on an unknown key at most this often.
const JWKS_REFRESH_MIN: Duration = Duration::from_secs(10);
/// How far in the future an ID token's `iat` may be (clocks differ), and how old.
const IAT_SKEW_S: i64 = 300;
const IAT_MAX_AGE_S: i64 = 600;
/// A provider's answer larger than this is refused (profile API).
const MAX_PROFILE_BYTES: usize = 64 * 1024;

/// Why a sign-in failed at the provider.
#[derive(Debug, thiserror::Error)]
pub enum SigninError {
    /// The provider answered with an OAuth error (the code was used or expired, the client is
    /// refused); `code` is the provider's error code.
    #[error("the provider refused: {code}")]
    Refused { code: String, detail: String },
    /// The provider could not be reached or answered something that does not hold up (a
    /// broken document, an ID token that fails its checks).
    #[error("{0}")]
    Failed(String),
}

fn failed(what: &str, e: impl std::fmt::Display) -> SigninError {
    SigninError::Failed(format!("{what}: {e}"))
}

/// Who the provider says signed in.
#[derive(Debug, Clone)]
pub struct ProviderUser {
    /// The provider's stable id for the person (`sub`, or Naver's `id`).
    pub subject: String,
    /// The address, only when the provider said it is verified.
    pub verified_email: Option<String>,
    /// A name to suggest as the username.
    pub nickname: Option<String>,
}

/// An authorization request about to be sent: the URL, and what the callback must match.
pub struct Authorize {
    pub url: String,
    pub state: String,
    /// Empty for OAuth 2.0 providers (Naver).
    pub nonce: String,
    pub pkce_verifier: String,
}

/// A provider's discovery document, as fetched.
struct Discovered {
    meta: CoreProviderMetadata,
    fetched: Instant,
    /// When the keys were last fetched again for an unknown `kid`.
    jwks_refetched: Option<Instant>,
}

/// One configured provider and what is cached about it.
pub struct Provider {
    pub config: OidcProvider,
    discovered: tokio::sync::Mutex<Option<Discovered>>,
    /// When discovery last failed, and why.
    failed: parking_lot::Mutex<Option<(Instant, String)>>,
}

/// The configured providers and the HTTP client they are reached with; cheap to clone.
#[derive(Clone)]
pub struct Providers {
    list: Arc<Vec<Provider>>,
    http: reqwest::Client,
}

type Client = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

impl Providers {
    pub fn new(configs: &[OidcProvider]) -> anyhow::Result<Providers> {
        // No redirects (a token or discovery answer that redirects is a misconfiguration, and
        // following one could carry a code elsewhere); bounded waits.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("moim/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let list = configs
            .iter()
            .map(|c| Provider {
                config: c.clone(),
                discovered: tokio::sync::Mutex::new(None),
                failed: parking_lot::Mutex::new(None),
            })
            .collect();
        Ok(Providers {
            list: Arc::new(list),
            http,
        })
    }

    pub fn all(&self) -> impl Iterator<Item = &OidcProvider> {
        self.list.iter().map(|p| &p.config)
    }

    pub fn get(&self, id: &str) -> Option<&Provider> {
        self.list.iter().find(|p| p.config.id == id)
    }

    /// The authorization request for `provider`, coming back to `redirect_url`.
    pub async fn authorize(
        &self,
        provider: &Provider,
        redirect_url: &str,
    ) -> Result<Authorize, SigninError> {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let scopes = provider
            .config
            .scopes
            .iter()
            .filter(|s| s.as_str() != "openid")
            .map(|s| Scope::new(s.clone()));
        if provider.config.kind == ProviderKind::Naver {
            let state = CsrfToken::new_random().secret().clone();
            let endpoint = provider
                .config
                .authorization_endpoint
                .as_deref()
                .ok_or_else(|| failed("configuration", "no authorization endpoint"))?;
            let mut url = reqwest::Url::parse(endpoint).map_err(|e| failed("configuration", e))?;
            url.query_pairs_mut()
                .append_pair("response_type", "code")
                .append_pair("client_id", &provider.config.client_id)
                .append_pair("redirect_uri", redirect_url)
                .append_pair("state", &state)
                .append_pair("code_challenge", challenge.as_str())
                .append_pair("code_challenge_method", "S256");
            return Ok(Authorize {
                url: url.to_string(),
                state,
                nonce: String::new(),
                pkce_verifier: verifier.secret().clone(),
            });
        }
        let client = self.client(provider, redirect_url).await?;
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scopes(scopes)
            .set_pkce_challenge(challenge)
            .url();
        Ok(Authorize {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges the code the callback brought and finds out who signed in.
    pub async fn finish(
        &self,
        provider: &Provider,
        redirect_url: &str,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
        state: &str,
    ) -> Result<ProviderUser, SigninError> {
        if provider.config.kind == ProviderKind::Naver {
            return self
                .finish_oauth(provider, redirect_url, code, pkce_verifier, state)
                .await;
        }
        let client = self.client(provider, redirect_url).await?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| failed("configuration", e))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| failed("token response", "no ID token"))?;
        let nonce = Nonce::new(nonce.to_string());
        let check = |client: &Client| {
            let verifier = client
                .id_token_verifier()
                .set_issue_time_verifier_fn(|iat| {
                    let now = chrono_now();
                    let iat = iat.timestamp();
                    if iat > now + IAT_SKEW_S {
                        Err(format!("issued {} s in the future", iat - now))
                    } else if iat < now - IAT_MAX_AGE_S {
                        Err(format!("issued {} s ago", now - iat))
                    } else {
                        Ok(())
                    }
                });
            id_token.claims(&verifier, &nonce).cloned()
        };
        let claims = match check(&client) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                // The provider may have rotated its keys: fetch them again, once.
                let client = self.refresh_jwks(provider, redirect_url).await?;
                check(&client)
            }
            other => other,
        }
        .map_err(|e| failed("ID token", e))?;
        let verified_email = match (claims.email(), claims.email_verified()) {
            (Some(e), Some(true)) => Some(e.as_str().to_ascii_lowercase()),
            _ => None,
        };
        let nickname = claims
            .preferred_username()
            .map(|n| n.as_str().to_string())
            .or_else(|| {
                claims
                    .nickname()
                    .and_then(|n| n.get(None))
                    .map(|n| n.as_str().to_string())
            })
            .or_else(|| {
                claims
                    .name()
                    .and_then(|n| n.get(None))
                    .map(|n| n.as_str().to_string())
            });
        // The access token is not kept: moim asks nothing more of the provider.
        let _ = tokens.access_token();
        Ok(ProviderUser {
            subject: claims.subject().as_str().to_string(),
            verified_email,
            nickname,
        })
    }

    /// Naver: the code for an access token, the access token for the profile.
    async fn finish_oauth(
        &self,
        provider: &Provider,
        redirect_url: &str,
        code: &str,
        pkce_verifier: &str,
        state: &str,
    ) -> Result<ProviderUser, SigninError> {
        let c = &provider.config;
        let token_url = c
            .token_endpoint
            .as_deref()
            .ok_or_else(|| failed("configuration", "no token endpoint"))?;
        let profile_url = c
            .userinfo_endpoint
            .as_deref()
            .ok_or_else(|| failed("configuration", "no profile endpoint"))?;
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", c.client_id.as_str()),
            ("client_secret", c.client_secret.expose()),
            ("code", code),
            ("redirect_uri", redirect_url),
            ("code_verifier", pkce_verifier),
            // Naver's token request names the state too.
            ("state", state),
        ];
        let resp = self
            .http
            .post(token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| failed("token request", e.without_url()))?;
        let status = resp.status();
        let body = read_limited(resp).await?;
        // Naver answers some errors with 200 and an `error` field; `expires_in` is a string.
        #[derive(Deserialize)]
        struct Token {
            access_token: Option<String>,
            error: Option<String>,
            error_description: Option<String>,
        }
        let token: Token = serde_json::from_slice(&body)
            .map_err(|e| failed(&format!("token response ({status})"), e))?;
        if let Some(code) = token.error.filter(|e| !e.is_empty()) {
            return Err(SigninError::Refused {
                code,
                detail: token.error_description.unwrap_or_default(),
            });
        }
        let access = match token.access_token {
            Some(t) if status.is_success() && !t.is_empty() => t,
            _ => {
                return Err(failed(
                    "token response",
                    format!("status {status}, no token"),
                ))
            }
        };
        let resp = self
            .http
            .get(profile_url)
            .bearer_auth(&access)
            .send()
            .await
            .map_err(|e| failed("profile request", e.without_url()))?;
        let status = resp.status();
        let body = read_limited(resp).await?;
        #[derive(Deserialize)]
        struct Profile {
            resultcode: Option<String>,
            message: Option<String>,
            response: Option<ProfileBody>,
        }
        #[derive(Deserialize)]
        struct ProfileBody {
            id: Option<String>,
            nickname: Option<String>,
            name: Option<String>,
        }
        let profile: Profile = serde_json::from_slice(&body)
            .map_err(|e| failed(&format!("profile response ({status})"), e))?;
        let ok = status.is_success() && profile.resultcode.as_deref() == Some("00");
        let body = match profile.response {
            Some(b) if ok => b,
            _ => {
                return Err(failed(
                    "profile response",
                    format!(
                        "status {status}, result {:?}: {}",
                        profile.resultcode,
                        profile.message.unwrap_or_default()
                    ),
                ))
            }
        };
        let subject = body
            .id
            .filter(|id| !id.is_empty() && id.len() <= 255)
            .ok_or_else(|| failed("profile response", "no id"))?;
        Ok(ProviderUser {
            subject,
            // Naver says nothing about whether an address is verified: never used to link.
            verified_email: None,
            nickname: body.nickname.or(body.name),
        })
    }

    /// The provider's client, from its discovery document (fetched, or cached for an hour; a
    /// stale one is used while the provider cannot be reached).
    async fn client(&self, provider: &Provider, redirect_url: &str) -> Result<Client, SigninError> {
        let mut cached = provider.discovered.lock().await;
        let fresh = cached
            .as_ref()
            .is_some_and(|d| d.fetched.elapsed() < DISCOVERY_TTL);
        let recent_failure = provider
            .failed
            .lock()
            .as_ref()
            .filter(|(at, _)| at.elapsed() < DISCOVERY_RETRY)
            .map(|(_, why)| why.clone());
        if !fresh {
            match recent_failure {
                Some(_) if cached.is_some() => {}
                Some(why) => return Err(SigninError::Failed(why)),
                None => match self.discover(provider).await {
                    Ok(meta) => {
                        let jwks_refetched = cached.as_ref().and_then(|d| d.jwks_refetched);
                        *cached = Some(Discovered {
                            meta,
                            fetched: Instant::now(),
                            jwks_refetched,
                        });
                        *provider.failed.lock() = None;
                    }
                    Err(e) => {
                        *provider.failed.lock() = Some((Instant::now(), e.to_string()));
                        if cached.is_none() {
                            return Err(e);
                        }
                        tracing::warn!(provider = %provider.config.id, error = %e, "discovery failed; using the document fetched before");
                    }
                },
            }
        }
        let meta = cached.as_ref().expect("filled above").meta.clone();
        drop(cached);
        self.make_client(provider, meta, redirect_url)
    }

    async fn discover(&self, provider: &Provider) -> Result<CoreProviderMetadata, SigninError> {
        let issuer = provider
            .config
            .issuer
            .as_deref()
            .ok_or_else(|| failed("configuration", "no issuer"))?;
        let issuer = IssuerUrl::new(issuer.to_string()).map_err(|e| failed("issuer", e))?;
        CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| failed("discovery", error_chain(&e)))
    }

    /// Fetches the provider's keys again (at most every [`JWKS_REFRESH_MIN`]).
    async fn refresh_jwks(
        &self,
        provider: &Provider,
        redirect_url: &str,
    ) -> Result<Client, SigninError> {
        let mut cached = provider.discovered.lock().await;
        let d = cached
            .as_mut()
            .ok_or_else(|| failed("keys", "no discovery document"))?;
        if d.jwks_refetched
            .is_none_or(|t| t.elapsed() >= JWKS_REFRESH_MIN)
        {
            let jwks = CoreJsonWebKeySet::fetch_async(d.meta.jwks_uri(), &self.http)
                .await
                .map_err(|e| failed("keys", error_chain(&e)))?;
            tracing::info!(provider = %provider.config.id, keys = jwks.keys().len(), "provider's signing keys fetched again");
            d.meta = d.meta.clone().set_jwks(jwks);
            d.jwks_refetched = Some(Instant::now());
        }
        let meta = d.meta.clone();
        drop(cached);
        self.make_client(provider, meta, redirect_url)
    }

    fn make_client(
        &self,
        provider: &Provider,
        meta: CoreProviderMetadata,
        redirect_url: &str,
    ) -> Result<Client, SigninError> {
        // The secret goes in the body only for a provider that takes it nowhere else (Kakao).
        let post_only = meta
            .token_endpoint_auth_methods_supported()
            .is_some_and(|m| {
                m.contains(&CoreClientAuthMethod::ClientSecretPost)
                    && !m.contains(&CoreClientAuthMethod::ClientSecretBasic)
            });
        let client = CoreClient::from_provider_metadata(
            meta,
            ClientId::new(provider.config.client_id.clone()),
            Some(ClientSecret::new(
                provider.config.client_secret.expose().to_string(),
            )),
        )
        .set_redirect_uri(
            RedirectUrl::new(redirect_url.to_string()).map_err(|e| failed("redirect URL", e))?,
        );
        Ok(if post_only {
            client.set_auth_type(AuthType::RequestBody)
        } else {
            client
        })
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// An error with its causes, one line (without URLs that may carry codes).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn token_error<RE: std::error::Error + 'static>(
    e: RequestTokenError<
        RE,
        openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    >,
) -> SigninError {
    match e {
        RequestTokenError::ServerResponse(r) => SigninError::Refused {
            code: r.error().to_string(),
            detail: r.error_description().cloned().unwrap_or_default(),
        },
        other => failed("token request", error_chain(&other)),
    }
}

async fn read_limited(mut resp: reqwest::Response) -> Result<Vec<u8>, SigninError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| failed("provider's answer", e.without_url()))?
    {
        if body.len() + chunk.len() > MAX_PROFILE_BYTES {
            return Err(failed("provider's answer", "too large"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Signs small records that travel in cookies and links (a sign-in under way, an identity
/// waiting for its username, a ticket to connect a provider) with a key every node shares, so
/// any node can check what another issued. Signed, not encrypted: nothing in them is a secret
/// a browser's owner may not see, and they are HttpOnly.
#[derive(Clone)]
pub struct Sealer {
    key: Arc<Vec<u8>>,
}

impl Sealer {
    pub fn new(key: Vec<u8>) -> Sealer {
        Sealer { key: Arc::new(key) }
    }

    fn mac(&self, purpose: &str, body: &str) -> hmac::Hmac<sha2::Sha256> {
        use hmac::Mac;
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key).expect("any key");
        m.update(purpose.as_bytes());
        m.update(b".");
        m.update(body.as_bytes());
        m
    }

    /// `value` as `body.signature`, good only for `purpose` and until `expires_at` (ms).
    pub fn seal<T: serde::Serialize>(&self, purpose: &str, value: &T, expires_at: i64) -> String {
        use base64::Engine;
        use hmac::Mac;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let json = serde_json::to_vec(&(expires_at, value)).expect("plain data");
        let body = b64.encode(json);
        let sig = b64.encode(self.mac(purpose, &body).finalize().into_bytes());
        format!("{body}.{sig}")
    }

    /// What `seal` sealed, if the signature holds for `purpose` and it has not expired at `now`.
    pub fn open<T: serde::de::DeserializeOwned>(
        &self,
        purpose: &str,
        sealed: &str,
        now: i64,
    ) -> Option<T> {
        use base64::Engine;
        use hmac::Mac;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (body, sig) = sealed.split_once('.')?;
        let sig = b64.decode(sig).ok()?;
        self.mac(purpose, body).verify_slice(&sig).ok()?;
        let (expires_at, value): (i64, T) = serde_json::from_slice(&b64.decode(body).ok()?).ok()?;
        (now < expires_at).then_some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::Sealer;

    #[test]
    fn sealed_values_open_only_as_sealed_and_in_time() {
        let s = Sealer::new(b"k".to_vec());
        let v = s.seal("flow", &("a", 1), 1000);
        assert_eq!(
            s.open::<(String, i32)>("flow", &v, 999),
            Some(("a".into(), 1))
        );
        assert_eq!(s.open::<(String, i32)>("flow", &v, 1000), None, "expired");
        assert_eq!(
            s.open::<(String, i32)>("pending", &v, 1),
            None,
            "other purpose"
        );
        assert_eq!(
            Sealer::new(b"j".to_vec()).open::<(String, i32)>("flow", &v, 1),
            None
        );
        let (body, sig) = v.split_once('.').unwrap();
        let mut tampered = body.to_string();
        tampered.insert(0, 'A');
        assert_eq!(
            s.open::<(String, i32)>("flow", &format!("{tampered}.{sig}"), 1),
            None
        );
        assert_eq!(s.open::<(String, i32)>("flow", "garbage", 1), None);
    }
}

#[cfg(test)]
mod corpus {
    use super::Sealer;

    /// The fuzz target's seeds (fuzz/corpus/signin_cookie): none opens, none panics.
    #[test]
    fn forged_cookies_from_the_corpus_never_open() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/signin_cookie");
        let sealer = Sealer::new(b"fuzz key".to_vec());
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            for purpose in ["flow", "pending", "link"] {
                assert!(sealer
                    .open::<serde_json::Value>(purpose, &text, 0)
                    .is_none());
            }
            n += 1;
        }
        assert!(n >= 8, "the corpus is there");
    }
}
