// @ts-check
// The room's Map tab: one map the members browse together. Each member's view goes out on the
// room socket (`map.view`, at most about 8 a second while the map moves) and comes back to the
// others as a coloured outline with their name and cursor, which fades when they stop moving;
// "follow" keeps this map on someone's. Candidate pins (`map.pin.add` / `map.pin.remove`) sit
// on the map and in a list beside it. Without tiles the map is a blank grid, and the lists
// (who looks where, the pins) still work.

import { api, el, errMsg } from "../dom.js";
import { t } from "../i18n.js";
import { createMap, pin } from "../map.js";

/** @typedef {import("../room-socket.js").RoomSocket} RoomSocket */
/** @typedef {import("../types.js").Pin} Pin */
/** @typedef {import("../types.js").MapView} MapView */
/** @typedef {import("../types.js").Permissions} Permissions */
/** @typedef {import("../types.js").User} User */

/** A view not moved for this long fades. */
const IDLE_MS = 5000;
/** Least time between two views sent. */
const SEND_EVERY_MS = 125;

/** A member's colour, the same on every screen: a hue from their id. @param {string} id */
export function colourOf(id) {
  let h = 0;
  for (const c of id) h = (h * 31 + c.charCodeAt(0)) % 360;
  return `hsl(${(h * 137) % 360} 70% 42%)`;
}

/**
 * @param {RoomSocket} socket
 * @param {{ perms: Permissions, signal: AbortSignal }} opts
 */
