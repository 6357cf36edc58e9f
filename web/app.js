// @ts-check
// moim web UI, the entry point: the layout's header (account links, language switch), who is
// signed in, then the router, which mounts the page for the address into <main>.
// User text is only ever inserted with textContent, never as HTML.

import { api, byId, el } from "./dom.js";
import { detectLang, languages, setLang, t } from "./i18n.js";
import { startRouter } from "./router.js";
import * as store from "./store.js";

async function logout() {
  try { await api("POST", "/auth/logout"); } catch { /* already logged out */ }
  location.href = "/";
}

function renderHeader() {
  const { user, lang } = store.get();
  const account = byId("account");
  account.setAttribute("aria-label", t("nav.account"));
  // Narrow screens put the signed-in links on a row of their own.
  byId("top").classList.toggle("signed-in", Boolean(user));
  if (user) {
    account.replaceChildren(
      el("span", { class: "muted", "data-testid": "whoami", text: user.username }),
      el("a", { href: "/c", id: "nav-community", text: t("nav.community") }),
      el("a", { href: "/videos", text: t("nav.myVideos") }),
      el("a", { href: `/u/${encodeURIComponent(user.username)}`, text: t("nav.profile") }),
      el("a", { href: "/settings", id: "nav-settings", text: t("nav.settings") }),
      ...(user.role === "admin" || user.role === "moderator" ? [el("a", { href: "/admin", text: t("nav.admin") })] : []),
      el("button", { class: "ghost", onclick: logout, text: t("nav.logout") }));
  } else {
    account.replaceChildren(el("a", { href: "/c", id: "nav-community", text: t("nav.community") }), el("a", { href: "/#login", text: t("nav.login") }));
  }
  const select = el("select", { id: "lang", class: "lang", "aria-label": t("nav.language") },
    ...languages.map(([code, name]) => el("option", { value: code, lang: code, selected: code === lang, text: name })));
  select.addEventListener("change", () => setLang(select.value === "ko" ? "ko" : "en", true));
  byId("lang-switch").replaceChildren(select);
}

setLang(detectLang());
const main = byId("main");
main.replaceChildren(el("p", { class: "muted", text: t("common.loading") }));
renderHeader();
store.subscribe(renderHeader);
try {
  store.set({ user: (await api("GET", "/me")).user });
} catch {
  // not signed in
}
startRouter(main);
