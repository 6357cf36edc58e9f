// moim web UI: home (rooms, sign-up / log-in), room (live player + chat), videos, admin.
// User text is only ever inserted with textContent, never as HTML.

import { el, api, fmtTime, setTitle } from "./dom.js";
import { LivePlayer, playVideo, fmtDuration } from "./player.js";

const main = document.getElementById("main");
const account = document.getElementById("account");
let me = null;

// ---------- account bar ----------
function renderAccount() {
  account.replaceChildren();
  if (me) {
    account.append(el("span", {},
      el("span", { class: "muted", "data-testid": "whoami", text: me.username }),
      el("a", { href: "/videos", text: " My videos" }),
      me.role === "admin" ? el("a", { href: "/admin", text: " Admin" }) : null),
    el("button", { class: "ghost", onclick: logout, text: "Log out" }));
  } else {
    account.append(el("a", { href: "/#login", text: "Log in" }));
  }
}

async function logout() {
  try { await api("POST", "/auth/logout"); } catch { /* already logged out */ }
  me = null;
  location.href = "/";
}

async function loadMe() {
  try { me = (await api("GET", "/me")).user; } catch { me = null; }
  renderAccount();
}

// ---------- home ----------
function authCard(onDone) {
  const error = el("p", { class: "error", role: "alert" });
  let mode = "login";
  const username = el("input", { name: "username", autocomplete: "username", required: true, maxlength: 32 });
  const password = el("input", { name: "password", type: "password", autocomplete: "current-password", required: true, maxlength: 128 });
  const submit = el("button", { type: "submit", text: "Log in" });
  const tabLogin = el("button", { type: "button", "aria-selected": "true", text: "Log in" });
  const tabSignup = el("button", { type: "button", "aria-selected": "false", text: "Sign up" });
  const setMode = (m) => {
    mode = m;
    tabLogin.setAttribute("aria-selected", String(m === "login"));
    tabSignup.setAttribute("aria-selected", String(m === "signup"));
    submit.textContent = m === "login" ? "Log in" : "Create account";
    password.setAttribute("autocomplete", m === "login" ? "current-password" : "new-password");
    error.textContent = "";
  };
  tabLogin.addEventListener("click", () => setMode("login"));
  tabSignup.addEventListener("click", () => setMode("signup"));
  const form = el("form", { class: "form", id: "auth-form" },
    el("label", {}, "Username", username),
    el("label", {}, "Password", password),
    submit, error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    error.textContent = "";
    try {
      const path = mode === "login" ? "/auth/login" : "/auth/signup";
      me = (await api("POST", path, { username: username.value, password: password.value })).user;
      renderAccount();
      onDone();
    } catch (e) {
      error.textContent = e.message;
    } finally {
      submit.disabled = false;
    }
  });
  return el("section", { class: "card", id: "login" },
    el("div", { class: "tabs", role: "tablist" }, tabLogin, tabSignup), form);
}

function createRoomCard() {
  const error = el("p", { class: "error", role: "alert" });
  const slug = el("input", { name: "slug", required: true, maxlength: 48, placeholder: "my-room", pattern: "[a-z0-9-]{3,48}" });
  const title = el("input", { name: "title", required: true, maxlength: 100, placeholder: "Friday movie night" });
  const form = el("form", { class: "form", id: "create-room" },
    el("label", {}, "Title", title),
    el("label", {}, "Address (a-z, 0-9, -)", slug),
    el("button", { type: "submit", text: "Create room" }), error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const { room } = await api("POST", "/rooms", { slug: slug.value, title: title.value });
      navigate(`/r/${room.slug}`);
    } catch (e) { error.textContent = e.message; }
  });
  return el("section", { class: "card" }, el("h2", { text: "New room" }), form);
}

function roomCard(r) {
  return el("li", {},
    el("a", { class: "room-card", href: `/r/${encodeURIComponent(r.slug)}`, "data-slug": r.slug },
      r.live ? el("div", { class: "thumb" },
        r.thumbnail_url ? el("img", { src: r.thumbnail_url, alt: "", loading: "lazy" }) : el("span", { text: "LIVE" })) : null,
      el("div", { class: "title", text: r.title }),
      el("div", { class: "meta" },
        r.live ? el("span", { class: "badge live", text: "LIVE" }) : el("span", { class: "badge off", text: "offline" }),
        el("span", { text: `${r.viewers} watching` }),
        el("span", { text: `by ${r.owner}` }))));
}

