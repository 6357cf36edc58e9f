// @ts-check
// Writing a post, or changing one (`/c/new?kind=review&place=ID`, `/c/p/:id/edit`): the kind,
// the fields that kind has (a place's details and pin, a review's place and stars, a listing's
// price and condition), tags, and photos (dropped or picked, each uploading with its progress,
// reordered, removed). The server checks every field; its answer names the wrong ones, which
// are marked here.

import { api, ApiError, el, errMsg, setTitle } from "../dom.js";
import { t } from "../i18n.js";
import * as store from "../store.js";
import { KINDS, categoryText, conditionText, kindText } from "../community/cards.js";
import { photoPicker } from "../community/photos.js";
import { communityNav } from "./community.js";
import { streamDraft } from "../community/draft.js";
import { pointPicker } from "../map.js";

/** @typedef {import("../router.js").PageContext} PageContext */
/** @typedef {import("../types.js").Post} Post */

const CATEGORIES = ["restaurant", "cafe", "bar", "hospital", "hotel", "park", "shop", "grooming", "culture", "other"];
const CONDITIONS = ["new", "like_new", "good", "fair", "poor"];
const MAX_PHOTOS = 10;

/**
 * A labelled field; `name` ties it to the server's field errors.
 * @param {string} label
 * @param {HTMLElement} input
 * @param {string} name
 */
function field(label, input, name) {
  const why = el("span", { class: "error field-error", "data-field-error": name });
  return el("label", { "data-field": name }, label, input, why);
}

