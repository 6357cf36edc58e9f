//! Rooms, their chat history and their moderation: create, change, delete, appoint moderators,
//! delete messages, ban and time out. Chat messages themselves are accepted by the room socket
//! (`realtime::session`, which asks the same policy) and stored by the group-commit writer.

use std::sync::Arc;

use super::events::{Broker, Event, RoomEvent};
use super::policy::{self, RoomAction, SiteAction, Standing};
use super::{text, Error, Presence, Result};
use crate::storage::rooms::{self, Room, Sanction, SanctionKind};
use crate::storage::users::{self, User};
use crate::storage::{is_unique_violation, messages, now_ms, Db};
use crate::views::{MessageView, RoomView};

/// Longest timeout or timed ban: 14 days.
pub const MAX_SANCTION_S: i64 = 14 * 24 * 3600;
/// Longest slow-mode interval: 1 hour.
pub const MAX_SLOW_MODE_S: i64 = 3600;
/// Rooms a member may own (admins are not limited).
pub const MAX_ROOMS_PER_MEMBER: i64 = 50;
/// Rooms listed at most.
const LIST_LIMIT: i64 = 500;

/// Room operations; cheap to clone.
#[derive(Clone)]
pub struct Rooms {
    db: Db,
    broker: Arc<dyn Broker>,
    presence: Arc<dyn Presence>,
}

/// What the caller may do in a room, for the UI.
#[derive(Debug, Clone, Copy)]
pub struct Permissions {
    pub moderate: bool,
    pub manage: bool,
}

/// Changes to a room's settings; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct RoomPatch {
    pub title: Option<String>,
    pub slow_mode_s: Option<i64>,
    pub record_broadcasts: Option<bool>,
    /// Seen by its members only.
    pub private: Option<bool>,
}

fn validate_slug(slug: &str) -> Result<()> {
    let ok = (3..=48).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "invalid_slug",
            "slug must be 3 to 48 characters of a-z, 0-9 and -",
        ))
    }
}

/// Longest room title, in characters.
pub const MAX_TITLE_CHARS: usize = 100;

fn validate_title(raw: &str) -> Result<String> {
    text::clean_line(raw, MAX_TITLE_CHARS).map_err(|e| {
        Error::invalid(
            "invalid_title",
            match e {
                text::TextError::Empty => "title needs at least one visible character".to_string(),
                text::TextError::TooLong => {
                    format!("title must be at most {MAX_TITLE_CHARS} characters")
                }
            },
        )
    })
}

impl Rooms {
    pub fn new(db: Db, broker: Arc<dyn Broker>, presence: Arc<dyn Presence>) -> Rooms {
        Rooms {
            db,
            broker,
            presence,
        }
    }

    /// The room, or 404.
    pub async fn find(&self, slug: &str) -> Result<Room> {
        rooms::get(&self.db.pool, slug)
            .await?
            .ok_or_else(|| Error::not_found("room"))
    }

    /// The room as the API shows it, with viewers and live status from this node.
    pub fn view(&self, room: &Room) -> RoomView {
        RoomView::new(
            room,
            self.presence.viewers(room.id, &room.slug),
            self.presence.live(&room.slug).as_ref(),
        )
    }

    /// Where `user` stands in `room` (one query for the moderator list when signed in); a
    /// private room the user may not see is not found.
    pub async fn standing(&self, room: &Room, user: Option<&User>) -> Result<Standing> {
        let is_moderator = match user {
            Some(u) if u.id != room.owner_id => {
                rooms::is_moderator(&self.db.pool, room.id, u.id).await?
            }
            _ => false,
        };
        if room.private {
            let is_member = match user {
                Some(u) => rooms::is_member(&self.db.pool, room.id, u.id).await?,
                None => false,
            };
            if !policy::may_see_room(user, true, room.owner_id, is_moderator, is_member) {
                return Err(Error::not_found("room"));
            }
        }
        Ok(Standing::of(user, room.owner_id, is_moderator))
    }

    /// The room if `user` may see it (404 otherwise, a private room included).
    pub async fn find_visible(&self, user: Option<&User>, slug: &str) -> Result<Room> {
        let room = self.find(slug).await?;
        self.standing(&room, user).await?;
        Ok(room)
    }

    /// Loads a room and checks the caller may do `action` to it.
    pub(super) async fn authorised(
        &self,
        user: &User,
        slug: &str,
        action: RoomAction,
    ) -> Result<Room> {
        let room = self.find(slug).await?;
        self.standing(&room, Some(user)).await?.require(action)?;
        Ok(room)
    }

