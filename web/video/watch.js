// @ts-check
// What every way of watching a recorded video shows: its title, the player with the thumbnail
// as poster, the seek bar with storyboard previews, and a line of facts. The video page and the
// share page both use it.

import { el, fmtDateTime, fmtDuration } from "../dom.js";
import { t } from "../i18n.js";
import { playVideo } from "../player.js";
import { statusText } from "../pages/videos.js";
import { seekBar } from "./storyboard.js";

/** @typedef {import("../types.js").Video} Video */
/** @typedef {import("../player.js").Session} Session */

/**
 * Builds the stage and starts playing when the video is ready. `dispose` stops the player,
 * also one still loading.
 * @param {Video} v
 * @param {AbortSignal} signal
 * @returns {{ stage: HTMLElement, title: HTMLElement, dispose: () => void }}
 */
export function watchStage(v, signal) {
  const title = el("h1", { id: "video-title", text: v.title });
  const box = el("div", { class: "player", id: "player" });
  const facts = [fmtDuration(Math.round(v.duration_s)), v.height ? `${v.height}p` : "", fmtDateTime(v.created_at)].filter(Boolean);
  const stage = el("section", { class: "stage video-page" }, title, box, el("p", { class: "muted", id: "video-facts", text: facts.join(" · ") }));
  /** @type {Session | null} */
  let session = null;
  let gone = false;
  if (v.status !== "ready" || !v.hls_url) {
    box.replaceChildren(el("div", { class: "player-card", id: "player-state" },
      el("p", { text: t("video.unavailable", { status: statusText(v.status) }) }),
      v.error ? el("p", { class: "error", text: v.error }) : null));
  } else {
    void playVideo(box, v.hls_url, { poster: v.thumbnail_url }).then((s) => {
      if (gone) { if (s) s.destroy(); return; }
      session = s;
      const video = box.querySelector("video");
      if (s && video) box.after(seekBar(video, { storyboardUrl: v.storyboard_url, duration: v.duration_s, signal }));
    });
  }
  return { stage, title, dispose: () => { gone = true; if (session) session.destroy(); } };
}
