// @ts-check
// Video players: a room's live stream (LL-HLS) and recorded videos (HLS VOD).
// hls.js (vendored, loaded on first use) plays where the browser has no native HLS; Safari plays
// the same playlists natively.

import { el, errMsg, fmtDuration, loadScript } from "./dom.js";
import { t } from "./i18n.js";

/**
 * The part of hls.js moim uses.
 * @typedef {{ height: number, bitrate: number, name?: string }} HlsLevel
 * @typedef {object} Hls
 * @property {HlsLevel[]} levels
 * @property {number} currentLevel
 * @property {Date | null} playingDate
 * @property {(event: string, fn: (event: string, data: any) => void) => void} on
 * @property {(url: string) => void} loadSource
 * @property {(video: HTMLMediaElement) => void} attachMedia
 * @property {() => void} recoverMediaError
 * @property {() => void} destroy
 * @typedef {{
 *   new (config: Record<string, unknown>): Hls,
 *   isSupported(): boolean,
 *   Events: Record<string, string>,
 *   ErrorTypes: Record<string, string>,
 * }} HlsClass
 * @typedef {{ hls: Hls | null, destroy: () => void }} Session
 */

/**
 * The hls.js constructor, or null when the browser can play HLS itself or not at all.
 * @returns {Promise<HlsClass | null>}
 */
async function loadHls() {
  const w = /** @type {Window & { Hls?: HlsClass }} */ (window);
  const Hls = await loadScript("/assets/vendor/hls.light.min.js", () => w.Hls);
  return Hls && Hls.isSupported() ? Hls : null;
}

/**
 * Attaches `url` to `video`.
 * @param {HTMLVideoElement} video
 * @param {string} url
 * @param {{ lowLatency: boolean, onLevels?: (hls: Hls) => void, onFatal?: (data: unknown) => void }} opts
 * @returns {Promise<Session>}
 */
export async function attach(video, url, { lowLatency, onLevels, onFatal }) {
  const Hls = await loadHls();
  if (Hls) {
    const hls = new Hls({
      lowLatencyMode: lowLatency,
      // Workers would need a blob: script source, which the page's CSP does not allow; moim's
      // fMP4 needs no transmuxing, so the main thread has little to do.
      enableWorker: false,
      backBufferLength: 30,
    });
    hls.on(Hls.Events.MANIFEST_PARSED, () => onLevels && onLevels(hls));
    hls.on(Hls.Events.ERROR, (_, data) => {
      if (!data.fatal) return;
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
      else if (onFatal) onFatal(data);
    });
    hls.loadSource(url);
    hls.attachMedia(video);
    return { hls, destroy: () => hls.destroy() };
  }
  if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = url;
    return { hls: null, destroy: () => { video.removeAttribute("src"); video.load(); } };
  }
  throw new Error(t("player.unsupported"));
}

/** The live player of a room: offline card, the stream while live, an ended card after. */
export class LivePlayer {
  /**
   * @param {HTMLElement} container
   * @param {{ showLatency: boolean }} opts
   */
  constructor(container, { showLatency }) {
    this.container = container;
    this.showLatency = showLatency;
    /** @type {Session | null} */
    this.session = null;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.timer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.retryTimer = undefined;
    /** The stream being played or started; null when stopped. @type {string | null} */
    this.url = null;
    /** Bumped by every teardown, so a start that finishes late knows it was overtaken. */
    this.gen = 0;
  }

  offline(text = t("player.offline")) {
    this.teardown();
    this.container.replaceChildren(el("div", { class: "player-card", id: "player-state", text }));
  }

