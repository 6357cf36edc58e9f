//! Accounts: signing up, logging in and out (login sessions), and API tokens. Credentials are
//! checked here; per-address rate limits and cookies are the HTTP edge's.

mod identities;
pub use identities::{suggest_username, IdentityView};

use super::{Error, Result};
use crate::auth::hasher::{HashError, Hasher};
use crate::auth::{self, Username, SESSION_TTL_MS, TOKEN_PREFIX};
use crate::storage::users::{self, TokenInfo, User};
use crate::storage::{is_unique_violation, now_ms, Db};

/// API tokens a user may hold at once.
pub const MAX_TOKENS: usize = 50;

/// How long a browser that signed in stays trusted (its cookie lives as long).
pub const DEVICE_TRUST_MS: i64 = 365 * 24 * 3600 * 1000;
/// How long an address that signed in stays trusted.
pub const ADDRESS_TRUST_MS: i64 = 90 * 24 * 3600 * 1000;

/// Where a log-in attempt comes from.
pub struct LoginSource {
    /// The client address, as counted (an IPv6 one by its /64).
    pub address: String,
    /// The browser's `moim_device` cookie, if it sent one.
    pub device: Option<String>,
}

/// Account operations; cheap to clone.
#[derive(Clone)]
pub struct Accounts {
    db: Db,
    hasher: Hasher,
}

/// A login session just made: the secret goes into the cookie, only its hash is stored.
pub struct Session {
    pub secret: String,
    pub max_age_s: i64,
}

/// A token just made: shown to its holder once.
pub struct NewToken {
    pub id: i64,
    pub name: String,
    pub token: String,
}

impl Accounts {
    pub fn new(db: Db, hasher: Hasher) -> Accounts {
        Accounts { db, hasher }
    }

    /// Checks the username and password rules (before any rate limit is spent).
    pub fn check_signup(&self, username: &str, password: &str) -> Result<Username> {
        let name = auth::check_new_username(username)?;
        auth::check_password(password)?;
        Ok(name)
    }

    /// Creates an account (the first one becomes admin) from the name `check_signup` returned.
    /// A name whose key or confusable skeleton another account has is taken.
    pub async fn signup(&self, name: Username, password: String) -> Result<User> {
        let hash = self.hasher.hash(password).await?;
        let created = async {
            let mut tx = self.db.begin().await?;
            let user = users::create(&mut tx, &name.display, &name.key, &hash, now_ms()).await?;
            for skeleton in &name.skeletons {
                users::claim_skeleton(&mut tx, skeleton, user.id).await?;
            }
            tx.commit().await?;
            Ok::<_, crate::storage::DbError>(user)
        }
        .await;
        let user = match created {
            Ok(u) => u,
            Err(e) if is_unique_violation(&e) => {
                return Err(Error::conflict(
                    "username_taken",
                    "that username is taken, or looks the same as one that is",
                ))
            }
            Err(e) => return Err(e.into()),
        };
        tracing::info!(user = %user.username, role = user.role.as_str(), "account created");
        Ok(user)
    }

    /// The accounts a name typed at log-in may mean: one per key of `auth::lookup_keys` that
    /// belongs to one (two only when an account made under older rules shares today's key
    /// with a newer one).
    async fn find_by_name(&self, keys: &[String]) -> Result<Vec<(User, String)>> {
        let mut found = Vec::with_capacity(1);
        for key in keys {
            if let Some(account) = users::find_with_hash(&self.db.pool, key).await? {
                found.push(account);
            }
        }
        Ok(found)
    }

    /// Gives accounts made before confusable skeletons existed their skeleton (the older of
    /// two look-alikes keeps it; the younger can still log in, and no new account can look
    /// like either). Runs at start-up; returns how many it filled in.
    pub async fn backfill_skeletons(&self) -> Result<usize> {
        let mut filled = 0;
        loop {
            let batch = users::without_skeleton(&self.db.pool, 500).await?;
            if batch.is_empty() {
                return Ok(filled);
            }
            for (id, username) in batch {
                let key = auth::lookup_keys(&username)
                    .into_iter()
                    .next()
                    .unwrap_or_default();
                let mut claimed = 0;
                for skeleton in auth::skeletons_of(&username, &key) {
                    if users::backfill_skeleton(&self.db.pool, &skeleton, id).await? {
                        claimed += 1;
                    }
                }
                if claimed == 0 {
                    tracing::warn!(%username, "an older account looks the same as this one");
                    users::backfill_skeleton(&self.db.pool, &format!("#look-alike-{id}"), id)
                        .await?;
                }
                filled += 1;
            }
        }
    }

    /// The account if the password is right; `None` for a wrong password or an unknown (or
    /// malformed) name alike, at the same cost. `keys` come from `auth::lookup_keys`.
    pub async fn verify(&self, keys: &[String], password: String) -> Result<Option<User>> {
        let found = self.find_by_name(keys).await?;
        if found.is_empty() {
            // Same cost as a wrong password: nothing to learn from the timing.
            self.hasher.verify(password, None).await?;
            return Ok(None);
        }
        for (user, hash) in found {
            // An account made through a provider has no password until its owner sets one.
            let hash = (!hash.is_empty()).then_some(hash);
            if self.hasher.verify(password.clone(), hash).await? {
                return Ok(Some(user));
            }
        }
        Ok(None)
    }

