// @ts-check
// My videos: uploading (a drop zone and a file picker, a progress row per file), the member's
// videos with their processing state, and their storage use. The list follows the member's
// event stream, so a video goes from processing to ready on screen without a reload.

import { api, el, errMsg, fmtBytes, fmtDateTime, fmtDuration, fmtPercent, setTitle } from "../dom.js";
import { t, tn } from "../i18n.js";
import * as store from "../store.js";
import { startUpload } from "../uploader.js";

/** @typedef {import("../router.js").PageContext} PageContext */
/** @typedef {import("../types.js").Video} Video */
/** @typedef {import("../types.js").Usage} Usage */
/** @typedef {import("../uploader.js").Job} Job */

/** What the picker offers; dropped files are held to the same list. */
const EXTENSIONS = [".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".wmv", ".flv", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".3gp", ".ogv"];
const ACCEPT = ["video/*", ...EXTENSIONS].join(",");

/** @param {File} f */
const isVideo = (f) => f.type.startsWith("video/") || EXTENSIONS.some((x) => f.name.toLowerCase().endsWith(x));

/** The translated name of a video's status. @param {string} status */
export function statusText(status) {
  if (status === "ready") return t("video.status.ready");
  if (status === "processing") return t("video.status.processing");
  if (status === "failed") return t("video.status.failed");
  return status;
}

/** @param {string} visibility */
export function visibilityText(visibility) {
  if (visibility === "public") return t("visibility.public");
  if (visibility === "unlisted") return t("visibility.unlisted");
  if (visibility === "private") return t("visibility.private");
  return visibility;
}

/**
 * A video as a card. Its owner (`mine`) also sees the processing state, visibility and size.
 * @param {Video} v
 * @param {{ mine?: boolean }} [opts]
 */
export function videoCard(v, { mine = false } = {}) {
  const thumb = el("div", { class: "thumb" },
    v.thumbnail_url ? el("img", { src: v.thumbnail_url, alt: "", loading: "lazy" })
      : el("span", { class: "placeholder", text: v.status === "ready" ? "▶" : statusText(v.status) }),
    v.status === "ready" ? el("span", { class: "duration", text: fmtDuration(Math.round(v.duration_s)) }) : null);
  const processing = v.status === "processing";
  const status = processing ? `${statusText(v.status)} ${fmtPercent(v.progress)}` : statusText(v.status);
  return el("li", {},
    el("a", { class: "room-card video-card", href: `/v/${encodeURIComponent(v.id)}`, "data-video": v.id, "data-status": v.status },
      thumb,
      el("div", { class: "title", text: v.title }),
      mine && processing ? el("progress", { class: "processing", max: 1, value: v.progress, "aria-label": status }) : null,
      mine && v.status === "failed" && v.error ? el("p", { class: "error", text: v.error }) : null,
      el("div", { class: "meta" },
        mine ? el("span", { class: `badge ${v.status}`, text: status }) : null,
        mine ? el("span", { text: visibilityText(v.visibility) }) : null,
        mine && v.size_bytes ? el("span", { text: fmtBytes(v.size_bytes) }) : null,
        el("span", { text: fmtDateTime(v.created_at) }))));
}

/**
 * One file's upload: its name, a progress bar, the percentage, and cancel (or retry).
 * @param {File} file
 * @param {Set<Job>} running the page stops these when it is left
 */
function uploadRow(file, running) {
  const bar = el("progress", { max: 100, value: 0, "aria-label": file.name });
  const pct = el("span", { class: "pct", text: fmtPercent(0) });
  const state = el("span", { class: "state muted", text: t("upload.starting") });
  const retry = el("button", { type: "button", class: "ghost", hidden: true, text: t("upload.retry") });
  const cancel = el("button", { type: "button", class: "ghost", text: t("upload.cancel") });
  const row = el("li", { class: "upload", "data-state": "uploading" },
    el("span", { class: "name", text: file.name }), bar, pct, state, retry, cancel);
  const job = startUpload(file, {
    onProgress: (sent, total) => {
      const f = total ? sent / total : 0;
      bar.value = Math.floor(f * 100);
      pct.textContent = fmtPercent(f);
      state.textContent = t("upload.progress", { sent: fmtBytes(sent), total: fmtBytes(total) });
    },
    onSuccess: (id) => {
      running.delete(job);
      row.dataset.state = "done";
      bar.value = 100;
      pct.textContent = fmtPercent(1);
      cancel.remove();
      state.replaceChildren(t("upload.done"), ...(id ? [" ", el("a", { href: `/v/${encodeURIComponent(id)}`, "data-video": id, text: t("upload.open") })] : []));
    },
    onError: (msg, retryable) => {
      row.dataset.state = "failed";
      state.className = "state error";
      state.textContent = msg;
      retry.hidden = !retryable;
    },
  });
  running.add(job);
  retry.addEventListener("click", () => {
    row.dataset.state = "uploading";
    state.className = "state muted";
    state.textContent = t("upload.starting");
    retry.hidden = true;
    job.retry();
  });
  cancel.addEventListener("click", () => {
    running.delete(job);
    row.remove();
    job.cancel().catch(() => { /* the server drops it when it expires */ });
  });
  return row;
}

/**
 * The drop zone and the picker, and the rows of the files going up. Leaving the page pauses
 * them; picking the same files again resumes.
 * @param {AbortSignal} signal
 */
function uploadPanel(signal) {
  const input = el("input", { type: "file", id: "file-input", class: "visually-hidden", multiple: true, accept: ACCEPT });
  const zone = el("label", { class: "dropzone", id: "dropzone", for: "file-input" },
    el("strong", { text: t("upload.drop") }),
    el("span", { class: "button", text: t("upload.choose") }),
    el("span", { class: "muted", text: t("upload.hint") }));
  const note = el("p", { class: "error", role: "alert" });
  const rows = el("ul", { class: "uploads", id: "upload-list" });
  /** @type {Set<Job>} */
  const running = new Set();
  /** @param {File[]} files */
  const add = (files) => {
    const skipped = files.filter((f) => !isVideo(f)).map((f) => f.name);
    note.textContent = skipped.length ? t("upload.skipped", { names: skipped.join(", ") }) : "";
    for (const f of files) if (isVideo(f)) rows.append(uploadRow(f, running));
  };
  input.addEventListener("change", () => {
    add([...(input.files || [])]);
    input.value = ""; // the same file can be picked again (to resume it)
  });
  zone.addEventListener("dragover", (ev) => { ev.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (ev) => {
    ev.preventDefault();
    zone.classList.remove("over");
    add([...((ev.dataTransfer && ev.dataTransfer.files) || [])]);
  });
  // A file dropped beside the zone would otherwise replace the page with it.
  for (const type of ["dragover", "drop"]) window.addEventListener(type, (ev) => ev.preventDefault(), { signal });
  signal.addEventListener("abort", () => { for (const job of running) job.stop(); });
  return el("section", { class: "card upload-card" }, input, zone, note, rows);
}

/** @param {PageContext} ctx */
export function mount({ root, signal }) {
  setTitle(t("videos.title"));
  const me = store.get().user;
  if (!me) {
    root.replaceChildren(el("h1", { text: t("videos.title") }),
      el("p", {}, tn("videos.loginFirst", { login: el("a", { href: "/#login", text: t("nav.login") }) })));
    return;
  }
  const usage = el("div", { class: "usage", id: "usage" });
  const list = el("ul", { class: "rooms", id: "video-list" });
  root.replaceChildren(
    el("div", { class: "page-head" }, el("h1", { text: t("videos.title") }),
      el("a", { href: `/u/${encodeURIComponent(me.username)}`, id: "public-page", text: t("videos.publicPage") })),
    usage, uploadPanel(signal), el("h2", { text: t("videos.library") }), list);

  /** The cards by video id, newest first as the API lists them. @type {Map<string, { video: Video, li: HTMLLIElement }>} */
  const cards = new Map();
  const empty = el("li", { class: "muted", text: t("videos.empty") });
  const showEmpty = () => { if (cards.size === 0) list.replaceChildren(empty); else empty.remove(); };
  /** @param {Video} v */
  const upsert = (v) => {
    const li = videoCard(v, { mine: true });
    const old = cards.get(v.id);
    if (old) old.li.replaceWith(li);
    else list.prepend(li);
    cards.set(v.id, { video: v, li });
    showEmpty();
  };
  /** @param {string} id */
  const remove = (id) => {
    const old = cards.get(id);
    if (old) old.li.remove();
    cards.delete(id);
    showEmpty();
  };

  // Events that arrive while the list loads are applied again on top of what it returns.
  /** @type {Array<() => void> | null} */
  let replay = null;
  let loads = 0;
  const load = async () => {
    const n = ++loads;
    replay = [];
    try {
      /** @type {{ videos: Video[] }} */
      const { videos } = await api("GET", "/videos", undefined, { signal });
      if (n !== loads) return;
      cards.clear();
      list.replaceChildren();
      for (const v of [...videos].reverse()) upsert(v);
      showEmpty();
      for (const again of replay) again();
      replay = null;
    } catch (e) {
      if (!signal.aborted && n === loads) list.replaceChildren(el("li", { class: "error", text: errMsg(e) }));
    }
  };
  /** @param {() => void} change */
  const apply = (change) => { change(); if (replay) replay.push(change); };

  let usageTimer = /** @type {ReturnType<typeof setTimeout> | undefined} */ (undefined);
  const loadUsage = async () => {
    try {
      /** @type {Usage} */
      const u = await api("GET", "/me/usage", undefined, { signal });
      const total = u.plan && u.plan.storage_bytes;
      const perDay = u.plan && u.plan.uploads_per_day;
      usage.replaceChildren(el("div", { class: "usage-line" },
        el("span", { id: "usage-text", text: total != null
          ? t("usage.of", { used: fmtBytes(u.used_bytes), total: fmtBytes(total) })
          : t("usage.used", { used: fmtBytes(u.used_bytes) }) }),
        total != null ? el("progress", { max: total || 1, value: Math.min(u.used_bytes, total), "aria-label": t("usage.label") }) : null,
        perDay != null ? el("span", { class: "muted", text: t("usage.uploadsToday", { n: u.uploads_today, max: perDay }) }) : null,
        u.plan && u.plan.max_file_bytes != null ? el("span", { class: "muted", text: t("usage.maxFile", { size: fmtBytes(u.plan.max_file_bytes) }) }) : null,
        u.plan ? el("span", { class: "muted", text: t("usage.plan", { name: u.plan.name }) }) : null));
    } catch (e) {
      if (!signal.aborted) usage.replaceChildren(el("span", { class: "error", text: errMsg(e) }));
    }
  };
  // Progress events come several a second while a video processes: ask for the usage once they pause.
  const usageSoon = () => { clearTimeout(usageTimer); usageTimer = setTimeout(loadUsage, 1500); };

  void load();
  void loadUsage();
  const events = new EventSource("/api/v1/me/events");
  // `ready` opens every connection, reconnections too: the list is loaded again, so nothing that
  // happened before the stream was listening is missed.
  events.addEventListener("ready", () => void load());
  events.addEventListener("resync", () => { void load(); usageSoon(); });
  events.addEventListener("video", (ev) => {
    /** @type {{ video: Video }} */
    const { video } = JSON.parse(/** @type {MessageEvent} */ (ev).data);
    apply(() => upsert(video));
    usageSoon();
  });
  events.addEventListener("video_deleted", (ev) => {
    /** @type {{ id: string }} */
    const { id } = JSON.parse(/** @type {MessageEvent} */ (ev).data);
    apply(() => remove(id));
    usageSoon();
  });
  return () => { events.close(); clearTimeout(usageTimer); };
}
