//! Who may do what: the one answer to "may this user do X to this room / video / site", used by
//! every domain operation and by the room WebSocket. Nothing else decides permissions.
//!
//! A caller's [`Standing`] in a room is the highest that applies: site admin, the room's owner,
//! an appointed moderator, any signed-in member, or anonymous. Each action needs a least
//! standing ([`RoomAction::least`]); the table test below pins the whole matrix.

use crate::storage::users::{Role, User};
use crate::storage::videos::{Video, VideoStatus, Visibility};

use super::Error;

/// Where a caller stands in one room, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Standing {
    Anonymous,
    Member,
    Moderator,
    Owner,
    Admin,
}

impl Standing {
    /// The caller's standing in a room owned by `owner_id`; `is_moderator` from the room's list.
    pub fn of(user: Option<&User>, owner_id: i64, is_moderator: bool) -> Standing {
        match user {
            None => Standing::Anonymous,
            Some(u) if u.role == Role::Admin => Standing::Admin,
            Some(u) if u.id == owner_id => Standing::Owner,
            Some(_) if is_moderator => Standing::Moderator,
            Some(_) => Standing::Member,
        }
    }

    pub fn may(self, action: RoomAction) -> bool {
        self >= action.least()
    }

    /// Bans and timeouts reach members only: moderators, the owner and admins are shielded.
    pub fn can_be_sanctioned(self) -> bool {
        self < Standing::Moderator
    }

    /// Rate limit and slow mode apply below moderators.
    pub fn is_paced(self) -> bool {
        self < Standing::Moderator
    }

    /// `Ok` when the action is allowed; otherwise 401 for anonymous callers, 403 for others.
    pub fn require(self, action: RoomAction) -> Result<(), Error> {
        match (self.may(action), self) {
            (true, _) => Ok(()),
            (false, Standing::Anonymous) => Err(Error::Unauthorized),
            (false, _) => Err(Error::forbidden()),
        }
    }
}

/// Whether `user` may see a room at all: a public one, anyone; a private one, its members,
/// owner, moderators and admins. Others are told it does not exist.
pub fn may_see_room(
    user: Option<&User>,
    private: bool,
    owner_id: i64,
    is_moderator: bool,
    is_member: bool,
) -> bool {
    !private
        || user.is_some_and(|u| u.role == Role::Admin || u.id == owner_id)
        || (user.is_some() && (is_moderator || is_member))
}

/// Things done to a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomAction {
    /// Read the room, its history and moderators; watch its broadcast; join its socket.
    View,
    /// Send chat messages (bans, timeouts and pacing apply on top).
    Chat,
    /// Plan together: drop pins on the room's map, start polls, vote, share where one looks.
    Plan,
    /// Talk in the room's voice chat (bans and timeouts apply on top).
    Talk,
    /// Delete messages, ban and time out, list sanctions.
    Moderate,
    /// Change settings, delete the room, see and rotate the stream key, appoint moderators.
    Manage,
}

impl RoomAction {
    /// The least standing that may do this.
    pub fn least(self) -> Standing {
        match self {
            RoomAction::View => Standing::Anonymous,
            RoomAction::Chat | RoomAction::Plan | RoomAction::Talk => Standing::Member,
            RoomAction::Moderate => Standing::Moderator,
            RoomAction::Manage => Standing::Owner,
        }
    }
}

/// Whether someone of `standing` may take down a pin or close a poll (`is_author`: they made
/// it): its author, the room's moderators, owner and admins.
pub fn may_take_down(standing: Standing, is_author: bool) -> bool {
    (is_author && standing >= Standing::Member) || standing.may(RoomAction::Moderate)
}

/// Site-wide actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteAction {
    /// Create a room (members up to a limit, see [`SiteAction::OwnUnlimitedRooms`]).
    CreateRoom,
    /// Own any number of rooms.
    OwnUnlimitedRooms,
    /// Site settings such as the blocked-terms lists.
    Administer,
}

/// Whether `user` may do a site-wide action.
pub fn may_site(user: Option<&User>, action: SiteAction) -> bool {
    match (user, action) {
        (None, _) => false,
        (Some(_), SiteAction::CreateRoom) => true,
        (Some(u), SiteAction::OwnUnlimitedRooms | SiteAction::Administer) => u.role == Role::Admin,
    }
}

/// `Ok` when allowed; 401 for anonymous callers, 403 ("admins only") for others.
pub fn require_site(user: Option<&User>, action: SiteAction) -> Result<(), Error> {
    match (may_site(user, action), user) {
        (true, _) => Ok(()),
        (false, None) => Err(Error::Unauthorized),
        (false, Some(_)) => Err(Error::Forbidden("admins only".into())),
    }
}

