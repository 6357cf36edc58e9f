//! Invite links to a room (`/i/{code}`): its owner makes them, with an optional expiry and
//! number of uses, and revokes them; whoever accepts one becomes a member of the room (which
//! is how anyone gets into a private room). Codes are 16 random characters (80 bits), good for
//! one room and nothing else. Accepting again, or as someone already in the room, takes no use.

use super::policy::RoomAction;
use super::rooms::Rooms;
use super::{Error, Result};
use crate::storage::planning::{self, Invite};
use crate::storage::rooms::{self, Room};
use crate::storage::users::User;
use crate::storage::{is_unique_violation, now_ms};

/// Live (not revoked) invites a room holds at most.
pub const MAX_INVITES_PER_ROOM: i64 = 50;
/// Invites listed at most.
const LIST_LIMIT: i64 = 100;
/// Longest an invite lasts: a year.
pub const MAX_LIFETIME_MS: i64 = 366 * 24 * 3600 * 1000;

/// An invite to make; `None` = no limit.
#[derive(Debug, Default, Clone)]
pub struct NewInvite {
    /// Unix ms.
    pub expires_at: Option<i64>,
    pub max_uses: Option<i64>,
}

/// Invite operations; cheap to clone.
#[derive(Clone)]
pub struct Invites {
    rooms: Rooms,
}

/// An invite and what it opens (for the page that shows it before accepting).
pub struct Opened {
    pub invite: Invite,
    pub room: Room,
}

/// Why an invite no longer works, as `Error::Gone`.
fn gone(i: &Invite, now: i64) -> Option<Error> {
    let (code, message) = if i.revoked_at.is_some() {
        ("invite_revoked", "this invite link was revoked")
    } else if i.expires_at.is_some_and(|e| e <= now) {
        ("invite_expired", "this invite link has expired")
    } else if i.max_uses.is_some_and(|m| i.uses >= m) {
        (
            "invite_used_up",
            "this invite link has been used as often as it may",
        )
    } else {
        return None;
    };
    Some(Error::Gone {
        code,
        message: message.into(),
    })
}

fn random_code() -> String {
    super::shares::random_code_of(16)
}

impl Invites {
    pub fn new(rooms: Rooms) -> Invites {
        Invites { rooms }
    }

    /// A new invite to the room (its owner and admins).
    pub async fn create(&self, user: &User, slug: &str, new: NewInvite) -> Result<Invite> {
        let room = self
            .rooms
            .authorised(user, slug, RoomAction::Manage)
            .await?;
        let now = now_ms();
        if let Some(at) = new.expires_at {
            if at <= now {
                return Err(Error::invalid(
                    "invalid_expiry",
                    "expires_at must be in the future",
                ));
            }
            if at - now > MAX_LIFETIME_MS {
                return Err(Error::invalid(
                    "invalid_expiry",
                    "an invite lasts at most a year",
                ));
            }
        }
        if new.max_uses.is_some_and(|m| !(1..=100_000).contains(&m)) {
            return Err(Error::invalid(
                "invalid_max_uses",
                "max_uses must be 1 to 100000",
            ));
        }
        let pool = &self.rooms.db().pool;
        // 80 random bits do not collide; the loop only guards the unique index.
        for _ in 0..3 {
            let code = random_code();
            let mut tx = self.rooms.db().begin().await?;
            planning::lock_room(&mut *tx, room.id).await?;
            if planning::count_invites(&mut *tx, room.id, now).await? >= MAX_INVITES_PER_ROOM {
                return Err(Error::conflict(
                    "too_many_invites",
                    format!(
                        "a room has at most {MAX_INVITES_PER_ROOM} working invite links; \
                         revoke one"
                    ),
                ));
            }
            match planning::create_invite(
                &mut *tx,
                room.id,
                &code,
                user.id,
                new.expires_at,
                new.max_uses,
                now,
            )
            .await
            {
                Ok(()) => {
                    tx.commit().await?;
                    tracing::info!(room = %room.slug, by = %user.username, "invite created");
                    return planning::invite(pool, &code)
                        .await?
                        .ok_or_else(|| Error::not_found("invite"));
                }
                Err(e) if is_unique_violation(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Internal(anyhow::anyhow!("no free invite code")))
    }

    /// The room's invites that are not revoked, newest first (its owner and admins).
    pub async fn list(&self, user: &User, slug: &str) -> Result<Vec<Invite>> {
        let room = self
            .rooms
            .authorised(user, slug, RoomAction::Manage)
            .await?;
        Ok(planning::invites(&self.rooms.db().pool, room.id, LIST_LIMIT).await?)
    }

    /// Revokes an invite: it stops working at once (its owner and admins).
    pub async fn revoke(&self, user: &User, slug: &str, code: &str) -> Result<()> {
        let room = self
            .rooms
            .authorised(user, slug, RoomAction::Manage)
            .await?;
        if !planning::revoke_invite(&self.rooms.db().pool, room.id, code, now_ms()).await? {
            return Err(Error::not_found("invite"));
        }
        Ok(())
    }

    async fn find(&self, code: &str) -> Result<Opened> {
        let pool = &self.rooms.db().pool;
        // A code is of our alphabet; anything else names nothing (and is not looked up).
        if code.len() != 16 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Error::not_found("invite"));
        }
        let invite = planning::invite(pool, code)
            .await?
            .ok_or_else(|| Error::not_found("invite"))?;
        let room = rooms::get_by_id(pool, invite.room_id)
            .await?
            .ok_or_else(|| Error::not_found("invite"))?;
        Ok(Opened { invite, room })
    }

    /// What an invite opens, while it works (410 once it does not).
    pub async fn open(&self, code: &str) -> Result<Opened> {
        let opened = self.find(code).await?;
        if let Some(e) = gone(&opened.invite, now_ms()) {
            return Err(e);
        }
        Ok(opened)
    }

    /// Makes `user` a member of the invite's room and returns the room. Someone already in it
    /// gets the room and takes no use; an expired, used-up or revoked invite is 410.
    pub async fn accept(&self, user: &User, code: &str) -> Result<Room> {
        let Opened { invite, room } = self.find(code).await?;
        let standing = self.rooms.standing(&room, Some(user)).await;
        let insider = standing.is_ok_and(|s| s.may(RoomAction::Moderate))
            || rooms::is_member(&self.rooms.db().pool, room.id, user.id).await?;
        if insider {
            return Ok(room);
        }
        let now = now_ms();
        let mut tx = self.rooms.db().begin().await?;
        // Membership first: a second accept racing this one waits on it and finds it there.
        if !planning::add_member(&mut *tx, room.id, user.id, now).await? {
            return Ok(room);
        }
        if !planning::use_invite(&mut *tx, invite.id, now).await? {
            drop(tx);
            let fresh = planning::invite(&self.rooms.db().pool, code)
                .await?
                .unwrap_or(invite);
            return Err(gone(&fresh, now).unwrap_or(Error::Gone {
                code: "invite_used_up",
                message: "this invite link has been used as often as it may".into(),
            }));
        }
        tx.commit().await?;
        tracing::info!(room = %room.slug, member = %user.username, "invite accepted");
        Ok(room)
    }
}
