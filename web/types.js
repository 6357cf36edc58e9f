// @ts-check
// Shapes of what the API and the room WebSocket send (docs/api.md), for the type checker only:
// nothing imports this file at run time.

/** @typedef {{ id: string, username: string, role: "user" | "admin" | string }} User */

/**
 * @typedef {object} Room
 * @property {string} slug
 * @property {string} title
 * @property {string} owner
 * @property {number} viewers
 * @property {number} slow_mode_s
 * @property {string} created_at
 * @property {string} last_activity_at
 * @property {boolean} live
 * @property {string | null} hls_url multivariant playlist while live
 * @property {string | null} live_since
 * @property {string | null} thumbnail_url
 * @property {boolean} record_broadcasts
 * @property {"public" | "private"} visibility
 */

/** @typedef {{ moderate: boolean, manage: boolean }} Permissions */

/** `kind` is set on a line the server wrote (`poll`: a poll's result). */
/** @typedef {{ seq: number, user: { id: string, username: string }, text: string, at: string, nonce?: string, kind?: string }} Message */

/** @typedef {{ id: string, username: string }} Author */

/** An invite link to a room. @typedef {{ code: string, url: string, expires_at: string | null, max_uses: number | null, uses: number, created_at: string }} Invite */

/**
 * A candidate place on a room's map.
 * @typedef {object} Pin
 * @property {string} id
 * @property {string} name
 * @property {number} lat
 * @property {number} lng
 * @property {Author} user who dropped it
 * @property {{ id: string, rating: number | null, reviews: number, photo_url: string | null, category: string } | null} place
 * @property {string} created_at
 */

/** Where a member looks on the room's map. @typedef {{ user: Author, center: [number, number], zoom: number, bounds: [[number, number], [number, number]], cursor: [number, number] | null }} MapView */

/**
 * A poll as this member sees it.
 * @typedef {object} Poll
 * @property {string} id
 * @property {string} room
 * @property {string} question
 * @property {string[]} options
 * @property {Array<string | null>} pins the pin behind each option
 * @property {"single" | "multiple" | "ranked"} mode
 * @property {boolean} anonymous
 * @property {"always" | "on_vote" | "on_close"} results_shown
 * @property {{ counts: number[], voters: number, winner: number | null, rounds?: Array<Array<number | null>>, ballots?: Array<{ user: Author, choices: number[] }> } | null} results
 * @property {string | null} closes_at
 * @property {boolean} closed
 * @property {string | null} closed_at
 * @property {Author} created_by
 * @property {string} created_at
 * @property {number[] | null} my_choices
 */

/** A place post, as far as the map needs it. @typedef {{ id: string, title: string, place?: { name: string, lat: number | null, lng: number | null } }} PlacePost */

/** @typedef {{ username: string, kind: "ban" | "timeout", expires_at: string | null }} Sanction */

/** @typedef {{ id: string, username: string }} Moderator */

/** @typedef {{ stream_key: string, rtmp_url: string }} StreamKey */

/** Who may watch a video: anyone (and it is listed on the owner's page), anyone with its address, only its owner. */
/** @typedef {"public" | "unlisted" | "private"} Visibility */

/**
 * @typedef {object} Video
 * @property {string} id
 * @property {string} title
 * @property {"processing" | "ready" | "failed" | string} status
 * @property {"upload" | "live" | string} source
 * @property {number} progress processing, 0 to 1
 * @property {string} [error] why processing failed, in words for its owner
 * @property {number} duration_s
 * @property {number} width
 * @property {number} height
 * @property {number} size_bytes what it keeps (the original and what was made from it)
 * @property {Visibility} visibility
 * @property {string | null} hls_url
 * @property {string | null} thumbnail_url
 * @property {string | null} storyboard_url WebVTT cues pointing into the storyboard sprite
 * @property {string} created_at
 */

/**
 * A share link of a video.
 * @typedef {object} Share
 * @property {string} code
 * @property {string} url what people open
 * @property {string | null} expires_at
 * @property {number | null} max_views
 * @property {number} views
 * @property {boolean} has_password
 * @property {"active" | "expired" | "exhausted" | "revoked"} state
 * @property {string | null} last_view_at
 * @property {string} created_at
 */

