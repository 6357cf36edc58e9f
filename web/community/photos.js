// @ts-check
// Photos in the community: a photo element that shows its ThumbHash placeholder until the
// served size has loaded, and the editor's photo picker (drag and drop several or pick them,
// each uploads with its own progress bar, then reorder with the arrows or by dragging, and
// remove). Uploads go straight to POST /api/v1/images as the raw file.

import { ApiError, el, errMsg } from "../dom.js";
import { errorText, t } from "../i18n.js";
import { decode } from "./thumbhash.js";

/** @typedef {import("../types.js").Image} Image */

/** @type {Map<string, string>} */
const painted = new Map();

/**
 * The placeholder of a hash as a data URL (painted once per hash), or "" when it cannot be.
 * @param {string} hash
 */
export function placeholderUrl(hash) {
  const have = painted.get(hash);
  if (have !== undefined) return have;
  let url = "";
  const img = decode(hash);
  if (img) {
    const canvas = document.createElement("canvas");
    canvas.width = img.w;
    canvas.height = img.h;
    const g = canvas.getContext("2d");
    if (g) {
      g.putImageData(new ImageData(img.rgba, img.w, img.h), 0, 0);
      url = canvas.toDataURL();
    }
  }
  painted.set(hash, url);
  return url;
}

/**
 * A photo: the placeholder fills its box (at the photo's aspect) until the size has loaded.
 * @param {Image} image
 * @param {"thumb" | "medium" | "large"} size
 * @param {{ alt?: string, cls?: string }} [opts]
 */
export function photo(image, size, { alt = "", cls = "photo" } = {}) {
  const ph = placeholderUrl(image.thumbhash);
  const [w, h] = image.sizes[size] || [image.width, image.height];
  const img = el("img", { src: image.variants[size], alt, loading: "lazy", decoding: "async", width: w, height: h });
  const box = el("span", { class: `${cls} loading`, "data-image": image.id }, img);
  // Set through the CSSOM: the page's policy refuses inline style attributes.
  box.style.aspectRatio = `${w} / ${h}`;
  if (ph) box.style.backgroundImage = `url(${JSON.stringify(ph)})`;
  const done = () => box.classList.remove("loading");
  if (img.complete && img.naturalWidth) done();
  img.addEventListener("load", done);
  img.addEventListener("error", done);
  return box;
}

/** The types the server takes. */
const TYPES = ["image/jpeg", "image/png", "image/webp", "image/gif"];

/**
 * Uploads one file with progress (XHR: fetch cannot report upload progress).
 * @param {File} file
 * @param {(fraction: number) => void} onProgress
 * @returns {{ done: Promise<Image>, abort: () => void }}
 */
function upload(file, onProgress) {
  const xhr = new XMLHttpRequest();
  const done = new Promise((resolve, reject) => {
    xhr.open("POST", "/api/v1/images");
    xhr.setRequestHeader("content-type", file.type);
    xhr.upload.addEventListener("progress", (ev) => { if (ev.lengthComputable) onProgress(ev.loaded / ev.total); });
    xhr.addEventListener("load", () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 201 && data && data.image) resolve(data.image);
      else {
        const code = data && typeof data.error === "string" ? data.error : undefined;
        const msg = data && typeof data.message === "string" ? data.message : t("error.http", { status: xhr.status });
        reject(new ApiError(errorText(code, msg), code, xhr.status));
      }
    });
    xhr.addEventListener("error", () => reject(new ApiError(t("error.network"), "network", 0)));
    xhr.addEventListener("abort", () => reject(new ApiError(t("photos.cancelled"), "aborted", 0)));
    xhr.send(file);
  });
  return { done, abort: () => xhr.abort() };
}

/**
 * The editor's photo picker. `ids()` gives the uploaded photos in their order; `busy()` is
 * true while any is still uploading.
 * @param {{ max: number, initial?: Image[], signal: AbortSignal }} opts
 */
