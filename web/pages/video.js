// @ts-check
// One recorded video, playing.

import { api, ApiError, el, errMsg, fmtDateTime, fmtDuration, setTitle } from "../dom.js";
import { t } from "../i18n.js";
import { playVideo } from "../player.js";
import { statusText } from "./videos.js";

/** @typedef {import("../router.js").PageContext} PageContext */
/** @typedef {import("../types.js").Video} Video */
/** @typedef {import("../player.js").Session} Session */

/** @param {PageContext} ctx */
export function mount({ root, params, signal }) {
  /** @type {Session | null} */
  let session = null;
  root.replaceChildren(el("p", { class: "muted", text: t("common.loading") }));
  const show = async () => {
    /** @type {Video} */
    let v;
    try {
      ({ video: v } = await api("GET", `/videos/${encodeURIComponent(params.id)}`, undefined, { signal }));
    } catch (e) {
      if (signal.aborted) return;
      const missing = e instanceof ApiError && e.status === 404;
      setTitle(missing ? t("common.notFound") : "");
      root.replaceChildren(missing ? el("h1", { text: t("video.notFound") }) : el("p", { class: "error", text: errMsg(e) }),
        el("p", {}, el("a", { href: "/", text: t("common.backHome") })));
      return;
    }
    if (signal.aborted) return;
    setTitle(v.title);
    const box = el("div", { class: "player", id: "player" });
    root.replaceChildren(el("section", { class: "stage video-page" },
      el("h1", { text: v.title }), box,
      el("p", { class: "muted", text: `${fmtDuration(v.duration_s)} · ${fmtDateTime(v.created_at)}` })));
    if (v.status !== "ready" || !v.hls_url) {
      box.replaceChildren(el("div", { class: "player-card", text: t("video.unavailable", { status: statusText(v.status) }) }));
      return;
    }
    const s = await playVideo(box, v.hls_url);
    if (signal.aborted) { if (s) s.destroy(); return; }
    session = s;
  };
  void show();
  return () => { if (session) session.destroy(); };
}
