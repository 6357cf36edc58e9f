// @ts-check
// Admin: the server-wide blocked terms and the words allowed despite them.

import { api, el, errMsg, setTitle } from "../dom.js";
import { t } from "../i18n.js";
import * as store from "../store.js";

/** @typedef {import("../router.js").PageContext} PageContext */
/** @typedef {import("../types.js").BlockedTerms} BlockedTerms */

/** @param {HTMLTextAreaElement} area */
const lines = (area) => area.value.split("\n").map((s) => s.trim()).filter(Boolean);

/** @param {PageContext} ctx */
export function mount({ root, signal }) {
  setTitle(t("admin.pageTitle"));
  const me = store.get().user;
  if (!me || me.role !== "admin") {
    root.replaceChildren(el("h1", { text: t("admin.only") }),
      el("p", {}, me ? el("a", { href: "/", text: t("common.backHome") }) : el("a", { href: "/#login", text: t("nav.login") })));
    return;
  }
  const status = el("p", { class: "muted", role: "status" });
  const terms = el("textarea", { id: "terms", "aria-label": t("admin.termsLabel") });
  const allowed = el("textarea", { id: "allowed", "aria-label": t("admin.allowedLabel") });
  const form = el("form", { class: "form", id: "terms-form" },
    el("label", {}, t("admin.terms"), terms),
    el("label", {}, t("admin.allowed"), allowed),
    el("button", { type: "submit", text: t("admin.save") }), status);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      /** @type {BlockedTerms} */
      const data = await api("PUT", "/admin/blocked-terms", { terms: lines(terms), allowed: lines(allowed) }, { signal });
      status.textContent = t("admin.saved", { n: data.terms.length });
    } catch (e) {
      if (!signal.aborted) status.textContent = errMsg(e);
    }
  });
  const show = () => root.replaceChildren(el("h1", { text: t("admin.title") }), el("section", { class: "card" }, form));
  root.replaceChildren(el("p", { class: "muted", text: t("common.loading") }));
  // The form appears with the stored lists in it, so nothing typed is overwritten by the load.
  api("GET", "/admin/blocked-terms", undefined, { signal }).then(
    (/** @type {BlockedTerms} */ data) => {
      terms.value = data.terms.join("\n");
      allowed.value = data.allowed.join("\n");
      show();
    },
    (e) => {
      if (signal.aborted) return;
      status.textContent = errMsg(e);
      show();
    });
}
