// @ts-check
// The seek bar under a recorded video, with a preview from its storyboard: a WebVTT file whose
// cues point into one sprite image (`storyboard.jpg#xywh=x,y,w,h`). Hovering (or dragging, on
// a touch screen) shows the frame near that time; a click or a release seeks there. The native
// controls keep their own timeline; theirs cannot show pictures.

import { el, fmtDuration } from "../dom.js";
import { t } from "../i18n.js";

/** @typedef {{ start: number, end: number, image: string, x: number, y: number, w: number, h: number }} Cue */

/** Seconds of a WebVTT timestamp (`hh:mm:ss.ttt` or `mm:ss.ttt`). @param {string} s */
function seconds(s) {
  return s.trim().split(":").reduce((acc, part) => acc * 60 + Number(part), 0);
}

/**
 * The cues of a storyboard, image addresses resolved against the WebVTT file's own.
 * @param {string} text
 * @param {string} base the .vtt file's URL
 * @returns {Cue[]}
 */
export function parseStoryboard(text, base) {
  /** @type {Cue[]} */
  const cues = [];
  for (const block of text.replace(/\r\n?/g, "\n").split(/\n{2,}/)) {
    const lines = block.split("\n");
    const at = lines.findIndex((l) => l.includes("-->"));
    if (at < 0 || !lines[at + 1]) continue;
    const [from, to] = lines[at].split("-->");
    const url = new URL(lines[at + 1].trim(), base);
    const m = /^#xywh=(\d+),(\d+),(\d+),(\d+)$/.exec(url.hash);
    if (!m) continue;
    url.hash = "";
    cues.push({ start: seconds(from), end: seconds(to.trim().split(/\s/)[0]), image: url.href,
      x: Number(m[1]), y: Number(m[2]), w: Number(m[3]), h: Number(m[4]) });
  }
  return cues.sort((a, b) => a.start - b.start);
}

/** The cue showing time `s`: the last one starting at or before it. @param {Cue[]} cues @param {number} s */
function cueAt(cues, s) {
  let lo = 0, hi = cues.length - 1, found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (cues[mid].start <= s) { found = mid; lo = mid + 1; } else hi = mid - 1;
  }
  return found >= 0 ? cues[found] : cues[0];
}

/**
 * The seek bar for `video`. `storyboardUrl` may be null (no previews, only the time).
 * @param {HTMLVideoElement} video
 * @param {{ storyboardUrl: string | null, duration: number, signal: AbortSignal }} opts
 *   duration: the API's figure, until the player knows its own
 */
export function seekBar(video, { storyboardUrl, duration, signal }) {
  /** @type {Cue[]} */
  let cues = [];
  const fill = el("div", { class: "seek-fill" });
  const track = el("div", { class: "seek-track" }, fill);
  const tile = el("div", { class: "seek-tile", id: "seek-tile", hidden: true });
  const time = el("span", { class: "seek-time" });
  const preview = el("div", { class: "seek-preview", id: "seek-preview", hidden: true }, tile, time);
  const bar = el("div", { class: "seek", id: "seek", role: "slider", tabindex: 0, "aria-label": t("player.seek"),
    "aria-valuemin": 0 }, track, preview);
  const total = () => (Number.isFinite(video.duration) && video.duration > 0 ? video.duration : duration);
  /** @param {PointerEvent} ev */
  const timeAt = (ev) => {
    const r = track.getBoundingClientRect();
    return Math.min(Math.max((ev.clientX - r.left) / r.width, 0), 1) * total();
  };

  /** @param {number} s @param {number} clientX */
  const show = (s, clientX) => {
    const cue = cues.length ? cueAt(cues, s) : null;
    if (cue) {
      tile.style.backgroundImage = `url(${JSON.stringify(cue.image)})`;
      tile.style.backgroundPosition = `-${cue.x}px -${cue.y}px`;
      tile.style.width = `${cue.w}px`;
      tile.style.height = `${cue.h}px`;
      tile.dataset.x = String(cue.x);
      tile.dataset.y = String(cue.y);
    }
    tile.hidden = !cue;
    time.textContent = fmtDuration(s);
    preview.hidden = false;
    // Centred over the pointer, kept inside the bar.
    const r = bar.getBoundingClientRect();
    const w = preview.offsetWidth;
    preview.style.left = `${Math.min(Math.max(clientX - r.left - w / 2, 0), Math.max(r.width - w, 0))}px`;
  };
  const sync = () => {
    const d = total();
    fill.style.width = `${d ? Math.min(video.currentTime / d, 1) * 100 : 0}%`;
    bar.setAttribute("aria-valuemax", String(Math.round(d)));
    bar.setAttribute("aria-valuenow", String(Math.round(video.currentTime)));
    bar.setAttribute("aria-valuetext", t("player.position", { at: fmtDuration(video.currentTime), of: fmtDuration(d) }));
  };
  for (const type of ["timeupdate", "durationchange", "seeked"]) video.addEventListener(type, sync);
  sync();

  let dragging = false;
  bar.addEventListener("pointermove", (ev) => show(timeAt(ev), ev.clientX));
  bar.addEventListener("pointerleave", () => { if (!dragging) preview.hidden = true; });
  bar.addEventListener("pointerdown", (ev) => {
    dragging = true;
    bar.setPointerCapture(ev.pointerId);
    show(timeAt(ev), ev.clientX);
  });
  bar.addEventListener("pointerup", (ev) => {
    if (!dragging) return;
    dragging = false;
    video.currentTime = timeAt(ev);
    if (ev.pointerType !== "mouse") preview.hidden = true;
  });
  bar.addEventListener("pointercancel", () => { dragging = false; preview.hidden = true; });
  bar.addEventListener("keydown", (ev) => {
    const step = /** @type {Record<string, number | undefined>} */ ({ ArrowLeft: -5, ArrowRight: 5, PageDown: -30, PageUp: 30 })[ev.key];
    if (step !== undefined) video.currentTime = Math.min(Math.max(video.currentTime + step, 0), total());
    else if (ev.key === "Home") video.currentTime = 0;
    else if (ev.key === "End") video.currentTime = total();
    else return;
    ev.preventDefault();
  });

  if (storyboardUrl) {
    const base = new URL(storyboardUrl, location.href).href;
    fetch(base, { credentials: "same-origin", signal })
      .then((res) => (res.ok ? res.text() : ""))
      .then((text) => {
        cues = parseStoryboard(text, base);
        // Fetch the sprite now, so the first hover shows a picture at once.
        if (cues.length) new Image().src = cues[0].image;
      })
      .catch(() => { /* no previews; seeking still works */ });
  }
  return bar;
}