async function renderHome() {
  setTitle("");
  const list = el("ul", { class: "rooms", id: "room-list" });
  const side = el("div", {});
  main.replaceChildren(el("div", { class: "home" },
    el("section", {}, el("h1", { text: "Rooms" }), list),
    side));
  const renderSide = () => side.replaceChildren(me ? createRoomCard() : authCard(renderHome));
  renderSide();
  try {
    const { rooms } = await api("GET", "/rooms");
    if (rooms.length === 0) list.append(el("li", { class: "muted", text: "No rooms yet. Create the first one." }));
    for (const r of rooms) list.append(roomCard(r));
  } catch (e) {
    list.append(el("li", { class: "error", text: e.message }));
  }
}

// ---------- room ----------
let activeChat = null;
let activePlayer = null;

class Chat {
  constructor(slug, ui, perms) {
    this.slug = slug;
    this.ui = ui;
    this.perms = perms;
    this.lastSeq = 0;
    this.attempt = 0;
    this.stopped = false;
    this.ws = null;
    this.pingTimer = null;
    this.connect();
  }

  connect() {
    if (this.stopped) return;
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const since = this.lastSeq > 0 ? `?since=${this.lastSeq}` : "";
    const ws = new WebSocket(`${proto}://${location.host}/api/v1/rooms/${encodeURIComponent(this.slug)}/ws${since}`);
    this.ws = ws;
    this.ui.setStatus("connecting", "connecting…");
    ws.onmessage = (ev) => {
      let f;
      try { f = JSON.parse(ev.data); } catch { return; }
      this.handle(f);
    };
    ws.onclose = (ev) => {
      clearInterval(this.pingTimer);
      if (this.ws !== ws) return;
      if (ev.code === 4003 || ev.code === 4004) { this.stopped = true; }
      if (this.stopped) { this.ui.setStatus("offline", "disconnected"); return; }
      this.ui.setStatus("offline", "reconnecting…");
      const delay = Math.min(10000, 500 * 2 ** this.attempt) * (0.5 + Math.random() / 2);
      this.attempt += 1;
      setTimeout(() => this.connect(), delay);
    };
  }

  handle(f) {
    switch (f.type) {
      case "welcome":
        this.attempt = 0;
        this.ui.setStatus("online", "live chat");
        this.ui.setViewers(f.viewers);
        this.ui.setRoom(f.room);
        this.ui.setLive(f.room.live ? { state: "started", hls_url: f.room.hls_url, since: f.room.live_since } : { state: "offline" });
        this.ui.setYou(f.you);
        if (f.truncated) this.ui.system("Some older messages were skipped while you were away.");
        for (const m of f.history) this.add(m);
        this.pingTimer = setInterval(() => this.send({ type: "ping" }), 25000);
        break;
      case "message": this.add(f); break;
      case "deleted": this.ui.remove(f.seq); break;
      case "viewers": this.ui.setViewers(f.count); break;
      case "room": this.ui.setRoom(f.room); break;
      case "live": this.ui.setLive(f); break;
      case "error":
        this.ui.system(f.message, true);
        if (f.code === "banned" || f.code === "room_deleted") this.stopped = true;
        break;
      case "reconnect": this.ui.setStatus("connecting", "reconnecting…"); break;
      default: break;
    }
  }

  add(m) {
    // Seqs only grow; anything at or below the last one was already shown.
    if (m.seq <= this.lastSeq) return;
    this.lastSeq = m.seq;
    this.ui.append(m);
  }

  send(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) { this.ws.send(JSON.stringify(frame)); return true; }
    return false;
  }

  close() {
    this.stopped = true;
    clearInterval(this.pingTimer);
    if (this.ws) this.ws.close(1000);
  }
}

