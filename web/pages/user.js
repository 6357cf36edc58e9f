// @ts-check
// A member's page: their community posts, their public videos and their rooms (live ones
// first).

import { api, ApiError, el, errMsg, setTitle } from "../dom.js";
import { t } from "../i18n.js";
import { roomCard } from "./home.js";
import { videoCard } from "./videos.js";
import { postCard } from "../community/cards.js";

/** @typedef {import("../router.js").PageContext} PageContext */
/** @typedef {import("../types.js").Member} Member */

/** @param {PageContext} ctx */
export function mount({ root, params, signal }) {
  root.replaceChildren(el("p", { class: "muted", text: t("common.loading") }));
  api("GET", `/users/${encodeURIComponent(params.username)}`, undefined, { signal }).then(
    (/** @type {Member} */ { user, videos, rooms }) => {
      setTitle(user.username);
      /**
       * @param {Node[]} cards
       * @param {string} empty
       * @param {string} id
       */
      const grid = (cards, empty, id) => el("ul", { class: "rooms", id }, cards.length ? cards : el("li", { class: "muted", text: empty }));
      const posts = el("ul", { class: "posts", id: "member-posts" }, el("li", { class: "muted", text: t("common.loading") }));
      api("GET", `/posts?author=${encodeURIComponent(user.username)}&sort=new&limit=50`, undefined, { signal }).then(
        (/** @type {{ posts: import("../types.js").Post[] }} */ r) => posts.replaceChildren(...(r.posts.length ? r.posts.map(postCard)
          : [el("li", { class: "muted", text: t("member.noPosts") })])),
        (e) => { if (!signal.aborted) posts.replaceChildren(el("li", { class: "error", text: errMsg(e) })); });
      root.replaceChildren(
        el("div", { class: "page-head" },
          el("span", { class: "avatar", "aria-hidden": "true", text: [...user.username][0].toUpperCase() }),
          el("h1", { id: "member-name", text: user.username })),
        el("h2", { text: t("member.posts") }),
        posts,
        el("h2", { text: t("member.videos") }),
        grid(videos.map((v) => videoCard(v)), t("member.noVideos"), "member-videos"),
        el("h2", { text: t("member.rooms") }),
        grid(rooms.map(roomCard), t("member.noRooms"), "member-rooms"));
    },
    (e) => {
      if (signal.aborted) return;
      const missing = e instanceof ApiError && e.status === 404;
      setTitle(missing ? t("common.notFound") : "");
      root.replaceChildren(missing ? el("h1", { text: t("member.notFound") }) : el("p", { class: "error", text: errMsg(e) }),
        el("p", {}, el("a", { href: "/", text: t("common.backHome") })));
    });
}
