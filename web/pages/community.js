// @ts-check
// Community: the feed of posts (popular, new, or top this week), filtered by kind, tag, words
// (Korean and English) or nearness to where the visitor is, a page at a time. The filters live
// in the address (`/c?kind=market&q=유모차`), so a filtered feed can be shared and reloaded.

import { api, el, errMsg, setTitle } from "../dom.js";
import { t } from "../i18n.js";
import * as store from "../store.js";
import { KINDS, kindText, postCard } from "../community/cards.js";
import { pointPicker } from "../map.js";

/** @typedef {import("../router.js").PageContext} PageContext */
/** @typedef {import("../types.js").Post} Post */

/** The sorts offered: [sort, period, label key]. */
const SORTS = /** @type {const} */ ([
  ["hot", "", "community.sort.hot"],
  ["new", "", "community.sort.new"],
  ["top", "week", "community.sort.topWeek"],
]);

/** The navigation shared by the community's pages. @param {string} here */
export function communityNav(here) {
  const me = store.get().user;
  /** @param {string} href @param {string} id @param {string} label */
  const link = (href, id, label) => el("a", { href, class: here === id ? "current" : "", "aria-current": here === id ? "page" : null, text: label });
  return el("nav", { class: "subnav", "aria-label": t("community.title") },
    link("/c", "feed", t("community.feed")),
    link("/c/popular", "popular", t("community.popular")),
    me ? link("/c/messages", "messages", t("community.messages")) : null,
    me ? el("a", { href: "/c/new", class: "button", id: "write-post", text: t("community.write") }) : null);
}

