// @ts-check
// One video: the player with storyboard previews and, for its owner (and admins), the panels
// that rename it, set who may watch, delete it and share it.

import { api, ApiError, el, errMsg, setTitle } from "../dom.js";
import { t } from "../i18n.js";
import * as store from "../store.js";
import { managePanel } from "../video/manage.js";
import { sharesPanel } from "../video/shares.js";
import { watchStage } from "../video/watch.js";

/** @typedef {import("../router.js").PageContext} PageContext */
/** @typedef {import("../types.js").Video} Video */
/** @typedef {import("../types.js").Share} Share */

/** @param {PageContext} ctx */
export function mount(ctx) {
  const { root, params, signal } = ctx;
  const path = `/videos/${encodeURIComponent(params.id)}`;
  let dispose = () => {};
  root.replaceChildren(el("p", { class: "muted", text: t("common.loading") }));
  const show = async () => {
    /** @type {Video} */
    let v;
    try {
      ({ video: v } = await api("GET", path, undefined, { signal }));
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
    const watch = watchStage(v, signal);
    dispose = watch.dispose;
    root.replaceChildren(el("div", { class: "video-layout" }, watch.stage));
    if (!store.get().user) return;
    // Only those who manage the video may list its links: that answer says whether to show the
    // owner's panels (403 or 404 for everyone else).
    /** @type {Share[]} */
    let shares;
    try {
      ({ shares } = await api("GET", `${path}/shares`, undefined, { signal }));
    } catch {
      return;
    }
    if (signal.aborted) return;
    /** @param {Video} changed */
    const onChange = (changed) => { watch.title.textContent = changed.title; setTitle(changed.title); };
    watch.stage.after(el("div", { class: "video-panels" }, managePanel(v, ctx, onChange), sharesPanel(v, shares, ctx)));
  };
  void show();
  return () => dispose();
}
