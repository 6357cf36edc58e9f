// moim web UI: home (rooms, sign-up / log-in), room (player area + live chat), admin.
// User text is only ever inserted with textContent, never as HTML.

const main = document.getElementById("main");
const account = document.getElementById("account");
let me = null;

// ---------- helpers ----------
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["content-type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const res = await fetch("/api/v1" + path, opts);
  let data = null;
  if (res.status !== 204) {
    try { data = await res.json(); } catch { data = null; }
  }
  if (!res.ok) {
    const err = new Error((data && data.message) || `request failed (${res.status})`);
    err.code = data && data.error;
    err.status = res.status;
    throw err;
  }
  return data;
}

function fmtTime(iso) {
  const d = new Date(iso);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function setTitle(t) { document.title = t ? `${t} · moim` : "moim"; }

// ---------- account bar ----------
function renderAccount() {
  account.replaceChildren();
  if (me) {
    account.append(el("span", {},
      el("span", { class: "muted", "data-testid": "whoami", text: me.username }),
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
        this.ui.setYou(f.you);
        if (f.truncated) this.ui.system("Some older messages were skipped while you were away.");
        for (const m of f.history) this.add(m);
        this.pingTimer = setInterval(() => this.send({ type: "ping" }), 25000);
        break;
      case "message": this.add(f); break;
      case "deleted": this.ui.remove(f.seq); break;
      case "viewers": this.ui.setViewers(f.count); break;
      case "room": this.ui.setRoom(f.room); break;
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
  const stage = el("section", { class: "stage" },
    el("div", { class: "room-head" },
      el("h1", { id: "room-title", text: room.title }),
      room.live ? el("span", { class: "badge live", text: "LIVE" }) : el("span", { class: "badge off", text: "offline" }),
      el("span", { class: "muted", text: `by ${room.owner}` })),
    el("div", { class: "player", id: "player" }, el("span", { text: "The stream is offline." })),
    permissions.moderate ? settingsPanel(room.slug, room, permissions) : null);
  main.replaceChildren(el("div", { class: "room" }, stage, panel));
  ui.chat = new Chat(room.slug, ui, permissions);
  activeChat = ui.chat;
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
  const path = location.pathname;
  const m = path.match(/^\/r\/([a-z0-9-]+)\/?$/);
  if (m) return renderRoom(m[1]);
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
