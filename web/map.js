// @ts-check
// Maps: Leaflet (vendored, loaded on the first map) over the operator's tiles
// (`GET /api/v1/map`). A map works without tiles too: when the operator set none, or they fail
// to load, it is a blank grid where pins still sit, clicks still choose points, and the
// attribution still shows. Pins are plain styled elements, so no marker images are needed.

import { api, el, loadScript } from "./dom.js";
import { t } from "./i18n.js";

/**
 * @typedef {{ tile_url: string | null, attribution: string, max_zoom: number,
 *   center: [number, number], zoom: number }} MapSettings
 * @typedef {any} LeafletMap
 */

/** @type {Promise<MapSettings> | null} */
let settings = null;

/** The operator's map settings, asked once per page load. */
export function mapSettings() {
  if (!settings) {
    settings = api("GET", "/map").then((/** @type {{ map: MapSettings }} */ r) => r.map);
    // A failure is asked again by the next map.
    settings.catch(() => { settings = null; });
  }
  return settings;
}

/** Leaflet's stylesheet, added to the page once. */
function leafletStyles() {
  const href = "/assets/vendor/leaflet/leaflet.css";
  if (!document.querySelector(`link[href="${href}"]`)) {
    // Before our own sheet, so moim's rules win over Leaflet's defaults.
    const ours = document.querySelector('link[rel=stylesheet]');
    const link = el("link", { rel: "stylesheet", href });
    if (ours) ours.before(link); else document.head.append(link);
  }
}

/** Escapes text for the one place Leaflet takes HTML: the attribution line. */
function escapeHtml(/** @type {string} */ s) {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * A map in `container` (which CSS gives its height). Resolves to the Leaflet map, or null when
 * Leaflet cannot load. `signal` removes it when the page goes.
 * @param {HTMLElement} container
 * @param {{ center?: [number, number] | null, zoom?: number, signal?: AbortSignal }} [opts]
 * @returns {Promise<LeafletMap | null>}
 */
export async function createMap(container, opts = {}) {
  leafletStyles();
  const w = /** @type {any} */ (window);
  const [L, s] = await Promise.all([
    loadScript("/assets/vendor/leaflet/leaflet.js", () => w.L),
    mapSettings().catch(() => null),
  ]);
  if (!L || !s || opts.signal?.aborted) return null;
  container.classList.add("map");
  const map = L.map(container, {
    center: opts.center || s.center,
    zoom: opts.zoom ?? s.zoom,
    maxZoom: s.max_zoom,
    attributionControl: false,
    zoomControl: false,
  });
  L.control.zoom({ zoomInTitle: t("map.zoomIn"), zoomOutTitle: t("map.zoomOut") }).addTo(map);
  L.control.attribution({ prefix: false }).addAttribution(escapeHtml(s.attribution || "")).addTo(map);
  if (s.tile_url) {
    const tiles = L.tileLayer(s.tile_url, { maxZoom: s.max_zoom, subdomains: "abc" });
    let failed = 0;
    tiles.on("tileerror", () => { if (++failed === 4) container.classList.add("tiles-failed"); });
    tiles.on("tileload", () => { failed = 0; container.classList.remove("tiles-failed"); });
    tiles.addTo(map);
  } else {
    container.classList.add("tiles-failed");
  }
  // A map laid out while hidden or before its box settled measures itself again.
  const resize = new ResizeObserver(() => map.invalidateSize());
  resize.observe(container);
  opts.signal?.addEventListener("abort", () => { resize.disconnect(); map.remove(); });
  return map;
}

/**
 * A pin: a styled element, with an optional label shown beside it.
 * @param {any} L
 * @param {[number, number]} at
 * @param {{ label?: string, draggable?: boolean, className?: string }} [opts]
 */
export function pin(L, at, opts = {}) {
  const icon = L.divIcon({ className: `map-pin ${opts.className || ""}`, iconSize: [18, 18], iconAnchor: [9, 18] });
  const marker = L.marker(at, { icon, draggable: Boolean(opts.draggable), keyboard: true, title: opts.label || "" });
  // A text node: Leaflet puts a string tooltip in as HTML.
  if (opts.label) marker.bindTooltip(document.createTextNode(opts.label), { direction: "top", offset: [0, -16] });
  return marker;
}

/**
 * A point picker: a map where a click (or a drag of the pin) chooses a point. `onPick` gets it
 * rounded to about 10 cm. Returns the map's element and `set`, which moves the pin (null hides it).
 * @param {{ center: [number, number] | null, onPick: (p: [number, number]) => void,
 *   signal: AbortSignal, radius_m?: number, label: string }} opts
 */
export function pointPicker(opts) {
  const box = el("div", { class: "map map-picker", role: "application", "aria-label": opts.label, tabindex: "0" });
  /** @type {any} */
  let marker = null;
  /** @type {any} */
  let circle = null;
  /** @type {any} */
  let map = null;
  /** @type {any} */
  let L = null;
  /** @type {[number, number] | null} */
  let point = opts.center;
  let radius = opts.radius_m || 0;
  const draw = () => {
    if (!map) return;
    if (!point) {
      marker?.remove(); circle?.remove(); marker = circle = null;
      return;
    }
    if (!marker) {
      marker = pin(L, point, { draggable: true, label: t("map.chosenPoint") }).addTo(map);
      marker.on("dragend", () => {
        const p = marker.getLatLng();
        choose([p.lat, p.lng]);
      });
    } else {
      marker.setLatLng(point);
    }
    if (radius) {
      if (!circle) circle = L.circle(point, { radius, className: "map-radius", interactive: false }).addTo(map);
      else circle.setLatLng(point).setRadius(radius);
    }
  };
  /** @param {[number, number]} p */
  const choose = (p) => {
    point = [Math.round(p[0] * 1e6) / 1e6, Math.round(p[1] * 1e6) / 1e6];
    draw();
    opts.onPick(point);
  };
  createMap(box, { center: opts.center, zoom: opts.center ? 15 : undefined, signal: opts.signal }).then((m) => {
    if (!m) { box.textContent = t("map.unavailable"); return; }
    map = m;
    L = /** @type {any} */ (window).L;
    map.on("click", (/** @type {any} */ ev) => choose([ev.latlng.lat, ev.latlng.lng]));
    // From the keyboard: pan with the arrows (Leaflet's), then Enter or Space picks the centre.
    box.addEventListener("keydown", (ev) => {
      if ((ev.key === "Enter" || ev.key === " ") && ev.target === box) {
        ev.preventDefault();
        const c = map.getCenter();
        choose([c.lat, c.lng]);
      }
    });
    draw();
  });
  return {
    element: box,
    /** @param {[number, number] | null} p @param {{ pan?: boolean }} [o] */
    set(p, o = {}) {
      point = p;
      draw();
      if (p && map && o.pan) map.setView(p, Math.max(map.getZoom(), 14));
    },
    /** @param {number} m */
    setRadius(m) {
      radius = m;
      draw();
      if (circle && map) map.fitBounds(circle.getBounds(), { maxZoom: 16 });
    },
  };
}