/** @param {PageContext} ctx */
export function mount({ root, params, signal, navigate }) {
  const me = store.get().user;
  const editing = params.id || "";
  setTitle(editing ? t("compose.editTitle") : t("compose.title"));
  if (!me) {
    root.replaceChildren(el("h1", { text: t("compose.title") }), el("p", {}, el("a", { href: "/#login", text: t("compose.loginFirst") })));
    return;
  }
  const query = new URLSearchParams(location.search);
  if (!editing) {
    render(null, query.get("kind") || "talk", query.get("place"));
    return;
  }
  root.replaceChildren(el("p", { class: "muted", text: t("common.loading") }));
  api("GET", `/posts/${encodeURIComponent(editing)}`, undefined, { signal }).then(
    (/** @type {{ post: Post }} */ { post }) => render(post, post.kind, post.place_id || null),
    (e) => { if (!signal.aborted) root.replaceChildren(el("p", { class: "error", text: errMsg(e) })); });

  /**
   * @param {Post | null} post
   * @param {string} initialKind
   * @param {string | null} placeId
   */
  function render(post, initialKind, placeId) {
    let kind = KINDS.includes(/** @type {any} */ (initialKind)) ? initialKind : "talk";
    const error = el("p", { class: "error", role: "alert" });
    const title = el("input", { name: "title", maxlength: 120, value: post ? post.title : "" });
    const body = el("textarea", { name: "body", rows: 8, maxlength: 10000 });
    body.value = post ? post.body : "";
    const tags = el("input", { name: "tags", value: post ? post.tags.map((x) => `#${x}`).join(" ") : "", placeholder: t("compose.tagsPlaceholder") });
    const photos = photoPicker({ max: MAX_PHOTOS, initial: post ? post.images : [], signal });

    const pl = post && post.place;
    const placeName = el("input", { name: "place.name", maxlength: 100, value: pl ? pl.name : "" });
    const category = el("select", { name: "place.category" },
      ...CATEGORIES.map((c) => el("option", { value: c, selected: pl ? pl.category === c : c === "restaurant", text: categoryText(c) })));
    const address = el("input", { name: "place.address", maxlength: 200, value: (pl && pl.address) || "" });
    const lat = el("input", { name: "lat", inputmode: "decimal", value: pl && pl.lat != null ? String(pl.lat) : "", placeholder: "37.5665" });
    const lng = el("input", { name: "lng", inputmode: "decimal", value: pl && pl.lng != null ? String(pl.lng) : "", placeholder: "126.9780" });
    const here = el("button", { type: "button", class: "ghost", text: t("compose.useMyLocation") });
    /** @returns {[number, number] | null} */
    const typedPoint = () => {
      const a = parseFloat(lat.value), b = parseFloat(lng.value);
      return Number.isFinite(a) && Number.isFinite(b) && Math.abs(a) <= 90 && Math.abs(b) <= 180 ? [a, b] : null;
    };
    // The pin: a click or a drag on the map fills the two fields; typing in them moves it.
    const picker = pointPicker({
      center: typedPoint(), signal, label: t("compose.mapPin"),
      onPick: ([a, b]) => { lat.value = String(a); lng.value = String(b); },
    });
    for (const input of [lat, lng]) input.addEventListener("change", () => picker.set(typedPoint(), { pan: true }));
    here.addEventListener("click", () => navigator.geolocation && navigator.geolocation.getCurrentPosition((pos) => {
      lat.value = pos.coords.latitude.toFixed(6);
      lng.value = pos.coords.longitude.toFixed(6);
      picker.set(typedPoint(), { pan: true });
    }));
    const hours = el("input", { name: "place.hours", maxlength: 200, value: (pl && pl.hours) || "", placeholder: t("compose.hoursPlaceholder") });
    const phone = el("input", { name: "place.phone", maxlength: 40, value: (pl && pl.phone) || "" });
    const placeFields = el("fieldset", { class: "kind-fields", "data-for": "place" },
      el("legend", { text: t("compose.placeDetails") }),
      field(t("compose.placeName"), placeName, "place.name"),
      field(t("compose.category"), category, "place.category"),
      field(t("compose.address"), address, "place.address"),
      el("p", { class: "muted", text: t("compose.mapHint") }),
      picker.element,
      el("div", { class: "row" }, field(t("compose.lat"), lat, "lat"), field(t("compose.lng"), lng, "lng"), here),
      field(t("compose.hours"), hours, "place.hours"),
      field(t("compose.phone"), phone, "place.phone"));

    // A review's place: chosen from a search of place posts (or given by the address).
    const placeChoice = el("select", { name: "place_id", id: "review-place" }, el("option", { value: "", text: t("compose.pickPlace") }));
    const placeSearch = el("input", { type: "search", placeholder: t("compose.findPlace"), "aria-label": t("compose.findPlace") });
    const findPlaces = async () => {
      const qs = new URLSearchParams({ kind: "place", limit: "50", sort: "new" });
      if (placeSearch.value.trim()) qs.set("q", placeSearch.value.trim());
      try {
        /** @type {{ posts: Post[] }} */
        const found = await api("GET", `/posts?${qs}`, undefined, { signal });
        const keep = placeChoice.value;
        placeChoice.replaceChildren(el("option", { value: "", text: t("compose.pickPlace") }),
          ...found.posts.map((p) => el("option", { value: p.id, selected: p.id === (keep || placeId), text: p.title })));
        if (placeId && !found.posts.some((p) => p.id === placeId)) {
          const one = await api("GET", `/posts/${encodeURIComponent(placeId)}`, undefined, { signal });
          placeChoice.append(el("option", { value: placeId, selected: true, text: one.post.title }));
        }
      } catch (e) {
        if (!signal.aborted) error.textContent = errMsg(e);
      }
    };
    placeSearch.addEventListener("input", () => { findPlaces(); });
    let rating = post && post.rating ? post.rating : 0;
    const starButtons = [1, 2, 3, 4, 5].map((n) => el("button", {
      type: "button", class: "star", "data-stars": n, "aria-label": t("community.stars", { n }), text: "★",
    }));
    const paintStars = () => starButtons.forEach((b, i) => {
      b.classList.toggle("on", i < rating);
      b.setAttribute("aria-pressed", String(i + 1 === rating));
    });
    starButtons.forEach((b, i) => b.addEventListener("click", () => { rating = i + 1; paintStars(); }));
    paintStars();
    // Draft with AI: the menu and notes go to the model with the place (and the photos, when
    // the model reads them); the text streams into the editor, to be edited or thrown away.
    const menu = el("input", { name: "menu", placeholder: t("draft.menuPlaceholder"), "aria-label": t("draft.menu") });
    const notes = el("input", { name: "notes", maxlength: 1000, placeholder: t("draft.notesPlaceholder"), "aria-label": t("draft.notes") });
    const draftButton = el("button", { type: "button", id: "draft-ai", text: t("draft.button") });
    const discard = el("button", { type: "button", class: "ghost", id: "draft-discard", hidden: true, text: t("draft.discard") });
    const draftStatus = el("span", { class: "muted", role: "status", id: "draft-status" });
    const draftPanel = el("div", { class: "draft-panel", id: "draft-panel", hidden: true },
      el("strong", { text: t("draft.title") }),
      field(t("draft.menu"), menu, "menu"), field(t("draft.notes"), notes, "notes"),
      el("div", { class: "row" }, draftButton, discard, draftStatus));
    /** @type {AbortController | null} */
    let drafting = null;
    let before = "";
    draftButton.addEventListener("click", async () => {
      if (drafting) { drafting.abort(); return; }
      const place = post ? post.place_id : placeChoice.value;
      if (!place) { draftStatus.textContent = t("draft.pickPlace"); return; }
      before = body.value;
      body.value = "";
      discard.hidden = false;
      drafting = new AbortController();
      const stop = drafting;
      signal.addEventListener("abort", () => stop.abort());
      draftButton.textContent = t("draft.stop");
      draftStatus.textContent = t("draft.writing");
      try {
        await streamDraft({
          place_id: place,
          menu: menu.value.split(/[,\n]/).map((x) => x.trim()).filter(Boolean).slice(0, 20),
          image_ids: photos.ids().slice(0, 4),
          notes: notes.value || undefined,
          lang: store.get().lang,
        }, (piece) => { body.value += piece; }, stop.signal);
        draftStatus.textContent = t("draft.done");
      } catch (e) {
        draftStatus.textContent = stop.signal.aborted ? t("draft.stopped") : errMsg(e);
      } finally {
        drafting = null;
        draftButton.textContent = t("draft.again");
      }
    });
    discard.addEventListener("click", () => {
      if (drafting) drafting.abort();
      body.value = before;
      discard.hidden = true;
      draftStatus.textContent = "";
    });
    api("GET", "/ai", undefined, { signal }).then((ai) => { draftPanel.hidden = !ai.review_drafts; }, () => {});
    const reviewFields = el("fieldset", { class: "kind-fields", "data-for": "review" },
      el("legend", { text: t("compose.reviewDetails") }),
      post ? el("p", { class: "muted", text: post.place_name || "" })
        : field(t("compose.place"), el("div", { class: "row" }, placeSearch, placeChoice), "place_id"),
      field(t("compose.rating"), el("div", { class: "star-input", role: "group" }, ...starButtons), "rating"),
      draftPanel);

    const price = el("input", { name: "price", inputmode: "numeric", value: post && post.price != null ? String(post.price) : "" });
    const free = el("input", { type: "checkbox", name: "free", checked: Boolean(post && post.price === 0) });
    free.addEventListener("change", () => { price.disabled = free.checked; if (free.checked) price.value = "0"; });
    price.disabled = free.checked;
    const condition = el("select", { name: "condition" }, el("option", { value: "", text: "—" }),
      ...CONDITIONS.map((c) => el("option", { value: c, selected: Boolean(post && post.condition === c), text: conditionText(c) })));
    const hood = el("input", { name: "neighbourhood", maxlength: 60, value: (post && post.neighbourhood) || "", placeholder: t("compose.neighbourhoodPlaceholder") });
    const marketFields = el("fieldset", { class: "kind-fields", "data-for": "market" },
      el("legend", { text: t("compose.marketDetails") }),
      el("div", { class: "row" }, field(t("compose.price"), price, "price"), el("label", { class: "check" }, free, t("compose.free"))),
      field(t("compose.condition"), condition, "condition"),
      field(t("compose.neighbourhood"), hood, "neighbourhood"));

    const kindTabs = el("div", { class: "tabs", role: "tablist", "aria-label": t("compose.kind") },
      ...KINDS.map((k) => el("button", { type: "button", role: "tab", "data-kind": k, disabled: Boolean(post) && k !== kind, text: kindText(k) })));
    const showKind = () => {
      for (const b of kindTabs.querySelectorAll("button")) b.setAttribute("aria-selected", String(b.dataset.kind === kind));
      for (const f of [placeFields, reviewFields, marketFields]) f.hidden = f.dataset.for !== kind;
      if (kind === "review" && !post) findPlaces();
    };
    for (const b of kindTabs.querySelectorAll("button")) b.addEventListener("click", () => { kind = b.dataset.kind || "talk"; showKind(); });
    showKind();

    const submit = el("button", { type: "submit", id: "post-submit", text: post ? t("compose.save") : t("compose.post") });
    const form = el("form", { class: "form compose", id: "compose" },
      kindTabs,
      field(t("compose.titleLabel"), title, "title"),
      placeFields, reviewFields, marketFields,
      field(t("compose.body"), body, "body"),
      field(t("compose.tags"), tags, "tags"),
      el("div", { "data-field": "image_ids" }, el("span", { class: "label", text: t("compose.photos") }), photos.node,
        el("span", { class: "error field-error", "data-field-error": "image_ids" })),
      el("div", { class: "row" }, submit, el("a", { href: post ? `/c/p/${post.id}` : "/c", class: "button ghost", text: t("compose.cancel") })),
      error);

    /** @param {string} v */
    const num = (v) => (v.trim() === "" ? undefined : Number(v.trim()));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      error.textContent = "";
      for (const e of form.querySelectorAll("[data-field-error]")) e.textContent = "";
      if (photos.busy()) { error.textContent = t("compose.waitPhotos"); return; }
      /** @type {Record<string, unknown>} */
      const data = {
        title: title.value,
        body: body.value,
        tags: tags.value.split(/[\s,]+/).map((x) => x.replace(/^#/, "")).filter(Boolean),
        image_ids: photos.ids(),
      };
      if (!post) data.kind = kind;
      if (kind === "place") {
        data.place = {
          name: placeName.value, category: category.value, address: address.value || undefined,
          lat: num(lat.value), lng: num(lng.value), hours: hours.value || undefined, phone: phone.value || undefined,
        };
        if (!data.title) data.title = placeName.value;
      } else if (kind === "review") {
        if (!post) data.place_id = placeChoice.value || undefined;
        data.rating = rating || undefined;
      } else if (kind === "market") {
        data.price = free.checked ? 0 : num(price.value);
        data.condition = condition.value || undefined;
        data.neighbourhood = hood.value || undefined;
      }
      submit.disabled = true;
      try {
        const res = post
          ? await api("PATCH", `/posts/${encodeURIComponent(post.id)}`, data, { signal })
          : await api("POST", "/posts", data, { signal });
        navigate(`/c/p/${encodeURIComponent(res.post.id)}`);
      } catch (e) {
        if (signal.aborted) return;
        submit.disabled = false;
        error.textContent = errMsg(e);
        const fields = e instanceof ApiError ? e.fields : undefined;
        if (fields) {
          for (const [name, why] of Object.entries(fields)) {
            const slot = form.querySelector(`[data-field-error="${CSS.escape(name)}"]`)
              || form.querySelector(`[data-field-error="${CSS.escape(name.replace(/^place\./, ""))}"]`);
            if (slot) slot.textContent = why;
          }
        }
      }
    });
    root.replaceChildren(
      el("div", { class: "page-head" }, el("h1", { text: post ? t("compose.editTitle") : t("compose.title") })),
      communityNav(""), el("section", { class: "card" }, form));
  }
}