  /**
   * @param {string} url
   * @param {string | null | undefined} sinceIso when the broadcast started
   */
  async start(url, sinceIso) {
    if (this.url === url) return; // already playing or starting it
    this.teardown();
    this.url = url;
    const gen = this.gen;
    const video = el("video", { id: "video", controls: true, muted: true, autoplay: true, playsinline: true });
    video.muted = true; // autoplay is only allowed muted
    const badge = el("span", { class: "badge live", text: t("badge.live") });
    const uptime = el("span", { class: "uptime", id: "uptime" });
    const latency = el("span", { class: "latency", id: "latency", hidden: !this.showLatency });
    const quality = el("select", { id: "quality", "aria-label": t("player.quality"), hidden: true });
    const bar = el("div", { class: "player-bar" }, badge, uptime, latency, quality);
    this.container.replaceChildren(el("div", { class: "player-frame" }, video, bar));
    const since = sinceIso ? Date.parse(sinceIso) : Date.now();
    /** @type {Session} */
    let session;
    try {
      session = await attach(video, url, {
        lowLatency: true,
        onLevels: (hls) => qualityMenu(quality, hls),
        onFatal: () => { if (this.gen === gen) this.retry(url, sinceIso); },
      });
    } catch (e) {
      if (this.gen !== gen) return;
      this.url = null;
      this.container.replaceChildren(el("div", { class: "player-card", text: errMsg(e) }));
      return;
    }
    // Stopped or moved on while hls.js was loading.
    if (this.gen !== gen) { session.destroy(); return; }
    this.session = session;
    video.play().catch(() => {});
    const tick = () => {
      uptime.textContent = fmtDuration((Date.now() - since) / 1000);
      const hls = this.session && this.session.hls;
      // Behind real time: wall clock minus the program date time of the frame on screen
      // (stamped when the frame reached moim), so it covers delivery and the player's buffer.
      if (this.showLatency && hls && hls.playingDate) {
        const behind = (Date.now() - hls.playingDate.getTime()) / 1000;
        latency.textContent = t("player.latency", { s: behind.toFixed(1) });
        latency.dataset.seconds = behind.toFixed(3);
      }
    };
    tick();
    this.timer = setInterval(tick, 500);
  }

  /**
   * @param {string} url
   * @param {string | null | undefined} sinceIso
   */
  retry(url, sinceIso) {
    this.teardown();
    this.container.replaceChildren(el("div", { class: "player-card", text: t("player.reconnecting") }));
    this.retryTimer = setTimeout(() => this.start(url, sinceIso), 2000);
  }

  ended() {
    this.offline(t("player.ended"));
  }

  /** Stops playback and every timer; the player can start again afterwards. */
  teardown() {
    clearInterval(this.timer);
    clearTimeout(this.retryTimer);
    this.timer = undefined;
    this.retryTimer = undefined;
    if (this.session) this.session.destroy();
    this.session = null;
    this.url = null;
    this.gen += 1;
  }
}

/**
 * A rendition's name in the menu: its height, and for the source (named `source` by moim's
 * playlists, live and stored) that it is the original.
 * @param {HlsLevel} l
 */
function levelName(l) {
  if (l.name === "source") return t("player.sourceLevel", { h: l.height });
  return l.name || `${l.height}p`;
}

/**
 * Fills the quality menu from the stream's renditions (hidden when there is only one).
 * @param {HTMLSelectElement} quality
 * @param {Hls} hls
 */
function qualityMenu(quality, hls) {
  if (hls.levels.length < 2) return;
  quality.replaceChildren(el("option", { value: "-1", text: t("player.auto") }),
    // Highest first, as quality menus usually are (hls.js orders levels by bitrate).
    ...hls.levels.map((l, i) => ({ l, i }))
      .sort((a, b) => (b.l.height - a.l.height) || (b.l.bitrate - a.l.bitrate))
      .map(({ l, i }) => el("option", { value: String(i), text: levelName(l) })));
  quality.hidden = false;
  quality.onchange = () => { hls.currentLevel = Number(quality.value); };
}

/**
 * A recorded video; `poster` is shown until it plays.
 * @param {HTMLElement} container
 * @param {string} url
 * @param {{ poster?: string | null }} [opts]
 * @returns {Promise<Session | null>}
 */
export async function playVideo(container, url, { poster } = {}) {
  const video = el("video", { id: "video", controls: true, playsinline: true, poster });
  // A video with several renditions (transcoded, or remuxed and given lower ones) offers them.
  const quality = el("select", { id: "quality", "aria-label": t("player.quality"), hidden: true });
  const bar = el("div", { class: "player-bar" }, quality);
  container.replaceChildren(el("div", { class: "player-frame" }, video, bar));
  try {
    return await attach(video, url, { lowLatency: false, onLevels: (hls) => qualityMenu(quality, hls) });
  } catch (e) {
    container.replaceChildren(el("div", { class: "player-card", text: errMsg(e) }));
    return null;
  }
}