export function mapPanel(socket, { perms, signal }) {
  const mapBox = el("div", { class: "map plan-map", id: "plan-map", role: "application", "aria-label": t("plan.mapLabel") });
  const people = el("ul", { class: "list plan-people", id: "plan-people", "aria-live": "polite" });
  const pinList = el("ul", { class: "list plan-pins", id: "plan-pins" });
  const error = el("p", { class: "error", role: "alert" });
  const nameInput = el("input", { id: "pin-name", maxlength: 80, placeholder: t("plan.pinName"), "aria-label": t("plan.pinName") });
  const addForm = el("form", { class: "inline-form", id: "pin-form", hidden: true },
    nameInput, el("button", { type: "submit", text: t("plan.addPin") }),
    el("button", { type: "button", class: "ghost", text: t("common.cancel"), onclick: () => { addForm.hidden = true; } }));
  const hint = el("p", { class: "muted", id: "plan-hint", text: t("plan.hint") });
  const nearList = el("ul", { class: "list", id: "near-places" });
  const nearButton = el("button", { type: "button", class: "ghost", id: "near-places-button", text: t("plan.placesHere") });
  /** @type {User | null} */
  let you = null;
  /** @type {Pin[]} */
  let pins = [];
  /** @type {Map<string, { view: MapView, at: number, outline: any, cursor: any, label?: any }>} */
  const others = new Map();
  /** @type {string | null} */
  let following = null;
  /** @type {string | null} */
  let winner = null;
  /** @type {any} */
  let map = null;
  /** @type {any} */
  let L = null;
  /** @type {Map<string, any>} */
  const markers = new Map();
  /** @type {[number, number] | null} */
  let picked = null;
  /** @type {[number, number] | null} */
  let cursor = null;

  const fail = (/** @type {unknown} */ e) => { error.textContent = errMsg(e); };

  const drawPins = () => {
    pinList.replaceChildren();
    if (pins.length === 0) pinList.append(el("li", { class: "muted", text: t("plan.noPins") }));
    for (const p of pins) {
      const mine = you && p.user.id === you.id;
      const item = el("li", { class: p.id === winner ? "pin-item winner" : "pin-item", "data-pin": p.id },
        p.place && p.place.photo_url ? el("img", { class: "pin-photo", src: p.place.photo_url, alt: "", loading: "lazy" }) : null,
        el("div", { class: "pin-text" },
          p.place
            ? el("a", { class: "pin-name", href: `/c/p/${encodeURIComponent(p.place.id)}`, text: p.name })
            : el("span", { class: "pin-name", text: p.name }),
          el("span", { class: "muted", text: p.place && p.place.rating != null
            ? t("plan.pinRated", { name: p.user.username, rating: p.place.rating.toFixed(1), n: p.place.reviews })
            : t("plan.pinBy", { name: p.user.username }) })),
        el("button", { type: "button", class: "ghost", text: t("plan.show"), onclick: () => { if (map) map.setView([p.lat, p.lng], Math.max(map.getZoom(), 15)); } }),
        mine || perms.moderate
          ? el("button", { type: "button", class: "danger", text: t("plan.removePin"), "data-remove": p.id,
            onclick: () => { if (!socket.send({ type: "map.pin.remove", id: p.id })) fail(new Error(t("chat.notConnected"))); } })
          : null);
      pinList.append(item);
    }
    if (!map) return;
    for (const [id, m] of markers) if (!pins.some((p) => p.id === id)) { m.remove(); markers.delete(id); }
    for (const p of pins) {
      let m = markers.get(p.id);
      if (!m) {
        m = pin(L, [p.lat, p.lng], { label: p.name, className: "candidate" }).addTo(map);
        markers.set(p.id, m);
      }
      m.getElement()?.classList.toggle("winner", p.id === winner);
    }
  };

  /** One line per member in the list, kept (not rebuilt) so a button is not pulled from under a click. @type {Map<string, { li: HTMLElement, where: HTMLElement, follow: HTMLButtonElement }>} */
  const lines = new Map();
  const nobody = el("li", { class: "muted", text: t("plan.nobody") });
  const drawPeople = () => {
    const now = Date.now();
    for (const [id, line] of lines) if (!others.has(id)) { line.li.remove(); lines.delete(id); }
    if (others.size === 0) { if (!nobody.isConnected) people.append(nobody); } else nobody.remove();
    for (const [id, o] of others) {
      let line = lines.get(id);
      const name = o.view.user.username;
      if (!line) {
        const swatch = el("span", { class: "swatch" });
        swatch.style.background = colourOf(id);
        const where = el("span", { class: "muted where" });
        const follow = el("button", { type: "button", "data-follow": name,
          onclick: () => {
            following = following === id ? null : id;
            const now = others.get(id);
            if (following && now) jumpTo(now.view);
            drawPeople();
          } });
        const li = el("li", { class: "person", "data-user": name }, swatch, el("span", { class: "who", text: name }), where, follow);
        line = { li, where, follow };
        lines.set(id, line);
        people.append(li);
      }
      const idle = now - o.at > IDLE_MS;
      line.li.classList.toggle("idle", idle);
      line.where.textContent = t("plan.where", { lat: o.view.center[0].toFixed(4), lng: o.view.center[1].toFixed(4), zoom: Math.round(o.view.zoom) });
      const on = following === id;
      line.follow.className = on ? "" : "ghost";
      line.follow.setAttribute("aria-pressed", String(on));
      line.follow.textContent = on ? t("plan.following", { name }) : t("plan.follow", { name });
      for (const layer of [o.outline, o.cursor, o.label]) layer?.getElement?.()?.classList.toggle("idle", idle);
    }
  };

  /** @param {MapView} v */
  const jumpTo = (v) => { if (map) map.setView(v.center, v.zoom, { animate: false }); };

  /** Puts a view's name at its top-left corner, or the nearest point of it on this screen. @param {{ view: MapView, label?: any }} o */
  const placeLabel = (o) => {
    if (!map || !o.label) return;
    const b = map.getBounds();
    const [[, w], [n]] = o.view.bounds;
    o.label.setLatLng([Math.min(n, b.getNorth()), Math.max(w, b.getWest())]);
  };

  /** @param {MapView} v */
  const showView = (v) => {
    if (you && v.user.id === you.id) return;
    const o = others.get(v.user.id) || { view: v, at: 0, outline: null, cursor: null };
    o.view = v;
    o.at = Date.now();
    others.set(v.user.id, o);
    if (map) {
      const colour = colourOf(v.user.id);
      if (!o.outline) {
        o.outline = L.rectangle(v.bounds, { color: colour, weight: 2, fill: false, interactive: false, className: "view-outline" }).addTo(map);
        const tag = el("span", { text: v.user.username });
        tag.style.background = colour;
        o.label = L.marker(v.bounds[1], { icon: L.divIcon({ className: "view-name", html: tag, iconSize: null }), interactive: false, keyboard: false }).addTo(map);
      } else {
        o.outline.setBounds(v.bounds);
      }
      placeLabel(o);
      if (v.cursor) {
        if (!o.cursor) {
          o.cursor = L.circleMarker(v.cursor, { radius: 5, color: colour, fillColor: colour, fillOpacity: 1, interactive: false, className: "view-cursor" }).addTo(map);
        } else {
          o.cursor.setLatLng(v.cursor);
        }
      } else if (o.cursor) {
        o.cursor.remove();
        o.cursor = null;
      }
    }
    if (following === v.user.id) jumpTo(v);
    drawPeople();
  };

  /** @param {string} id */
  const forget = (id) => {
    const o = others.get(id);
    if (!o) return;
    o.outline?.remove();
    o.cursor?.remove();
    o.label?.remove();
    others.delete(id);
    if (following === id) following = null;
    drawPeople();
  };

  // Our own view, sent when it changes, no more often than SEND_EVERY_MS.
  let lastSent = 0;
  let sendTimer = /** @type {ReturnType<typeof setTimeout> | undefined} */ (undefined);
  let lastFrame = "";
  const sendView = () => {
    if (!map || !you) return;
    const wait = lastSent + SEND_EVERY_MS - Date.now();
    if (wait > 0) {
      if (!sendTimer) sendTimer = setTimeout(() => { sendTimer = undefined; sendView(); }, wait);
      return;
    }
    const b = map.getBounds();
    const c = map.getCenter();
    const r = (/** @type {number} */ x) => Math.round(x * 1e6) / 1e6;
    const wrap = (/** @type {number} */ x) => Math.max(-720, Math.min(720, x));
    /** @type {import("../types.js").ClientFrame} */
    const frame = {
      type: "map.view",
      center: [r(Math.max(-90, Math.min(90, c.lat))), r(wrap(c.lng))],
      zoom: map.getZoom(),
      bounds: [[r(Math.max(-90, b.getSouth())), r(wrap(b.getWest()))], [r(Math.min(90, b.getNorth())), r(wrap(b.getEast()))]],
      cursor: cursor ? [r(cursor[0]), r(wrap(cursor[1]))] : null,
    };
    const text = JSON.stringify(frame);
    if (text === lastFrame) return;
    if (socket.send(frame)) { lastFrame = text; lastSent = Date.now(); }
  };

  /** @param {{ place_id?: string, name?: string, lat?: number, lng?: number }} what */
  const addPin = (what) => {
    error.textContent = "";
    if (!socket.send({ type: "map.pin.add", ...what })) fail(new Error(t("chat.notConnected")));
  };

  addForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!picked || !nameInput.value.trim()) return;
    addPin({ name: nameInput.value.trim(), lat: picked[0], lng: picked[1] });
    nameInput.value = "";
    addForm.hidden = true;
  });

  nearButton.addEventListener("click", async () => {
    const c = map ? map.getCenter() : null;
    const q = c ? `&near=${c.lat.toFixed(5)},${c.lng.toFixed(5)}&radius_m=3000` : "";
    nearList.replaceChildren(el("li", { class: "muted", text: t("common.loading") }));
    try {
      /** @type {{ posts: import("../types.js").PlacePost[] }} */
      const { posts } = await api("GET", `/posts?kind=place${q}`, undefined, { signal });
      nearList.replaceChildren();
      if (posts.length === 0) nearList.append(el("li", { class: "muted", text: t("plan.noPlaces") }));
      for (const p of posts.slice(0, 10)) {
        nearList.append(el("li", {},
          el("span", { text: p.place ? p.place.name : p.title }),
          el("button", { type: "button", class: "ghost", "data-pin-place": p.id, text: t("plan.pinPlace"), onclick: () => addPin({ place_id: p.id }) })));
      }
    } catch (e) {
      if (!signal.aborted) nearList.replaceChildren(el("li", { class: "error", text: errMsg(e) }));
    }
  });

  socket.on("welcome", (f) => {
    you = f.you;
    for (const id of [...others.keys()]) forget(id);
    pins = f.pins || [];
    for (const v of f.views || []) showView(v);
    drawPins();
    drawPeople();
    hint.textContent = you ? t("plan.hint") : t("plan.loginHint");
  });
  socket.on("map.pins", (f) => { pins = f.pins; drawPins(); });
  socket.on("map.view", showView);
  socket.on("map.left", (f) => forget(f.user.id));
  socket.on("error", (f) => { if (f.code.startsWith("invalid_") || ["already_pinned", "too_many_pins", "map_full", "place_without_point", "not_found", "forbidden"].includes(f.code)) error.textContent = f.message; });

  const fade = setInterval(drawPeople, 1000);
  signal.addEventListener("abort", () => { clearInterval(fade); clearTimeout(sendTimer); });

  /** Builds the map the first time the tab is shown (a hidden box has no size). */
  let started = false;
  const start = () => {
    if (started) return;
    started = true;
    createMap(mapBox, { signal }).then((m) => {
      if (!m) { mapBox.textContent = t("map.unavailable"); return; }
      map = m;
      L = /** @type {any} */ (window).L;
      map.on("moveend zoomend move", sendView);
      map.on("moveend", () => { for (const o of others.values()) placeLabel(o); });
      map.on("mousemove", (/** @type {any} */ ev) => { cursor = [ev.latlng.lat, ev.latlng.lng]; sendView(); });
      map.on("mouseout", () => { cursor = null; sendView(); });
      map.on("click", (/** @type {any} */ ev) => {
        if (!you) return;
        picked = [Math.round(ev.latlng.lat * 1e6) / 1e6, Math.round(ev.latlng.lng * 1e6) / 1e6];
        addForm.hidden = false;
        nameInput.focus();
      });
      // Someone dragging the map away stops following.
      map.on("dragstart", () => { if (following) { following = null; drawPeople(); } });
      for (const o of others.values()) { o.outline = null; o.cursor = null; o.label = null; showView(o.view); }
      drawPins();
      sendView();
    });
  };

  const box = el("section", { class: "plan", id: "plan" },
    el("div", { class: "plan-main" }, mapBox, hint, addForm, error),
    el("div", { class: "plan-side" },
      el("h3", { text: t("plan.people") }), people,
      el("h3", { text: t("plan.pins") }), pinList,
      el("div", { class: "near" }, nearButton, nearList)));
  return {
    box,
    start,
    /** The winner of a closed poll, by its pin (null: none). @param {string | null} id */
    highlight(id) {
      winner = id;
      drawPins();
      const p = pins.find((x) => x.id === id);
      if (p && map) map.setView([p.lat, p.lng], Math.max(map.getZoom(), 15));
    },
    /** The pins as they are now (for a poll made from them). */
    pins: () => pins,
  };
}
