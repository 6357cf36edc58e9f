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
import { voicePanel } from "../room/voice.js";

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

      // A broadcast from a browser (WHIP) is watched in real time (WHEP) in the player's place,
      // or by LL-HLS like any other (the viewer's choice, or when WebRTC cannot connect here).
      // Only one of the two plays at a time.
      const rtBox = el("div", { class: "player rt", id: "rt-player", hidden: true });
      const rt = new RealtimePlayer(rtBox, room.slug);
      realtime = rt;
      const modeLabel = el("span", { class: "muted", id: "watch-mode" });
      const modeSwitch = el("button", { type: "button", id: "mode-switch" });
      const modeRow = el("div", { class: "row watch-mode", hidden: true }, modeLabel, modeSwitch);
      /** @type {{ url: string, since: string } | null} */
      let hls = null;
      let rtOn = false;
      /** "rt" while the viewer wants real time and it works; "hls" once they switch or it fails. */
      let mode = "rt";
      let rtPlaying = false;
      let rtAttempt = 0;
      /** The watch party's player has the live player's place (a video, and no broadcast). */
      let partyShown = false;
      const arrange = () => {
        const useRt = rtOn && mode === "rt";
        rtBox.hidden = !useRt;
        playerBox.hidden = useRt || partyShown;
        if (useRt) {
          if (!rtPlaying) {
            rtPlaying = true;
            live.offline();
            const attempt = ++rtAttempt;
            // When WebRTC cannot connect here, LL-HLS takes over; the real-time box said why.
            // (An older attempt, stopped by a switch, has nothing to say.)
            void rt.start().then((ok) => {
              if (!ok && attempt === rtAttempt && rtOn && mode === "rt") { mode = "hls"; arrange(); }
            });
          }
        } else {
          if (rtPlaying) { rtPlaying = false; rt.stop(); }
          if (hls) void live.start(hls.url, hls.since);
        }
        modeRow.hidden = !(rtOn && hls);
        modeLabel.textContent = useRt ? t("rt.modeRealtime") : t("rt.modeLowLatency");
        modeSwitch.textContent = useRt ? t("rt.toHls") : t("rt.toRealtime");
        const on = !!hls || rtOn;
        badge.className = on ? "badge live" : "badge off";
        badge.textContent = on ? t("badge.live") : t("badge.offline");
      };
      modeSwitch.addEventListener("click", () => { mode = mode === "rt" ? "hls" : "rt"; arrange(); });
      /** @param {boolean} publishing */
      const setRealtime = (publishing) => {
        if (publishing === rtOn) return;
        rtOn = publishing;
        if (publishing) mode = "rt";
        arrange();
      };
      let wasLive = false;
      /** @param {LiveState} f */
      const setLive = (f) => {
        const on = f.state === "started" && !!f.hls_url;
        hls = on && f.hls_url ? { url: f.hls_url, since: f.since || new Date().toISOString() } : null;
        if (!on) {
          if (f.state === "ended" || wasLive) live.ended();
          else live.offline();
        }
        wasLive = on;
        arrange();
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
      const watch = partyPanel(socket, { slug: room.slug, onShow: (on) => { partyShown = on; arrange(); } });
      party = watch;
      // Tabs: Watch (the player and the room's panels) and Map (planning together). The polls
      // panel follows whichever is open.
      const plan = mapPanel(socket, { perms: permissions, signal });
      const polls = pollsPanel(socket, { slug: room.slug, perms: permissions, signal, onWinner: (id) => plan.highlight(id) });
      const watchPane = el("div", { class: "pane", id: "pane-watch" },
        playerBox,
        rtBox,
        modeRow,
        watch.box,
        watch.bar,
        voicePanel(socket, { slug: room.slug, moderate: permissions.moderate, signal }),
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
