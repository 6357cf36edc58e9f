// @ts-check
// Korean and English. `t(key, vars)` looks a string up in the current language (English when a
// key is missing there) and fills its `{name}` placeholders; `tn` does the same with DOM nodes
// as values, for sentences with a link inside. The language is the visitor's saved choice, else
// the browser's (ko* → Korean), and lives in the store so a switch re-renders the page.

import * as store from "./store.js";
import en from "./locales/en.js";
import ko from "./locales/ko.js";

/** @typedef {keyof typeof en} Key */
/** @typedef {import("./store.js").Lang} Lang */

/** @type {Record<Lang, Record<Key, string>>} */
const dictionaries = { en, ko };

/** The languages offered, each named in itself. @type {ReadonlyArray<[Lang, string]>} */
export const languages = [["en", "English"], ["ko", "한국어"]];

const SAVED = "moim.lang";

/** @param {unknown} s @returns {s is Lang} */
const isLang = (s) => s === "en" || s === "ko";

/** The saved choice, else the browser's language. @returns {Lang} */
export function detectLang() {
  let saved = null;
  try { saved = localStorage.getItem(SAVED); } catch { /* storage disabled */ }
  if (isLang(saved)) return saved;
  return (navigator.language || "").toLowerCase().startsWith("ko") ? "ko" : "en";
}

/**
 * Switches the UI language; `save` remembers it as the visitor's choice.
 * @param {Lang} lang
 * @param {boolean} [save]
 */
export function setLang(lang, save = false) {
  if (save) {
    try { localStorage.setItem(SAVED, lang); } catch { /* storage disabled: this visit only */ }
  }
  document.documentElement.lang = lang;
  if (store.get().lang !== lang) store.set({ lang });
}

/** @returns {Lang} */
export function lang() {
  return store.get().lang;
}

/** The locale for dates and times: the browser's own when it is in the UI's language. */
export function locale() {
  const l = lang();
  const browser = navigator.language || "";
  return browser.toLowerCase().startsWith(l) ? browser : l;
}

/** @param {Key} key */
function lookup(key) {
  return dictionaries[lang()][key] ?? en[key];
}

/**
 * The text for `key` with `{name}` placeholders filled from `vars`.
 * @param {Key} key
 * @param {Record<string, string | number>} [vars]
 */
export function t(key, vars) {
  const text = lookup(key);
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

/**
 * Like `t`, with nodes for placeholders; returns the pieces to append, in order.
 * @param {Key} key
 * @param {Record<string, Node>} nodes
 * @returns {Array<string | Node>}
 */
export function tn(key, nodes) {
  return lookup(key).split(/(\{\w+\})/).filter(Boolean).map((part) => {
    const m = /^\{(\w+)\}$/.exec(part);
    return m && m[1] in nodes ? nodes[m[1]] : part;
  });
}

/**
 * What to show for a failed request or a refused chat action. English shows the server's own
 * message (it is more specific); other languages show their translation of the code when there
 * is one, else the server's message.
 * @param {string | undefined | null} code
 * @param {string} message
 */
export function errorText(code, message) {
  const key = `error.${code}`;
  const own = /** @type {Record<string, string | undefined>} */ (dictionaries[lang()]);
  if (code && (lang() !== "en" || !message) && own[key]) return /** @type {string} */ (own[key]);
  return message || t("error.network");
}
