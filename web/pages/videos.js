// @ts-check
// My videos: the signed-in user's recordings.

import { api, el, errMsg, fmtDateTime, fmtDuration, setTitle } from "../dom.js";
import { t, tn } from "../i18n.js";
import * as store from "../store.js";

/** @typedef {import("../router.js").PageContext} PageContext */
/** @typedef {import("../types.js").Video} Video */

/** The translated name of a video's status. @param {string} status */
export function statusText(status) {
  if (status === "ready") return t("video.status.ready");
  if (status === "processing") return t("video.status.processing");
  if (status === "failed") return t("video.status.failed");
  return status;
}

/** @param {Video} v */
function videoCard(v) {
  return el("li", {},
    el("a", { class: "room-card", href: `/v/${encodeURIComponent(v.id)}`, "data-video": v.id },
      el("div", { class: "thumb" }, v.thumbnail_url ? el("img", { src: v.thumbnail_url, alt: "", loading: "lazy" }) : el("span", { text: statusText(v.status) })),
      el("div", { class: "title", text: v.title }),
      el("div", { class: "meta" },
        el("span", { class: `badge ${v.status === "ready" ? "off" : "live"}`, text: statusText(v.status) }),
        el("span", { text: fmtDuration(v.duration_s) }),
        el("span", { text: fmtDateTime(v.created_at) }))));
}

/** @param {PageContext} ctx */
export function mount({ root, signal }) {
  setTitle(t("videos.title"));
  if (!store.get().user) {
    root.replaceChildren(el("h1", { text: t("videos.title") }),
      el("p", {}, tn("videos.loginFirst", { login: el("a", { href: "/#login", text: t("nav.login") }) })));
    return;
  }
  const list = el("ul", { class: "rooms", id: "video-list" });
  root.replaceChildren(el("h1", { text: t("videos.title") }), list);
  api("GET", "/videos", undefined, { signal }).then(
    (/** @type {{ videos: Video[] }} */ { videos }) => {
      if (videos.length === 0) list.append(el("li", { class: "muted", text: t("videos.empty") }));
      for (const v of videos) list.append(videoCard(v));
    },
    (e) => { if (!signal.aborted) list.append(el("li", { class: "error", text: errMsg(e) })); });
}
