// @ts-check
// Home: the rooms, live ones first, and beside them the log-in / sign-up card or, when signed in,
// the card that creates a room.

import { api, el, errMsg, setTitle } from "../dom.js";
import { t } from "../i18n.js";
import * as store from "../store.js";

/** @typedef {import("../router.js").PageContext} PageContext */
/** @typedef {import("../types.js").Room} Room */

/**
 * "Continue with …" links for the sign-in providers the server offers (none: nothing shown).
 * Each comes back to `next`, this page unless given.
 * @param {AbortSignal} signal
 * @param {string} [next]
 */
export function providerButtons(signal, next) {
  const box = el("div", { class: "providers", id: "providers", hidden: true });
  api("GET", "/auth/providers", undefined, { signal }).then(
    (/** @type {{ providers: import("../types.js").SigninProvider[] }} */ { providers }) => {
      const back = next || location.pathname + location.search;
      box.replaceChildren(el("p", { class: "muted or", text: t("auth.or") }), ...providers.map((p) => {
        const kind = ["google", "kakao", "naver"].includes(p.kind) ? p.kind : "oidc";
        const href = `${p.start_url}?next=${encodeURIComponent(back)}`;
        return el("a", { class: `provider provider-${kind}`, href, "data-provider": p.id },
          el("span", { class: "provider-mark", "aria-hidden": "true", text: kind === "kakao" ? "" : (p.name[0] || "?").toUpperCase() }),
          el("span", { text: t("auth.continueWith", { name: p.name }) }));
      }));
      box.hidden = providers.length === 0;
    },
    () => { /* no providers: the form alone */ });
  return box;
}

/** @param {PageContext} ctx */
export function authCard({ signal }) {
  const error = el("p", { class: "error", role: "alert" });
  let mode = "login";
  const username = el("input", { name: "username", autocomplete: "username", required: true, maxlength: 32 });
  const password = el("input", { name: "password", type: "password", autocomplete: "current-password", required: true, maxlength: 128 });
  const submit = el("button", { type: "submit", text: t("auth.login") });
  const tabLogin = el("button", { type: "button", "aria-selected": "true", text: t("auth.login") });
  const tabSignup = el("button", { type: "button", "aria-selected": "false", text: t("auth.signup") });
  /** @param {"login" | "signup"} m */
  const setMode = (m) => {
    mode = m;
    tabLogin.setAttribute("aria-selected", String(m === "login"));
    tabSignup.setAttribute("aria-selected", String(m === "signup"));
    submit.textContent = m === "login" ? t("auth.login") : t("auth.create");
    password.setAttribute("autocomplete", m === "login" ? "current-password" : "new-password");
    error.textContent = "";
  };
  tabLogin.addEventListener("click", () => setMode("login"));
  tabSignup.addEventListener("click", () => setMode("signup"));
  const form = el("form", { class: "form", id: "auth-form" },
    el("label", {}, t("auth.username"), username),
    el("label", {}, t("auth.password"), password),
    submit, error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    error.textContent = "";
    try {
      const path = mode === "login" ? "/auth/login" : "/auth/signup";
      const { user } = await api("POST", path, { username: username.value, password: password.value }, { signal });
      store.set({ user }); // the router mounts this page again, signed in
    } catch (e) {
      if (signal.aborted) return;
      error.textContent = errMsg(e);
      submit.disabled = false;
    }
  });
  return el("section", { class: "card", id: "login" },
    el("div", { class: "tabs", role: "tablist" }, tabLogin, tabSignup), form, providerButtons(signal));
}

/** @param {PageContext} ctx */
function createRoomCard({ signal, navigate }) {
  const error = el("p", { class: "error", role: "alert" });
  const slug = el("input", { name: "slug", required: true, maxlength: 48, placeholder: t("home.addressPlaceholder"), pattern: "[a-z0-9-]{3,48}" });
  const title = el("input", { name: "title", required: true, maxlength: 100, placeholder: t("home.titlePlaceholder") });
  const priv = el("input", { name: "private", type: "checkbox", id: "create-private" });
  const form = el("form", { class: "form", id: "create-room" },
    el("label", {}, t("home.title"), title),
    el("label", {}, t("home.address"), slug),
    el("label", { class: "check" }, priv, t("home.private")),
    el("button", { type: "submit", text: t("home.createRoom") }), error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      /** @type {{ room: Room }} */
      const { room } = await api("POST", "/rooms", { slug: slug.value, title: title.value, visibility: priv.checked ? "private" : "public" }, { signal });
      navigate(`/r/${room.slug}`);
    } catch (e) {
      if (!signal.aborted) error.textContent = errMsg(e);
    }
  });
  return el("section", { class: "card" }, el("h2", { text: t("home.newRoom") }), form);
}

/** A room as a card: the live ones with their picture and a LIVE badge. @param {Room} r */
export function roomCard(r) {
  return el("li", {},
    el("a", { class: "room-card", href: `/r/${encodeURIComponent(r.slug)}`, "data-slug": r.slug },
      r.live ? el("div", { class: "thumb" },
        r.thumbnail_url ? el("img", { src: r.thumbnail_url, alt: "", loading: "lazy" }) : el("span", { text: t("badge.live") })) : null,
      el("div", { class: "title", text: r.title }),
      el("div", { class: "meta" },
        r.live ? el("span", { class: "badge live", text: t("badge.live") }) : el("span", { class: "badge off", text: t("badge.offline") }),
        el("span", { text: t("room.watching", { n: r.viewers }) }),
        el("span", { text: t("room.by", { name: r.owner }) }))));
}

/** @param {PageContext} ctx */
export function mount(ctx) {
  setTitle("");
  const list = el("ul", { class: "rooms", id: "room-list" });
  const side = store.get().user ? createRoomCard(ctx) : authCard(ctx);
  ctx.root.replaceChildren(el("div", { class: "home" },
    el("section", {}, el("h1", { text: t("home.rooms") }), list),
    el("div", {}, side)));
  api("GET", "/rooms", undefined, { signal: ctx.signal }).then(
    (/** @type {{ rooms: Room[] }} */ { rooms }) => {
      if (rooms.length === 0) list.append(el("li", { class: "muted", text: t("home.empty") }));
      for (const r of rooms) list.append(roomCard(r));
    },
    (e) => { if (!ctx.signal.aborted) list.append(el("li", { class: "error", text: errMsg(e) })); });
}
