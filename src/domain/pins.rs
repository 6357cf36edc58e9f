//! Candidate places on a room's map: a member drops one from a place post (which brings its
//! name, point, rating and photo) or anywhere with a name; its author or a moderator takes it
//! away. Every change publishes the room's whole pin list, which its sockets show at once.

use super::community::Community;
use super::events::RoomEvent;
use super::policy;
use super::rooms::Rooms;
use super::{text, Error, Result, RoomChat};
use crate::storage::planning::{self, Pin};
use crate::storage::posts::{self, Kind};
use crate::storage::rooms::Room;
use crate::storage::users::User;
use crate::storage::{now_ms, rfc3339};
use crate::views::{AuthorView, PinPlaceView, PinView};

/// Pins a room holds at most.
pub const MAX_PINS: usize = 100;
/// Longest pin name, in characters.
pub const MAX_NAME_CHARS: usize = 80;

/// What a member asks to pin: a place post, or a named point.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPin {
    pub place_id: Option<String>,
    pub name: Option<String>,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
}

/// Pin operations; cheap to clone.
#[derive(Clone)]
pub struct Pins {
    rooms: Rooms,
    community: Community,
    chat: std::sync::Arc<dyn RoomChat>,
    /// Pins dropped or removed per member: 30 at once, then one every 2 s.
    changes: std::sync::Arc<crate::auth::limiter::KeyedLimiter<i64>>,
}

fn check_point(lat: Option<f64>, lng: Option<f64>) -> Result<(f64, f64)> {
    match (lat, lng) {
        (Some(lat), Some(lng))
            if lat.is_finite()
                && lng.is_finite()
                && (-90.0..=90.0).contains(&lat)
                && (-180.0..=180.0).contains(&lng) =>
        {
            Ok((lat, lng))
        }
        (Some(_), Some(_)) => Err(Error::invalid(
            "invalid_point",
            "lat must be -90 to 90 and lng -180 to 180",
        )),
        _ => Err(Error::invalid(
            "invalid_point",
            "a pin needs lat and lng (or a place_id)",
        )),
    }
}

impl Pins {
    pub fn new(rooms: Rooms, community: Community, chat: std::sync::Arc<dyn RoomChat>) -> Pins {
        Pins {
            rooms,
            community,
            chat,
            changes: std::sync::Arc::new(crate::auth::limiter::KeyedLimiter::new(30, 0.5, 100_000)),
        }
    }

    fn paced(&self, user: &User) -> Result<()> {
        self.changes
            .check(&user.id)
            .map_err(|wait| Error::RateLimited {
                retry_after_s: wait.as_secs().max(1),
            })
    }

    /// The room's pins, if `user` may see the room.
    pub async fn list(&self, user: Option<&User>, slug: &str) -> Result<Vec<PinView>> {
        let room = self.rooms.find_visible(user, slug).await?;
        self.views(room.id).await
    }

    /// The pins of a room as everyone there sees them (its place posts looked up in one go).
    pub async fn views(&self, room_id: i64) -> Result<Vec<PinView>> {
        let pool = &self.rooms.db().pool;
        let pins = planning::pins(pool, room_id).await?;
        let ids: Vec<i64> = pins.iter().filter_map(|p| p.post_id).collect();
        let places = if ids.is_empty() {
            Vec::new()
        } else {
            let list: Vec<_> = posts::get_many(pool, &ids)
                .await?
                .into_iter()
                .filter(|p| p.kind == Kind::Place && p.hidden_at.is_none())
                .collect();
            self.community.views(None, list).await?
        };
        Ok(pins
            .iter()
            .map(|p| {
                let place = p.post_id.and_then(|id| {
                    let id = id.to_string();
                    let post = places.iter().find(|v| v.id == id)?;
                    let place = post.place.as_ref()?;
                    Some(PinPlaceView {
                        id: post.id.clone(),
                        rating: place.rating.average,
                        reviews: place.rating.count,
                        photo_url: post
                            .images
                            .first()
                            .and_then(|i| i.variants.get("thumb").cloned()),
                        category: place.category.clone(),
                    })
                });
                PinView {
                    id: p.id.to_string(),
                    name: p.name.clone(),
                    lat: posts::from_e7(p.lat_e7),
                    lng: posts::from_e7(p.lng_e7),
                    user: AuthorView {
                        id: p.user_id.to_string(),
                        username: p.username.clone(),
                    },
                    place,
                    created_at: rfc3339(p.created_at),
                }
            })
            .collect())
    }

