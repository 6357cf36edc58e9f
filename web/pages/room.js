// @ts-check
// A room: the live player and, beside it, the chat; the owner's "Go live" panel and the
// moderators' panel under the player. One RoomSocket feeds them all.

import { api, ApiError, el, errMsg, setTitle } from "../dom.js";
import { t } from "../i18n.js";
import { LivePlayer } from "../player.js";
import { RoomSocket } from "../room-socket.js";
import { chatPanel } from "../room/chat.js";
import { invitesPanel } from "../room/invites.js";
import { moderationPanel } from "../room/moderation.js";
import { partyPanel } from "../room/party.js";
import { mapPanel } from "../room/plan-map.js";
import { pollsPanel } from "../room/polls.js";
import { streamingPanel } from "../room/streaming.js";
import { RealtimePlayer } from "../room/realtime.js";

/** @typedef {import("../router.js").PageContext} PageContext */
/** @typedef {import("../types.js").Room} Room */
/** @typedef {import("../types.js").Permissions} Permissions */
/** @typedef {{ state: "started" | "ended" | "offline", hls_url?: string | null, since?: string | null }} LiveState */

/** @param {PageContext} ctx */
export function mount(ctx) {
  const { root, params, signal } = ctx;
  /** @type {RoomSocket | null} */
  let socket = null;
  /** @type {LivePlayer | null} */
  let player = null;
  /** @type {{ teardown: () => void } | null} */
  let party = null;
  /** @type {RealtimePlayer | null} */
  let realtime = null;
  root.replaceChildren(el("p", { class: "muted", text: t("common.loading") }));

  api("GET", `/rooms/${encodeURIComponent(params.slug)}`, undefined, { signal }).then(
    (/** @type {{ room: Room, permissions: Permissions }} */ { room, permissions }) => {
      if (signal.aborted) return;
      setTitle(room.title);
      socket = new RoomSocket(room.slug);
      const title = el("h1", { id: "room-title", text: room.title });
      const badge = el("span", { class: "badge off", id: "live-badge", text: t("badge.offline") });
      const playerBox = el("div", { class: "player", id: "player" });
      const live = new LivePlayer(playerBox, { showLatency: permissions.manage });
      player = live;
      live.offline();

      // A broadcast from a browser (WHIP) is watched in real time (WHEP) in the player's place.
      const rtBox = el("div", { class: "player rt", id: "rt-player", hidden: true });
      const rt = new RealtimePlayer(rtBox, room.slug);
      realtime = rt;
      let hlsLive = false;
      let rtOn = false;
      /** @param {boolean} publishing */
      const setRealtime = (publishing) => {
        if (publishing === rtOn) return;
        rtOn = publishing;
        rtBox.hidden = !publishing;
        playerBox.hidden = publishing;
        if (publishing) {
          // When WebRTC cannot connect here, the HLS player comes back (a broadcast from OBS
          // over RTMP may be on it); the real-time box keeps saying why.
          void rt.start().then((ok) => { if (!ok && rtOn) playerBox.hidden = false; });
        } else rt.stop();
        showBadge();
      };
      const showBadge = () => {
        const on = hlsLive || rtOn;
        badge.className = on ? "badge live" : "badge off";
        badge.textContent = on ? t("badge.live") : t("badge.offline");
      };
      let wasLive = false;
      /** @param {LiveState} f */
      const setLive = (f) => {
        const on = f.state === "started" && !!f.hls_url;
        hlsLive = on;
        showBadge();
        if (on && f.hls_url) void live.start(f.hls_url, f.since || new Date().toISOString());
        else if (f.state === "ended" || wasLive) live.ended();
        else live.offline();
        wasLive = on;
      };
      /** @param {Room} r */
      const setRoom = (r) => {
        title.textContent = r.title;
        setTitle(r.title);
      };
      socket.on("welcome", (f) => {
        setRoom(f.room);
        setLive(f.room.live ? { state: "started", hls_url: f.room.hls_url, since: f.room.live_since } : { state: "offline" });
        setRealtime(!!f.realtime);
      });
      socket.on("realtime", (f) => setRealtime(!!f.publishing));
      socket.on("room", (f) => setRoom(f.room));
      socket.on("live", setLive);
      // The room became private: whoever is not among its people is shown that it is gone
      // (instead of a socket retrying a 404).
      socket.on("reconnect", (f) => {
        if (f.reason !== "private") return;
        api("GET", `/rooms/${encodeURIComponent(room.slug)}`, undefined, { signal }).catch((e) => {
          if (signal.aborted || !(e instanceof ApiError && e.status === 404)) return;
          socket?.close();
          setTitle(t("common.notFound"));
          root.replaceChildren(el("h1", { text: t("room.notFound") }), el("p", {}, el("a", { href: "/", text: t("common.backHome") })));
        });
      });

      // The watch party's player takes the live player's place while it has a video and the
      // room is not live.
      const watch = partyPanel(socket, { slug: room.slug, onShow: (on) => { playerBox.hidden = on; } });
      party = watch;
      // Tabs: Watch (the player and the room's panels) and Map (planning together). The polls
      // panel follows whichever is open.
      const plan = mapPanel(socket, { perms: permissions, signal });
      const polls = pollsPanel(socket, { slug: room.slug, perms: permissions, signal, onWinner: (id) => plan.highlight(id) });
      const watchPane = el("div", { class: "pane", id: "pane-watch" },
        playerBox,
        rtBox,
        watch.box,
        watch.bar,
        polls,
        permissions.manage ? invitesPanel(room, ctx) : null,
        permissions.manage ? streamingPanel(room, ctx) : null,
        permissions.moderate ? moderationPanel(room, permissions, ctx) : null);
      const mapPane = el("div", { class: "pane", id: "pane-map", hidden: true }, plan.box);
      const tabWatch = el("button", { type: "button", role: "tab", id: "tab-watch", "aria-selected": "true", text: t("room.tabWatch") });
      const tabMap = el("button", { type: "button", role: "tab", id: "tab-map", "aria-selected": "false", text: t("room.tabMap") });
      /** @param {"watch" | "map"} which */
      const show = (which) => {
        const map = which === "map";
        tabWatch.setAttribute("aria-selected", String(!map));
        tabMap.setAttribute("aria-selected", String(map));
        watchPane.hidden = map;
        mapPane.hidden = !map;
        if (map) { mapPane.append(polls); plan.start(); } else playerBox.after(watch.box, watch.bar, polls);
        if (location.hash !== (map ? "#map" : "")) history.replaceState({}, "", map ? "#map" : location.pathname);
      };
      tabWatch.addEventListener("click", () => show("watch"));
      tabMap.addEventListener("click", () => show("map"));
      const stage = el("section", { class: "stage" },
        el("div", { class: "room-head" }, title, badge, el("span", { class: "muted", text: t("room.by", { name: room.owner }) })),
        el("div", { class: "tabs room-tabs", role: "tablist" }, tabWatch, tabMap),
        watchPane,
        mapPane);
      if (location.hash === "#map") queueMicrotask(() => show("map"));
      root.replaceChildren(el("div", { class: "room" }, stage, chatPanel(socket, { slug: room.slug, perms: permissions })));
      socket.start();
    },
    (e) => {
      if (signal.aborted) return;
      const missing = e instanceof ApiError && e.status === 404;
      setTitle(missing ? t("common.notFound") : "");
      root.replaceChildren(missing ? el("h1", { text: t("room.notFound") }) : el("p", { class: "error", text: errMsg(e) }),
        el("p", {}, el("a", { href: "/", text: t("common.backHome") })));
    });

  return () => {
    if (socket) socket.close();
    if (player) player.teardown();
    if (party) party.teardown();
    if (realtime) realtime.stop();
  };
}
