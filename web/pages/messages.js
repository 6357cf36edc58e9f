// @ts-check
// Market messages: every buyer–seller room the member is in. A seller sees one room per buyer
// of each listing; a buyer sees their rooms with sellers. Each opens the room's chat.

import { api, el, errMsg, fmtDateTime, setTitle } from "../dom.js";
import { t } from "../i18n.js";
import * as store from "../store.js";
import { statusText } from "../community/cards.js";
import { communityNav } from "./community.js";

/** @typedef {import("../router.js").PageContext} PageContext */
/** @typedef {import("../types.js").Contact} Contact */

/** @param {PageContext} ctx */
export function mount({ root, signal }) {
  setTitle(t("community.messages"));
  if (!store.get().user) {
    root.replaceChildren(el("h1", { text: t("community.messages") }), el("p", {}, el("a", { href: "/#login", text: t("nav.login") })));
    return;
  }
  const list = el("ul", { class: "contacts", id: "contacts" });
  const status = el("p", { class: "muted", role: "status", text: t("common.loading") });
  root.replaceChildren(el("div", { class: "page-head" }, el("h1", { text: t("community.messages") })), communityNav("messages"), status, list);
  api("GET", "/me/contacts", undefined, { signal }).then(
    (/** @type {{ contacts: Contact[] }} */ r) => {
      status.textContent = r.contacts.length ? "" : t("messages.empty");
      list.replaceChildren(...r.contacts.map((c) => el("li", {},
        el("a", { class: "room-card", href: c.room.url, "data-room": c.room.slug },
          el("div", { class: "title", text: c.post.title }),
          el("div", { class: "meta" },
            el("span", { class: `badge ${c.role}`, text: c.role === "seller" ? t("messages.youSell") : t("messages.youBuy") }),
            el("span", { text: c.role === "seller" ? t("messages.withBuyer", { name: c.buyer.username }) : t("messages.withSeller", { name: c.seller.username }) }),
            c.post.status ? el("span", { text: statusText(c.post.status) }) : null,
            el("span", { text: fmtDateTime(c.last_activity_at) }))))));
    },
    (e) => { if (!signal.aborted) status.textContent = errMsg(e); });
}
