// @ts-check
// Settings: the ways to sign in to this account (providers connected or not, and a password),
// where a member connects and disconnects providers and sets or changes the password.

import { api, el, errMsg, setTitle } from "../dom.js";
import { t } from "../i18n.js";
import * as store from "../store.js";

/** @typedef {import("../router.js").PageContext} PageContext */
/** @typedef {import("../types.js").SigninProvider} SigninProvider */
/** @typedef {import("../types.js").Identity} Identity */

/**
 * @param {AbortSignal} signal
 * @param {() => void} reload
 * @param {SigninProvider[]} providers
 * @param {Identity[]} identities
 */
function providerList(signal, reload, providers, identities) {
  const error = el("p", { class: "error", role: "alert" });
  const rows = providers.map((p) => {
    const linked = identities.find((i) => i.provider === p.id);
    const action = linked
      ? el("button", { type: "button", class: "ghost", "data-action": "disconnect", text: t("settings.disconnect"), onclick: async () => {
        error.textContent = "";
        try { await api("DELETE", `/me/identities/${encodeURIComponent(p.id)}`, undefined, { signal }); reload(); } catch (e) { error.textContent = errMsg(e); }
      } })
      : el("button", { type: "button", "data-action": "connect", text: t("settings.connect"), onclick: async () => {
        error.textContent = "";
        try {
          const { start_url } = await api("POST", `/me/identities/${encodeURIComponent(p.id)}`, undefined, { signal });
          location.href = start_url;
        } catch (e) { error.textContent = errMsg(e); }
      } });
    return el("li", { class: "identity", "data-provider": p.id },
      el("span", { class: `provider-mark provider-${["google", "kakao", "naver"].includes(p.kind) ? p.kind : "oidc"}`, "aria-hidden": "true", text: p.kind === "kakao" ? "" : (p.name[0] || "?").toUpperCase() }),
      el("span", { class: "identity-name", text: p.name }),
      el("span", { class: "muted", text: linked ? t("settings.connectedOn", { date: new Date(linked.linked_at).toLocaleDateString() }) : t("settings.notConnected") }),
      action);
  });
  // Identities at providers this server no longer offers: no way in, but they can be removed.
  const gone = identities.filter((i) => !providers.some((p) => p.id === i.provider)).map((i) =>
    el("li", { class: "identity", "data-provider": i.provider },
      el("span", { class: "provider-mark provider-oidc", "aria-hidden": "true", text: "?" }),
      el("span", { class: "identity-name", text: i.name || i.provider }),
      el("span", { class: "muted", text: t("settings.noLongerOffered") }),
      el("button", { type: "button", class: "ghost", "data-action": "disconnect", text: t("settings.disconnect"), onclick: async () => {
        error.textContent = "";
        try { await api("DELETE", `/me/identities/${encodeURIComponent(i.provider)}`, undefined, { signal }); reload(); } catch (e) { error.textContent = errMsg(e); }
      } })));
  const all = [...rows, ...gone];
  return el("div", {}, all.length ? el("ul", { class: "identities", id: "identities" }, ...all) : el("p", { class: "muted", text: t("settings.noProviders") }), error);
}

/**
 * @param {AbortSignal} signal
 * @param {() => void} reload
 * @param {boolean} hasPassword
 */
function passwordForm(signal, reload, hasPassword) {
  const status = el("p", { role: "status" });
  const current = el("input", { type: "password", name: "current_password", autocomplete: "current-password", maxlength: 128, required: true });
  const fresh = el("input", { type: "password", name: "password", id: "new-password", autocomplete: "new-password", minlength: 8, maxlength: 128, required: true });
  const form = el("form", { class: "form", id: "password-form" },
    el("p", { class: "muted", text: hasPassword ? t("settings.passwordSet") : t("settings.noPassword") }),
    hasPassword ? el("label", {}, t("settings.currentPassword"), current) : null,
    el("label", {}, t("settings.newPassword"), fresh),
    el("button", { type: "submit", text: hasPassword ? t("settings.changePassword") : t("settings.setPassword") }), status);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    status.className = "";
    try {
      /** @type {{ password: string, current_password?: string }} */
      const body = { password: fresh.value };
      if (hasPassword) body.current_password = current.value;
      await api("PUT", "/me/password", body, { signal });
      reload();
    } catch (e) {
      status.className = "error";
      status.textContent = errMsg(e);
    }
  });
  return form;
}

/** @param {PageContext} ctx */
export function mount({ root, signal }) {
  setTitle(t("settings.title"));
  if (!store.get().user) {
    root.replaceChildren(el("h1", { text: t("settings.title") }), el("p", {}, el("a", { href: "/#login", text: t("nav.login") })));
    return;
  }
  const load = () => Promise.all([
    api("GET", "/auth/providers", undefined, { signal }),
    api("GET", "/me/identities", undefined, { signal }),
  ]).then(([{ providers }, { identities, has_password }]) => {
    if (signal.aborted) return;
    root.replaceChildren(el("div", { class: "settings" },
      el("h1", { text: t("settings.title") }),
      el("section", { class: "card", id: "signin-methods" }, el("h2", { text: t("settings.signinMethods") }), providerList(signal, load, providers, identities)),
      el("section", { class: "card", id: "password" }, el("h2", { text: t("settings.password") }), passwordForm(signal, load, has_password))));
  }, (e) => { if (!signal.aborted) root.replaceChildren(el("p", { class: "error", text: errMsg(e) })); });
  root.replaceChildren(el("p", { class: "muted", text: t("common.loading") }));
  load();
}
