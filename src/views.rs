//! JSON shapes shared by the HTTP API and the WebSocket protocol. IDs leave as strings.

use serde::{Deserialize, Serialize};

use crate::storage::messages::Message;
use crate::storage::rfc3339;
use crate::storage::rooms::Room;
use crate::storage::users::User;
use crate::storage::videos::{Video, VideoSource, VideoStatus, Visibility};

/// A user as the API shows them.
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub role: &'static str,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id.to_string(),
            username: u.username.clone(),
            role: u.role.as_str(),
        }
    }
}

/// Author of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorView {
    pub id: String,
    pub username: String,
}

/// A member of a room's voice chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoiceMemberView {
    /// The member's username.
    pub user: String,
    pub user_id: String,
    /// Which receiving line of each member's connection carries this member, if one does now
    /// (see `api.md`, voice).
    pub line: Option<usize>,
    /// Not heard: muted by itself or by a moderator.
    pub muted: bool,
    /// Muted by a moderator (only a moderator unmutes it).
    pub held: bool,
    pub speaking: bool,
    /// Its camera is on.
    pub camera: bool,
    /// The receiving video line (camera tile) of each member's connection that shows it, while
    /// its camera is on.
    pub camera_line: Option<usize>,
}

/// A chat message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageView {
    pub seq: i64,
    pub user: AuthorView,
    pub text: String,
    pub at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Set on a line the server wrote (`poll`: a poll's result); absent on members' messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

impl From<&Message> for MessageView {
    fn from(m: &Message) -> Self {
        MessageView {
            seq: m.seq,
            user: AuthorView {
                id: m.user_id.to_string(),
                username: m.username.clone(),
            },
            text: m.text.clone(),
            at: rfc3339(m.created_at),
            nonce: None,
            kind: (m.kind != "chat").then(|| m.kind.clone()),
        }
    }
}

/// A broadcast running in a room, as room views show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveView {
    /// Multivariant playlist.
    pub hls_url: String,
    /// Unix ms.
    pub since_ms: i64,
    pub thumbnail_url: Option<String>,
}

/// A room.
#[derive(Debug, Clone, Serialize)]
pub struct RoomView {
    pub slug: String,
    pub title: String,
    pub owner: String,
    pub viewers: usize,
    pub slow_mode_s: i64,
    pub created_at: String,
    pub last_activity_at: String,
    pub live: bool,
    /// Multivariant playlist while live.
    pub hls_url: Option<String>,
    pub live_since: Option<String>,
    pub thumbnail_url: Option<String>,
    pub record_broadcasts: bool,
    /// `public` or `private` (members only).
    pub visibility: &'static str,
}

impl RoomView {
    pub fn new(r: &Room, viewers: usize, live: Option<&LiveView>) -> Self {
        RoomView {
            slug: r.slug.clone(),
            title: r.title.clone(),
            owner: r.owner.clone(),
            viewers,
            slow_mode_s: r.slow_mode_s,
            created_at: rfc3339(r.created_at),
            last_activity_at: rfc3339(r.last_activity_at),
            live: live.is_some(),
            hls_url: live.map(|l| l.hls_url.clone()),
            live_since: live.map(|l| rfc3339(l.since_ms)),
            thumbnail_url: live.and_then(|l| l.thumbnail_url.clone()),
            record_broadcasts: r.record_broadcasts,
            visibility: if r.private { "private" } else { "public" },
        }
    }
}

/// A video as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VideoView {
    pub id: String,
    pub title: String,
    pub status: VideoStatus,
    pub source: VideoSource,
    /// Processing progress, 0 to 1.
    pub progress: f64,
    /// Why processing failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_s: f64,
    pub width: i64,
    pub height: i64,
    /// Bytes kept for it (the original and what was made from it).
    pub size_bytes: i64,
    pub visibility: Visibility,
    pub hls_url: Option<String>,
    pub thumbnail_url: Option<String>,
    /// WebVTT cues pointing into the storyboard sprite, for seek previews.
    pub storyboard_url: Option<String>,
    pub created_at: String,
}

