// @ts-check
// The username step of signing up through a provider: the provider vouched for the person, moim
// suggests a name made from their nickname, they choose, and the account is made.

import { api, el, errMsg, setTitle } from "../dom.js";
import { t } from "../i18n.js";
import * as store from "../store.js";

/** @typedef {import("../router.js").PageContext} PageContext */

/** @param {PageContext} ctx */
export function mount({ root, signal, navigate }) {
  setTitle(t("welcome.title"));
  const status = el("p", { class: "muted", role: "status", text: t("common.loading") });
  root.replaceChildren(el("section", { class: "card welcome", id: "welcome" }, el("h1", { text: t("welcome.title") }), status));
  api("GET", "/auth/oidc/pending", undefined, { signal }).then(
    (/** @type {{ provider: { id: string, name: string }, suggested_username: string, next: string }} */ p) => {
      const error = el("p", { class: "error", role: "alert" });
      const username = el("input", { name: "username", id: "welcome-username", autocomplete: "username", required: true, maxlength: 32, value: p.suggested_username });
      const submit = el("button", { type: "submit", text: t("welcome.create") });
      const form = el("form", { class: "form", id: "welcome-form" },
        el("label", {}, t("welcome.username"), username),
        el("p", { class: "muted", text: t("welcome.rules", { name: p.provider.name }) }),
        submit, error);
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        submit.disabled = true;
        error.textContent = "";
        try {
          const { user, next } = await api("POST", "/auth/oidc/complete", { username: username.value }, { signal });
          store.set({ user });
          navigate(next || "/");
        } catch (e) {
          if (signal.aborted) return;
          error.textContent = errMsg(e);
          submit.disabled = false;
          username.focus();
        }
      });
      status.replaceWith(el("p", { text: t("welcome.from", { name: p.provider.name }) }), form);
      username.focus();
      username.select();
    },
    (e) => {
      if (signal.aborted) return;
      status.className = "error";
      status.textContent = errMsg(e);
      status.after(el("p", {}, el("a", { href: "/#login", text: t("nav.login") })));
    });
}