    async fn publish(&self, room: &Room) -> Result<Vec<PinView>> {
        let pins = self.views(room.id).await?;
        self.rooms
            .publish(room.id, RoomEvent::Pins { pins: pins.clone() })
            .await;
        Ok(pins)
    }

    /// Drops a pin; returns it (the room hears the new list).
    pub async fn add(&self, user: &User, slug: &str, new: NewPin) -> Result<PinView> {
        let room = self.rooms.find(slug).await?;
        let standing = self.rooms.standing(&room, Some(user)).await?;
        self.rooms.require_planner(&room, standing, user).await?;
        self.paced(user)?;
        let (post_id, name, lat, lng) = match new.place_id.as_deref() {
            Some(id) => {
                if new.lat.is_some() || new.lng.is_some() {
                    return Err(Error::invalid(
                        "invalid_point",
                        "a place's pin stands where the place is: give place_id or lat and lng, \
                         not both",
                    ));
                }
                let post = self.community.get(Some(user), id).await?;
                let Some(place) = post.place.as_ref() else {
                    return Err(Error::not_found("place"));
                };
                let (Some(lat), Some(lng)) = (place.lat, place.lng) else {
                    return Err(Error::invalid(
                        "place_without_point",
                        "that place has no point on the map",
                    ));
                };
                let name = match new.name.as_deref() {
                    Some(n) => self.chat.mask(&clean_name(n)?),
                    None => place.name.clone(),
                };
                let id: i64 = post.id.parse().map_err(|_| Error::not_found("place"))?;
                (Some(id), name, lat, lng)
            }
            None => {
                let name = self
                    .chat
                    .mask(&clean_name(new.name.as_deref().unwrap_or(""))?);
                let (lat, lng) = check_point(new.lat, new.lng)?;
                (None, name, lat, lng)
            }
        };
        let mut tx = self.rooms.db().begin().await?;
        planning::lock_room(&mut *tx, room.id).await?;
        let existing = planning::pins(&mut *tx, room.id).await?;
        if existing.len() >= MAX_PINS {
            return Err(Error::conflict(
                "too_many_pins",
                format!("a room holds at most {MAX_PINS} pins; remove one first"),
            ));
        }
        if post_id.is_some() && existing.iter().any(|p| p.post_id == post_id) {
            return Err(Error::conflict(
                "already_pinned",
                "that place is pinned already",
            ));
        }
        let id = planning::add_pin(
            &mut *tx,
            &Pin {
                id: 0,
                room_id: room.id,
                user_id: user.id,
                username: user.username.clone(),
                post_id,
                name,
                lat_e7: posts::to_e7(lat),
                lng_e7: posts::to_e7(lng),
                created_at: now_ms(),
            },
        )
        .await?;
        tx.commit().await?;
        let pins = self.publish(&room).await?;
        let id = id.to_string();
        pins.into_iter()
            .find(|p| p.id == id)
            .ok_or_else(|| Error::not_found("pin"))
    }

    /// Takes a pin away: its author, or a moderator of the room.
    pub async fn remove(&self, user: &User, slug: &str, id: &str) -> Result<()> {
        let room = self.rooms.find(slug).await?;
        let standing = self.rooms.standing(&room, Some(user)).await?;
        let pool = &self.rooms.db().pool;
        let id: i64 = id.parse().map_err(|_| Error::not_found("pin"))?;
        let pin = planning::pins(pool, room.id)
            .await?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or_else(|| Error::not_found("pin"))?;
        if !policy::may_take_down(standing, pin.user_id == user.id) {
            return Err(Error::Forbidden(
                "only who dropped a pin or a moderator may remove it".into(),
            ));
        }
        if !standing.may(policy::RoomAction::Moderate) {
            // Their own pin: as one who may plan here (not banned or timed out), at a pace.
            self.rooms.require_planner(&room, standing, user).await?;
            self.paced(user)?;
        }
        if !planning::delete_pin(pool, room.id, id).await? {
            return Err(Error::not_found("pin"));
        }
        self.publish(&room).await?;
        Ok(())
    }
}

fn clean_name(raw: &str) -> Result<String> {
    text::clean_line(raw, MAX_NAME_CHARS).map_err(|e| {
        Error::invalid(
            "invalid_name",
            match e {
                text::TextError::Empty => "a pin needs a name".to_string(),
                text::TextError::TooLong => {
                    format!("a pin's name is at most {MAX_NAME_CHARS} characters")
                }
            },
        )
    })
}