/** What a visitor gets from opening a share link. @typedef {{ share: { code: string, expires_at: string | null }, video: Video }} OpenedShare */

/**
 * A storage plan; a null limit is no limit.
 * @typedef {object} Plan
 * @property {string} name
 * @property {number | null} storage_bytes
 * @property {number | null} max_file_bytes
 * @property {number | null} max_duration_s
 * @property {number | null} uploads_per_day
 */

/** @typedef {{ plan: Plan | null, used_bytes: number, videos: number, uploads_today: number }} Usage */

/** A member's public page. @typedef {{ user: { id: string, username: string }, videos: Video[], rooms: Room[] }} Member */

/** @typedef {{ terms: string[], allowed: string[] }} BlockedTerms */

/** @typedef {{ id: string, username: string }} PartyMember */
/** @typedef {{ id: string, title: string, hls_url: string, duration_s: number, thumbnail_url: string | null }} PartyVideo */

/**
 * A room's watch party: at server time `at_server_ms` the position is `position_s`, advancing at
 * `rate` while `playing` and `waiting_for` is empty.
 * @typedef {object} Party
 * @property {number} rev grows with every change
 * @property {PartyVideo | null} video
 * @property {boolean} playing
 * @property {number} position_s
 * @property {number} at_server_ms
 * @property {number} rate
 * @property {PartyMember} host
 * @property {"host" | "selected" | "everyone"} mode
 * @property {PartyMember[]} controllers
 * @property {PartyVideo[]} queue
 * @property {PartyMember[]} waiting_for
 * @property {PartyMember[]} ready
 * @property {boolean} live
 * @property {{ action: string, by: PartyMember | null, position_s: number } | null} change
 */

// Room WebSocket frames, server → client.
/** @typedef {{ type: "welcome", room: Room, you: User | null, viewers: number, history: Message[], truncated?: boolean, party?: Party | null, pins: Pin[], polls: Poll[], views: MapView[], realtime: boolean, voice: VoiceMember[] }} WelcomeFrame */
/** @typedef {{ type: "message" } & Message} MessageFrame */
/** @typedef {{ type: "deleted", seq: number }} DeletedFrame */
/** @typedef {{ type: "room", room: Room }} RoomFrame */
/** @typedef {{ type: "viewers", count: number }} ViewersFrame */
/** @typedef {{ type: "live", state: "started" | "ended", hls_url?: string }} LiveFrame */
/** @typedef {{ type: "error", code: string, message: string, retry_after_ms?: number }} ErrorFrame */
/** @typedef {{ type: "reconnect", reason: string }} ReconnectFrame */
/** @typedef {{ type: "pong" }} PongFrame */
/** @typedef {{ type: "time.pong", t0: number, server_ms: number }} TimePongFrame */
/** @typedef {{ type: "party.state" } & Party} PartyFrame */
/** @typedef {{ type: "map.view" } & MapView} MapViewFrame */
/** @typedef {{ type: "map.pins", pins: Pin[] }} MapPinsFrame */
/** @typedef {{ type: "map.left", user: Author }} MapLeftFrame */
/** @typedef {{ type: "realtime", publishing: boolean }} RealtimeFrame */
/** A member of the room's voice chat. @typedef {{ user: string, user_id: string, line: number | null, muted: boolean, held: boolean, speaking: boolean, camera: boolean, camera_line: number | null }} VoiceMember */
/** @typedef {{ type: "voice.members", members: VoiceMember[] }} VoiceMembersFrame */
/** @typedef {{ type: "poll.update", poll: Poll }} PollUpdateFrame */
/**
 * @typedef {WelcomeFrame | MessageFrame | DeletedFrame | RoomFrame | ViewersFrame | LiveFrame
 *   | ErrorFrame | ReconnectFrame | PongFrame | TimePongFrame | PartyFrame
 *   | MapViewFrame | MapPinsFrame | MapLeftFrame | PollUpdateFrame | RealtimeFrame | VoiceMembersFrame} ServerFrame
 */