    /// Loads a room by id and checks `user` may see it (404 otherwise).
    pub(super) async fn visible_by_id(
        &self,
        user: Option<&User>,
        room_id: i64,
    ) -> Result<(Room, Standing)> {
        let room = rooms::get_by_id(&self.db.pool, room_id)
            .await?
            .ok_or_else(|| Error::not_found("room"))?;
        let standing = self.standing(&room, user).await?;
        Ok((room, standing))
    }

    /// Checks `user` may plan in `room` (pins, polls, votes): a member who is not banned or
    /// timed out there.
    pub(super) async fn require_planner(
        &self,
        room: &Room,
        standing: Standing,
        user: &User,
    ) -> Result<()> {
        standing.require(RoomAction::Plan)?;
        if !standing.can_be_sanctioned() {
            return Ok(());
        }
        let now = now_ms();
        for s in rooms::active_sanctions(&self.db.pool, room.id, now).await? {
            if s.user_id == user.id {
                return Err(Error::Forbidden(match s.kind {
                    SanctionKind::Ban => "you are banned from this room".into(),
                    SanctionKind::Timeout => "you are timed out in this room".into(),
                }));
            }
        }
        Ok(())
    }

    /// The room if `user` may talk in its voice chat: a member who is neither banned nor timed
    /// out there.
    pub async fn require_talker(&self, user: &User, slug: &str) -> Result<Room> {
        let room = self.find(slug).await?;
        let standing = self.standing(&room, Some(user)).await?;
        standing.require(RoomAction::Talk)?;
        if standing.can_be_sanctioned() {
            for s in rooms::active_sanctions(&self.db.pool, room.id, now_ms()).await? {
                if s.user_id == user.id {
                    return Err(Error::Forbidden(match s.kind {
                        SanctionKind::Ban => "you are banned from this room".into(),
                        SanctionKind::Timeout => {
                            "you are timed out in this room: voice waits until it ends".into()
                        }
                    }));
                }
            }
        }
        Ok(room)
    }

    /// The room if `user` may moderate `target` in it: a moderator, and the target one who can
    /// be sanctioned (not a moderator, the owner or an admin), as for bans.
    pub async fn require_voice_moderator(
        &self,
        user: &User,
        slug: &str,
        target: &str,
    ) -> Result<Room> {
        let room = self.authorised(user, slug, RoomAction::Moderate).await?;
        let target = self.find_user(target).await?;
        if !self
            .standing(&room, Some(&target))
            .await?
            .can_be_sanctioned()
        {
            return Err(Error::Forbidden(
                "moderators, the owner and admins cannot be muted or removed by a moderator".into(),
            ));
        }
        Ok(room)
    }

    pub(super) async fn publish(&self, room_id: i64, event: RoomEvent) {
        self.broker.publish(Event::room(room_id, event)).await;
    }

