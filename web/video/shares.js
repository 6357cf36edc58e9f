// @ts-check
// The owner's share links of a video: making one (an optional name, expiry, password and view
// limit) and the list of them with their state, views, address, QR code and revocation.

import { api, el, errMsg, fmtDateTime } from "../dom.js";
import { t } from "../i18n.js";

/** @typedef {import("../types.js").Video} Video */
/** @typedef {import("../types.js").Share} Share */

/** @param {Share["state"]} state */
function stateText(state) {
  if (state === "active") return t("share.state.active");
  if (state === "expired") return t("share.state.expired");
  if (state === "exhausted") return t("share.state.exhausted");
  return t("share.state.revoked");
}

/**
 * @param {Video} v
 * @param {Share[]} initial the links as loaded
 * @param {{ signal: AbortSignal }} ctx
 */
export function sharesPanel(v, initial, { signal }) {
  const path = `/videos/${encodeURIComponent(v.id)}/shares`;
  const error = el("p", { class: "error", role: "alert" });
  /** @param {unknown} e */
  const fail = (e) => { if (!signal.aborted) error.textContent = errMsg(e); };
  const list = el("ul", { class: "shares", id: "share-list" });

  /** @param {Share} s */
  const row = (s) => {
    const url = el("a", { class: "share-url", href: s.url, target: "_blank", rel: "noopener", text: s.url });
    const copy = el("button", { type: "button", class: "ghost", text: t("share.copy"), onclick: async () => {
      try {
        await navigator.clipboard.writeText(s.url);
        copy.textContent = t("share.copied");
      } catch {
        // No clipboard access: the address is selected, ready to copy by hand.
        const range = document.createRange();
        range.selectNodeContents(url);
        const sel = getSelection();
        if (sel) { sel.removeAllRanges(); sel.addRange(range); }
      }
    } });
    const revoke = el("button", { type: "button", class: "ghost danger-text", text: t("share.revoke"), onclick: async () => {
      if (!confirm(t("share.revokeConfirm"))) return;
      try { await api("DELETE", `${path}/${encodeURIComponent(s.code)}`, undefined, { signal }); error.textContent = ""; await load(); }
      catch (e) { fail(e); }
    } });
    const views = s.max_views != null ? t("share.viewsOf", { n: s.views, max: s.max_views }) : t("share.views", { n: s.views });
    return el("li", { class: "share", "data-code": s.code, "data-state": s.state },
      s.state === "active"
        ? el("img", { class: "qr", src: `/api/v1${path}/${encodeURIComponent(s.code)}/qr.svg`, alt: t("share.qr"), width: 96, height: 96, loading: "lazy" })
        : null,
      el("div", { class: "share-body" },
        url,
        el("div", { class: "meta" },
          el("span", { class: `badge ${s.state === "active" ? "ready" : "off"}`, text: stateText(s.state) }),
          el("span", { text: views }),
          el("span", { text: s.expires_at ? t("share.until", { time: fmtDateTime(s.expires_at) }) : t("share.noExpiry") }),
          s.has_password ? el("span", { text: t("share.hasPassword") }) : null),
        el("div", { class: "row" }, copy, s.state === "revoked" ? null : revoke)));
  };
  /** @param {Share[]} shares */
  const show = (shares) => list.replaceChildren(...(shares.length ? shares.map(row) : [el("li", { class: "muted", text: t("share.none") })]));
  const load = async () => {
    try { show((await api("GET", path, undefined, { signal })).shares); } catch (e) { fail(e); }
  };
  show(initial);

  const slug = el("input", { name: "slug", id: "share-slug", maxlength: 64, autocomplete: "off", placeholder: t("share.slugPlaceholder") });
  const expires = el("input", { name: "expires", id: "share-expires", type: "datetime-local" });
  const password = el("input", { name: "password", id: "share-password", type: "password", minlength: 6, maxlength: 200, autocomplete: "new-password" });
  const maxViews = el("input", { name: "max_views", id: "share-max-views", type: "number", min: 1, step: 1, inputmode: "numeric" });
  const form = el("form", { class: "form share-form", id: "share-form" },
    el("label", {}, t("share.slug"), slug),
    el("div", { class: "share-limits" },
      el("label", {}, t("share.expires"), expires),
      el("label", {}, t("share.maxViews"), maxViews)),
    el("label", {}, t("share.password"), password),
    el("button", { type: "submit", text: t("share.create") }), error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    /** @type {Record<string, string | number>} */
    const body = {};
    if (slug.value.trim()) body.slug = slug.value.trim();
    // datetime-local is the viewer's local time; the API wants an instant.
    if (expires.value) body.expires_at = new Date(expires.value).toISOString();
    if (password.value) body.password = password.value;
    if (maxViews.value) body.max_views = Number(maxViews.value);
    try {
      await api("POST", path, body, { signal });
      form.reset();
      error.textContent = "";
      await load();
    } catch (e) { fail(e); }
  });

  return el("section", { class: "card", id: "shares" },
    el("h2", { text: t("share.title") }),
    el("p", { class: "muted", text: t("share.help") }),
    form, list);
}
