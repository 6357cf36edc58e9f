// @ts-check
// How posts look in lists: a card with the first photo, the kind, the title, and what matters
// for the kind (a place's rating, a review's stars and place, a listing's price and status).

import { el, fmtDateTime } from "../dom.js";
import { locale, t } from "../i18n.js";
import { photo } from "./photos.js";

/** @typedef {import("../types.js").Post} Post */

/** The kinds, in the order the filters show them. */
export const KINDS = /** @type {const} */ (["place", "review", "market", "talk"]);

/** @param {string} kind */
export function kindText(kind) {
  if (kind === "place") return t("community.kind.place");
  if (kind === "review") return t("community.kind.review");
  if (kind === "market") return t("community.kind.market");
  if (kind === "talk") return t("community.kind.talk");
  return kind;
}

/** @param {string} category */
export function categoryText(category) {
  const key = /** @type {import("../i18n.js").Key} */ (`community.category.${category}`);
  return t(key) || category;
}

/** @param {string | undefined} status */
export function statusText(status) {
  if (status === "on_sale") return t("market.status.on_sale");
  if (status === "reserved") return t("market.status.reserved");
  if (status === "sold") return t("market.status.sold");
  return status || "";
}

/** @param {string | undefined} c */
export function conditionText(c) {
  const key = /** @type {import("../i18n.js").Key} */ (`market.condition.${c}`);
  return (c && t(key)) || c || "";
}

/** A price in won, or "free". @param {number | undefined} price */
export function priceText(price) {
  if (!price) return t("market.free");
  return new Intl.NumberFormat(locale(), { style: "currency", currency: "KRW", maximumFractionDigits: 0 }).format(price);
}

/** Stars for a rating (1–5, fractions rounded to the half). @param {number} r */
export function stars(r) {
  const full = Math.round(r * 2) / 2;
  const label = t("community.stars", { n: (Math.round(r * 10) / 10).toString() });
  return el("span", { class: "stars", role: "img", "aria-label": label, title: label },
    ...[1, 2, 3, 4, 5].map((i) => el("span", { class: i <= full ? "on" : i - 0.5 === full ? "half" : "off", text: "★" })));
}

/**
 * A post in a list.
 * @param {Post} p
 */
export function postCard(p) {
  const img = p.images[0];
  const rating = p.place && p.place.rating;
  return el("li", {},
    el("a", { class: "post-card", href: `/c/p/${encodeURIComponent(p.id)}`, "data-post": p.id, "data-kind": p.kind },
      el("div", { class: "post-thumb" },
        img ? photo(img, "thumb") : el("span", { class: "post-thumb-empty", "aria-hidden": "true", text: kindText(p.kind) })),
      el("div", { class: "post-text" },
        el("div", { class: "post-kind" },
          el("span", { class: `badge kind-${p.kind}`, text: kindText(p.kind) }),
          p.kind === "market" ? el("span", { class: `badge status-${p.status}`, text: statusText(p.status) }) : null,
          p.place ? el("span", { class: "muted", text: categoryText(p.place.category) }) : null),
        el("div", { class: "title", text: p.title }),
        p.kind === "market" ? el("div", { class: "price", text: priceText(p.price) }) : null,
        p.kind === "review" && p.rating ? el("div", {}, stars(p.rating), " ", el("span", { class: "muted", text: p.place_name || "" })) : null,
        rating && rating.count ? el("div", {}, stars(rating.bayesian), " ",
          el("span", { class: "muted", text: t(rating.count === 1 ? "community.reviewsOne" : "community.reviews", { n: rating.count }) })) : null,
        el("div", { class: "meta" },
          el("span", { text: p.author.username }),
          p.neighbourhood ? el("span", { text: p.neighbourhood }) : null,
          el("span", { text: fmtDateTime(p.created_at) }),
          el("span", { "aria-label": t("community.likes", { n: p.likes }), text: `♥ ${p.likes}` }),
          el("span", { "aria-label": t("community.commentCount", { n: p.comments }), text: `💬 ${p.comments}` })))));
}
