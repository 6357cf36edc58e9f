// @ts-check
// The room's watch party: one player every member keeps on the party's timeline, and the
// controls of those who may control it. The state comes from `party.state` frames (and the
// welcome); this page learns the server's clock from `time.ping` probes and corrects its
// player with the rule in ./../party/sync.js. Nothing here decides for the group: commands go
// to the server, which schedules them and tells everyone.

import { api, el, errMsg, fmtDuration } from "../dom.js";
import { t } from "../i18n.js";
import { attach } from "../player.js";
import { correction, DEADBAND_S, expectedPosition, ServerClock } from "../party/sync.js";

/** @typedef {import("../room-socket.js").RoomSocket} RoomSocket */
/** @typedef {import("../types.js").Party} Party */
/** @typedef {import("../types.js").Video} Video */
/** @typedef {import("../types.js").User} User */

/** How often the player is checked against the timeline, ms. */
const CHECK_MS = 250;
/** How often this page tells the server where its player is, ms. */
const REPORT_MS = 5000;
/** Clock probes at start (spaced), then one this often, ms. */
const PROBE_EVERY_MS = 10000;
/** A stall this soon after this page's own seek or load is not the group's concern, ms. */
const OWN_SEEK_QUIET_MS = 3000;

/**
 * The party panel: a player box (shown while the party has a video and the room is not live)
 * and a bar of controls.
 * @param {RoomSocket} socket
 * @param {{ slug: string, onShow: (showing: boolean) => void }} opts
 */