/** @param {PageContext} ctx */
export function mount({ root, signal, navigate }) {
  setTitle(t("community.title"));
  const params = new URLSearchParams(location.search);
  const kind = params.get("kind") || "";
  const sort = params.get("sort") || "hot";
  const period = params.get("period") || "";
  const tag = params.get("tag") || "";
  const q = params.get("q") || "";
  const near = params.get("near") || "";

  /** @param {Record<string, string>} change */
  const go = (change) => {
    const next = new URLSearchParams(location.search);
    for (const [k, v] of Object.entries(change)) {
      if (v) next.set(k, v); else next.delete(k);
    }
    const s = next.toString();
    navigate(`/c${s ? `?${s}` : ""}`);
  };

  const search = el("input", { type: "search", name: "q", value: q, placeholder: t("community.searchPlaceholder"), "aria-label": t("community.search"), maxlength: 100 });
  const searchForm = el("form", { class: "feed-search", role: "search" }, search, el("button", { type: "submit", text: t("community.search") }));
  searchForm.addEventListener("submit", (ev) => { ev.preventDefault(); go({ q: search.value.trim() }); });
  // "Near": a point chosen on a map (or the visitor's location) and a radius.
  const radius = Math.min(Math.max(Number(params.get("radius_m")) || 5000, 100), 100000);
  const nearStatus = el("span", { class: "muted", role: "status", id: "near-status", text: near ? t("community.nearActive", { n: radius / 1000 }) : "" });
  /** @type {[number, number] | null} */
  let chosen = null;
  const nearPanel = el("div", { class: "near-panel", id: "near-panel", hidden: true });
  const nearButton = el("button", {
    type: "button", id: "near-button", class: near ? "" : "ghost", "aria-pressed": String(Boolean(near)), "aria-expanded": "false",
    text: near ? t("community.nearOff") : t("community.near"),
  });
  nearButton.addEventListener("click", () => {
    if (near) { go({ near: "", radius_m: "" }); return; }
    if (!nearPanel.hidden) { nearPanel.hidden = true; nearButton.setAttribute("aria-expanded", "false"); return; }
    nearPanel.hidden = false;
    nearButton.setAttribute("aria-expanded", "true");
    if (nearPanel.childElementCount) return;
    let r = radius;
    const apply = el("button", { type: "button", id: "near-apply", disabled: true, text: t("community.nearApply") });
    const picker = pointPicker({
      center: null, radius_m: r, signal, label: t("community.nearPick"),
      onPick: (p) => { chosen = p; apply.disabled = false; },
    });
    const radii = el("select", { id: "near-radius", "aria-label": t("community.nearRadius") },
      ...[1000, 5000, 20000].map((m) => el("option", { value: String(m), selected: m === r, text: t("community.km", { n: m / 1000 }) })));
    radii.addEventListener("change", () => { r = Number(radii.value); picker.setRadius(r); });
    const mine = el("button", { type: "button", class: "ghost", text: t("compose.useMyLocation") });
    mine.addEventListener("click", () => {
      if (!navigator.geolocation) { nearStatus.textContent = t("community.nearUnavailable"); return; }
      nearStatus.textContent = t("common.loading");
      navigator.geolocation.getCurrentPosition((pos) => {
        nearStatus.textContent = "";
        chosen = [pos.coords.latitude, pos.coords.longitude];
        picker.set(chosen, { pan: true });
        apply.disabled = false;
      }, () => { nearStatus.textContent = t("community.nearUnavailable"); }, { timeout: 10000, maximumAge: 600000 });
    });
    apply.addEventListener("click", () => {
      if (chosen) go({ near: `${chosen[0].toFixed(5)},${chosen[1].toFixed(5)}`, radius_m: String(r) });
    });
    nearPanel.append(el("p", { class: "muted", text: t("community.nearPick") }), picker.element,
      el("div", { class: "row" }, radii, mine, apply));
  });

  const filters = el("div", { class: "filters" },
    el("div", { class: "chips", role: "group", "aria-label": t("community.kindFilter") },
      ...["", ...KINDS].map((k) => el("button", {
        type: "button", class: k === kind ? "chip on" : "chip", "aria-pressed": String(k === kind), "data-kind": k || "all",
        onclick: () => go({ kind: k }), text: k ? kindText(k) : t("community.all"),
      }))),
    el("div", { class: "tabs", role: "tablist", "aria-label": t("community.sort") },
      ...SORTS.map(([s, p, key]) => el("button", {
        type: "button", role: "tab", "aria-selected": String(s === sort && p === period), "data-sort": s,
        onclick: () => go({ sort: s === "hot" ? "" : s, period: p }), text: t(key),
      }))),
    el("div", { class: "feed-tools" }, searchForm, nearButton, nearStatus),
    nearPanel,
    tag ? el("p", {}, el("span", { class: "chip on", text: `#${tag}` }), " ",
      el("button", { type: "button", class: "ghost", onclick: () => go({ tag: "" }), text: t("community.clearTag") })) : null);

  const list = el("ul", { class: "posts", id: "posts" });
  const more = el("button", { type: "button", class: "ghost", id: "more-posts", hidden: true, text: t("community.more") });
  const status = el("p", { class: "muted", role: "status" });
  root.replaceChildren(
    el("div", { class: "page-head" }, el("h1", { text: t("community.title") })),
    communityNav("feed"), filters, list, status, more);

  /** @type {string | null} */
  let cursor = null;
  const load = async () => {
    const query = new URLSearchParams();
    if (kind) query.set("kind", kind);
    if (sort !== "hot") query.set("sort", sort);
    if (period) query.set("period", period);
    if (tag) query.set("tag", tag);
    if (q) query.set("q", q);
    if (near) { query.set("near", near); query.set("radius_m", String(radius)); }
    if (cursor) query.set("cursor", cursor);
    more.disabled = true;
    status.textContent = t("common.loading");
    try {
      /** @type {{ posts: Post[], next_cursor: string | null }} */
      const page = await api("GET", `/posts?${query}`, undefined, { signal });
      list.append(...page.posts.map(postCard));
      cursor = page.next_cursor;
      more.hidden = !cursor;
      status.textContent = list.children.length ? "" : q || tag || near || kind ? t("community.noMatch") : t("community.empty");
    } catch (e) {
      if (!signal.aborted) status.textContent = errMsg(e);
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener("click", load);
  load();
}