function chatUI(slug, perms) {
  const messages = el("div", { class: "messages", id: "messages", role: "log", "aria-label": "chat messages" });
  const status = el("span", { class: "status", id: "chat-status", text: "connecting…" });
  const viewers = el("span", { id: "viewers", "data-count": "0", text: "0 watching" });
  const footer = el("div", {});
  const slowNote = el("p", { class: "slow-note", id: "slow-note", hidden: true });
  const byseq = new Map();
  const nearBottom = () => messages.scrollHeight - messages.scrollTop - messages.clientHeight < 80;
  const pushLine = (node) => {
    const stick = nearBottom();
    messages.append(node);
    while (messages.childElementCount > 500) {
      const first = messages.firstElementChild;
      byseq.delete(Number(first.dataset.seq));
      first.remove();
    }
    if (stick) messages.scrollTop = messages.scrollHeight;
  };
  const modAction = async (label, fn) => {
    try { await fn(); } catch (e) { ui.system(`${label}: ${e.message}`, true); }
  };
  const ui = {
    chat: null,
    setStatus(kind, text) { status.className = `status ${kind}`; status.textContent = text; },
    setViewers(n) { viewers.dataset.count = String(n); viewers.textContent = `${n} watching`; },
    setLive() {},
    setRoom(room) {
      const title = document.getElementById("room-title");
      if (title) title.textContent = room.title;
      setTitle(room.title);
      slowNote.hidden = !(room.slow_mode_s > 0);
      slowNote.textContent = room.slow_mode_s > 0 ? `Slow mode: one message every ${room.slow_mode_s} s` : "";
    },
    setYou(you) {
      if (you) {
        const input = el("input", { id: "chat-input", maxlength: 500, placeholder: "Say something…", autocomplete: "off", "aria-label": "message" });
        const form = el("form", { class: "composer", id: "composer" }, input, el("button", { type: "submit", text: "Send" }));
        form.addEventListener("submit", (ev) => {
          ev.preventDefault();
          const text = input.value.trim();
          if (!text) return;
          if (ui.chat.send({ type: "send", text, nonce: Math.random().toString(36).slice(2) })) input.value = "";
          else ui.system("Not connected yet; try again in a moment.", true);
        });
        footer.replaceChildren(form);
      } else {
        footer.replaceChildren(el("p", { class: "login-hint", id: "login-hint" },
          el("a", { href: "/#login", text: "Log in" }), " or sign up to chat."));
      }
    },
    append(m) {
      const line = el("div", { class: "msg", "data-seq": m.seq },
        el("span", { class: "time", text: fmtTime(m.at) }),
        el("span", { class: "author", text: m.user.username }),
        el("span", { class: "text", text: m.text }));
      if (perms.moderate) {
        const who = m.user.username;
        line.append(el("span", { class: "actions" },
          el("button", { class: "ghost", title: "Delete message", text: "Delete",
            onclick: () => modAction("Delete", () => api("DELETE", `/rooms/${slug}/messages/${m.seq}`)) }),
          el("button", { class: "ghost", title: `Time out ${who} for 10 minutes`, text: "Timeout",
            onclick: () => modAction("Timeout", async () => { await api("POST", `/rooms/${slug}/timeouts`, { username: who, duration_s: 600 }); ui.system(`${who} timed out for 10 minutes.`); }) }),
          el("button", { class: "danger", title: `Ban ${who}`, text: "Ban",
            onclick: () => modAction("Ban", async () => { if (!confirm(`Ban ${who} from this room?`)) return; await api("POST", `/rooms/${slug}/bans`, { username: who }); ui.system(`${who} banned.`); }) })));
      }
      byseq.set(m.seq, line);
      pushLine(line);
    },
    remove(seq) { const n = byseq.get(seq); if (n) { n.remove(); byseq.delete(seq); } },
    system(text, bad = false) { pushLine(el("div", { class: bad ? "msg system bad" : "msg system", text })); },
  };
  const panel = el("aside", { class: "chat", "aria-label": "chat" },
    el("div", { class: "chat-head" }, status, viewers), messages, slowNote, footer);
  return { ui, panel };
}

