//! Share links: `/s/{code}` lets anyone with the link watch one video, without an account and
//! whatever the video's visibility, until the link expires, runs out of views or is revoked
//! (Shlink's and Kutt's model: optional custom slug, expiry, view limit, password, visit counts).
//!
//! Opening a link counts a view (one statement checks what is left and counts, so parallel
//! visitors cannot overrun the limit) and hands the visitor a grant: a cookie
//! `moim_share_{code}` = `{expires_ms}.{HMAC-SHA256}` over the code, the video and the expiry,
//! keyed by a secret kept in the database (the same on every node). The grant lets that
//! browser fetch that video's media and reload the page without counting again; nothing else.
//! Each media request still checks that the link is live, so revoking it cuts off its viewers.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::policy::{self, VideoAction};
use super::{Error, Result};
use crate::auth::hasher::Hasher;
use crate::auth::limiter::KeyedLimiter;
use crate::storage::shares::{self, Share};
use crate::storage::users::User;
use crate::storage::videos::{self, Video, VideoStatus};
use crate::storage::{now_ms, settings, Db};

/// Links one video may have (revoked ones included).
pub const MAX_PER_VIDEO: i64 = 100;
/// Longest a grant lasts (a link without expiry is opened again after this).
const GRANT_MS: i64 = 12 * 3600 * 1000;
/// Where the signing secret is kept.
const KEY_SETTING: &str = "share_signing_key";
/// Prefix of grant cookies.
pub const COOKIE_PREFIX: &str = "moim_share_";

/// What a new link asks for.
#[derive(Debug, Default, Clone)]
pub struct NewShare {
    pub slug: Option<String>,
    pub expires_at: Option<i64>,
    pub password: Option<String>,
    pub max_views: Option<i64>,
}

/// Where a link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareState {
    Active,
    Expired,
    Exhausted,
    Revoked,
}

pub fn state_of(s: &Share, now: i64) -> ShareState {
    if s.revoked_at.is_some() {
        ShareState::Revoked
    } else if s.expires_at.is_some_and(|e| e <= now) {
        ShareState::Expired
    } else if s.max_views.is_some_and(|m| s.views >= m) {
        ShareState::Exhausted
    } else {
        ShareState::Active
    }
}

/// A grant a visitor holds: the cookie's code and value.
#[derive(Debug, Clone)]
pub struct Grant {
    pub code: String,
    pub value: String,
}

/// A link opened: what to show, and the grant cookie to set (when a view was counted).
pub struct Opened {
    pub share: Share,
    pub video: Video,
    pub grant: Option<(String, i64)>,
}

#[derive(Clone)]
pub struct Shares {
    db: Db,
    hasher: Hasher,
    key: Arc<Vec<u8>>,
    unlocks: Arc<KeyedLimiter<String>>,
}

impl Shares {
    /// Loads (or, on the first start of the first node, makes) the signing secret.
    pub async fn new(db: Db, hasher: Hasher) -> Result<Shares> {
        let fresh = crate::auth::random_secret();
        let key = settings::put_if_absent(&db.pool, KEY_SETTING, &fresh).await?;
        Ok(Shares {
            db,
            hasher,
            key: Arc::new(key.into_bytes()),
            // Password tries per link: 10 in a row, then one every 6 s, whoever tries.
            unlocks: Arc::new(KeyedLimiter::new(10, 1.0 / 6.0, 100_000)),
        })
    }

    /// A new link to `video`, which `user` must be allowed to manage.
    pub async fn create(&self, user: &User, video: &Video, new: NewShare) -> Result<Share> {
        if !policy::may_video(Some(user), video, VideoAction::Manage) {
            return Err(Error::Forbidden(
                "only its owner may share this video".into(),
            ));
        }
        let now = now_ms();
        if new.expires_at.is_some_and(|e| e <= now) {
            return Err(Error::invalid(
                "invalid_expiry",
                "expires_at must be in the future",
            ));
        }
        if new
            .max_views
            .is_some_and(|m| !(1..=1_000_000_000).contains(&m))
        {
            return Err(Error::invalid(
                "invalid_max_views",
                "max_views must be 1 or more",
            ));
        }
        let password_hash = match new.password.as_deref() {
            None | Some("") => None,
            Some(p) if p.chars().count() > 200 => {
                return Err(Error::invalid(
                    "invalid_password",
                    "the password is over 200 characters",
                ))
            }
            // Guessing is slowed per link, not stopped: a password needs some length.
            Some(p) if p.chars().count() < MIN_PASSWORD => {
                return Err(Error::invalid(
                    "invalid_password",
                    format!("a link's password has at least {MIN_PASSWORD} characters"),
                ))
            }
            Some(p) => Some(self.hasher.hash(p.to_string()).await?),
        };
        let custom = match new.slug.as_deref() {
            None | Some("") => None,
            Some(s) => Some(check_slug(s)?),
        };
        if shares::count_of_video(&self.db.pool, video.id).await? >= MAX_PER_VIDEO {
            return Err(Error::conflict(
                "too_many_shares",
                format!("a video has at most {MAX_PER_VIDEO} share links; delete old ones"),
            ));
        }
        // A custom slug is taken or not; a random code is retried on the rare collision.
        for _ in 0..5 {
            let code = custom.clone().unwrap_or_else(random_code);
            let made = shares::create(
                &self.db.pool,
                &code,
                video.id,
                user.id,
                password_hash.as_deref(),
                new.expires_at,
                new.max_views,
                now,
            )
            .await?;
            if made {
                return shares::get(&self.db.pool, &code)
                    .await?
                    .ok_or_else(|| Error::not_found("share"));
            }
            if custom.is_some() {
                return Err(Error::conflict("slug_taken", "that link name is taken"));
            }
        }
        Err(Error::Internal(anyhow::anyhow!(
            "no free share code in 5 tries"
        )))
    }

