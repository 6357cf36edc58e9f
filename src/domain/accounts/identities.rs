//! Accounts' identities at sign-in providers: signing in with one, making an account from one,
//! connecting and disconnecting them, and setting a password on an account that has none. The
//! identity is the pair (provider, subject), never an e-mail address.

use super::Accounts;
use crate::auth::{self, Username};
use crate::domain::{Error, Result};
use crate::storage::identities;
use crate::storage::users::{self, User};
use crate::storage::{is_unique_violation, now_ms};

/// One provider an account signs in with.
pub struct IdentityView {
    pub provider: String,
    pub linked_at: i64,
}

/// A valid username from what a provider calls the person: letters, digits, `_` and `-` kept
/// (spaces become `_`), cut to 32 characters; `member` when nothing is left.
fn username_from(nickname: Option<&str>) -> String {
    use unicode_normalization::UnicodeNormalization;
    let raw: String = nickname.unwrap_or("").trim().nfkc().collect();
    let mut out = String::new();
    for c in raw.chars() {
        if c.is_alphanumeric() || c == '_' || c == '-' {
            out.push(c);
        } else if c.is_whitespace() && !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
        if out.chars().count() >= 32 {
            break;
        }
    }
    let out = out.trim_matches('_').to_string();
    if auth::check_new_username(&out).is_ok() {
        out
    } else {
        "member".into()
    }
}

/// The username to offer someone signing up through a provider: made valid from their
/// nickname, then unique (a number added) among accounts and their look-alikes.
pub async fn suggest_username(accounts: &Accounts, nickname: Option<&str>) -> Result<String> {
    let base = username_from(nickname);
    for attempt in 0..8u32 {
        let candidate = if attempt == 0 {
            base.clone()
        } else {
            let n = if attempt < 4 {
                attempt + 1
            } else {
                1000 + rand::random::<u32>() % 9000
            };
            let suffix = n.to_string();
            let keep = 32 - suffix.len();
            format!("{}{suffix}", base.chars().take(keep).collect::<String>())
        };
        let Ok(name) = auth::check_new_username(&candidate) else {
            continue;
        };
        if !accounts.name_taken(&name).await? {
            return Ok(name.display);
        }
    }
    Ok(String::new())
}

