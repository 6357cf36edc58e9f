//! The hub's side of the event path: what each committed change means for the sockets of a room
//! loaded here (a frame to everyone, the cached moderation facts, kicks).

use futures_util::future::BoxFuture;
use moim_filter::Filter;

use super::protocol::{error_frame, ServerFrame};
use super::session::{CLOSE_BANNED, CLOSE_DELETED, CLOSE_PRIVATE};
use super::Hub;
use crate::domain::events::{Audience, Event, RoomEvent, Subscriber};
use crate::storage::rooms::SanctionKind;
use crate::views::RoomView;

impl Subscriber for Hub {
    fn handle<'a>(&'a self, event: &'a Event) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            match event {
                Event::BlockedTerms { terms, allowed } => {
                    self.set_filter(Filter::with_default_allowlist(terms, allowed));
                }
                Event::Room { room_id, event } => self.room_event(*room_id, event).await,
                Event::Resync => self.resync_soon(),
                Event::Presence { node, rooms } => self.presence(*node, rooms),
                // A member's own events, not a room's (they reach the member's event stream).
                Event::Video { .. } | Event::VideoDeleted { .. } => {}
            }
        })
    }
}

impl Hub {
    async fn room_event(&self, room_id: i64, event: &RoomEvent) {
        if let RoomEvent::Realtime { publishing } = event {
            let mut set = self.inner.realtime.lock();
            if *publishing {
                set.insert(room_id);
            } else {
                set.remove(&room_id);
            }
        }
        if let RoomEvent::Voice { members } = event {
            let mut voice = self.inner.voice.lock();
            if members.is_empty() {
                voice.remove(&room_id);
            } else {
                voice.insert(room_id, members.clone());
            }
        }
        // Rooms nobody is connected to here have nothing to update: a room loads its facts
        // from the database when someone joins.
        let Some(room) = self.loaded(room_id) else {
            return;
        };
        if matches!(
            event,
            RoomEvent::Updated { .. }
                | RoomEvent::ModeratorAdded { .. }
                | RoomEvent::ModeratorRemoved { .. }
                | RoomEvent::Sanctioned { .. }
                | RoomEvent::SanctionLifted { .. }
        ) {
            room.info_changing();
        }
        match event {
            RoomEvent::Message { message } => {
                room.broadcast(message.seq, ServerFrame::Message(message).encode())
                    .await;
            }
            RoomEvent::MessageDeleted { seq } => {
                room.broadcast(0, ServerFrame::Deleted { seq: *seq }.encode())
                    .await;
            }
            RoomEvent::Updated { room: r } => {
                let became_private = {
                    let mut info = room.info.write();
                    info.slow_mode_s = r.slow_mode_s;
                    !std::mem::replace(&mut info.private, r.private) && r.private
                };
                if became_private {
                    // Everyone reconnects, and only the room's people get back in.
                    let frame = ServerFrame::Reconnect { reason: "private" }.encode();
                    room.kick_all(&frame, CLOSE_PRIVATE);
                    return;
                }
                let view = RoomView::new(r, self.site_viewers(&room), self.live(&r.slug).as_ref());
                room.broadcast(0, ServerFrame::Room { room: &view }.encode())
                    .await;
            }
            RoomEvent::Deleted { .. } => {
                let frame = error_frame("room_deleted", "this room was deleted", None);
                room.kick_all(&frame, CLOSE_DELETED);
            }
            RoomEvent::ModeratorAdded { user_id } => {
                room.info.write().moderators.insert(*user_id);
            }
            RoomEvent::ModeratorRemoved { user_id } => {
                room.info.write().moderators.remove(user_id);
            }
            RoomEvent::Sanctioned {
                user_id,
                kind,
                expires_at,
            } => {
                room.info
                    .write()
                    .sanctions
                    .insert((*user_id, *kind), *expires_at);
                if *kind == SanctionKind::Ban {
                    let f = error_frame("banned", "you are banned from this room", None);
                    room.kick_user(*user_id, &f, CLOSE_BANNED);
                }
            }
            RoomEvent::SanctionLifted { user_id, kind } => {
                room.info.write().sanctions.remove(&(*user_id, *kind));
            }
            RoomEvent::LiveStarted { live } => {
                let frame = ServerFrame::Live {
                    state: "started",
                    hls_url: Some(&live.hls_url),
                };
                room.broadcast(0, frame.encode()).await;
            }
            RoomEvent::LiveEnded => {
                let frame = ServerFrame::Live {
                    state: "ended",
                    hls_url: None,
                };
                room.broadcast(0, frame.encode()).await;
            }
            RoomEvent::Party { party } => {
                room.broadcast(0, ServerFrame::PartyState(party).encode())
                    .await;
            }
            RoomEvent::Pins { pins } => {
                room.broadcast(0, ServerFrame::MapPins { pins }.encode())
                    .await;
            }
            RoomEvent::Poll {
                poll,
                results,
                audience,
            } => {
                let without = ServerFrame::PollUpdate { poll }.encode();
                let with = || {
                    let mut p = (**poll).clone();
                    p.results = results.as_deref().cloned();
                    ServerFrame::PollUpdate { poll: &p }.encode()
                };
                match audience {
                    Audience::Everyone => room.broadcast(0, with()).await,
                    Audience::Nobody => room.broadcast(0, without).await,
                    Audience::Voters(ids) => {
                        let ids = ids.iter().copied().collect();
                        room.broadcast_split(without, with(), ids).await
                    }
                }
            }
            RoomEvent::MapView { view } => {
                let Ok(user_id) = view.user.id.parse::<i64>() else {
                    return;
                };
                // Only a member still connected here is kept (a view relayed after its member
                // left must not come back as a ghost). Views come from this node's sockets;
                // when nodes share a broker, each keeps its own members' views.
                if !room.has_user(user_id) {
                    return;
                }
                {
                    let mut map = room.map.lock();
                    let len = map.views.len();
                    match map.views.entry(user_id) {
                        std::collections::hash_map::Entry::Occupied(mut e) => {
                            e.insert(std::sync::Arc::new((**view).clone()));
                        }
                        std::collections::hash_map::Entry::Vacant(e)
                            if len < super::MAX_MAP_MEMBERS =>
                        {
                            e.insert(std::sync::Arc::new((**view).clone()));
                        }
                        // Over the bound (views from other nodes): not kept, not relayed.
                        std::collections::hash_map::Entry::Vacant(_) => return,
                    }
                }
                room.broadcast(0, ServerFrame::MapView(view).encode()).await;
            }
            RoomEvent::Realtime { publishing } => {
                let frame = ServerFrame::Realtime {
                    publishing: *publishing,
                };
                room.broadcast(0, frame.encode()).await;
            }
            RoomEvent::Voice { members } => {
                let frame = ServerFrame::VoiceMembers { members };
                room.broadcast(0, frame.encode()).await;
            }
            RoomEvent::MapLeft { user } => {
                if let Ok(id) = user.id.parse::<i64>() {
                    room.map.lock().views.remove(&id);
                }
                room.broadcast(0, ServerFrame::MapLeft { user }.encode())
                    .await;
            }
            RoomEvent::StreamKeyRotated { .. } => {}
        }
    }
}
