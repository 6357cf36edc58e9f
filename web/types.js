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
 */

/** @typedef {{ moderate: boolean, manage: boolean }} Permissions */

/** @typedef {{ seq: number, user: { id: string, username: string }, text: string, at: string, nonce?: string }} Message */

/** @typedef {{ username: string, kind: "ban" | "timeout", expires_at: string | null }} Sanction */

/** @typedef {{ id: string, username: string }} Moderator */

/** @typedef {{ stream_key: string, rtmp_url: string }} StreamKey */

/**
 * @typedef {object} Video
 * @property {string} id
 * @property {string} title
 * @property {"processing" | "ready" | "failed" | string} status
 * @property {string} source
 * @property {number} duration_s
 * @property {string | null} hls_url
 * @property {string | null} thumbnail_url
 * @property {string} created_at
 */

/** @typedef {{ terms: string[], allowed: string[] }} BlockedTerms */

// Room WebSocket frames, server → client.
/** @typedef {{ type: "welcome", room: Room, you: User | null, viewers: number, history: Message[], truncated?: boolean }} WelcomeFrame */
/** @typedef {{ type: "message" } & Message} MessageFrame */
/** @typedef {{ type: "deleted", seq: number }} DeletedFrame */
/** @typedef {{ type: "room", room: Room }} RoomFrame */
/** @typedef {{ type: "viewers", count: number }} ViewersFrame */
/** @typedef {{ type: "live", state: "started" | "ended", hls_url?: string }} LiveFrame */
/** @typedef {{ type: "error", code: string, message: string, retry_after_ms?: number }} ErrorFrame */
/** @typedef {{ type: "reconnect", reason: string }} ReconnectFrame */
/** @typedef {{ type: "pong" }} PongFrame */
/**
 * @typedef {WelcomeFrame | MessageFrame | DeletedFrame | RoomFrame | ViewersFrame | LiveFrame
 *   | ErrorFrame | ReconnectFrame | PongFrame} ServerFrame
 */

// Client → server.
/** @typedef {{ type: "send", text: string, nonce?: string } | { type: "ping" }} ClientFrame */

export {};