function settingsPanel(slug, room, perms) {
  const error = el("p", { class: "error", role: "alert" });
  const slow = el("select", { id: "slow-mode" },
    ...[0, 3, 5, 10, 30, 60, 120].map((s) => el("option", { value: s, selected: room.slow_mode_s === s, text: s ? `${s} s` : "off" })));
  slow.addEventListener("change", async () => {
    try { await api("PATCH", `/rooms/${slug}`, { slow_mode_s: Number(slow.value) }); error.textContent = ""; }
    catch (e) { error.textContent = e.message; }
  });
  const bans = el("ul", { class: "list", id: "ban-list" });
  const loadBans = async () => {
    try {
      const data = await api("GET", `/rooms/${slug}/bans`);
      bans.replaceChildren(...data.bans.map((b) => el("li", {},
        el("span", { text: `${b.username} (${b.kind}${b.expires_at ? " until " + new Date(b.expires_at).toLocaleString() : ", permanent"})` }),
        el("button", { class: "ghost", text: "Lift", onclick: async () => {
          try { await api("DELETE", `/rooms/${slug}/${b.kind === "ban" ? "bans" : "timeouts"}/${encodeURIComponent(b.username)}`); loadBans(); }
          catch (e) { error.textContent = e.message; }
        } }))));
      if (data.bans.length === 0) bans.append(el("li", { class: "muted", text: "Nobody is banned or timed out." }));
    } catch (e) { error.textContent = e.message; }
  };
  const modName = el("input", { placeholder: "username", id: "mod-name" });
  const mods = el("ul", { class: "list", id: "mod-list" });
  const showMods = (list) => mods.replaceChildren(...list.map((m) => el("li", {},
    el("span", { text: m.username }),
    perms.manage ? el("button", { class: "ghost", text: "Remove", onclick: async () => {
      try { await api("DELETE", `/rooms/${slug}/moderators/${encodeURIComponent(m.username)}`); showMods(list.filter((x) => x !== m)); }
      catch (e) { error.textContent = e.message; }
    } }) : null)));
  api("GET", `/rooms/${slug}/moderators`).then((d) => showMods(d.moderators)).catch(() => {});
  const addMod = el("form", { class: "row" }, modName, el("button", { type: "submit", text: "Make moderator" }));
  addMod.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try { showMods((await api("POST", `/rooms/${slug}/moderators`, { username: modName.value })).moderators); modName.value = ""; error.textContent = ""; }
    catch (e) { error.textContent = e.message; }
  });
  const box = el("details", { class: "settings", id: "room-settings" },
    el("summary", { text: "Moderation" }),
    perms.manage ? el("div", { class: "row" }, el("label", { for: "slow-mode", text: "Slow mode" }), slow) : null,
    el("h2", { text: "Moderators" }), mods, perms.manage ? addMod : null,
    el("h2", { text: "Bans and timeouts" }), bans,
    perms.manage ? el("div", { class: "row" }, el("button", { class: "danger", text: "Delete room", onclick: async () => {
      if (!confirm("Delete this room and all its messages?")) return;
      try { await api("DELETE", `/rooms/${slug}`); navigate("/"); } catch (e) { error.textContent = e.message; }
    } })) : null,
    error);
  box.addEventListener("toggle", () => { if (box.open) loadBans(); });
  return box;
}

async function renderRoom(slug) {
  let data;
  try { data = await api("GET", `/rooms/${encodeURIComponent(slug)}`); }
  catch (e) {
    main.replaceChildren(el("h1", { text: "Room not found" }), el("p", {}, el("a", { href: "/", text: "Back to all rooms" })));
    setTitle("not found");
    return;
  }
  const { room, permissions } = data;
  setTitle(room.title);
  const { ui, panel } = chatUI(room.slug, permissions);
  const badge = el("span", { class: "badge off", id: "live-badge", text: "offline" });
  const playerBox = el("div", { class: "player", id: "player" });
  const player = new LivePlayer(playerBox, { showLatency: permissions.manage });
  let wasLive = false;
  ui.setLive = (f) => {
    const live = f.state === "started";
    badge.className = live ? "badge live" : "badge off";
    badge.textContent = live ? "LIVE" : "offline";
    if (live) player.start(f.hls_url, f.since || new Date().toISOString());
    else if (f.state === "ended" || wasLive) player.ended();
    else player.offline();
    wasLive = live;
  };
  player.offline();
  const stage = el("section", { class: "stage" },
    el("div", { class: "room-head" },
      el("h1", { id: "room-title", text: room.title }),
      badge,
      el("span", { class: "muted", text: `by ${room.owner}` })),
    playerBox,
    permissions.manage ? streamingPanel(room.slug, room) : null,
    permissions.moderate ? settingsPanel(room.slug, room, permissions) : null);
  main.replaceChildren(el("div", { class: "room" }, stage, panel));
  ui.chat = new Chat(room.slug, ui, permissions);
  activeChat = ui.chat;
  activePlayer = player;
}