impl From<&Video> for VideoView {
    fn from(v: &Video) -> Self {
        let ready = v.status == VideoStatus::Ready;
        VideoView {
            id: v.public_id.clone(),
            title: v.title.clone(),
            status: v.status,
            source: v.source,
            progress: v.progress as f64 / 1000.0,
            error: v.error.clone(),
            duration_s: v.duration_ms as f64 / 1000.0,
            width: v.width,
            height: v.height,
            size_bytes: if v.status == VideoStatus::Processing {
                v.original_bytes
            } else {
                v.stored_bytes
            },
            visibility: v.visibility,
            hls_url: ready.then(|| format!("/videos/{}/index.m3u8", v.public_id)),
            thumbnail_url: (ready && v.has_thumbnail)
                .then(|| format!("/videos/{}/thumbnail.jpg", v.public_id)),
            storyboard_url: (ready && v.has_storyboard)
                .then(|| format!("/videos/{}/storyboard.vtt", v.public_id)),
            created_at: rfc3339(v.created_at),
        }
    }
}

/// A member as a watch party names them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartyMemberView {
    pub id: String,
    pub username: String,
}

/// A video in a watch party (the one playing or a queued one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartyVideoView {
    pub id: String,
    pub title: String,
    pub hls_url: String,
    pub duration_s: f64,
    pub thumbnail_url: Option<String>,
}

/// What changed a watch party's state, for the chat line ("mina paused at 12:31").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartyChangeView {
    /// `load`, `play`, `pause`, `seek`, `rate`, `queue`, `next`, `stop`, `host`, `mode`, or
    /// what the server did: `waiting`, `resumed` (a wait ended), `ended` (the video ended),
    /// `advanced` (the queue moved on), `interrupted` (a broadcast started).
    pub action: String,
    /// Who did it; absent for what the server did.
    pub by: Option<PartyMemberView>,
    pub position_s: f64,
}

/// A room's watch party: "at server time `at_server_ms` the position is `position_s`, advancing
/// at `rate` while `playing` and `waiting_for` is empty".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartyView {
    /// Grows with every change: a client keeps the state with the highest.
    pub rev: u64,
    pub video: Option<PartyVideoView>,
    pub playing: bool,
    pub position_s: f64,
    pub at_server_ms: i64,
    pub rate: f64,
    pub host: PartyMemberView,
    /// `host`, `selected` or `everyone`.
    pub mode: String,
    /// Who may control besides everyone in `everyone` mode: the owner, the host and the
    /// selected members.
    pub controllers: Vec<PartyMemberView>,
    pub queue: Vec<PartyVideoView>,
    pub waiting_for: Vec<PartyMemberView>,
    pub ready: Vec<PartyMemberView>,
    /// A broadcast runs in the room: the party is paused and may not play until it ends.
    pub live: bool,
    pub change: Option<PartyChangeView>,
}

/// A photo: its size as uploaded (upright), the placeholder, and the served sizes.
#[derive(Debug, Clone, Serialize)]
pub struct ImageView {
    pub id: String,
    pub width: i64,
    pub height: i64,
    /// Base64 thumbhash, painted while a size loads.
    pub thumbhash: String,
    /// `thumb`, `medium`, `large` → URL.
    pub variants: std::collections::BTreeMap<&'static str, String>,
    /// The same sizes' pixel dimensions.
    pub sizes: std::collections::BTreeMap<&'static str, [u32; 2]>,
}

/// A place's reviews summed up.
#[derive(Debug, Clone, Serialize)]
pub struct RatingView {
    /// The plain mean, `null` with no reviews.
    pub average: Option<f64>,
    /// Pulled toward the site's mean by a prior worth five reviews (what places rank by).
    pub bayesian: f64,
    pub count: i64,
}