impl Accounts {
    /// Whether an account holds this name or one that looks the same.
    pub async fn name_taken(&self, name: &Username) -> Result<bool> {
        if users::find_by_key(&self.db.pool, &name.key)
            .await?
            .is_some()
        {
            return Ok(true);
        }
        for s in &name.skeletons {
            if users::skeleton_taken(&self.db.pool, s).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The account the identity signs in to: the one it is connected to, or, when the
    /// provider vouched for the address (`verified_email`) and the operator trusts it and the
    /// other providers in `trusting` to do so, the one account such a provider vouched the same
    /// address for (the identity is connected to it then).
    pub async fn sign_in_with(
        &self,
        provider: &str,
        subject: &str,
        verified_email: Option<&str>,
        trusting: &[String],
    ) -> Result<Option<User>> {
        if let Some(user) = identities::user_of(&self.db.pool, provider, subject).await? {
            return Ok(Some(user));
        }
        let Some(email) = verified_email.filter(|_| trusting.iter().any(|t| t == provider)) else {
            return Ok(None);
        };
        let Some(user) = identities::user_by_email(&self.db.pool, email, trusting).await? else {
            return Ok(None);
        };
        match self.connect(&user, provider, subject, Some(email)).await {
            Ok(()) => {
                tracing::info!(user = %user.username, provider, "identity connected by a verified address");
                Ok(Some(user))
            }
            // The account has another identity at this provider: do not guess.
            Err(Error::Conflict { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Makes an account (the first one becomes admin) that signs in with the identity; it has no
    /// password until its owner sets one.
    pub async fn signup_with_identity(
        &self,
        name: Username,
        provider: &str,
        subject: &str,
        email: Option<&str>,
    ) -> Result<User> {
        if identities::user_of(&self.db.pool, provider, subject)
            .await?
            .is_some()
        {
            return Err(Error::conflict(
                "identity_taken",
                "this sign-in already belongs to an account: sign in instead",
            ));
        }
        let created = async {
            let mut tx = self.db.begin().await?;
            let user = users::create(&mut tx, &name.display, &name.key, "", now_ms()).await?;
            for skeleton in &name.skeletons {
                users::claim_skeleton(&mut tx, skeleton, user.id).await?;
            }
            identities::link(&mut *tx, user.id, provider, subject, email, now_ms()).await?;
            tx.commit().await?;
            Ok::<_, crate::storage::DbError>(user)
        }
        .await;
        match created {
            Ok(user) => {
                tracing::info!(user = %user.username, role = user.role.as_str(), provider, "account created through a provider");
                Ok(user)
            }
            Err(e) if is_unique_violation(&e) => {
                if identities::user_of(&self.db.pool, provider, subject)
                    .await?
                    .is_some()
                {
                    Err(Error::conflict(
                        "identity_taken",
                        "this sign-in already belongs to an account: sign in instead",
                    ))
                } else {
                    Err(Error::conflict(
                        "username_taken",
                        "that username is taken, or looks the same as one that is",
                    ))
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Connects an identity to a signed-in account.
    pub async fn connect(
        &self,
        user: &User,
        provider: &str,
        subject: &str,
        email: Option<&str>,
    ) -> Result<()> {
        if let Some(owner) = identities::user_of(&self.db.pool, provider, subject).await? {
            return if owner.id == user.id {
                Ok(())
            } else {
                Err(Error::conflict(
                    "identity_taken",
                    "that sign-in is connected to another account",
                ))
            };
        }
        match identities::link(&self.db.pool, user.id, provider, subject, email, now_ms()).await {
            Ok(()) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Error::conflict(
                "provider_connected",
                "this account is connected to another sign-in at that provider; disconnect it first",
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn identities(&self, user: &User) -> Result<(Vec<IdentityView>, bool)> {
        let list = identities::of_user(&self.db.pool, user.id).await?;
        let has_password = !identities::password_hash(&self.db.pool, user.id)
            .await?
            .is_empty();
        Ok((
            list.into_iter()
                .map(|i| IdentityView {
                    provider: i.provider,
                    linked_at: i.linked_at,
                })
                .collect(),
            has_password,
        ))
    }

    /// Disconnects the account's identity at `provider`, unless it is the last way to sign in:
    /// a password, or an identity at one of `offered` (the providers configured now; one the
    /// operator has removed is no way in).
    pub async fn disconnect(&self, user: &User, provider: &str, offered: &[String]) -> Result<()> {
        let mut tx = self.db.begin().await?;
        let lock = self.db.backend == crate::storage::Backend::Postgres;
        let (has_password, list) = identities::sign_in_methods(&mut tx, user.id, lock).await?;
        if !list.iter().any(|i| i.provider == provider) {
            return Err(Error::not_found("connected provider"));
        }
        let others: Vec<_> = list
            .into_iter()
            .filter(|i| i.provider != provider)
            .collect();
        if !has_password && identities::count_at(&others, offered) == 0 {
            return Err(Error::conflict(
                "last_login_method",
                "this is the only way to sign in to the account: set a password or connect another provider first",
            ));
        }
        identities::unlink(&mut *tx, user.id, provider).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets the account's password, from the browser session `session` (the cookie's secret).
    /// An account that has one must give it (`current`); one that has none (made through a
    /// provider) must have signed in within [`FRESH_SIGNIN_MS`], so a session stolen earlier
    /// cannot fix a password on it. Every other session of the account ends.
    pub async fn set_password(
        &self,
        user: &User,
        session: &str,
        current: Option<String>,
        new: String,
    ) -> Result<()> {
        auth::check_password(&new)?;
        let stored = identities::password_hash(&self.db.pool, user.id).await?;
        let session_hash = auth::secret_hash(session);
        if stored.is_empty() {
            let started = identities::session_started(&self.db.pool, &session_hash, user.id)
                .await?
                .unwrap_or(0);
            if now_ms() - started > FRESH_SIGNIN_MS {
                return Err(Error::Forbidden(
                    "sign in again with your provider, then set a password within 10 minutes"
                        .into(),
                ));
            }
        } else {
            let Some(current) = current else {
                return Err(Error::invalid(
                    "current_password_required",
                    "give the current password to change it",
                ));
            };
            if !self.hasher.verify(current, Some(stored.clone())).await? {
                return Err(Error::invalid(
                    "wrong_password",
                    "the current password is not right",
                ));
            }
        }
        let hash = self.hasher.hash(new).await?;
        if !identities::replace_password_hash(&self.db.pool, user.id, &stored, &hash).await? {
            return Err(Error::conflict(
                "password_changed",
                "the password was changed meanwhile: reload and try again",
            ));
        }
        let ended = identities::end_other_sessions(&self.db.pool, user.id, &session_hash).await?;
        tracing::info!(user = %user.username, other_sessions_ended = ended, "password set");
        Ok(())
    }
}

/// How recent a sign-in must be to set a first password.
pub const FRESH_SIGNIN_MS: i64 = 10 * 60 * 1000;

#[cfg(test)]
mod tests {
    use super::username_from;

    #[test]
    fn nicknames_become_valid_usernames() {
        assert_eq!(username_from(Some("Kim Minji")), "Kim_Minji");
        assert_eq!(username_from(Some("  김민지  ")), "김민지");
        assert_eq!(username_from(Some("ｍｏｉｍ!!")), "moim");
        assert_eq!(username_from(Some("!")), "member");
        assert_eq!(username_from(None), "member");
        assert_eq!(username_from(Some("аdmin")), "member"); // Cyrillic а mixed with Latin
        let long = "a".repeat(50);
        assert_eq!(username_from(Some(&long)).chars().count(), 32);
    }
}