// The room owner's streaming settings: where to point OBS, the key, recording.
function streamingPanel(slug, room) {
  const error = el("p", { class: "error", role: "alert" });
  const server = el("input", { id: "rtmp-url", readonly: true, "aria-label": "server URL" });
  const key = el("input", { id: "stream-key", type: "password", readonly: true, "aria-label": "stream key" });
  const show = (d) => { server.value = d.rtmp_url; key.value = d.stream_key; };
  const reveal = el("button", { class: "ghost", type: "button", text: "Show", onclick: () => {
    key.type = key.type === "password" ? "text" : "password";
    reveal.textContent = key.type === "password" ? "Show" : "Hide";
  } });
  const copy = (input, label) => el("button", { class: "ghost", type: "button", text: label, onclick: async (ev) => {
    try { await navigator.clipboard.writeText(input.value); ev.target.textContent = "Copied"; }
    catch { input.type = "text"; input.select(); }
  } });
  const rotate = el("button", { class: "danger", type: "button", id: "rotate-key", text: "New key", onclick: async () => {
    if (!confirm("Make a new stream key? The current one stops working and a running broadcast ends.")) return;
    try { show(await api("POST", `/rooms/${slug}/stream-key`)); error.textContent = ""; }
    catch (e) { error.textContent = e.message; }
  } });
  const record = el("input", { type: "checkbox", id: "record", checked: room.record_broadcasts });
  record.addEventListener("change", async () => {
    try { await api("PATCH", `/rooms/${slug}`, { record_broadcasts: record.checked }); error.textContent = ""; }
    catch (e) { error.textContent = e.message; record.checked = !record.checked; }
  });
  const box = el("details", { class: "settings", id: "streaming" },
    el("summary", { text: "Go live" }),
    el("p", { class: "muted", text: "In OBS: Settings → Stream → Service: Custom. Paste the server and the stream key, then Start Streaming. Keep the key secret." }),
    el("div", { class: "row" }, el("label", { for: "rtmp-url", text: "Server" }), server, copy(server, "Copy")),
    el("div", { class: "row" }, el("label", { for: "stream-key", text: "Stream key" }), key, reveal, copy(key, "Copy"), rotate),
    el("div", { class: "row" }, record, el("label", { for: "record", text: "Keep a recording of each broadcast in my videos" })),
    error);
  box.addEventListener("toggle", async () => {
    if (!box.open || key.value) return;
    try { show(await api("GET", `/rooms/${slug}/stream-key`)); } catch (e) { error.textContent = e.message; }
  });
  return box;
}

// ---------- videos ----------
function videoCard(v) {
  return el("li", {},
    el("a", { class: "room-card", href: `/v/${encodeURIComponent(v.id)}`, "data-video": v.id },
      el("div", { class: "thumb" }, v.thumbnail_url ? el("img", { src: v.thumbnail_url, alt: "", loading: "lazy" }) : el("span", { text: v.status })),
      el("div", { class: "title", text: v.title }),
      el("div", { class: "meta" },
        el("span", { class: `badge ${v.status === "ready" ? "off" : "live"}`, text: v.status }),
        el("span", { text: fmtDuration(v.duration_s) }),
        el("span", { text: new Date(v.created_at).toLocaleString() }))));
}