    /// A video's links, for whoever may manage it.
    pub async fn list(&self, user: &User, video: &Video) -> Result<Vec<Share>> {
        if !policy::may_video(Some(user), video, VideoAction::Manage) {
            return Err(Error::Forbidden("only its owner may see its links".into()));
        }
        Ok(shares::of_video(&self.db.pool, video.id).await?)
    }

    /// Revokes one of a video's links.
    pub async fn revoke(&self, user: &User, video: &Video, code: &str) -> Result<()> {
        if !policy::may_video(Some(user), video, VideoAction::Manage) {
            return Err(Error::Forbidden(
                "only its owner may revoke its links".into(),
            ));
        }
        let share = shares::get(&self.db.pool, &code.to_ascii_lowercase())
            .await?
            .filter(|s| s.video_id == video.id)
            .ok_or_else(|| Error::not_found("share"))?;
        shares::revoke(&self.db.pool, share.id, now_ms()).await?;
        Ok(())
    }

    /// The link and its video, if it is live; why not otherwise (404 unknown, 410 over).
    async fn live(&self, code: &str) -> Result<(Share, Video)> {
        let code = code.to_ascii_lowercase();
        if code.len() > 64 || !code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(Error::not_found("share link"));
        }
        let share = shares::get(&self.db.pool, &code)
            .await?
            .ok_or_else(|| Error::not_found("share link"))?;
        let video = videos::get_by_id(&self.db.pool, share.video_id)
            .await?
            .ok_or_else(|| Error::not_found("share link"))?;
        match state_of(&share, now_ms()) {
            ShareState::Revoked => Err(gone("share_revoked", "this link was revoked")),
            ShareState::Expired => Err(gone("share_expired", "this link has expired")),
            ShareState::Active | ShareState::Exhausted => Ok((share, video)),
        }
    }

    /// Where a link stands without counting anything (for the page's status line).
    pub async fn peek(&self, code: &str, grants: &[Grant]) -> Result<()> {
        let (share, video) = self.live(code).await?;
        if self.holds(&share, &video, grants) {
            return Ok(());
        }
        if state_of(&share, now_ms()) == ShareState::Exhausted {
            return Err(exhausted());
        }
        if share.password_hash.is_some() {
            return Err(password_required());
        }
        Ok(())
    }

    /// Opens a link: with a grant for it, as it is; else counts a view and hands out a grant;
    /// a link with a password must be unlocked instead.
    pub async fn open(&self, code: &str, grants: &[Grant]) -> Result<Opened> {
        let (share, video) = self.live(code).await?;
        if video.status != VideoStatus::Ready {
            return Err(Error::conflict("not_ready", "the video is not ready yet"));
        }
        if self.holds(&share, &video, grants) {
            return Ok(Opened {
                share,
                video,
                grant: None,
            });
        }
        if share.password_hash.is_some() {
            if state_of(&share, now_ms()) == ShareState::Exhausted {
                return Err(exhausted());
            }
            return Err(password_required());
        }
        self.count_and_grant(share, video).await
    }

    /// Opens a link with its password.
    pub async fn unlock(&self, code: &str, password: &str) -> Result<Opened> {
        let (share, video) = self.live(code).await?;
        if self.unlocks.check(&share.code).is_err() {
            return Err(Error::Busy {
                message: "too many wrong passwords for this link; wait a minute".into(),
                retry_after_s: 6,
            });
        }
        let ok = self
            .hasher
            .verify(password.to_string(), share.password_hash.clone())
            .await?;
        if !ok {
            return Err(Error::PasswordRequired {
                code: "wrong_password",
                message: "that is not the link's password".into(),
            });
        }
        // Only wrong guesses count against the link.
        self.unlocks.refund(&share.code);
        if video.status != VideoStatus::Ready {
            return Err(Error::conflict("not_ready", "the video is not ready yet"));
        }
        self.count_and_grant(share, video).await
    }

    async fn count_and_grant(&self, share: Share, video: Video) -> Result<Opened> {
        let now = now_ms();
        if !shares::count_view(&self.db.pool, &share.code, now).await? {
            // Between the read and the count it ran out (or was revoked, or expired).
            let fresh = shares::get(&self.db.pool, &share.code).await?;
            return Err(match fresh.map(|s| state_of(&s, now)) {
                Some(ShareState::Revoked) => gone("share_revoked", "this link was revoked"),
                Some(ShareState::Expired) => gone("share_expired", "this link has expired"),
                _ => exhausted(),
            });
        }
        let until = share
            .expires_at
            .map_or(now + GRANT_MS, |e| e.min(now + GRANT_MS));
        let value = format!(
            "{until}.{}",
            self.sign(&share.code, &video.public_id, until)
        );
        let share = shares::get(&self.db.pool, &share.code)
            .await?
            .ok_or_else(|| Error::not_found("share link"))?;
        Ok(Opened {
            share,
            video,
            grant: Some((value, until)),
        })
    }

    /// Whether the visitor may fetch `video`'s files through one of their grants (each checked
    /// against its link, which must still be live).
    pub async fn admits(&self, video: &Video, grants: &[Grant]) -> Result<bool> {
        for g in grants {
            // The signature first: made-up cookies cost no database reads.
            if !self.signed(g, &video.public_id) {
                continue;
            }
            let Some(share) = shares::get(&self.db.pool, &g.code).await? else {
                continue;
            };
            let live = matches!(
                state_of(&share, now_ms()),
                ShareState::Active | ShareState::Exhausted
            );
            if live && share.video_id == video.id && self.holds(&share, video, grants) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether one of `grants` is a valid, unexpired grant of `share` for `video`.
    fn holds(&self, share: &Share, video: &Video, grants: &[Grant]) -> bool {
        grants
            .iter()
            .any(|g| g.code == share.code && self.signed(g, &video.public_id))
    }

    /// Whether `g` carries our unexpired signature for its code and `video`.
    fn signed(&self, g: &Grant, video: &str) -> bool {
        let Some((until, mac)) = g.value.split_once('.') else {
            return false;
        };
        let Ok(until) = until.parse::<i64>() else {
            return false;
        };
        until > now_ms() && self.verify(&g.code, video, until, mac)
    }

    fn mac(&self, code: &str, video: &str, until: i64) -> Hmac<Sha256> {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        m.update(format!("share\0{code}\0{video}\0{until}").as_bytes());
        m
    }

    fn sign(&self, code: &str, video: &str, until: i64) -> String {
        let tag = self.mac(code, video, until).finalize().into_bytes();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag)
    }

    fn verify(&self, code: &str, video: &str, until: i64, mac: &str) -> bool {
        let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(mac) else {
            return false;
        };
        // Constant-time comparison.
        self.mac(code, video, until).verify_slice(&tag).is_ok()
    }
}

