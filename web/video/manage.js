// @ts-check
// The owner's panel on a video page: rename, who may watch, the original file, delete.

import { api, el, errMsg } from "../dom.js";
import { t } from "../i18n.js";

/** @typedef {import("../types.js").Video} Video */
/** @typedef {import("../types.js").Visibility} Visibility */
/** @typedef {import("../i18n.js").Key} Key */

/** Each visibility with its name and what it means. @type {Array<[Visibility, Key, Key]>} */
const VISIBILITIES = [
  ["public", "visibility.public", "visibility.publicHelp"],
  ["unlisted", "visibility.unlisted", "visibility.unlistedHelp"],
  ["private", "visibility.private", "visibility.privateHelp"],
];

/**
 * @param {Video} v
 * @param {{ signal: AbortSignal, navigate: (path: string) => void }} ctx
 * @param {(v: Video) => void} onChange told of every saved change
 */
export function managePanel(v, { signal, navigate }, onChange) {
  const path = `/videos/${encodeURIComponent(v.id)}`;
  const status = el("p", { class: "muted", role: "status" });
  /** @param {unknown} e */
  const fail = (e) => { if (!signal.aborted) { status.className = "error"; status.textContent = errMsg(e); } };
  /** @param {Record<string, string>} patch */
  const save = async (patch) => {
    /** @type {{ video: Video }} */
    const { video } = await api("PATCH", path, patch, { signal });
    v = video;
    status.className = "muted";
    status.textContent = t("video.saved");
    onChange(video);
  };

  const title = el("input", { name: "title", id: "rename-input", required: true, maxlength: 200, value: v.title, "aria-label": t("video.titleLabel") });
  const rename = el("form", { class: "row", id: "rename-form" }, title, el("button", { type: "submit", text: t("video.rename") }));
  rename.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try { await save({ title: title.value }); title.value = v.title; } catch (e) { fail(e); }
  });

  const help = el("p", { class: "muted help", id: "visibility-help" });
  const select = el("select", { id: "visibility", "aria-describedby": "visibility-help" },
    ...VISIBILITIES.map(([value, name]) => el("option", { value, selected: v.visibility === value, text: t(name) })));
  const explain = () => {
    const found = VISIBILITIES.find(([value]) => value === select.value);
    help.textContent = found ? t(found[2]) : "";
  };
  select.addEventListener("change", async () => {
    explain();
    try { await save({ visibility: select.value }); } catch (e) { fail(e); select.value = v.visibility; explain(); }
  });
  explain();

  const remove = el("button", { type: "button", class: "danger", id: "delete-video", text: t("video.delete"), onclick: async () => {
    if (!confirm(t("video.deleteConfirm", { title: v.title }))) return;
    try {
      await api("DELETE", path, undefined, { signal });
      navigate("/videos");
    } catch (e) { fail(e); }
  } });

  return el("section", { class: "card", id: "manage" },
    el("h2", { text: t("video.manage") }),
    el("label", { class: "field", for: "rename-input", text: t("video.titleLabel") }), rename,
    el("label", { class: "field", for: "visibility", text: t("video.visibility") }), select, help,
    el("div", { class: "row" },
      // Recordings have no original file: they were made here.
      v.source === "live" ? null : el("a", { class: "button ghost", id: "download-original", href: `/api/v1${path}/original`, download: true, text: t("video.download") }),
      remove),
    status);
}
