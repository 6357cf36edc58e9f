// @ts-check
// Invite links, for whoever manages the room: make one (with an expiry and a number of uses,
// both optional), copy it, revoke it; and make the room private, so that only those who came
// by a link (and its owner and moderators) see it.

import { api, el, errMsg, fmtDateTime } from "../dom.js";
import { t } from "../i18n.js";

/** @typedef {import("../types.js").Room} Room */
/** @typedef {import("../types.js").Invite} Invite */

const EXPIRIES = [["", "invite.never"], ["1", "invite.day"], ["7", "invite.week"]];

/**
 * @param {Room} room
 * @param {{ signal: AbortSignal }} ctx
 */
export function invitesPanel(room, { signal }) {
  const path = `/rooms/${encodeURIComponent(room.slug)}`;
  const error = el("p", { class: "error", role: "alert" });
  const list = el("ul", { class: "list", id: "invite-list" });
  const expiry = el("select", { id: "invite-expiry", "aria-label": t("invite.expires") },
    ...EXPIRIES.map(([v, key]) => el("option", { value: v, text: t(/** @type {any} */ (key)) })));
  const uses = el("input", { id: "invite-uses", type: "number", min: 1, max: 100000, placeholder: t("invite.anyUses"), "aria-label": t("invite.maxUses") });
  const priv = el("input", { id: "room-private", type: "checkbox", checked: room.visibility === "private" });
  /** @param {unknown} e */
  const fail = (e) => { if (!signal.aborted) error.textContent = errMsg(e); };

  const load = async () => {
    try {
      /** @type {{ invites: Invite[] }} */
      const { invites } = await api("GET", `${path}/invites`, undefined, { signal });
      list.replaceChildren();
      if (invites.length === 0) list.append(el("li", { class: "muted", text: t("invite.none") }));
      for (const i of invites) {
        const copy = el("button", { type: "button", class: "ghost", text: t("share.copy"), onclick: async () => {
          try { await navigator.clipboard.writeText(i.url); copy.textContent = t("share.copied"); } catch { /* the field stays selectable */ }
        } });
        list.append(el("li", { "data-invite": i.code },
          el("input", { class: "invite-url", readonly: true, value: i.url, "aria-label": t("invite.link"), onfocus: (ev) => /** @type {HTMLInputElement} */ (ev.target).select() }),
          el("span", { class: "muted", text: [
            i.max_uses != null ? t("invite.usesOf", { n: i.uses, max: i.max_uses }) : t("invite.uses", { n: i.uses }),
            i.expires_at ? t("share.until", { time: fmtDateTime(i.expires_at) }) : t("share.noExpiry"),
          ].join(" · ") }),
          copy,
          el("button", { type: "button", class: "danger", text: t("share.revoke"), onclick: async () => {
            try { await api("DELETE", `${path}/invites/${encodeURIComponent(i.code)}`, undefined, { signal }); await load(); } catch (e) { fail(e); }
          } })));
      }
    } catch (e) { fail(e); }
  };

  const form = el("form", { class: "inline-form", id: "invite-form" },
    expiry, uses, el("button", { type: "submit", id: "invite-create", text: t("invite.create") }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    /** @type {Record<string, unknown>} */
    const body = {};
    if (expiry.value) body.expires_at = new Date(Date.now() + Number(expiry.value) * 86400000).toISOString();
    if (uses.value) body.max_uses = Number(uses.value);
    try { await api("POST", `${path}/invites`, body, { signal }); uses.value = ""; await load(); } catch (e) { fail(e); }
  });
  priv.addEventListener("change", async () => {
    try {
      await api("PATCH", path, { visibility: priv.checked ? "private" : "public" }, { signal });
    } catch (e) { priv.checked = !priv.checked; fail(e); }
  });
  void load();
  return el("details", { class: "settings", id: "invites", open: room.visibility === "private" },
    el("summary", { text: t("invite.title") }),
    el("p", { class: "muted", text: t("invite.help") }),
    el("label", { class: "check" }, priv, t("invite.private")),
    form, error, list);
}