/// How long a grant cookie should live, from its expiry.
pub fn grant_max_age(until: i64) -> Duration {
    Duration::from_millis((until - now_ms()).max(0) as u64)
}

fn gone(code: &'static str, message: &str) -> Error {
    Error::Gone {
        code,
        message: message.into(),
    }
}

fn exhausted() -> Error {
    gone(
        "share_exhausted",
        "this link has been viewed as often as it may be",
    )
}

/// The shortest password a link may have.
const MIN_PASSWORD: usize = 6;

fn password_required() -> Error {
    Error::PasswordRequired {
        code: "password_required",
        message: "this link needs a password".into(),
    }
}

/// A custom link name: 3–64 of `a-z`, `0-9` and `-`, not starting or ending with `-`
/// (letters are folded to lower case).
fn check_slug(raw: &str) -> Result<String> {
    let s = raw.trim().to_ascii_lowercase();
    let ok = (3..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(s)
    } else {
        Err(Error::invalid(
            "invalid_slug",
            "a link name is 3–64 letters, digits and dashes (not at the ends)",
        ))
    }
}

/// Eight characters of `a-z0-9` (41 bits): short to type, too many to guess.
fn random_code() -> String {
    random_code_of(8)
}

/// `len` random characters of an alphabet without look-alikes (5 bits each).
pub(super) fn random_code_of(len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(check_slug(" Summer-Trip ").unwrap(), "summer-trip");
        for bad in [
            "ab",
            "-abc",
            "abc-",
            "a b c",
            "여름여름",
            "a/b/c",
            &"x".repeat(65),
        ] {
            assert!(check_slug(bad).is_err(), "{bad}");
        }
        let code = random_code();
        assert_eq!(code.len(), 8);
        assert!(check_slug(&code).is_ok());
    }

    #[test]
    fn states() {
        let base = Share {
            id: 1,
            code: "c".into(),
            video_id: 1,
            created_by: 1,
            password_hash: None,
            expires_at: None,
            max_views: None,
            views: 3,
            last_view_at: None,
            revoked_at: None,
            created_at: 0,
        };
        assert_eq!(state_of(&base, 10), ShareState::Active);
        let s = Share {
            max_views: Some(3),
            ..base.clone()
        };
        assert_eq!(state_of(&s, 10), ShareState::Exhausted);
        let s = Share {
            expires_at: Some(10),
            ..base.clone()
        };
        assert_eq!(state_of(&s, 10), ShareState::Expired);
        let s = Share {
            revoked_at: Some(1),
            expires_at: Some(5),
            ..base
        };
        assert_eq!(state_of(&s, 10), ShareState::Revoked);
    }
}
