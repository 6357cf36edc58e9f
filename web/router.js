// @ts-check
// Client-side routing. The route table below is the only list of page paths: the server answers
// every other GET outside /api, /assets and the media routes with the page shell, and an unknown
// path gets the not-found page from here. Leaving a page aborts its signal and calls the dispose
// function its mount returned.

import * as store from "./store.js";
import { mount as home } from "./pages/home.js";
import { mount as room } from "./pages/room.js";
import { mount as videos } from "./pages/videos.js";
import { mount as video } from "./pages/video.js";
import { mount as share } from "./pages/share.js";
import { mount as user } from "./pages/user.js";
import { mount as admin } from "./pages/admin.js";
import { mount as notFound } from "./pages/not-found.js";
import { mount as community } from "./pages/community.js";
import { mount as compose } from "./pages/compose.js";
import { mount as post } from "./pages/post.js";
import { mount as popular } from "./pages/popular.js";
import { mount as messages } from "./pages/messages.js";
import { mount as invite } from "./pages/invite.js";
import { mount as welcome } from "./pages/welcome.js";
import { mount as settings } from "./pages/settings.js";

/**
 * What a page gets when mounted.
 * @typedef {object} PageContext
 * @property {HTMLElement} root the layout's main element, the page's to fill
 * @property {Record<string, string>} params the path's `:name` parts, decoded
 * @property {AbortSignal} signal aborted when the page is left: pass it to fetches and listeners
 * @property {(path: string) => void} navigate goes to another page without a reload
 */
/**
 * A page renders into `ctx.root` and returns what undoes it (sockets, players, timers); what
 * hangs off `ctx.signal` is undone by the router.
 * @typedef {(ctx: PageContext) => (() => void) | void} Mount
 */

/** Path patterns (`:name` is one segment) and their pages, first match wins. @type {Array<[string, Mount]>} */
const routes = [
  ["/", home],
  ["/r/:slug", room],
  ["/videos", videos],
  ["/v/:id", video],
  ["/s/:code", share],
  ["/i/:code", invite],
  ["/u/:username", user],
  ["/admin", admin],
  ["/welcome", welcome],
  ["/settings", settings],
  ["/c", community],
  ["/c/new", compose],
  ["/c/popular", popular],
  ["/c/messages", messages],
  ["/c/p/:id", post],
  ["/c/p/:id/edit", compose],
];

/** Path prefixes the server answers itself (not pages): links to them load from the server. */
const SERVER_PATHS = ["/auth/", "/api/"];

const table = routes.map(([pattern, mount]) => {
  /** @type {string[]} */
  const names = [];
  const body = pattern.replace(/:(\w+)/g, (_, name) => { names.push(name); return "([^/]+)"; });
  return { re: new RegExp(`^${body}${pattern === "/" ? "" : "/?"}$`), names, mount };
});

/**
 * The page for a path and its parameters.
 * @param {string} path
 * @returns {{ mount: Mount, params: Record<string, string> }}
 */
export function match(path) {
  for (const { re, names, mount } of table) {
    const m = re.exec(path);
    if (!m) continue;
    /** @type {Record<string, string>} */
    const params = {};
    try {
      names.forEach((name, i) => { params[name] = decodeURIComponent(m[i + 1]); });
    } catch {
      break; // malformed escape: no page has that address
    }
    return { mount, params };
  }
  return { mount: notFound, params: {} };
}

/**
 * Starts routing into `root`: renders the page for the current address, follows same-origin
 * links without reloading, and renders again on back/forward or when the user or the language
 * changes.
 * @param {HTMLElement} root
 */
export function startRouter(root) {
  let dispose = () => {};

  const render = () => {
    dispose();
    dispose = () => {};
    const { mount, params } = match(location.pathname);
    const aborter = new AbortController();
    root.replaceChildren();
    /** @type {(() => void) | void} */
    let undo;
    try {
      undo = mount({ root, params, signal: aborter.signal, navigate });
    } finally {
      dispose = () => { aborter.abort(); if (undo) undo(); };
    }
    if (location.hash) {
      const target = document.getElementById(location.hash.slice(1));
      if (target) target.scrollIntoView();
    }
  };

  /** @param {string} path */
  const navigate = (path) => {
    history.pushState({}, "", path);
    window.scrollTo(0, 0);
    render();
  };

  document.addEventListener("click", (ev) => {
    const target = ev.target instanceof Element ? ev.target : null;
    const a = target && target.closest("a[href^='/']");
    if (!(a instanceof HTMLAnchorElement) || ev.button !== 0 || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.altKey
      || a.target || a.hasAttribute("download")) return;
    const url = new URL(a.href);
    if (url.origin !== location.origin) return;
    // The server's own routes (signing in through a provider, the API) are left to the browser.
    if (SERVER_PATHS.some((p) => url.pathname.startsWith(p))) return;
    if (url.pathname === location.pathname && url.hash) return; // the browser jumps to the anchor
    ev.preventDefault();
    navigate(url.pathname + url.search + url.hash);
  });
  window.addEventListener("popstate", render);
  store.subscribe((s, prev) => {
    if (s.user !== prev.user || s.lang !== prev.lang) render();
  });
  render();
}