export function photoPicker({ max, initial = [], signal }) {
  /** @typedef {{ row: HTMLLIElement, image: Image | null, abort: (() => void) | null }} Item */
  /** @type {Item[]} */
  const items = [];
  const list = el("ol", { class: "photo-list", id: "photo-list" });
  const note = el("p", { class: "muted", role: "status" });
  const input = el("input", { type: "file", accept: TYPES.join(","), multiple: true, id: "photo-input", class: "visually-hidden" });
  const zone = el("label", { class: "drop-zone", id: "photo-drop", for: "photo-input" },
    el("strong", { text: t("photos.drop") }), el("span", { class: "muted", text: t("photos.limit", { n: max }) }), input);
  let dragged = /** @type {Item | null} */ (null);

  const render = () => {
    list.replaceChildren(...items.map((it) => it.row));
    items.forEach((it, i) => {
      const [left, right] = it.row.querySelectorAll("button.move");
      if (left instanceof HTMLButtonElement) left.disabled = i === 0;
      if (right instanceof HTMLButtonElement) right.disabled = i === items.length - 1;
    });
    zone.hidden = items.length >= max;
  };
  /** @param {Item} it @param {number} by */
  const move = (it, by) => {
    const i = items.indexOf(it);
    const j = i + by;
    if (i < 0 || j < 0 || j >= items.length) return;
    items.splice(i, 1);
    items.splice(j, 0, it);
    render();
  };
  /** @param {Item} it */
  const remove = (it) => {
    if (it.abort) it.abort();
    items.splice(items.indexOf(it), 1);
    render();
  };
  /** @param {Item} it @param {Node} preview @param {Node} [extra] */
  const fill = (it, preview, extra) => {
    it.row.replaceChildren(preview, extra || "",
      el("div", { class: "photo-tools" },
        el("button", { type: "button", class: "ghost move", "aria-label": t("photos.left"), text: "←", onclick: () => move(it, -1) }),
        el("button", { type: "button", class: "ghost move", "aria-label": t("photos.right"), text: "→", onclick: () => move(it, 1) }),
        el("button", { type: "button", class: "ghost remove", "aria-label": t("photos.remove"), text: "×", onclick: () => remove(it) })));
  };
  /** @param {Image | null} image */
  const item = (image) => {
    const row = el("li", { class: "photo-item", draggable: "true" });
    /** @type {Item} */
    const it = { row, image, abort: null };
    row.addEventListener("dragstart", () => { dragged = it; row.classList.add("dragging"); });
    row.addEventListener("dragend", () => { dragged = null; row.classList.remove("dragging"); });
    row.addEventListener("dragover", (ev) => { if (dragged && dragged !== it) ev.preventDefault(); });
    row.addEventListener("drop", (ev) => {
      ev.preventDefault();
      if (!dragged || dragged === it) return;
      const from = items.indexOf(dragged);
      move(dragged, items.indexOf(it) - from);
    });
    return it;
  };
  for (const image of initial.slice(0, max)) {
    const it = item(image);
    fill(it, photo(image, "thumb"));
    it.row.dataset.state = "done";
    items.push(it);
  }

  /** @param {Iterable<File>} files */
  const add = (files) => {
    note.textContent = "";
    for (const file of files) {
      if (items.length >= max) {
        note.textContent = t("photos.tooMany", { n: max });
        break;
      }
      if (!TYPES.includes(file.type)) {
        note.textContent = t("photos.notPicture", { name: file.name });
        continue;
      }
      const it = item(null);
      const bar = el("progress", { max: 100, value: 0, "aria-label": file.name });
      const state = el("span", { class: "muted state", text: file.name });
      const local = el("span", { class: "photo pending" }, el("img", { src: URL.createObjectURL(file), alt: "" }));
      fill(it, local, el("div", { class: "photo-progress" }, bar, state));
      it.row.dataset.state = "uploading";
      items.push(it);
      const job = upload(file, (f) => { bar.value = Math.round(f * 100); });
      it.abort = job.abort;
      job.done.then((image) => {
        it.abort = null;
        it.image = image;
        it.row.dataset.state = "done";
        fill(it, photo(image, "thumb"));
        render();
      }, (e) => {
        it.abort = null;
        if (signal.aborted || (e instanceof ApiError && e.code === "aborted")) return;
        it.row.dataset.state = "failed";
        state.className = "error state";
        state.textContent = `${file.name}: ${errMsg(e)}`;
      });
    }
    render();
  };
  input.addEventListener("change", () => { if (input.files) add(Array.from(input.files)); input.value = ""; });
  zone.addEventListener("dragover", (ev) => { ev.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (ev) => {
    ev.preventDefault();
    zone.classList.remove("over");
    if (ev.dataTransfer) add(Array.from(ev.dataTransfer.files));
  });
  signal.addEventListener("abort", () => { for (const it of items) if (it.abort) it.abort(); });
  render();
  return {
    node: el("div", { class: "photo-picker" }, list, zone, note),
    /** @returns {string[]} */
    ids: () => items.flatMap((it) => (it.image && it.row.dataset.state === "done" ? [it.image.id] : [])),
    /** @returns {Image[]} */
    images: () => items.flatMap((it) => (it.image && it.row.dataset.state === "done" ? [it.image] : [])),
    busy: () => items.some((it) => it.row.dataset.state === "uploading"),
  };
}