// Client → server.
/**
 * @typedef {{ type: "send", text: string, nonce?: string } | { type: "ping" }
 *   | { type: "time.ping", t0: number }
 *   | { type: "party.load", video_id: string } | { type: "party.play" } | { type: "party.pause" }
 *   | { type: "party.seek", position_s: number } | { type: "party.rate", rate: number }
 *   | { type: "party.queue", video_ids: string[] } | { type: "party.next" } | { type: "party.stop" }
 *   | { type: "party.host", user_id: string }
 *   | { type: "party.mode", mode: "host" | "selected" | "everyone", selected?: string[] }
 *   | { type: "party.ready", ready: boolean } | { type: "party.buffering", state: boolean }
 *   | { type: "party.report", position_s: number, at_server_ms: number }
 *   | { type: "map.view", center: [number, number], zoom: number, bounds: [[number, number], [number, number]], cursor: [number, number] | null }
 *   | { type: "map.pin.add", place_id?: string, name?: string, lat?: number, lng?: number }
 *   | { type: "map.pin.remove", id: string }} ClientFrame
 */

export {};

/**
 * A photo: its upright size, the placeholder hash and the served sizes.
 * @typedef {object} Image
 * @property {string} id
 * @property {number} width
 * @property {number} height
 * @property {string} thumbhash
 * @property {Record<"thumb" | "medium" | "large", string>} variants
 * @property {Record<"thumb" | "medium" | "large", [number, number]>} sizes
 */

/** @typedef {{ average: number | null, bayesian: number, count: number }} Rating */

/**
 * @typedef {object} Place
 * @property {string} id
 * @property {string} name
 * @property {string} category
 * @property {string | null} address
 * @property {number | null} lat
 * @property {number | null} lng
 * @property {string | null} hours
 * @property {string | null} phone
 * @property {Rating} rating
 */

/**
 * A community post (docs/api.md, "Posts"); fields of other kinds are absent.
 * @typedef {object} Post
 * @property {string} id
 * @property {"place" | "review" | "market" | "talk"} kind
 * @property {string} title
 * @property {string} body
 * @property {{ id: string, username: string }} author
 * @property {string[]} tags
 * @property {Image[]} images
 * @property {number} likes
 * @property {number} comments
 * @property {boolean} liked_by_me
 * @property {boolean} favorited_by_me
 * @property {boolean} [hidden]
 * @property {Place} [place]
 * @property {string} [place_id]
 * @property {string} [place_name]
 * @property {number} [rating]
 * @property {number} [price]
 * @property {string} [condition]
 * @property {string} [neighbourhood]
 * @property {"on_sale" | "reserved" | "sold"} [status]
 * @property {{ id: string, username: string }} [buyer]
 * @property {number} [lat]
 * @property {number} [lng]
 * @property {string} created_at
 * @property {string} updated_at
 */

/**
 * @typedef {object} Comment
 * @property {string} id
 * @property {string} post_id
 * @property {string | null} parent_id
 * @property {{ id: string, username: string }} author
 * @property {string} body
 * @property {number} up
 * @property {number} down
 * @property {number} score
 * @property {number} my_vote
 * @property {boolean} [hidden]
 * @property {boolean} [deleted] kept empty as its replies' placeholder
 * @property {string} created_at
 * @property {Comment[]} [replies]
 */

/**
 * A buyer–seller room of a listing.
 * @typedef {object} Contact
 * @property {{ slug: string, url: string }} room
 * @property {{ id: string, title: string, status: string | null }} post
 * @property {{ id: string, username: string }} seller
 * @property {{ id: string, username: string }} buyer
 * @property {"seller" | "buyer"} role
 * @property {string} created_at
 * @property {string} last_activity_at
 */

/** @typedef {{ id: string, post_id: string, comment_id: string | null, reporter: string, reason: string, created_at: string }} Report */

/** A sign-in provider the server offers. @typedef {{ id: string, name: string, kind: "google" | "kakao" | "naver" | "oidc", start_url: string }} SigninProvider */
/** A provider an account signs in with. @typedef {{ provider: string, name: string | null, linked_at: string }} Identity */
/** What the operator registers with a provider. @typedef {{ id: string, name: string, kind: string, issuer: string | null, client_id: string, trust_email: boolean, redirect_url: string }} ProviderSetup */