async function renderVideos() {
  setTitle("My videos");
  if (!me) {
    main.replaceChildren(el("h1", { text: "My videos" }), el("p", {}, el("a", { href: "/#login", text: "Log in" }), " to see your videos."));
    return;
  }
  const list = el("ul", { class: "rooms", id: "video-list" });
  main.replaceChildren(el("h1", { text: "My videos" }), list);
  try {
    const { videos } = await api("GET", "/videos");
    if (videos.length === 0) list.append(el("li", { class: "muted", text: "No videos yet. Recordings of your broadcasts appear here." }));
    for (const v of videos) list.append(videoCard(v));
  } catch (e) { list.append(el("li", { class: "error", text: e.message })); }
}

async function renderVideo(id) {
  let v;
  try { ({ video: v } = await api("GET", `/videos/${encodeURIComponent(id)}`)); }
  catch {
    setTitle("not found");
    main.replaceChildren(el("h1", { text: "Video not found" }), el("p", {}, el("a", { href: "/", text: "Back to all rooms" })));
    return;
  }
  setTitle(v.title);
  const box = el("div", { class: "player", id: "player" });
  main.replaceChildren(el("section", { class: "stage video-page" },
    el("h1", { text: v.title }), box,
    el("p", { class: "muted", text: `${fmtDuration(v.duration_s)} · ${new Date(v.created_at).toLocaleString()}` })));
  if (v.status !== "ready") { box.replaceChildren(el("div", { class: "player-card", text: `This video is ${v.status}.` })); return; }
  activePlayer = { teardown: () => {} };
  const session = await playVideo(box, v.hls_url);
  if (session) activePlayer = { teardown: () => session.destroy() };
}

// ---------- admin ----------
async function renderAdmin() {
  setTitle("admin");
  if (!me || me.role !== "admin") {
    main.replaceChildren(el("h1", { text: "Admins only" }), el("p", {}, el("a", { href: "/#login", text: "Log in" })));
    return;
  }
  const status = el("p", { class: "muted", role: "status" });
  const terms = el("textarea", { id: "terms", "aria-label": "blocked terms, one per line" });
  const allowed = el("textarea", { id: "allowed", "aria-label": "allowed words, one per line" });
  const lines = (t) => t.value.split("\n").map((s) => s.trim()).filter(Boolean);
  try {
    const data = await api("GET", "/admin/blocked-terms");
    terms.value = data.terms.join("\n");
    allowed.value = data.allowed.join("\n");
  } catch (e) { status.textContent = e.message; }
  const form = el("form", { class: "form", id: "terms-form" },
    el("label", {}, "Blocked terms (one per line; end with * to also block longer words)", terms),
    el("label", {}, "Allowed words that contain a blocked term (one per line)", allowed),
    el("button", { type: "submit", text: "Save" }), status);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const data = await api("PUT", "/admin/blocked-terms", { terms: lines(terms), allowed: lines(allowed) });
      status.textContent = `Saved ${data.terms.length} terms.`;
    } catch (e) { status.textContent = e.message; }
  });
  main.replaceChildren(el("h1", { text: "Blocked terms" }), el("section", { class: "card" }, form));
}

// ---------- routing ----------
function navigate(path) {
  history.pushState({}, "", path);
  route();
}

async function route() {
  if (activeChat) { activeChat.close(); activeChat = null; }
  if (activePlayer) { activePlayer.teardown(); activePlayer = null; }
  const path = location.pathname;
  const m = path.match(/^\/r\/([a-z0-9-]+)\/?$/);
  if (m) return renderRoom(m[1]);
  const v = path.match(/^\/v\/([A-Za-z0-9]+)\/?$/);
  if (v) return renderVideo(v[1]);
  if (path === "/videos") return renderVideos();
  if (path === "/admin") return renderAdmin();
  if (path === "/") return renderHome();
  setTitle("not found");
  main.replaceChildren(el("h1", { text: "Page not found" }), el("p", {}, el("a", { href: "/", text: "Back to all rooms" })));
}

document.addEventListener("click", (ev) => {
  const a = ev.target.closest && ev.target.closest("a[href^='/']");
  if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey || a.target) return;
  const url = new URL(a.href);
  if (url.pathname === location.pathname && url.hash) return;
  ev.preventDefault();
  navigate(url.pathname + url.hash);
});
window.addEventListener("popstate", route);

loadMe().then(route);
