// @ts-check
// The one WebSocket of a room (docs/api.md, "Room WebSocket"), shared by everything on the room
// page that follows it: chat, the live player, and later the watch party and the map. It owns
// the connection's life: resume with `?since=` the last message seq, reconnect with jittered
// backoff, ping every 25 s, stop for good when banned or the room is deleted. Frames go to the
// listeners of their `type`. Resume bookkeeping is done here, once: a `message` frame at or
// below the last seq is dropped, and a welcome's history holds only messages after it.

/** @typedef {import("./types.js").ServerFrame} ServerFrame */
/** @typedef {import("./types.js").ClientFrame} ClientFrame */
/** @typedef {ServerFrame["type"]} FrameType */
/**
 * The connection as a page should show it: connecting (or told by the server to reconnect),
 * online (welcome received), retrying (closed, trying again soon), stopped (for good).
 * @typedef {"connecting" | "online" | "retrying" | "stopped"} Status
 */

const PING_MS = 25000;
const MAX_BACKOFF_MS = 10000;
/** Close codes after which reconnecting is pointless: banned (4003), room deleted (4004). */
const FINAL_CLOSE = [4003, 4004];
/** Error codes the server closes the connection after, for good. */
const FINAL_ERRORS = ["banned", "room_deleted"];

export class RoomSocket {
  /** @param {string} slug */
  constructor(slug) {
    this.slug = slug;
    /** Highest message seq handed to listeners. */
    this.lastSeq = 0;
    /** @type {Status} */
    this.status = "connecting";
    this.attempt = 0;
    this.stopped = false;
    /** @type {WebSocket | null} */
    this.ws = null;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.pingTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.retryTimer = undefined;
    /** @type {Map<string, Set<(frame: any) => void>>} */
    this.listeners = new Map();
    /** @type {Set<(status: Status) => void>} */
    this.statusListeners = new Set();
  }

  /**
   * Calls `fn` with every frame of `type`; returns a function that stops it.
   * @template {FrameType} T
   * @param {T} type
   * @param {(frame: Extract<ServerFrame, { type: T }>) => void} fn
   * @returns {() => void}
   */
  on(type, fn) {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(fn);
    return () => { set.delete(fn); };
  }

  /**
   * Calls `fn` now and whenever the connection's status changes.
   * @param {(status: Status) => void} fn
   * @returns {() => void}
   */
  onStatus(fn) {
    this.statusListeners.add(fn);
    fn(this.status);
    return () => { this.statusListeners.delete(fn); };
  }

  /** Opens the connection (after the listeners are attached, so none misses the welcome). */
  start() {
    this.connect();
    return this;
  }

  /**
   * Sends a frame if connected.
   * @param {ClientFrame} frame
   * @returns {boolean} whether it went out
   */
  send(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  /** Closes for good; listeners hear nothing more. */
  close() {
    this.stopped = true;
    this.listeners.clear();
    this.statusListeners.clear();
    clearInterval(this.pingTimer);
    clearTimeout(this.retryTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000);
  }

  /** @param {Status} status */
  setStatus(status) {
    this.status = status;
    for (const fn of [...this.statusListeners]) fn(status);
  }

  connect() {
    if (this.stopped) return;
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const since = this.lastSeq > 0 ? `?since=${this.lastSeq}` : "";
    const ws = new WebSocket(`${proto}://${location.host}/api/v1/rooms/${encodeURIComponent(this.slug)}/ws${since}`);
    this.ws = ws;
    this.setStatus("connecting");
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      /** @type {ServerFrame} */
      let f;
      try { f = JSON.parse(ev.data); } catch { return; }
      this.handle(f);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      clearInterval(this.pingTimer);
      if (FINAL_CLOSE.includes(ev.code)) this.stopped = true;
      if (this.stopped) { this.setStatus("stopped"); return; }
      this.setStatus("retrying");
      const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempt) * (0.5 + Math.random() / 2);
      this.attempt += 1;
      this.retryTimer = setTimeout(() => this.connect(), delay);
    };
  }

  /** @param {ServerFrame} f */
  handle(f) {
    switch (f.type) {
      case "welcome": {
        this.attempt = 0;
        const history = [];
        for (const m of f.history) {
          if (m.seq <= this.lastSeq) continue;
          this.lastSeq = m.seq;
          history.push(m);
        }
        clearInterval(this.pingTimer);
        this.pingTimer = setInterval(() => this.send({ type: "ping" }), PING_MS);
        this.setStatus("online");
        this.emit({ ...f, history });
        return;
      }
      case "message":
        // Seqs only grow; anything at or below the last one was already delivered.
        if (f.seq <= this.lastSeq) return;
        this.lastSeq = f.seq;
        break;
      case "error":
        if (FINAL_ERRORS.includes(f.code)) this.stopped = true;
        break;
      case "reconnect":
        this.setStatus("connecting");
        break;
      default:
        break;
    }
    this.emit(f);
  }

  /** @param {ServerFrame} f */
  emit(f) {
    const set = this.listeners.get(f.type);
    if (!set) return;
    for (const fn of [...set]) {
      // One failing listener must not starve the others; its error still surfaces.
      try { fn(f); } catch (e) { queueMicrotask(() => { throw e; }); }
    }
  }
}