/// Things done to a video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoAction {
    /// See it and play it: a ready public or unlisted video, anyone with its (random) id; a
    /// private one, or one still processing or failed, only its owner and admins.
    Watch,
    /// Rename it, change who sees it, download the original, share it, delete it: its owner
    /// and admins.
    Manage,
}

/// Whether someone who may view a room may play `video` through the room's watch party
/// (`held`: the party plays or queues it). Whoever loaded it there could watch it (checked at
/// load), so a private video is shown to the room only while the party holds it.
pub fn may_video_in_party(video: &Video, held: bool) -> bool {
    held && video.status == VideoStatus::Ready
}

/// Whether `user` may do `action` to `video`.
pub fn may_video(user: Option<&User>, video: &Video, action: VideoAction) -> bool {
    let privileged = user.is_some_and(|u| u.role == Role::Admin || u.id == video.owner_id);
    match action {
        VideoAction::Watch => {
            privileged
                || (video.status == VideoStatus::Ready && video.visibility != Visibility::Private)
        }
        VideoAction::Manage => privileged,
    }
}

/// Things done to a community post or comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostAction {
    /// Change its text, photos and details; delete it: its author, moderators and admins.
    Edit,
    /// Hide and show it, see it hidden, work the report queue: moderators and admins.
    Moderate,
    /// Move a market listing on sale → reserved → sold: its seller alone.
    SetStatus,
}

/// Whether `user` may do `action` to a post or comment written by `author_id`.
pub fn may_post(user: Option<&User>, author_id: i64, action: PostAction) -> bool {
    let Some(u) = user else { return false };
    let staff = matches!(u.role, Role::Admin | Role::Moderator);
    match action {
        PostAction::Edit => staff || u.id == author_id,
        PostAction::Moderate => staff,
        PostAction::SetStatus => u.id == author_id,
    }
}

