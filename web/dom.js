// @ts-check
// Small DOM and API helpers shared by the UI modules.
// User text is only ever inserted with textContent (`text`), never as HTML.

import { errorText, locale, t } from "./i18n.js";

/** @typedef {string | number | boolean | null | undefined | ((ev: Event) => unknown)} AttrValue */
/** @typedef {Node | string | number | null | undefined | false} Child */

/**
 * Makes an element. `on…` attributes add listeners, `text` sets textContent, `true` makes an
 * empty attribute, and null, undefined and false leave an attribute (or a child) out.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, AttrValue>} [attrs]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (typeof v === "function") e.addEventListener(k.slice(2), v);
    else if (k === "text") e.textContent = String(v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** An element the page shell always has. @param {string} id */
export function byId(id) {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} missing from index.html`);
  return e;
}

/** A refused or failed API request: `code` is the API's error code. */
export class ApiError extends Error {
  /**
   * @param {string} message
   * @param {string | undefined} code
   * @param {number} status
   * @param {Record<string, string>} [fields] what is wrong with each named field (422)
   */
  constructor(message, code, status, fields) {
    super(message);
    this.code = code;
    this.status = status;
    this.fields = fields;
  }
}

/**
 * Calls the JSON API. Resolves to the parsed body (null for 204); rejects with an ApiError
 * whose message is ready to show, or with the AbortError of `signal`.
 * @param {string} method
 * @param {string} path under /api/v1
 * @param {unknown} [body]
 * @param {{ signal?: AbortSignal }} [opts]
 * @returns {Promise<any>}
 */
export async function api(method, path, body, opts = {}) {
  /** @type {RequestInit & { headers: Record<string, string> }} */
  const init = { method, headers: {}, credentials: "same-origin", signal: opts.signal };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch("/api/v1" + path, init);
  } catch (e) {
    if (opts.signal && opts.signal.aborted) throw e;
    throw new ApiError(t("error.network"), "network", 0);
  }
  let data = null;
  if (res.status !== 204) {
    try { data = await res.json(); } catch { data = null; }
  }
  if (!res.ok) {
    const code = data && typeof data.error === "string" ? data.error : undefined;
    const message = data && typeof data.message === "string" ? data.message : t("error.http", { status: res.status });
    const fields = data && data.fields && typeof data.fields === "object" ? data.fields : undefined;
    throw new ApiError(errorText(code, message), code, res.status, fields);
  }
  return data;
}

/** The text to show for a caught error. @param {unknown} e */
export function errMsg(e) {
  return e instanceof Error ? e.message : String(e);
}

/** @param {string} iso */
export function fmtTime(iso) {
  return new Date(iso).toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" });
}

/** @param {string} iso */
export function fmtDateTime(iso) {
  return new Date(iso).toLocaleString(locale());
}

/** Seconds as m:ss or h:mm:ss. @param {number} s */
export function fmtDuration(s) {
  s = Math.max(0, Math.floor(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const mm = String(m).padStart(h ? 2 : 1, "0"), ss = String(sec).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** A fraction (0 to 1) as a whole percentage, e.g. "42%". @param {number} f */
export function fmtPercent(f) {
  return new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 0 }).format(Math.floor(f * 100) / 100);
}

/** A byte count in the largest fitting unit (1 000-based, as "MB" means), e.g. "12.5 MB". @param {number} n */
export function fmtBytes(n) {
  const units = ["byte", "kilobyte", "megabyte", "gigabyte", "terabyte"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
  return new Intl.NumberFormat(locale(), { style: "unit", unit: units[i], unitDisplay: i ? "short" : "long", maximumFractionDigits: i ? 1 : 0 }).format(n);
}

/**
 * Loads a vendored script on first use and resolves to what it defines (`get`), or null when
 * it would not load. The script tag is the only record of the load, so callers share one; a
 * failed load is forgotten, so the next caller tries again.
 * @template T
 * @param {string} src
 * @param {() => T | undefined} get
 * @returns {Promise<T | null>}
 */
export function loadScript(src, get) {
  const have = get();
  if (have) return Promise.resolve(have);
  return new Promise((resolve) => {
    let s = /** @type {HTMLScriptElement | null} */ (document.querySelector(`script[src="${src}"]`));
    if (!s) {
      s = el("script", { src });
      document.head.append(s);
    }
    const script = s;
    script.addEventListener("load", () => resolve(get() ?? null));
    script.addEventListener("error", () => { script.remove(); resolve(null); });
  });
}

/** @param {string} [title] */
export function setTitle(title) {
  document.title = title ? `${title} · moim` : "moim";
}