    /// True when the account `key` has signed in from this browser or this address before
    /// (within [`DEVICE_TRUST_MS`] / [`ADDRESS_TRUST_MS`]). Failures from such a source do not
    /// count toward the account's lock-out.
    /// `keys` come from `auth::lookup_keys` (an account made under older rules is stored under
    /// its second key).
    pub async fn is_trusted(&self, keys: &[String], source: &LoginSource) -> Result<bool> {
        let now = now_ms();
        let device = source.device.as_deref().map(auth::secret_hash);
        for key in keys {
            // One query per kind, each with its own horizon.
            if let Some(d) = &device {
                if users::is_trusted(&self.db.pool, key, "", Some(d), now - DEVICE_TRUST_MS).await?
                {
                    return Ok(true);
                }
            }
            if users::is_trusted(
                &self.db.pool,
                key,
                &source.address,
                None,
                now - ADDRESS_TRUST_MS,
            )
            .await?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Remembers where `user` just signed in from. Returns a new device secret for the
    /// browser's cookie when it sent none.
    pub async fn remember_source(
        &self,
        user: &User,
        source: &LoginSource,
    ) -> Result<Option<String>> {
        let now = now_ms();
        let (device, minted) = match &source.device {
            Some(d) => (d.clone(), None),
            None => {
                let d = auth::random_secret();
                (d.clone(), Some(d))
            }
        };
        let mut tx = self.db.begin().await?;
        users::remember_trusted(
            &mut tx,
            user.id,
            users::TrustKind::Device,
            &auth::secret_hash(&device),
            now,
        )
        .await?;
        users::remember_trusted(
            &mut tx,
            user.id,
            users::TrustKind::Address,
            &source.address,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(minted)
    }

    pub async fn start_session(&self, user: &User) -> Result<Session> {
        let secret = auth::random_secret();
        let now = now_ms();
        users::create_session(
            &self.db.pool,
            &auth::secret_hash(&secret),
            user.id,
            now,
            now + SESSION_TTL_MS,
        )
        .await?;
        Ok(Session {
            secret,
            max_age_s: SESSION_TTL_MS / 1000,
        })
    }

    /// Ends the session whose cookie value is `secret` (unknown ones are already over).
    pub async fn end_session(&self, secret: &str) -> Result<()> {
        users::delete_session(&self.db.pool, &auth::secret_hash(secret)).await?;
        Ok(())
    }

    pub async fn create_token(&self, user: &User, name: &str) -> Result<NewToken> {
        let name = super::text::clean_line(name, 64).map_err(|e| {
            Error::invalid(
                "invalid_name",
                match e {
                    super::text::TextError::Empty => {
                        "token name needs at least one visible character"
                    }
                    super::text::TextError::TooLong => "token name must be at most 64 characters",
                },
            )
        })?;
        let name = name.as_str();
        let mut tx = self.db.begin().await?;
        if users::list_tokens(&mut *tx, user.id).await?.len() >= MAX_TOKENS {
            return Err(Error::conflict(
                "too_many_tokens",
                format!("at most {MAX_TOKENS} tokens; revoke one first"),
            ));
        }
        let token = format!("{TOKEN_PREFIX}{}", auth::random_secret());
        let id = users::create_token(
            &mut *tx,
            user.id,
            name,
            &auth::secret_hash(&token),
            now_ms(),
        )
        .await?;
        tx.commit().await?;
        Ok(NewToken {
            id,
            name: name.to_string(),
            token,
        })
    }

    pub async fn tokens(&self, user: &User) -> Result<Vec<TokenInfo>> {
        Ok(users::list_tokens(&self.db.pool, user.id).await?)
    }

    /// Revokes one of the caller's tokens; someone else's is "not found".
    /// Sets a member's site role (admins only; an admin cannot demote themselves, so the site
    /// keeps one).
    pub async fn set_role(&self, admin: &User, username: &str, role: &str) -> Result<User> {
        super::policy::require_site(Some(admin), super::policy::SiteAction::Administer)?;
        let role = users::Role::from_api(role)
            .ok_or_else(|| Error::invalid("invalid_role", "role is member, moderator or admin"))?;
        let mut member = None;
        for key in auth::lookup_keys(username) {
            if let Some(u) = users::find_by_key(&self.db.pool, &key).await? {
                member = Some(u);
                break;
            }
        }
        let mut member = member.ok_or_else(|| Error::not_found("user"))?;
        if member.id == admin.id && role != users::Role::Admin {
            return Err(Error::conflict(
                "last_admin",
                "you cannot step down yourself; another admin can",
            ));
        }
        users::set_role(&self.db.pool, member.id, role).await?;
        member.role = role;
        Ok(member)
    }

    pub async fn delete_token(&self, user: &User, id: &str) -> Result<()> {
        let id: i64 = id.parse().map_err(|_| Error::not_found("token"))?;
        if users::delete_token(&self.db.pool, user.id, id).await? {
            Ok(())
        } else {
            Err(Error::not_found("token"))
        }
    }
}

impl From<auth::AuthError> for Error {
    fn from(e: auth::AuthError) -> Self {
        match e {
            auth::AuthError::Invalid { code, message } => Error::invalid(code, message),
            auth::AuthError::BadToken => Error::Unauthorized,
            auth::AuthError::Db(e) => Error::Db(e),
        }
    }
}

impl From<HashError> for Error {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy(b) => Error::Busy {
                message: b.to_string(),
                retry_after_s: b.retry_after_s,
            },
            HashError::Internal(e) => Error::Internal(e),
        }
    }
}
