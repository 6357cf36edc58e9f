// Keeping one player on the party's timeline: the server's clock as this page sees it, where
// the timeline says the video is now, and what to do about a player that drifted. Pure
// functions and one small class, no DOM: the room page feeds them, e2e/unit tests them.

/** Clock probes kept; the offset comes from the one with the lowest round trip. */
export const PROBES = 8;

/**
 * The server's clock, estimated from `time.ping` / `time.pong` probes (NTP's idea: over the
 * probe with the lowest round trip, the server read its clock halfway through it).
 */
export class ServerClock {
  constructor() {
    /** @type {{ offset: number, rtt: number }[]} */
    this.samples = [];
  }

  /**
   * Notes one probe: sent at local `t0`, answered with `serverMs`, received at local `t1`.
   * @param {number} t0
   * @param {number} serverMs
   * @param {number} t1
   */
  add(t0, serverMs, t1) {
    const rtt = t1 - t0;
    if (!Number.isFinite(rtt) || rtt < 0 || !Number.isFinite(serverMs)) return;
    this.samples.push({ offset: serverMs - (t0 + t1) / 2, rtt });
    if (this.samples.length > PROBES) this.samples.shift();
  }

  /** The best probe so far, or null before any. */
  best() {
    let best = null;
    for (const s of this.samples) if (!best || s.rtt < best.rtt) best = s;
    return best;
  }

  /** Whether an estimate exists. */
  ready() {
    return this.samples.length > 0;
  }

  /** Server time minus local time, ms (0 before any probe). */
  offset() {
    return this.best()?.offset ?? 0;
  }

  /** The lowest round trip seen, ms (how sure the offset is: within half of it). */
  rtt() {
    return this.best()?.rtt ?? Infinity;
  }

  /**
   * The server's clock at local time `local` (ms).
   * @param {number} local
   */
  serverTime(local) {
    return local + this.offset();
  }
}

/**
 * @typedef {{ playing: boolean, position_s: number, at_server_ms: number, rate: number,
 *   waiting_for?: unknown[], video?: { duration_s: number } | null }} Timeline
 */

/**
 * Where the party's video is at server time `serverMs`, seconds: `position_s` at
 * `at_server_ms`, advancing at `rate` while playing and nobody is waited for (never before its
 * start instant, never past the end).
 * @param {Timeline} t
 * @param {number} serverMs
 */
export function expectedPosition(t, serverMs) {
  const moving = t.playing && !(t.waiting_for && t.waiting_for.length > 0);
  let p = t.position_s;
  if (moving && serverMs > t.at_server_ms) p += ((serverMs - t.at_server_ms) / 1000) * t.rate;
  const end = t.video?.duration_s;
  if (end && end > 0) p = Math.min(p, end);
  return Math.max(0, p);
}

/** Below this drift (seconds) nothing is done: no player holds time finer. */
export const DEADBAND_S = 0.04;
/**
 * A correction under way goes on until the drift is this small (seconds): stopping at the
 * deadband's edge would leave every player parked just inside it, and two of them up to twice
 * the deadband apart.
 */
export const SETTLE_S = 0.01;
/** Up to this drift the playback rate is nudged; beyond, the player seeks. */
export const SEEK_BEYOND_S = 1;
/** The most the rate moves off the party's rate, as a fraction (no audible pitch change). */
export const MAX_NUDGE = 0.05;
/** Seconds over which a nudge means to close the drift. */
export const CLOSE_OVER_S = 2;
/** After a seek, this long (ms) before the next correction: the player settles first. */
export const COOLDOWN_MS = 1500;
/**
 * Right after a jump (a seek command, a new video, joining late) the drift left is the first
 * seek's landing error (it fetched what it lands on). The position is buffered by then, so a
 * second seek is cheap and lands close: beyond this drift (seconds) it seeks again…
 */
export const JUMP_SEEK_S = 0.1;
/** …this long (ms) after the first seek finished. */
export const JUMP_COOLDOWN_MS = 300;

/**
 * What to do about a player at `actual` seconds when the timeline says `expected`;
 * `correcting` says the player's rate is nudged now (then it settles to SETTLE_S); `jumped`
 * says the player has just jumped (see JUMP_SEEK_S); `sinceSeekMs` is the time since its last
 * seek finished (0 while one is under way).
 * @param {{ expected: number, actual: number, rate: number, canChangeRate: boolean,
 *   seekLatencyS?: number, sinceSeekMs?: number, correcting?: boolean, jumped?: boolean }} p
 * @returns {{ action: "none", rate: number } | { action: "rate", rate: number }
 *   | { action: "seek", to: number, rate: number }}
 */
export function correction(p) {
  const drift = p.actual - p.expected; // > 0: ahead
  const abs = Math.abs(drift);
  const since = p.sinceSeekMs ?? Infinity;
  if (since < (p.jumped ? JUMP_COOLDOWN_MS : COOLDOWN_MS)) return { action: "none", rate: p.rate };
  if (abs < (p.correcting ? SETTLE_S : DEADBAND_S)) return { action: "none", rate: p.rate };
  if (p.jumped && abs > JUMP_SEEK_S) {
    return { action: "seek", to: Math.max(0, p.expected + (p.seekLatencyS ?? 0) * p.rate), rate: p.rate };
  }
  if (abs <= SEEK_BEYOND_S && p.canChangeRate) {
    // Closes the gap over CLOSE_OVER_S, within ±MAX_NUDGE of the party's rate.
    const nudge = Math.max(-MAX_NUDGE, Math.min(MAX_NUDGE, drift / CLOSE_OVER_S));
    return { action: "rate", rate: p.rate * (1 - nudge) };
  }
  if (abs <= SEEK_BEYOND_S && abs < 0.25) {
    // A player that cannot change its rate lives with small drift rather than stutter.
    return { action: "none", rate: p.rate };
  }
  // Lands where the timeline will be once the seek is done.
  const to = Math.max(0, p.expected + (p.seekLatencyS ?? 0) * p.rate);
  return { action: "seek", to, rate: p.rate };
}
