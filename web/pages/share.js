// @ts-check
// A share link, opened by anyone: the video plays without an account. Opening the link sets a
// grant cookie that lets this browser fetch the video's media; a password, when the link has
// one, is asked for first. Links that no longer work say why.

import { api, ApiError, el, errMsg, setTitle } from "../dom.js";
import { t } from "../i18n.js";
import { watchStage } from "../video/watch.js";

/** @typedef {import("../router.js").PageContext} PageContext */
/** @typedef {import("../types.js").OpenedShare} OpenedShare */
/** @typedef {import("../i18n.js").Key} Key */

/** Why a link does not open, by the API's error code. @type {Record<string, Key>} */
const REFUSALS = {
  not_found: "share.notFound",
  share_expired: "share.expired",
  share_exhausted: "share.exhausted",
  share_revoked: "share.revoked",
};

/** @param {PageContext} ctx */
export function mount({ root, params, signal }) {
  const path = `/s/${encodeURIComponent(params.code)}`;
  let dispose = () => {};

  /** @param {OpenedShare} opened */
  const play = ({ video }) => {
    setTitle(video.title);
    const watch = watchStage(video, signal);
    dispose = watch.dispose;
    root.replaceChildren(watch.stage);
  };

  /** @param {unknown} e */
  const refused = (e) => {
    if (signal.aborted) return;
    if (e instanceof ApiError && e.code === "password_required") { askPassword(); return; }
    const key = e instanceof ApiError && e.code ? REFUSALS[e.code] : undefined;
    const text = key ? t(key) : e instanceof ApiError && e.status === 404 ? t("share.notFound") : errMsg(e);
    setTitle(key ? t("share.pageTitle") : "");
    root.replaceChildren(el("section", { class: "card notice", id: "share-state", "data-code": e instanceof ApiError ? e.code : null },
      el("h1", { text }),
      el("p", {}, el("a", { href: "/", text: t("common.backHome") }))));
  };

  const askPassword = () => {
    setTitle(t("share.pageTitle"));
    const password = el("input", { name: "password", id: "share-password", type: "password", required: true, maxlength: 200, autocomplete: "off" });
    const submit = el("button", { type: "submit", text: t("share.watch") });
    const error = el("p", { class: "error", role: "alert", id: "unlock-error" });
    const form = el("form", { class: "form", id: "unlock-form" },
      el("label", {}, t("share.passwordLabel"), password), submit, error);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      submit.disabled = true;
      error.textContent = "";
      try {
        play(await api("POST", `${path}/unlock`, { password: password.value }, { signal }));
      } catch (e) {
        if (signal.aborted) return;
        submit.disabled = false;
        if (e instanceof ApiError && e.code === "wrong_password") {
          error.textContent = t("share.wrongPassword");
          password.select();
        } else if (e instanceof ApiError && e.code && REFUSALS[e.code]) {
          refused(e); // revoked or used up meanwhile
        } else {
          error.textContent = errMsg(e);
        }
      }
    });
    root.replaceChildren(el("section", { class: "card notice" },
      el("h1", { text: t("share.passwordTitle") }),
      el("p", { class: "muted", text: t("share.passwordHelp") }), form));
    password.focus();
  };

  root.replaceChildren(el("p", { class: "muted", text: t("common.loading") }));
  api("GET", path, undefined, { signal }).then(play, refused);
  return () => dispose();
}
