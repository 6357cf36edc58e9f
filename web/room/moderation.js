// @ts-check
// The moderation panel of a room, for its moderators: slow mode, moderators, bans and timeouts,
// deleting the room (the last three only for those who manage it).

import { api, el, errMsg, fmtDateTime } from "../dom.js";
import { t } from "../i18n.js";

/** @typedef {import("../types.js").Room} Room */
/** @typedef {import("../types.js").Permissions} Permissions */
/** @typedef {import("../types.js").Moderator} Moderator */
/** @typedef {import("../types.js").Sanction} Sanction */

const SLOW_MODES = [0, 3, 5, 10, 30, 60, 120];

/**
 * @param {Room} room
 * @param {Permissions} perms
 * @param {{ signal: AbortSignal, navigate: (path: string) => void }} ctx
 */
export function moderationPanel(room, perms, { signal, navigate }) {
  const path = `/rooms/${encodeURIComponent(room.slug)}`;
  const error = el("p", { class: "error", role: "alert" });
  /** @param {unknown} e */
  const fail = (e) => { if (!signal.aborted) error.textContent = errMsg(e); };

  const slow = el("select", { id: "slow-mode" },
    ...SLOW_MODES.map((s) => el("option", { value: s, selected: room.slow_mode_s === s, text: s ? t("mod.seconds", { s }) : t("mod.off") })));
  slow.addEventListener("change", async () => {
    try { await api("PATCH", path, { slow_mode_s: Number(slow.value) }, { signal }); error.textContent = ""; } catch (e) { fail(e); }
  });

  const bans = el("ul", { class: "list", id: "ban-list" });
  /** @param {Sanction} b */
  const sanctionText = (b) => {
    const kind = t(b.kind === "ban" ? "mod.kind.ban" : "mod.kind.timeout");
    return b.expires_at
      ? t("mod.sanctionUntil", { name: b.username, kind, until: fmtDateTime(b.expires_at) })
      : t("mod.sanctionPermanent", { name: b.username, kind });
  };
  const loadBans = async () => {
    try {
      /** @type {{ bans: Sanction[] }} */
      const data = await api("GET", `${path}/bans`, undefined, { signal });
      bans.replaceChildren(...data.bans.map((b) => el("li", {},
        el("span", { text: sanctionText(b) }),
        el("button", { class: "ghost", text: t("mod.lift"), onclick: async () => {
          try {
            await api("DELETE", `${path}/${b.kind === "ban" ? "bans" : "timeouts"}/${encodeURIComponent(b.username)}`, undefined, { signal });
            await loadBans();
          } catch (e) { fail(e); }
        } }))));
      if (data.bans.length === 0) bans.append(el("li", { class: "muted", text: t("mod.noSanctions") }));
    } catch (e) { fail(e); }
  };

  const modName = el("input", { placeholder: t("mod.username"), id: "mod-name", "aria-label": t("mod.username") });
  const mods = el("ul", { class: "list", id: "mod-list" });
  /** @param {Moderator[]} list */
  const showMods = (list) => mods.replaceChildren(...list.map((m) => el("li", {},
    el("span", { text: m.username }),
    perms.manage ? el("button", { class: "ghost", text: t("mod.remove"), onclick: async () => {
      try {
        await api("DELETE", `${path}/moderators/${encodeURIComponent(m.username)}`, undefined, { signal });
        showMods(list.filter((x) => x !== m));
      } catch (e) { fail(e); }
    } }) : null)));
  api("GET", `${path}/moderators`, undefined, { signal }).then((d) => showMods(d.moderators), () => {});
  const addMod = el("form", { class: "row" }, modName, el("button", { type: "submit", text: t("mod.makeModerator") }));
  addMod.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      showMods((await api("POST", `${path}/moderators`, { username: modName.value }, { signal })).moderators);
      modName.value = "";
      error.textContent = "";
    } catch (e) { fail(e); }
  });

  const deleteRoom = el("button", { class: "danger", text: t("mod.deleteRoom"), onclick: async () => {
    if (!confirm(t("mod.deleteRoomConfirm"))) return;
    try { await api("DELETE", path, undefined, { signal }); navigate("/"); } catch (e) { fail(e); }
  } });

  const box = el("details", { class: "settings", id: "room-settings" },
    el("summary", { text: t("mod.panel") }),
    perms.manage ? el("div", { class: "row" }, el("label", { for: "slow-mode", text: t("mod.slowMode") }), slow) : null,
    el("h2", { text: t("mod.moderators") }), mods, perms.manage ? addMod : null,
    el("h2", { text: t("mod.sanctions") }), bans,
    perms.manage ? el("div", { class: "row" }, deleteRoom) : null,
    error);
  box.addEventListener("toggle", () => { if (box.open) loadBans(); });
  return box;
}
