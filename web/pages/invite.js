// @ts-check
// An invite link (`/i/{code}`): signed in, it is accepted at once and the room opens; signed
// out, the room's name shows above the log-in / sign-up card, and signing in accepts it. A link
// that no longer works says why.

import { api, ApiError, el, errMsg, setTitle } from "../dom.js";
import { t } from "../i18n.js";
import * as store from "../store.js";
import { authCard } from "./home.js";

/** @typedef {import("../router.js").PageContext} PageContext */
/** @typedef {import("../i18n.js").Key} Key */

/** Why a link does not open, by the API's error code. @type {Record<string, Key>} */
const REFUSALS = {
  not_found: "invite.notFound",
  invite_expired: "invite.expired",
  invite_used_up: "invite.usedUp",
  invite_revoked: "invite.revoked",
};

/** @param {unknown} e */
function refusal(e) {
  const key = e instanceof ApiError && e.code ? REFUSALS[e.code] : undefined;
  return key ? t(key) : e instanceof ApiError && e.status === 404 ? t("invite.notFound") : errMsg(e);
}

/** @param {PageContext} ctx */
export function mount(ctx) {
  const { root, params, signal, navigate } = ctx;
  const code = encodeURIComponent(params.code);
  setTitle(t("invite.pageTitle"));
  root.replaceChildren(el("p", { class: "muted", text: t("common.loading") }));
  /** @param {unknown} e */
  const gone = (e) => {
    if (signal.aborted) return;
    root.replaceChildren(el("section", { class: "card invite-page" },
      el("h1", { id: "invite-refused", text: refusal(e) }),
      el("p", {}, el("a", { href: "/", text: t("common.backHome") }))));
  };
  if (store.get().user) {
    api("POST", `/invites/${code}/accept`, {}, { signal }).then(
      (/** @type {{ room: import("../types.js").Room }} */ { room }) => navigate(`/r/${encodeURIComponent(room.slug)}`),
      gone);
    return;
  }
  api("GET", `/invites/${code}`, undefined, { signal }).then(
    (/** @type {{ invite: { room: { slug: string, title: string, owner: string } } }} */ { invite }) => {
      if (signal.aborted) return;
      root.replaceChildren(el("div", { class: "invite-page" },
        el("section", { class: "card" },
          el("h1", { id: "invite-room", text: t("invite.to", { title: invite.room.title }) }),
          el("p", { class: "muted", text: t("invite.from", { name: invite.room.owner }) }),
          el("p", { text: t("invite.signIn") })),
        authCard(ctx)));
    },
    gone);
}