/// A place's details.
#[derive(Debug, Clone, Serialize)]
pub struct PlaceView {
    pub id: String,
    pub name: String,
    pub category: String,
    pub address: Option<String>,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub hours: Option<String>,
    pub phone: Option<String>,
    pub rating: RatingView,
}

/// A community post as the API shows it; the fields of other kinds are left out.
#[derive(Debug, Clone, Serialize)]
pub struct PostView {
    pub id: String,
    pub kind: &'static str,
    pub title: String,
    pub body: String,
    pub author: AuthorView,
    pub tags: Vec<String>,
    pub images: Vec<ImageView>,
    pub likes: i64,
    pub comments: i64,
    pub liked_by_me: bool,
    pub favorited_by_me: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub hidden: bool,
    /// A place post's details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<PlaceView>,
    /// A review's place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rating: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub neighbourhood: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buyer: Option<AuthorView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lng: Option<f64>,
    pub created_at: String,
    pub updated_at: String,
}

/// A comment; a reply names its parent.
#[derive(Debug, Clone, Serialize)]
pub struct CommentView {
    pub id: String,
    pub post_id: String,
    pub parent_id: Option<String>,
    pub author: AuthorView,
    pub body: String,
    pub up: i64,
    pub down: i64,
    /// The Wilson lower bound comments are ordered by.
    pub score: f64,
    /// The caller's vote: 1, -1 or 0.
    pub my_vote: i64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub hidden: bool,
    /// Deleted by its author or a moderator, kept as its replies' placeholder.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    pub created_at: String,
    /// Replies, best first (top-level comments only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replies: Vec<CommentView>,
}

/// A place post behind a pin on a room's map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinPlaceView {
    pub id: String,
    /// The plain mean of its reviews, `null` with none.
    pub rating: Option<f64>,
    pub reviews: i64,
    /// Its first photo's thumbnail.
    pub photo_url: Option<String>,
    pub category: String,
}

/// A candidate place on a room's map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinView {
    pub id: String,
    pub name: String,
    pub lat: f64,
    pub lng: f64,
    /// Who dropped it.
    pub user: AuthorView,
    /// The place post it is, when it is one.
    pub place: Option<PinPlaceView>,
    pub created_at: String,
}

/// One member's ballot, shown on a poll whose voters are public.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BallotView {
    pub user: AuthorView,
    pub choices: Vec<usize>,
}

/// A poll's count (see `domain::tally`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PollResultsView {
    /// Ballots naming each option (ranked: as first choice).
    pub counts: Vec<u64>,
    pub voters: u64,
    pub winner: Option<usize>,
    /// Ranked choice: each round's count per option, `null` once it is out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds: Option<Vec<Vec<Option<u64>>>>,
    /// Who chose what; absent on an anonymous poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ballots: Option<Vec<BallotView>>,
}

/// A poll as one member sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PollView {
    pub id: String,
    /// The room it is in.
    pub room: String,
    pub question: String,
    pub options: Vec<String>,
    /// The pin behind each option (`null` for a typed one).
    pub pins: Vec<Option<String>>,
    /// `single`, `multiple` or `ranked`.
    pub mode: String,
    pub anonymous: bool,
    /// When the results are shown: `always`, `on_vote` (to those who voted) or `on_close`.
    pub results_shown: String,
    /// The count, or `null` while this member may not see it.
    pub results: Option<PollResultsView>,
    pub closes_at: Option<String>,
    pub closed: bool,
    pub closed_at: Option<String>,
    pub created_by: AuthorView,
    pub created_at: String,
    /// This member's ballot (`null`: not voted, or not signed in).
    pub my_choices: Option<Vec<usize>>,
}

/// Where one member is looking on a room's map (relayed, never stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapViewView {
    pub user: AuthorView,
    /// `[lat, lng]`.
    pub center: [f64; 2],
    pub zoom: f64,
    /// `[[south, west], [north, east]]`.
    pub bounds: [[f64; 2]; 2],
    pub cursor: Option<[f64; 2]>,
}
