// @ts-check
// The chat panel of a room: status and viewer count, the message log (with moderator actions),
// the slow-mode note and the composer. It follows the room's socket and sends through it.

import { api, el, errMsg, fmtDuration, fmtTime } from "../dom.js";
import { errorText, t, tn } from "../i18n.js";

/** @typedef {import("../room-socket.js").RoomSocket} RoomSocket */
/** @typedef {import("../room-socket.js").Status} Status */
/** @typedef {import("../types.js").Message} Message */
/** @typedef {import("../types.js").Permissions} Permissions */
/** @typedef {import("../types.js").Room} Room */
/** @typedef {import("../types.js").User} User */

/** Lines kept in the log; older ones are dropped. */
const MAX_LINES = 500;

/** @type {Record<Status, [string, import("../i18n.js").Key]>} */
const STATUS = {
  connecting: ["connecting", "chat.connecting"],
  online: ["online", "chat.online"],
  retrying: ["offline", "chat.reconnecting"],
  stopped: ["offline", "chat.disconnected"],
};

/**
 * @param {RoomSocket} socket
 * @param {{ slug: string, perms: Permissions }} opts
 * @returns {HTMLElement}
 */
export function chatPanel(socket, { slug, perms }) {
  const path = `/rooms/${encodeURIComponent(slug)}`;
  const messages = el("div", { class: "messages", id: "messages", role: "log", "aria-label": t("chat.messages") });
  const status = el("span", { class: "status", id: "chat-status", text: t("chat.connecting") });
  const viewers = el("span", { id: "viewers", "data-count": "0", text: t("room.watching", { n: 0 }) });
  const footer = el("div", {});
  const slowNote = el("p", { class: "slow-note", id: "slow-note", hidden: true });
  /** @type {Map<number, HTMLElement>} */
  const bySeq = new Map();

  const nearBottom = () => messages.scrollHeight - messages.scrollTop - messages.clientHeight < 80;
  /** @param {HTMLElement} node */
  const pushLine = (node) => {
    const stick = nearBottom();
    messages.append(node);
    while (messages.childElementCount > MAX_LINES) {
      const first = /** @type {HTMLElement} */ (messages.firstElementChild);
      bySeq.delete(Number(first.dataset.seq));
      first.remove();
    }
    if (stick) messages.scrollTop = messages.scrollHeight;
  };
  /** @param {string} text @param {boolean} [bad] */
  const system = (text, bad = false) => pushLine(el("div", { class: bad ? "msg system bad" : "msg system", text }));
  /** @param {string} kind @param {string} text */
  const setStatus = (kind, text) => { status.className = `status ${kind}`; status.textContent = text; };
  /** @param {number} n */
  const setViewers = (n) => { viewers.dataset.count = String(n); viewers.textContent = t("room.watching", { n }); };
  /** @param {Room} room */
  const setRoom = (room) => {
    slowNote.hidden = !(room.slow_mode_s > 0);
    slowNote.textContent = room.slow_mode_s > 0 ? t("chat.slowMode", { s: room.slow_mode_s }) : "";
  };
  /** @param {string} action @param {() => Promise<unknown>} fn */
  const modAction = async (action, fn) => {
    try { await fn(); } catch (e) { system(t("mod.failed", { action, error: errMsg(e) }), true); }
  };

  /** @param {Message} m */
  const append = (m) => {
    // A line the server wrote (a poll's result): a notice, not a member's message.
    if (m.kind) {
      const line = el("div", { class: `msg notice ${m.kind}`, "data-seq": m.seq, "data-kind": m.kind },
        el("span", { class: "time", text: fmtTime(m.at) }),
        el("span", { class: "text", text: m.text }));
      bySeq.set(m.seq, line);
      pushLine(line);
      return;
    }
    const line = el("div", { class: "msg", "data-seq": m.seq },
      el("span", { class: "time", text: fmtTime(m.at) }),
      el("span", { class: "author", text: m.user.username }),
      el("span", { class: "text", text: m.text }));
    if (perms.moderate) {
      const who = m.user.username;
      line.append(el("span", { class: "actions" },
        el("button", { class: "ghost", title: t("mod.deleteTitle"), text: t("mod.delete"),
          onclick: () => modAction(t("mod.delete"), () => api("DELETE", `${path}/messages/${m.seq}`)) }),
        el("button", { class: "ghost", title: t("mod.timeoutTitle", { name: who }), text: t("mod.timeout"),
          onclick: () => modAction(t("mod.timeout"), async () => {
            await api("POST", `${path}/timeouts`, { username: who, duration_s: 600 });
            system(t("mod.timedOut", { name: who }));
          }) }),
        el("button", { class: "danger", title: t("mod.banTitle", { name: who }), text: t("mod.ban"),
          onclick: () => modAction(t("mod.ban"), async () => {
            if (!confirm(t("mod.banConfirm", { name: who }))) return;
            await api("POST", `${path}/bans`, { username: who });
            system(t("mod.banned", { name: who }));
          }) })));
    }
    bySeq.set(m.seq, line);
    pushLine(line);
  };

  /** @param {User | null} you */
  const setYou = (you) => {
    if (!you) {
      footer.replaceChildren(el("p", { class: "login-hint", id: "login-hint" },
        tn("chat.loginHint", { login: el("a", { href: "/#login", text: t("nav.login") }) })));
      return;
    }
    const input = el("input", { id: "chat-input", maxlength: 500, placeholder: t("chat.placeholder"), autocomplete: "off", "aria-label": t("chat.input") });
    const form = el("form", { class: "composer", id: "composer" }, input, el("button", { type: "submit", text: t("chat.send") }));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const text = input.value.trim();
      if (!text) return;
      if (socket.send({ type: "send", text, nonce: Math.random().toString(36).slice(2) })) input.value = "";
      else system(t("chat.notConnected"), true);
    });
    footer.replaceChildren(form);
  };

  socket.onStatus((s) => { const [kind, key] = STATUS[s]; setStatus(kind, t(key)); });
  socket.on("reconnect", () => setStatus("connecting", t("chat.reconnecting")));
  socket.on("welcome", (f) => {
    setViewers(f.viewers);
    setRoom(f.room);
    setYou(f.you);
    if (f.truncated) system(t("chat.truncated"));
    for (const m of f.history) append(m);
  });
  socket.on("message", append);
  socket.on("deleted", (f) => {
    const line = bySeq.get(f.seq);
    if (line) { line.remove(); bySeq.delete(f.seq); }
  });
  socket.on("viewers", (f) => setViewers(f.count));
  socket.on("room", (f) => setRoom(f.room));
  socket.on("error", (f) => system(errorText(f.code, f.message), true));
  // What happened in the watch party, as a line in the chat ("mina paused at 12:31").
  socket.on("party.state", (f) => {
    const c = f.change;
    if (!c) return;
    const key = /** @type {import("../i18n.js").Key} */ (`party.did.${c.action}`);
    system(t(key, {
      name: c.by ? c.by.username : "",
      at: fmtDuration(c.position_s),
      title: f.video ? f.video.title : "",
      rate: f.rate,
      host: f.host.username,
      names: f.waiting_for.map((w) => w.username).join(", "),
    }));
  });

  return el("aside", { class: "chat", "aria-label": t("chat.label") },
    el("div", { class: "chat-head" }, status, viewers), messages, slowNote, footer);
}