export function partyPanel(socket, { slug, onShow }) {
  const clock = new ServerClock();
  /** @type {Party | null} */
  let state = null;
  /** @type {User | null} */
  let you = null;
  /** @type {{ destroy: () => void } | null} */
  let session = null;
  let loadedUrl = "";
  let lastOwnSeek = -Infinity;
  /** When this page's last seek finished (ms, performance clock). */
  let lastSeekDone = -Infinity;
  let seekLatencyS = 0.15;
  /** @type {number | undefined} */
  let seekStarted;
  /** Follow-up seeks left after a jump (see JUMP_SEEK_S in sync.js). */
  let jumpSeeks = 0;
  let buffering = false;
  const stats = { seeks: 0, rateChanges: 0 };

  const video = el("video", { id: "party-video", playsinline: true, muted: true });
  video.muted = true; // autoplay is allowed muted; the button below unmutes
  const title = el("span", { class: "party-title", id: "party-title" });
  const clockText = el("span", { class: "party-clock", id: "party-clock" });
  const waiting = el("span", { class: "party-waiting", id: "party-waiting", hidden: true });
  const unmute = el("button", { type: "button", class: "secondary", id: "party-unmute", text: t("party.unmute") });
  unmute.onclick = () => { video.muted = !video.muted; unmute.textContent = video.muted ? t("party.unmute") : t("party.mute"); };
  const box = el("div", { class: "player party-player", id: "party-player", hidden: true },
    el("div", { class: "player-frame" }, video,
      el("div", { class: "player-bar" }, el("span", { class: "badge party", text: t("party.badge") }), title, clockText, waiting, unmute)));

  // Controls.
  const send = (/** @type {import("../types.js").ClientFrame} */ f) => { if (!socket.send(f)) note(t("chat.notConnected")); };
  const status = el("p", { class: "muted party-status", id: "party-status", role: "status" });
  const note = (/** @type {string} */ text) => { status.textContent = text; };
  const playBtn = el("button", { type: "button", id: "party-play", text: t("party.play") });
  playBtn.onclick = () => send(state && state.playing ? { type: "party.pause" } : { type: "party.play" });
  const seek = el("input", { type: "range", id: "party-seek", min: "0", max: "0", step: "1", value: "0", "aria-label": t("player.seek") });
  let dragging = false;
  seek.oninput = () => { dragging = true; };
  seek.onchange = () => { dragging = false; send({ type: "party.seek", position_s: Number(seek.value) }); };
  const rate = el("select", { id: "party-rate", "aria-label": t("party.rate") },
    ...[0.5, 0.75, 1, 1.25, 1.5, 2].map((r) => el("option", { value: String(r), text: `${r}×` })));
  rate.onchange = () => send({ type: "party.rate", rate: Number(rate.value) });
  const next = el("button", { type: "button", class: "secondary", id: "party-next", text: t("party.next") });
  next.onclick = () => send({ type: "party.next" });
  const stop = el("button", { type: "button", class: "secondary", id: "party-stop", text: t("party.stop") });
  stop.onclick = () => send({ type: "party.stop" });
  const transport = el("div", { class: "party-transport", hidden: true }, playBtn, seek, rate, next, stop);

  // Picking a video: one of yours, or any you can see by its address.
  const pick = el("select", { id: "party-pick", "aria-label": t("party.pick") });
  const other = el("input", { id: "party-other", placeholder: t("party.otherPlaceholder"), "aria-label": t("party.other") });
  const load = el("button", { type: "button", id: "party-load", text: t("party.load") });
  const queue = el("button", { type: "button", class: "secondary", id: "party-queue-add", text: t("party.addToQueue") });
  const chosen = () => {
    const typed = other.value.trim();
    if (typed) {
      // A watch-page address (/v/ID) or the id itself.
      const m = typed.match(/\/v\/([A-Za-z0-9]+)/);
      return m ? m[1] : typed;
    }
    return pick.value;
  };
  load.onclick = () => { const id = chosen(); if (id) send({ type: "party.load", video_id: id }); };
  queue.onclick = () => {
    const id = chosen();
    if (!id || !state) return send({ type: "party.load", video_id: id });
    send({ type: "party.queue", video_ids: [...state.queue.map((v) => v.id), id] });
  };
  const picker = el("div", { class: "party-picker", hidden: true }, pick, other, load, queue);
  let pickerFilled = false;
  const fillPicker = async () => {
    if (pickerFilled) return;
    pickerFilled = true;
    try {
      /** @type {{ videos: Video[] }} */
      const { videos } = await api("GET", "/videos");
      pick.replaceChildren(el("option", { value: "", text: t("party.pickOne") }),
        ...videos.filter((v) => v.status === "ready").map((v) => el("option", { value: v.id, text: v.title })));
    } catch (e) { note(errMsg(e)); pickerFilled = false; }
  };

  // The owner's settings: who controls (host only, selected members, everyone), who is host.
  const mode = el("select", { id: "party-mode", "aria-label": t("party.mode") },
    el("option", { value: "host", text: t("party.modeHost") }),
    el("option", { value: "selected", text: t("party.modeSelected") }),
    el("option", { value: "everyone", text: t("party.modeEveryone") }));
  /** Members in the room now, asked of the server when a list needs them. */
  const members = async () => {
    /** @type {{ members: { id: string, username: string }[] }} */
    const r = await api("GET", `/rooms/${encodeURIComponent(slug)}/party`);
    return r.members.filter((m) => !you || m.id !== you.id);
  };
  const selectedBox = el("fieldset", { class: "party-selected", id: "party-selected", hidden: true },
    el("legend", { text: t("party.selectedLegend") }));
  const showSelected = async () => {
    try {
      const chosen = new Set((state ? state.controllers : []).map((c) => c.id));
      const list = await members();
      selectedBox.replaceChildren(el("legend", { text: t("party.selectedLegend") }),
        ...list.map((m) => {
          const box = el("input", { type: "checkbox", value: m.id, checked: chosen.has(m.id) });
          box.onchange = () => {
            const ids = [...selectedBox.querySelectorAll("input:checked")].map((i) => /** @type {HTMLInputElement} */ (i).value);
            send({ type: "party.mode", mode: "selected", selected: ids });
          };
          return el("label", {}, box, m.username);
        }));
      selectedBox.hidden = false;
    } catch (e) { note(errMsg(e)); }
  };
  mode.onchange = () => {
    const m = /** @type {"host" | "selected" | "everyone"} */ (mode.value);
    if (m === "selected") { void showSelected(); return; }
    selectedBox.hidden = true;
    send({ type: "party.mode", mode: m });
  };
  const hand = el("select", { id: "party-hand", "aria-label": t("party.handTo") },
    el("option", { value: "", text: t("party.handTo") }));
  hand.onfocus = async () => {
    try {
      const list = await members();
      hand.replaceChildren(el("option", { value: "", text: t("party.handTo") }),
        ...list.map((m) => el("option", { value: m.id, text: m.username })));
    } catch (e) { note(errMsg(e)); }
  };
  hand.onchange = () => { if (hand.value) send({ type: "party.host", user_id: hand.value }); };
  const owner = el("div", { class: "party-owner", hidden: true }, mode, hand, selectedBox);

  // Everyone: the ready check.
  const ready = el("input", { type: "checkbox", id: "party-ready" });
  ready.onchange = () => send({ type: "party.ready", ready: ready.checked });
  const readyList = el("span", { class: "muted", id: "party-ready-list" });
  const queueList = el("ol", { class: "party-queue", id: "party-queue" });
  const readyRow = el("label", { class: "party-ready", hidden: true }, ready, t("party.ready"), readyList);
  const bar = el("section", { class: "party-panel", id: "party-panel", "aria-label": t("party.label") },
    el("h2", { text: t("party.label") }), picker, transport, owner, readyRow, queueList, status);

  const mayControl = () => !!(state && you && (state.mode === "everyone" || state.controllers.some((c) => c.id === you?.id)));

  /** Shows the state in the controls. */
  const render = () => {
    const signedIn = !!you;
    // With no party yet only the owner may start one (the default mode is host only).
    const control = !state ? isOwner() : mayControl();
    picker.hidden = !control;
    if (control) void fillPicker();
    const v = state && state.video;
    transport.hidden = !control || !v;
    const host = !!(state && you && state.host.id === you.id);
    owner.hidden = !(state && (isOwner() || host));
    mode.hidden = !isOwner();
    readyRow.hidden = !(signedIn && v);
    if (!state) { note(signedIn ? t("party.empty") : t("party.loginHint")); return; }
    playBtn.textContent = state.playing ? t("party.pause") : t("party.play");
    seek.max = String(Math.floor(v ? v.duration_s : 0));
    rate.value = String(state.rate);
    if (document.activeElement !== mode) mode.value = state.mode;
    if (state.mode !== "selected" && !selectedBox.hidden) selectedBox.hidden = true;
    next.disabled = state.queue.length === 0;
    ready.checked = !!you && state.ready.some((r) => r.id === you?.id);
    readyList.textContent = state.ready.length ? t("party.readyList", { names: state.ready.map((r) => r.username).join(", ") }) : "";
        const queued = state.queue;
    queueList.replaceChildren(...queued.map((q, i) => {
      const li = el("li", { text: q.title });
      if (control) {
        // Out of the queue (the others stay in order).
        const drop = el("button", { type: "button", class: "link", "aria-label": t("party.unqueue", { title: q.title }), text: "×" });
        drop.onclick = () => send({ type: "party.queue", video_ids: queued.filter((_, j) => j !== i).map((v) => v.id) });
        li.append(" ", drop);
      }
      return li;
    }));
    title.textContent = v ? v.title : "";
    waiting.hidden = state.waiting_for.length === 0;
    waiting.textContent = t("party.waitingFor", { names: state.waiting_for.map((w) => w.username).join(", ") });
    note(state.live ? t("party.pausedForLive") : v ? t("party.hostIs", { name: state.host.username }) : t("party.empty"));
  };
  // The owner is listed first among the controllers only by id order; ask the room instead.
  let ownerName = "";
  const isOwner = () => !!you && you.username === ownerName;

  /** @param {Party | null} next */
  const apply = (next) => {
    if (next && state && next.rev <= state.rev && next.video?.id === state.video?.id) return;
    // A jump (a seek, another video, the first state this page sees): follow-up seeks allowed.
    if (next && next.video) {
      const now = serverNow();
      const before = state && state.video && state.video.id === next.video.id ? expectedPosition(state, now) : null;
      const after = expectedPosition(next, Math.max(now, next.at_server_ms));
      if (before === null || Math.abs(after - before) > 1) jumpSeeks = 2;
    }
    state = next;
    const v = state && state.video;
    const show = !!v && !(state && state.live);
    box.hidden = !show;
    onShow(show);
    if (v && v.hls_url !== loadedUrl) void loadVideo(v.hls_url);
    if (!v && loadedUrl) unload();
    render();
    check();
  };

  const unload = () => {
    if (session) session.destroy();
    session = null;
    loadedUrl = "";
  };

  /** @param {string} url */
  const loadVideo = async (url) => {
    unload();
    loadedUrl = url;
    lastOwnSeek = performance.now();
    try {
      const s = await attach(video, url, { lowLatency: false });
      if (loadedUrl !== url) { s.destroy(); return; }
      session = s;
    } catch (e) { note(errMsg(e)); }
  };

  const serverNow = () => clock.serverTime(performance.now());

  /** Keeps the player on the timeline (every CHECK_MS, and on every new state). */
  const check = () => {
    if (!state || !state.video || state.live || !loadedUrl || video.readyState < 1) return;
    const now = serverNow();
    const expected = expectedPosition(state, now);
    const moving = state.playing && state.waiting_for.length === 0 && now >= state.at_server_ms;
    clockText.textContent = `${fmtDuration(expected)} / ${fmtDuration(state.video.duration_s)}`;
    if (!dragging) seek.value = String(Math.floor(expected));
    if (!moving) {
      if (!video.paused) video.pause();
      // Stopped, it shows the very frame the others show.
      if (Math.abs(video.currentTime - expected) > DEADBAND_S) ownSeek(expected);
      video.playbackRate = state.rate;
      // A start scheduled shortly: wake up for it exactly.
      if (state.playing && state.waiting_for.length === 0) {
        const inMs = state.at_server_ms - now;
        if (inMs > 0 && inMs < CHECK_MS) setTimeout(check, inMs);
      }
      return;
    }
    if (video.paused) {
      video.play().catch(() => note(t("party.clickToPlay")));
    }
    const c = correction({
      expected,
      actual: video.currentTime,
      rate: state.rate,
      canChangeRate: true,
      seekLatencyS,
      sinceSeekMs: seekStarted !== undefined ? 0 : performance.now() - lastSeekDone,
      correcting: Math.abs(video.playbackRate - state.rate) > 1e-6,
      jumped: jumpSeeks > 0,
    });
    if (c.action === "seek") {
      if (jumpSeeks > 0) jumpSeeks -= 1;
      ownSeek(c.to);
    } else if (c.action === "none" && jumpSeeks > 0 && seekStarted === undefined && performance.now() - lastSeekDone > 3000) {
      jumpSeeks = 0; // landed well: back to the steady rule
    }
    if (Math.abs(video.playbackRate - c.rate) > 1e-6) {
      if (c.action === "rate") stats.rateChanges += 1;
      video.playbackRate = c.rate;
    }
  };

  /** @param {number} to */
  const ownSeek = (to) => {
    lastOwnSeek = performance.now();
    seekStarted = performance.now();
    stats.seeks += 1;
    video.currentTime = to;
  };
  video.addEventListener("seeked", () => {
    if (seekStarted === undefined) return;
    // What a seek costs this player, smoothed: the next seek aims that far ahead.
    const took = (performance.now() - seekStarted) / 1000;
    seekLatencyS = Math.min(1, 0.7 * seekLatencyS + 0.3 * took);
    seekStarted = undefined;
    lastSeekDone = performance.now();
  });
  const setBuffering = (/** @type {boolean} */ b) => {
    if (b === buffering) return;
    buffering = b;
    socket.send({ type: "party.buffering", state: b });
  };
  video.addEventListener("waiting", () => {
    // Catching up after our own seek or load is ours to do, not the group's.
    if (!state || !state.playing || !you) return;
    if (performance.now() - lastOwnSeek < OWN_SEEK_QUIET_MS) return;
    setBuffering(true);
  });
  video.addEventListener("playing", () => setBuffering(false));

  // The clock: a burst of probes at each (re)connection, then one now and then.
  /** @type {ReturnType<typeof setTimeout>[]} */
  let probes = [];
  const probe = () => socket.send({ type: "time.ping", t0: performance.now() });
  socket.on("time.pong", (f) => clock.add(f.t0, f.server_ms, performance.now()));
  socket.on("welcome", (f) => {
    you = f.you;
    ownerName = f.room.owner;
    probes.forEach(clearTimeout);
    probes = Array.from({ length: 8 }, (_, i) => setTimeout(probe, i * 120));
    buffering = false;
    apply(f.party || null);
  });
  socket.on("party.state", (f) => apply(f));
  socket.on("live", (f) => {
    // The party's own state says so too (it pauses); hide the player at once.
    if (f.state === "started") { box.hidden = true; onShow(false); }
  });

  const timers = [
    setInterval(check, CHECK_MS),
    setInterval(probe, PROBE_EVERY_MS),
    setInterval(() => {
      if (!state || !state.playing || !state.video || !you || video.paused) return;
      socket.send({ type: "party.report", position_s: video.currentTime, at_server_ms: serverNow() });
    }, REPORT_MS),
  ];

  // For measuring from outside (the browser tests and the sync benchmark): this page's view.
  /** @type {any} */ (window).moimParty = {
    sample: () => ({
      server_ms: serverNow(),
      position_s: video.currentTime,
      expected_s: state ? expectedPosition(state, serverNow()) : null,
      playing: !video.paused,
      rtt_ms: clock.rtt(),
      rev: state ? state.rev : 0,
      seeks: stats.seeks,
      rate_changes: stats.rateChanges,
      rate: video.playbackRate,
    }),
  };

  render();
  return {
    box,
    bar,
    teardown: () => {
      timers.forEach(clearInterval);
      probes.forEach(clearTimeout);
      unload();
    },
  };
}
