// @ts-check
// Popular: this week's most popular places (by the Bayesian average of the week's reviews)
// and posts (by the likes they were given this week), each with the score it is ranked by.

import { api, el, errMsg, setTitle } from "../dom.js";
import { t } from "../i18n.js";
import { postCard } from "../community/cards.js";
import { communityNav } from "./community.js";

/** @typedef {import("../router.js").PageContext} PageContext */
/** @typedef {{ rank: number, score: number, post: import("../types.js").Post }} Ranked */

/** @param {PageContext} ctx */
export function mount({ root, signal }) {
  setTitle(t("community.popular"));
  /** @param {"places" | "posts"} what @param {string} heading */
  const section = (what, heading) => {
    const list = el("ol", { class: "posts ranking", id: `ranking-${what}` });
    const status = el("p", { class: "muted", role: "status", text: t("common.loading") });
    api("GET", `/rankings?what=${what}&period=week`, undefined, { signal }).then(
      (/** @type {{ ranking: Ranked[] }} */ r) => {
        status.textContent = r.ranking.length ? "" : t("popular.empty");
        list.replaceChildren(...r.ranking.map((e) => {
          const card = postCard(e.post);
          const score = what === "places" ? t("popular.placeScore", { score: e.score.toFixed(2) }) : t("popular.postScore", { n: e.score });
          card.prepend(el("span", { class: "rank", text: String(e.rank) }));
          card.append(el("span", { class: "score muted", text: score }));
          return card;
        }));
      },
      (e) => { if (!signal.aborted) status.textContent = errMsg(e); });
    return el("section", {}, el("h2", { text: heading }), status, list);
  };
  root.replaceChildren(
    el("div", { class: "page-head" }, el("h1", { text: t("community.popular") })),
    communityNav("popular"),
    el("div", { class: "two-col" }, section("places", t("popular.places")), section("posts", t("popular.posts"))));
}
