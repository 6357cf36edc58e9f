// @ts-check
// Admin: the community's report queue (moderators and admins), and for admins the server-wide
// blocked terms and the words allowed despite them.

import { api, el, errMsg, setTitle } from "../dom.js";
import { t } from "../i18n.js";
import * as store from "../store.js";

/** @typedef {import("../router.js").PageContext} PageContext */
/** @typedef {import("../types.js").BlockedTerms} BlockedTerms */
/** @typedef {import("../types.js").Report} Report */

/** The open reports, each with dismiss / hide / delete. @param {AbortSignal} signal */
function reportQueue(signal) {
  const list = el("ul", { class: "reports", id: "reports" });
  const status = el("p", { class: "muted", role: "status", text: t("common.loading") });
  const load = () => api("GET", "/reports", undefined, { signal }).then(
    (/** @type {{ reports: Report[] }} */ r) => {
      status.textContent = r.reports.length ? "" : t("reports.empty");
      list.replaceChildren(...r.reports.map((rep) => el("li", { class: "card report", "data-report": rep.id },
        el("div", {}, el("a", { href: `/c/p/${encodeURIComponent(rep.post_id)}`, text: rep.comment_id ? t("reports.comment") : t("reports.post") }),
          " · ", el("span", { class: "muted", text: t("reports.by", { name: rep.reporter }) })),
        el("p", { text: rep.reason }),
        el("div", { class: "row" }, ...(["dismiss", "hide", "delete"]).map((action) => el("button", {
          type: "button", class: action === "delete" ? "danger" : "ghost", "data-action": action,
          text: t(action === "dismiss" ? "reports.dismiss" : action === "hide" ? "reports.hide" : "reports.delete"),
          onclick: async () => {
            try { await api("POST", `/reports/${rep.id}/resolve`, { action }, { signal }); load(); } catch (e) { status.textContent = errMsg(e); }
          },
        }))))));
    },
    (e) => { if (!signal.aborted) status.textContent = errMsg(e); });
  load();
  return el("section", { class: "card", id: "report-queue" }, el("h2", { text: t("reports.title") }), status, list);
}

/** The sign-in providers configured, each with the redirect URL to register with it. @param {AbortSignal} signal */
function providerSetup(signal) {
  const body = el("div", {}, el("p", { class: "muted", text: t("common.loading") }));
  api("GET", "/admin/sign-in-providers", undefined, { signal }).then(
    (/** @type {{ providers: import("../types.js").ProviderSetup[] }} */ { providers }) => {
      if (!providers.length) {
        body.replaceChildren(el("p", { class: "muted", text: t("admin.noProviders") }));
        return;
      }
      body.replaceChildren(el("p", { class: "muted", text: t("admin.providersHelp") }),
        el("ul", { class: "provider-setup", id: "provider-setup" }, ...providers.map((p) => el("li", { "data-provider": p.id },
          el("div", {}, el("strong", { text: p.name }), " ", el("span", { class: "muted", text: `${p.id} · ${p.kind}${p.trust_email ? " · " + t("admin.trustEmail") : ""}` })),
          el("div", { class: "muted", text: t("admin.clientId", { id: p.client_id }) }),
          el("label", {}, t("admin.redirectUrl"), el("input", { readonly: true, value: p.redirect_url, class: "redirect-url", onfocus: (/** @type {Event} */ e) => /** @type {HTMLInputElement} */ (e.target).select() }))))));
    },
    (e) => { if (!signal.aborted) body.replaceChildren(el("p", { class: "error", text: errMsg(e) })); });
  return el("section", { class: "card", id: "signin-providers" }, el("h2", { text: t("admin.providers") }), body);
}

/** @param {HTMLTextAreaElement} area */
const lines = (area) => area.value.split("\n").map((s) => s.trim()).filter(Boolean);

/** @param {PageContext} ctx */
export function mount({ root, signal }) {
  setTitle(t("admin.pageTitle"));
  const me = store.get().user;
  if (me && me.role === "moderator") {
    root.replaceChildren(el("h1", { text: t("nav.admin") }), reportQueue(signal));
    return;
  }
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
  const queue = reportQueue(signal);
  const providers = providerSetup(signal);
  const show = () => root.replaceChildren(el("h1", { text: t("nav.admin") }), queue,
    el("section", { class: "card" }, el("h2", { text: t("admin.title") }), form), providers);
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