/// `Ok` when allowed; 401 for anonymous callers, 403 for others.
pub fn require_post(user: Option<&User>, author_id: i64, action: PostAction) -> Result<(), Error> {
    match (may_post(user, author_id, action), user) {
        (true, _) => Ok(()),
        (false, None) => Err(Error::Unauthorized),
        (false, Some(_)) => Err(match action {
            PostAction::Edit => {
                Error::Forbidden("only its author or a moderator may do that".into())
            }
            PostAction::Moderate => Error::Forbidden("moderators only".into()),
            PostAction::SetStatus => {
                Error::Forbidden("only the seller may change a listing's status".into())
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64, role: Role) -> User {
        User {
            id,
            username: format!("u{id}"),
            role,
        }
    }

    #[test]
    fn standing_is_the_highest_that_applies() {
        let owner = 1;
        assert_eq!(Standing::of(None, owner, false), Standing::Anonymous);
        assert_eq!(
            Standing::of(Some(&user(5, Role::Member)), owner, false),
            Standing::Member
        );
        assert_eq!(
            Standing::of(Some(&user(5, Role::Member)), owner, true),
            Standing::Moderator
        );
        assert_eq!(
            Standing::of(Some(&user(1, Role::Member)), owner, true),
            Standing::Owner
        );
        assert_eq!(
            Standing::of(Some(&user(1, Role::Admin)), owner, false),
            Standing::Admin
        );
        assert_eq!(
            Standing::of(Some(&user(9, Role::Admin)), owner, false),
            Standing::Admin
        );
    }

    #[test]
    fn room_action_table() {
        use RoomAction::*;
        use Standing::*;
        // (standing, view, chat + plan, moderate, manage, sanctionable, paced, take down
        // another's pin or poll)
        let table = [
            (Anonymous, true, false, false, false, true, true, false),
            (Member, true, true, false, false, true, true, false),
            (Moderator, true, true, true, false, false, false, true),
            (Owner, true, true, true, true, false, false, true),
            (Admin, true, true, true, true, false, false, true),
        ];
        for (s, view, chat, moderate, manage, sanctionable, paced, take_down) in table {
            assert_eq!(s.may(View), view, "{s:?} view");
            assert_eq!(s.may(Chat), chat, "{s:?} chat");
            assert_eq!(s.may(Plan), chat, "{s:?} plan");
            assert_eq!(may_take_down(s, false), take_down, "{s:?} take down");
            // Their own: anyone signed in.
            assert_eq!(
                may_take_down(s, true),
                s != Anonymous,
                "{s:?} take down own"
            );
            assert_eq!(s.may(Moderate), moderate, "{s:?} moderate");
            assert_eq!(s.may(Manage), manage, "{s:?} manage");
            assert_eq!(s.can_be_sanctioned(), sanctionable, "{s:?} sanctionable");
            assert_eq!(s.is_paced(), paced, "{s:?} paced");
        }
        assert!(matches!(Anonymous.require(Chat), Err(Error::Unauthorized)));
        assert!(matches!(Member.require(Manage), Err(Error::Forbidden(_))));
        assert!(Owner.require(Manage).is_ok());
    }

    #[test]
    fn private_rooms_are_seen_by_their_people_only() {
        let member = user(2, Role::Member);
        let admin = user(3, Role::Admin);
        let owner = user(1, Role::Member);
        assert!(may_see_room(None, false, 1, false, false));
        assert!(!may_see_room(None, true, 1, false, false));
        assert!(!may_see_room(Some(&member), true, 1, false, false));
        assert!(may_see_room(Some(&member), true, 1, false, true));
        assert!(may_see_room(Some(&member), true, 1, true, false));
        assert!(may_see_room(Some(&owner), true, 1, false, false));
        assert!(may_see_room(Some(&admin), true, 1, false, false));
    }

    #[test]
    fn post_table() {
        use PostAction::*;
        let author = user(4, Role::Member);
        let other = user(5, Role::Member);
        let moderator = user(6, Role::Moderator);
        let admin = user(7, Role::Admin);
        // (user, edit, moderate, set status) of a post by user 4
        let table = [
            (None, false, false, false),
            (Some(&author), true, false, true),
            (Some(&other), false, false, false),
            (Some(&moderator), true, true, false),
            (Some(&admin), true, true, false),
        ];
        for (u, edit, moderate, status) in table {
            assert_eq!(may_post(u, 4, Edit), edit, "{u:?} edit");
            assert_eq!(may_post(u, 4, Moderate), moderate, "{u:?} moderate");
            assert_eq!(may_post(u, 4, SetStatus), status, "{u:?} status");
        }
        assert!(matches!(
            require_post(None, 4, Edit),
            Err(Error::Unauthorized)
        ));
        assert!(matches!(
            require_post(Some(&other), 4, Edit),
            Err(Error::Forbidden(_))
        ));
        // A site moderator is a member in rooms.
        assert_eq!(Standing::of(Some(&moderator), 1, false), Standing::Member);
    }

    #[test]
    fn site_and_video_tables() {
        let member = user(2, Role::Member);
        let admin = user(3, Role::Admin);
        for (u, create, unlimited, administer) in [
            (None, false, false, false),
            (Some(&member), true, false, false),
            (Some(&admin), true, true, true),
        ] {
            assert_eq!(may_site(u, SiteAction::CreateRoom), create);
            assert_eq!(may_site(u, SiteAction::OwnUnlimitedRooms), unlimited);
            assert_eq!(may_site(u, SiteAction::Administer), administer);
        }
        let owner = user(7, Role::Member);
        let video = |status, visibility| Video {
            id: 1,
            public_id: "v".into(),
            owner_id: 7,
            room_id: None,
            title: "t".into(),
            source: crate::storage::videos::VideoSource::Upload,
            status,
            duration_ms: 0,
            has_thumbnail: false,
            has_storyboard: false,
            upload_id: None,
            error: None,
            progress: 0,
            width: 0,
            height: 0,
            original_bytes: 0,
            stored_bytes: 0,
            visibility,
            filename: String::new(),
            created_at: 0,
        };
        use Visibility::*;
        for (status, vis) in [
            (VideoStatus::Processing, Public),
            (VideoStatus::Failed, Public),
            (VideoStatus::Ready, Private),
        ] {
            let v = video(status, vis);
            assert!(!may_video(None, &v, VideoAction::Watch));
            assert!(!may_video(Some(&member), &v, VideoAction::Watch));
            assert!(may_video(Some(&owner), &v, VideoAction::Watch));
            assert!(may_video(Some(&admin), &v, VideoAction::Watch));
        }
        for vis in [Public, Unlisted] {
            let v = video(VideoStatus::Ready, vis);
            assert!(may_video(None, &v, VideoAction::Watch));
            assert!(!may_video(None, &v, VideoAction::Manage));
            assert!(!may_video(Some(&member), &v, VideoAction::Manage));
            assert!(may_video(Some(&owner), &v, VideoAction::Manage));
            assert!(may_video(Some(&admin), &v, VideoAction::Manage));
        }
    }
}
