// Video players: a room's live stream (LL-HLS) and recorded videos (HLS VOD).
// hls.js (vendored, loaded on first use) plays where the browser has no native HLS; Safari plays
// the same playlists natively.

import { el } from "./dom.js";

let hlsLoading = null;

/** The hls.js constructor, or null when the browser can play HLS itself or not at all. */
function loadHls() {
  if (!hlsLoading) {
    hlsLoading = new Promise((resolve) => {
      const s = document.createElement("script");
      s.src = "/assets/vendor/hls.light.min.js";
      s.onload = () => resolve(window.Hls && window.Hls.isSupported() ? window.Hls : null);
      s.onerror = () => resolve(null);
      document.head.append(s);
    });
  }
  return hlsLoading;
}

function fmtDuration(s) {
  s = Math.max(0, Math.floor(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const mm = String(m).padStart(h ? 2 : 1, "0"), ss = String(sec).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** Attaches `url` to `video`; returns a teardown function. `onLevels` gets the renditions. */
async function attach(video, url, { lowLatency, onLevels, onFatal }) {
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
  throw new Error("This browser cannot play HLS video.");
}

/** The live player of a room: offline card, the stream while live, an ended card after. */
export class LivePlayer {
  constructor(container, { showLatency }) {
    this.container = container;
    this.showLatency = showLatency;
    this.session = null;
    this.timer = null;
    this.url = null;
  }

  offline(text = "The stream is offline.") {
    this.teardown();
    this.container.replaceChildren(el("div", { class: "player-card", id: "player-state", text }));
  }

  async start(url, sinceIso) {
    if (this.url === url && this.session) return;
    this.teardown();
    this.url = url;
    const video = el("video", { id: "video", controls: true, muted: true, autoplay: true, playsinline: true });
    video.muted = true; // autoplay is only allowed muted
    const badge = el("span", { class: "badge live", text: "LIVE" });
    const uptime = el("span", { class: "uptime", id: "uptime" });
    const latency = el("span", { class: "latency", id: "latency", hidden: !this.showLatency });
    const quality = el("select", { id: "quality", "aria-label": "quality", hidden: true });
    const bar = el("div", { class: "player-bar" }, badge, uptime, latency, quality);
    this.container.replaceChildren(el("div", { class: "player-frame" }, video, bar));
    const since = sinceIso ? Date.parse(sinceIso) : Date.now();
    try {
      this.session = await attach(video, url, {
        lowLatency: true,
        onLevels: (hls) => {
          if (hls.levels.length < 2) return;
          quality.replaceChildren(el("option", { value: "-1", text: "Auto" }),
            // Highest first, as quality menus usually are (hls.js orders levels by bitrate).
            ...hls.levels.map((l, i) => ({ l, i }))
              .sort((a, b) => (b.l.height - a.l.height) || (b.l.bitrate - a.l.bitrate))
              .map(({ l, i }) => el("option", { value: String(i), text: l.name || `${l.height}p` })));
          quality.hidden = false;
          quality.onchange = () => { hls.currentLevel = Number(quality.value); };
        },
        onFatal: () => { if (this.url === url) this.retry(url, sinceIso); },
      });
    } catch (e) {
      this.container.replaceChildren(el("div", { class: "player-card", text: e.message }));
      return;
    }
    video.play().catch(() => {});
    const tick = () => {
      uptime.textContent = fmtDuration((Date.now() - since) / 1000);
      const hls = this.session && this.session.hls;
      // Behind real time: wall clock minus the program date time of the frame on screen
      // (stamped when the frame reached moim), so it covers delivery and the player's buffer.
      if (this.showLatency && hls && hls.playingDate) {
        const behind = (Date.now() - hls.playingDate.getTime()) / 1000;
        latency.textContent = `latency ${behind.toFixed(1)} s`;
        latency.dataset.seconds = behind.toFixed(3);
      }
    };
    tick();
    this.timer = setInterval(tick, 500);
  }

  retry(url, sinceIso) {
    this.teardown();
    this.container.replaceChildren(el("div", { class: "player-card", text: "Reconnecting to the stream…" }));
    this.url = url;
    setTimeout(() => { if (this.url === url) { this.url = null; this.start(url, sinceIso); } }, 2000);
  }

  ended() {
    this.offline("The broadcast has ended.");
  }

  teardown() {
    clearInterval(this.timer);
    this.timer = null;
    if (this.session) this.session.destroy();
    this.session = null;
    this.url = null;
  }
}

/** A recorded video. */
export async function playVideo(container, url) {
  const video = el("video", { id: "video", controls: true, playsinline: true });
  container.replaceChildren(el("div", { class: "player-frame" }, video));
  try {
    return await attach(video, url, { lowLatency: false });
  } catch (e) {
    container.replaceChildren(el("div", { class: "player-card", text: e.message }));
    return null;
  }
}

export { fmtDuration };
