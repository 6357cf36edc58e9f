// @ts-check
// The room owner's "Go live" panel: where to point OBS, the stream key, recording.

import { api, el, errMsg } from "../dom.js";
import { t } from "../i18n.js";
import { browserBroadcast } from "./realtime.js";

/** @typedef {import("../types.js").Room} Room */
/** @typedef {import("../types.js").StreamKey} StreamKey */

/**
 * @param {Room} room
 * @param {{ signal: AbortSignal }} ctx
 */
export function streamingPanel(room, { signal }) {
  const path = `/rooms/${encodeURIComponent(room.slug)}`;
  const error = el("p", { class: "error", role: "alert" });
  /** @param {unknown} e */
  const fail = (e) => { if (!signal.aborted) error.textContent = errMsg(e); };
  const server = el("input", { id: "rtmp-url", readonly: true, "aria-label": t("live.serverLabel") });
  const key = el("input", { id: "stream-key", type: "password", readonly: true, "aria-label": t("live.keyLabel") });
  /** @param {StreamKey} d */
  const show = (d) => { server.value = d.rtmp_url; key.value = d.stream_key; };
  const reveal = el("button", { class: "ghost", type: "button", text: t("live.show"), onclick: () => {
    key.type = key.type === "password" ? "text" : "password";
    reveal.textContent = key.type === "password" ? t("live.show") : t("live.hide");
  } });
  /** @param {HTMLInputElement} input */
  const copy = (input) => {
    const button = el("button", { class: "ghost", type: "button", text: t("live.copy"), onclick: async () => {
      try { await navigator.clipboard.writeText(input.value); button.textContent = t("live.copied"); }
      catch { input.type = "text"; input.select(); }
    } });
    return button;
  };
  const rotate = el("button", { class: "danger", type: "button", id: "rotate-key", text: t("live.newKey"), onclick: async () => {
    if (!confirm(t("live.newKeyConfirm"))) return;
    try { show(await api("POST", `${path}/stream-key`, undefined, { signal })); error.textContent = ""; } catch (e) { fail(e); }
  } });
  const record = el("input", { type: "checkbox", id: "record", checked: room.record_broadcasts });
  record.addEventListener("change", async () => {
    try { await api("PATCH", path, { record_broadcasts: record.checked }, { signal }); error.textContent = ""; }
    catch (e) { fail(e); record.checked = !record.checked; }
  });
  const box = el("details", { class: "settings", id: "streaming" },
    el("summary", { text: t("live.panel") }),
    el("p", { class: "muted", text: t("live.help") }),
    el("div", { class: "row" }, el("label", { for: "rtmp-url", text: t("live.server") }), server, copy(server)),
    el("div", { class: "row" }, el("label", { for: "stream-key", text: t("live.key") }), key, reveal, copy(key), rotate),
    el("div", { class: "row" }, record, el("label", { for: "record", text: t("live.record") })),
    error,
    browserBroadcast(room.slug, signal));
  box.addEventListener("toggle", async () => {
    if (!box.open || key.value) return;
    try { show(await api("GET", `${path}/stream-key`, undefined, { signal })); } catch (e) { fail(e); }
  });
  return box;
}