    /// A new room; a private one is seen by its members only (who join by invite links).
    pub async fn create(
        &self,
        user: &User,
        slug: &str,
        title: &str,
        private: bool,
    ) -> Result<RoomView> {
        policy::require_site(Some(user), SiteAction::CreateRoom)?;
        validate_slug(slug)?;
        let title = validate_title(title)?;
        let mut tx = self.db.begin().await?;
        if !policy::may_site(Some(user), SiteAction::OwnUnlimitedRooms)
            && rooms::count_owned(&mut *tx, user.id).await? >= MAX_ROOMS_PER_MEMBER
        {
            return Err(Error::conflict(
                "too_many_rooms",
                format!("you already own {MAX_ROOMS_PER_MEMBER} rooms; delete one first"),
            ));
        }
        match rooms::create(&mut *tx, slug, &title, user.id, private, now_ms()).await {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(Error::conflict("slug_taken", "that slug is taken"))
            }
            Err(e) => return Err(e.into()),
        }
        let room = rooms::get(&mut *tx, slug)
            .await?
            .ok_or_else(|| Error::not_found("room"))?;
        tx.commit().await?;
        Ok(self.view(&room))
    }

    /// Every room: live rooms first, then most viewers, then most recent activity.
    pub async fn list(&self) -> Result<Vec<RoomView>> {
        let list = rooms::list(&self.db.pool, LIST_LIMIT).await?;
        Ok(self.ordered(&list))
    }

    /// Live rooms first, then most viewers, then most recent activity.
    fn ordered(&self, list: &[Room]) -> Vec<RoomView> {
        let mut views: Vec<(RoomView, i64)> = list
            .iter()
            .map(|r| (self.view(r), r.last_activity_at))
            .collect();
        views.sort_by(|a, b| {
            b.0.live
                .cmp(&a.0.live)
                .then(b.0.viewers.cmp(&a.0.viewers))
                .then(b.1.cmp(&a.1))
        });
        views.into_iter().map(|(v, _)| v).collect()
    }

    /// A room and what the caller may do in it.
    pub async fn get(&self, user: Option<&User>, slug: &str) -> Result<(RoomView, Permissions)> {
        let room = self.find(slug).await?;
        let standing = self.standing(&room, user).await?;
        let perms = Permissions {
            moderate: standing.may(RoomAction::Moderate),
            manage: standing.may(RoomAction::Manage),
        };
        Ok((self.view(&room), perms))
    }

    pub async fn update(&self, user: &User, slug: &str, patch: RoomPatch) -> Result<RoomView> {
        let room = self.authorised(user, slug, RoomAction::Manage).await?;
        let title = match patch.title {
            Some(t) => validate_title(&t)?,
            None => room.title.clone(),
        };
        let slow = patch.slow_mode_s.unwrap_or(room.slow_mode_s);
        if !(0..=MAX_SLOW_MODE_S).contains(&slow) {
            return Err(Error::invalid(
                "invalid_slow_mode",
                format!("slow_mode_s must be 0 to {MAX_SLOW_MODE_S}"),
            ));
        }
        let record = patch.record_broadcasts.unwrap_or(room.record_broadcasts);
        let private = patch.private.unwrap_or(room.private);
        if private && !room.private && self.presence.live(&room.slug).is_some() {
            return Err(Error::conflict(
                "room_live",
                "a room cannot become private while it is live; end the broadcast first",
            ));
        }
        let mut tx = self.db.begin().await?;
        rooms::update(&mut *tx, room.id, &title, slow, record, private).await?;
        let room = rooms::get(&mut *tx, slug)
            .await?
            .ok_or_else(|| Error::not_found("room"))?;
        tx.commit().await?;
        self.publish(room.id, RoomEvent::Updated { room: room.clone() })
            .await;
        Ok(self.view(&room))
    }

    /// Deletes the room with its messages; its sockets close and a broadcast in it ends.
    pub async fn delete(&self, user: &User, slug: &str) -> Result<()> {
        let room = self.authorised(user, slug, RoomAction::Manage).await?;
        let mut tx = self.db.begin().await?;
        rooms::delete(&mut tx, room.id).await?;
        tx.commit().await?;
        tracing::info!(room = %room.slug, by = %user.username, "room deleted");
        self.publish(
            room.id,
            RoomEvent::Deleted {
                slug: room.slug.clone(),
            },
        )
        .await;
        Ok(())
    }

    /// Up to `limit` (1–200) messages before `before` (or the newest), oldest first.
    pub async fn messages(
        &self,
        user: Option<&User>,
        slug: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<MessageView>> {
        if !(1..=200).contains(&limit) {
            return Err(Error::invalid("invalid_limit", "limit must be 1 to 200"));
        }
        let room = self.find_visible(user, slug).await?;
        let list = messages::page(&self.db.pool, room.id, before, limit).await?;
        Ok(list.iter().map(MessageView::from).collect())
    }

    pub async fn delete_message(&self, user: &User, slug: &str, seq: i64) -> Result<()> {
        let room = self.authorised(user, slug, RoomAction::Moderate).await?;
        if !messages::mark_deleted(&self.db.pool, room.id, seq).await? {
            return Err(Error::not_found("message"));
        }
        self.publish(room.id, RoomEvent::MessageDeleted { seq })
            .await;
        Ok(())
    }

    /// A member's rooms, as [`Rooms::list`] orders them (live first).
    pub async fn owned_by(&self, owner_id: i64) -> Result<Vec<RoomView>> {
        let list = rooms::list_owned(&self.db.pool, owner_id, LIST_LIMIT).await?;
        Ok(self.ordered(&list))
    }

    /// A member by name (as typed: case and look-alikes folded).
    pub async fn member(&self, username: &str) -> Result<User> {
        self.find_user(username).await
    }

    async fn find_user(&self, username: &str) -> Result<User> {
        for key in crate::auth::lookup_keys(username) {
            if let Some(user) = users::find_by_key(&self.db.pool, &key).await? {
                return Ok(user);
            }
        }
        Err(Error::not_found("user"))
    }

    /// (user id, username) of each moderator.
    pub async fn moderators(&self, user: Option<&User>, slug: &str) -> Result<Vec<(i64, String)>> {
        let room = self.find_visible(user, slug).await?;
        Ok(rooms::moderators(&self.db.pool, room.id).await?)
    }

    /// Appoints a moderator; returns the list as it is now.
    pub async fn add_moderator(
        &self,
        user: &User,
        slug: &str,
        username: &str,
    ) -> Result<Vec<(i64, String)>> {
        let room = self.authorised(user, slug, RoomAction::Manage).await?;
        let target = self.find_user(username).await?;
        // A moderator sees the room: in a private one only its members may be appointed, so
        // appointing cannot let anyone else in.
        if room.private && !rooms::is_member(&self.db.pool, room.id, target.id).await? {
            return Err(Error::conflict(
                "not_a_member",
                "in a private room only its members can be moderators",
            ));
        }
        let mut tx = self.db.begin().await?;
        rooms::add_moderator(&mut *tx, room.id, target.id, now_ms()).await?;
        let list = rooms::moderators(&mut *tx, room.id).await?;
        tx.commit().await?;
        self.publish(room.id, RoomEvent::ModeratorAdded { user_id: target.id })
            .await;
        Ok(list)
    }

    pub async fn remove_moderator(&self, user: &User, slug: &str, username: &str) -> Result<()> {
        let room = self.authorised(user, slug, RoomAction::Manage).await?;
        let target = self.find_user(username).await?;
        if !rooms::remove_moderator(&self.db.pool, room.id, target.id).await? {
            return Err(Error::not_found("moderator"));
        }
        self.publish(room.id, RoomEvent::ModeratorRemoved { user_id: target.id })
            .await;
        Ok(())
    }

    /// Bans or times out a member; returns the target's name and when it ends (unix ms).
    pub async fn sanction(
        &self,
        user: &User,
        slug: &str,
        username: &str,
        kind: SanctionKind,
        duration_s: Option<i64>,
    ) -> Result<(String, Option<i64>)> {
        let room = self.authorised(user, slug, RoomAction::Moderate).await?;
        let target = self.find_user(username).await?;
        if !self
            .standing(&room, Some(&target))
            .await?
            .can_be_sanctioned()
        {
            return Err(Error::Forbidden(
                "moderators, the owner and admins cannot be banned or timed out".into(),
            ));
        }
        let duration = match (kind, duration_s) {
            (SanctionKind::Timeout, None) => {
                return Err(Error::invalid("invalid_duration", "duration_s is required"))
            }
            (_, Some(d)) if !(1..=MAX_SANCTION_S).contains(&d) => {
                return Err(Error::invalid(
                    "invalid_duration",
                    format!("duration_s must be 1 to {MAX_SANCTION_S}"),
                ))
            }
            (_, d) => d,
        };
        let now = now_ms();
        let expires_at = duration.map(|d| now + d * 1000);
        rooms::set_sanction(
            &self.db.pool,
            room.id,
            target.id,
            kind,
            expires_at,
            user.id,
            now,
        )
        .await?;
        tracing::info!(room = %room.slug, target = %target.username, kind = kind.as_str(), by = %user.username, "sanction");
        self.publish(
            room.id,
            RoomEvent::Sanctioned {
                user_id: target.id,
                kind,
                expires_at,
            },
        )
        .await;
        Ok((target.username, expires_at))
    }

    pub async fn lift(
        &self,
        user: &User,
        slug: &str,
        username: &str,
        kind: SanctionKind,
    ) -> Result<()> {
        let room = self.authorised(user, slug, RoomAction::Moderate).await?;
        let target = self.find_user(username).await?;
        if !rooms::clear_sanction(&self.db.pool, room.id, target.id, kind).await? {
            return Err(Error::not_found(kind.as_str()));
        }
        self.publish(
            room.id,
            RoomEvent::SanctionLifted {
                user_id: target.id,
                kind,
            },
        )
        .await;
        Ok(())
    }

    /// Active bans and timeouts.
    pub async fn sanctions(&self, user: &User, slug: &str) -> Result<Vec<Sanction>> {
        let room = self.authorised(user, slug, RoomAction::Moderate).await?;
        Ok(rooms::active_sanctions(&self.db.pool, room.id, now_ms()).await?)
    }

    pub(super) fn db(&self) -> &Db {
        &self.db
    }
}
