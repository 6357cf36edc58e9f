// @ts-check
// Any address the route table does not know.

import { el, setTitle } from "../dom.js";
import { t } from "../i18n.js";

/** @param {import("../router.js").PageContext} ctx */
export function mount({ root }) {
  setTitle(t("common.notFound"));
  root.replaceChildren(el("h1", { text: t("notFound.title") }),
    el("p", {}, el("a", { href: "/", text: t("common.backHome") })));
}
