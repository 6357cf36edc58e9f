// @ts-check
// The room's voice chat: Join voice sends the microphone to moim's SFU and hears the others.
// The connection offers one sending audio line and eight receiving lines; the server says which
// member is heard on which line in `voice.members` (with more than eight members, the lines
// carry whoever spoke last), so people coming and going need no renegotiation. Mute (also push-to-talk: hold the button or the space bar), a
// speaking ring on each name, a volume per person, and for moderators mute and remove.
// A dropped connection comes back by itself: an ICE restart on the same session, else a new one.
// Camera: the connection also offers one sending video line (no track until the camera is on)
// and four receiving ones; a member's camera is seen on the line `camera_line` says, as a tile.

import { api, el, errMsg } from "../dom.js";
import { t } from "../i18n.js";
import * as store from "../store.js";
import { negotiate, peerConnection } from "./realtime.js";

/** Receiving lines offered (moim's VOICE_LINES). */
const LINES = 8;
/** Receiving camera lines offered (moim's VOICE_CAMERAS). */
const CAMERAS = 4;

/** Puts VP8 first among a video line's codecs (every browser decodes it in software) and leaves
 * out the rest, which keeps the offer small. @param {RTCRtpTransceiver} tr */
function vp8Only(tr) {
  const caps = typeof RTCRtpReceiver.getCapabilities === "function" ? RTCRtpReceiver.getCapabilities("video") : null;
  if (!caps || typeof tr.setCodecPreferences !== "function") return;
  const vp8 = caps.codecs.filter((c) => c.mimeType.toLowerCase() === "video/vp8");
  if (!vp8.length) return;
  try { tr.setCodecPreferences(vp8); } catch { /* the browser's default list then */ }
}

/** @typedef {import("../types.js").VoiceMember} VoiceMember */

/**
 * @param {import("../room-socket.js").RoomSocket} socket
 * @param {{ slug: string, moderate: boolean, signal: AbortSignal }} opts
 */
export function voicePanel(socket, { slug, moderate, signal }) {
  const status = el("p", { class: "muted", role: "status", id: "voice-status" });
  const list = el("ul", { class: "voice-members", id: "voice-members" });
  const join = el("button", { type: "button", id: "voice-join", text: t("voice.join") });
  const mute = el("button", { type: "button", id: "voice-mute", "aria-pressed": "false", hidden: true, text: t("voice.mute") });
  const ptt = el("button", { type: "button", id: "voice-ptt", hidden: true, text: t("voice.ptt") });
  const leave = el("button", { type: "button", class: "danger", id: "voice-leave", hidden: true, text: t("voice.leave") });
  const camera = el("button", { type: "button", id: "voice-camera", "aria-pressed": "false", hidden: true, text: t("voice.cameraOn") });
  const tiles = el("div", { class: "voice-tiles", id: "voice-tiles", hidden: true });
  const audios = el("div", { hidden: true });
  /** @type {VoiceMember[]} */
  let members = [];
  /** Volume per user id, 0..1, kept while the page is open. @type {Map<string, number>} */
  const volumes = new Map();
  /** @type {{ pc: RTCPeerConnection, stream: MediaStream, session: string, recv: RTCRtpTransceiver[], audio: HTMLAudioElement[], cam: RTCRtpTransceiver, seen: RTCRtpTransceiver[], views: (MediaStream | null)[], camTrack: MediaStreamTrack | null, restart: () => Promise<void> } | null} */
  let on = null;
  let cameraWanted = false; // kept across a rejoin
  /** The session this page had, named when it joins again by itself (see api.md: previous). */
  let previous = "";
  let muted = false;
  let wanted = false; // the member wants to be in voice (a dropped connection rejoins)
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let rejoinTimer;

  const applyVolumes = () => {
    if (!on) return;
    for (const m of members) {
      const a = m.line === null ? undefined : on.audio[m.line];
      if (a) a.volume = volumes.get(m.user_id) ?? 1;
    }
  };

  /** The camera tiles: this member's own preview, then each camera the server shows. Tiles
   * are kept while what they show is the same (a video element made anew would start again
   * from black, and one taken out of the page stops playing). @type {Map<string, HTMLElement>} */
  const tileEls = new Map();
  const renderTiles = () => {
    const me = store.get().user;
    const others = on ? members.filter((m) => m.camera_line !== null && !(me && me.id === m.user_id)) : [];
    /** @type {{ key: string, make: () => HTMLElement }[]} */
    const wanted = [];
    const camTrack = on?.camTrack;
    if (camTrack) {
      wanted.push({ key: `mine:${camTrack.id}`, make: () => {
        const v = /** @type {HTMLVideoElement} */ (el("video", { autoplay: true, playsinline: true, muted: true }));
        v.srcObject = new MediaStream([camTrack]);
        return el("figure", { class: "voice-tile mine", "data-user": me?.username || "" }, v, el("figcaption", { text: t("voice.you") }));
      } });
    }
    for (const m of others) {
      const view = on?.views[m.camera_line ?? 0] || null;
      wanted.push({ key: `${m.user_id}:${m.camera_line}:${view ? view.id : ""}`, make: () => {
        const v = /** @type {HTMLVideoElement} */ (el("video", { autoplay: true, playsinline: true, muted: true }));
        if (view) v.srcObject = view;
        return el("figure", { class: "voice-tile", "data-user": m.user, "data-id": m.user_id }, v, el("figcaption", { text: m.user }));
      } });
    }
    const keys = new Set(wanted.map((w) => w.key));
    for (const [k, f] of tileEls) if (!keys.has(k)) { f.remove(); tileEls.delete(k); }
    for (const w of wanted) {
      if (!tileEls.has(w.key)) { const f = w.make(); tileEls.set(w.key, f); tiles.append(f); }
    }
    const mine = camTrack ? tileEls.get(`mine:${camTrack.id}`) : undefined;
    if (mine && tiles.firstChild !== mine) tiles.prepend(mine);
    tiles.hidden = tileEls.size === 0;
    for (const m of members) {
      const tile = tiles.querySelector(`figure[data-id="${CSS.escape(m.user_id)}"]`);
      if (tile) tile.classList.toggle("speaking", m.speaking);
    }
  };

  /** What the list shows apart from who speaks; the list is rebuilt only when this changes. */
  let shown = "";
  const render = () => {
    renderTiles();
    const me = store.get().user;
    const key = JSON.stringify([!!on, members.map((m) => [m.user_id, m.muted, m.held])]);
    if (key === shown) {
      // Only who is speaking changed: no slider or button is replaced mid-use.
      for (const m of members) {
        const li = list.querySelector(`li[data-id="${CSS.escape(m.user_id)}"]`);
        if (!li) continue;
        li.classList.toggle("speaking", m.speaking);
        const state = li.querySelector(".voice-state");
        if (state) state.textContent = m.muted ? (m.held ? t("voice.isHeld") : t("voice.isMuted")) : m.speaking ? t("voice.isSpeaking") : "";
      }
      applyVolumes();
      return;
    }
    shown = key;
    const mine = members.find((m) => me && me.id === m.user_id);
    mute.disabled = !!mine?.held;
    ptt.disabled = !!mine?.held;
    list.replaceChildren(...members.map((m) => {
      const mine = me && me.id === m.user_id;
      const volume = el("input", { type: "range", min: "0", max: "1", step: "0.05", class: "voice-volume",
        value: String(volumes.get(m.user_id) ?? 1), "aria-label": t("voice.volume", { name: m.user }), hidden: !!mine || !on });
      volume.addEventListener("input", () => { volumes.set(m.user_id, Number(volume.value)); applyVolumes(); });
      const tools = [];
      if (moderate && !mine) {
        const act = (/** @type {string} */ action) => api("POST", `/rooms/${encodeURIComponent(slug)}/voice/moderate`, { username: m.user, action })
          .catch((e) => { status.className = "error"; status.textContent = errMsg(e); });
        const mm = el("button", { type: "button", class: "small", text: m.held ? t("voice.unmuteThem") : t("voice.muteThem") });
        mm.addEventListener("click", () => void act(m.held ? "unmute" : "mute"));
        const rm = el("button", { type: "button", class: "small danger", text: t("voice.remove") });
        rm.addEventListener("click", () => void act("remove"));
        tools.push(mm, rm);
      }
      return el("li", { class: `voice-member${m.speaking ? " speaking" : ""}${m.muted ? " muted" : ""}`, "data-user": m.user, "data-id": m.user_id },
        el("span", { class: "voice-dot", "aria-hidden": "true" }),
        el("span", { class: "voice-name", text: m.user }),
        el("span", { class: "muted voice-state", text: m.muted ? (m.held ? t("voice.isHeld") : t("voice.isMuted")) : m.speaking ? t("voice.isSpeaking") : "" }),
        volume, ...tools);
    }));
    if (!members.length) list.append(el("li", { class: "muted", text: t("voice.nobody") }));
    applyVolumes();
  };

  const showJoined = (/** @type {boolean} */ joined) => {
    join.hidden = joined;
    mute.hidden = !joined;
    ptt.hidden = !joined;
    camera.hidden = !joined;
    leave.hidden = !joined;
  };

  /** @param {boolean} m */
  const setMuted = (m) => {
    muted = m;
    mute.setAttribute("aria-pressed", String(m));
    mute.textContent = m ? t("voice.unmute") : t("voice.mute");
    if (!on) return;
    on.stream.getAudioTracks().forEach((tr) => { tr.enabled = !m; });
    const session = on.session;
    fetch(session, { method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify({ muted: m }) }).catch(() => {});
  };

  /** Turns the camera on (the server gives it a line everyone else sees it on) or off. @param {boolean} want */
  const setCamera = async (want) => {
    const mine = on;
    if (!mine) return;
    camera.disabled = true;
    try {
      if (want && !mine.camTrack) {
        const media = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360, frameRate: 15 }, audio: false });
        const track = media.getVideoTracks()[0];
        if (on !== mine) { track.stop(); return; }
        try {
          await mine.cam.sender.replaceTrack(track);
        } catch (e) {
          track.stop();
          throw e;
        }
        if (on !== mine) { track.stop(); return; }
        const params = mine.cam.sender.getParameters();
        if (params.encodings && params.encodings[0]) {
          params.encodings[0].maxBitrate = 400_000;
          await mine.cam.sender.setParameters(params).catch(() => {});
        }
        mine.camTrack = track;
        try {
          await api("PATCH", mine.session.replace(/^\/api\/v1/, ""), { camera: true });
        } catch (e) {
          await mine.cam.sender.replaceTrack(null);
          track.stop();
          mine.camTrack = null;
          throw e;
        }
      } else if (!want && mine.camTrack) {
        await mine.cam.sender.replaceTrack(null);
        mine.camTrack.stop();
        mine.camTrack = null;
        await api("PATCH", mine.session.replace(/^\/api\/v1/, ""), { camera: false }).catch(() => {});
      }
      cameraWanted = want;
    } catch (e) {
      cameraWanted = false;
      status.className = "error";
      status.textContent = errMsg(e);
    } finally {
      camera.disabled = false;
      const lit = !!on?.camTrack;
      camera.setAttribute("aria-pressed", String(lit));
      camera.textContent = lit ? t("voice.cameraOff") : t("voice.cameraOn");
      renderTiles();
    }
  };

  const teardown = () => {
    if (!on) return;
    const { pc, stream, session, audio, camTrack } = on;
    on = null;
    stream.getTracks().forEach((tr) => tr.stop());
    if (camTrack) camTrack.stop();
    audio.forEach((a) => { a.srcObject = null; a.remove(); });
    pc.close();
    if (session) fetch(session, { method: "DELETE", keepalive: true }).catch(() => {});
  };

  const start = async () => {
    clearTimeout(rejoinTimer);
    join.disabled = true;
    status.className = "muted";
    status.textContent = t("voice.connecting");
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true }, video: false });
      if (!wanted || signal.aborted) { stream.getTracks().forEach((tr) => tr.stop()); return; }
      const pc = await peerConnection();
      if (!wanted || signal.aborted) { pc.close(); stream.getTracks().forEach((tr) => tr.stop()); return; }
      pc.addTransceiver(stream.getAudioTracks()[0], { direction: "sendonly" });
      /** @type {RTCRtpTransceiver[]} */
      const recv = [];
      /** @type {HTMLAudioElement[]} */
      const audio = [];
      for (let i = 0; i < LINES; i++) {
        recv.push(pc.addTransceiver("audio", { direction: "recvonly" }));
        const a = el("audio", { autoplay: true, "data-line": String(i) });
        audios.append(a);
        audio.push(/** @type {HTMLAudioElement} */ (a));
      }
      const cam = pc.addTransceiver("video", { direction: "sendonly" });
      vp8Only(cam);
      /** @type {RTCRtpTransceiver[]} */
      const seen = [];
      for (let i = 0; i < CAMERAS; i++) {
        const tr = pc.addTransceiver("video", { direction: "recvonly" });
        vp8Only(tr);
        seen.push(tr);
      }
      /** @type {(MediaStream | null)[]} */
      const views = seen.map(() => null);
      pc.addEventListener("track", (ev) => {
        const i = recv.indexOf(ev.transceiver);
        if (i >= 0) { audio[i].srcObject = new MediaStream([ev.track]); audio[i].play().catch(() => {}); }
        const c = seen.indexOf(ev.transceiver);
        if (c >= 0) { views[c] = new MediaStream([ev.track]); renderTiles(); }
      });
      on = { pc, stream, session: "", recv, audio, cam, seen, views, camTrack: null, restart: async () => {} };
      const mine = on;
      const again = previous ? `?previous=${encodeURIComponent(previous.split("/").pop() || "")}` : "";
      on.session = await negotiate(pc, `/api/v1/rooms/${encodeURIComponent(slug)}/voice${again}`, {});
      previous = on.session;
      if (on !== mine) return;
      if (muted) setMuted(true);
      if (cameraWanted) void setCamera(true);
      /** An ICE restart on the same session; if it does not bring the connection back, a new one. */
      const restart = async () => {
        try {
          const offer = await pc.createOffer({ iceRestart: true });
          await pc.setLocalDescription(offer);
          /** @type {Response} */
          let r;
          try {
            r = await fetch(mine.session, { method: "PATCH", headers: { "content-type": "application/sdp" }, body: offer.sdp || "" });
          } catch {
            r = new Response(null, { status: 599 }); // the network is down: try the restart again
          }
          if (r.status >= 500) {
            // Not an answer about the session (offline, or the server busy): the restart is
            // tried again; only the server saying the session is gone starts a new one.
            clearTimeout(rejoinTimer);
            rejoinTimer = setTimeout(() => {
              if (on === mine && pc.connectionState !== "connected" && wanted) void restart();
            }, 2000);
            return;
          }
          if (r.status === 410) {
            // Someone else ended the session: this member joined from another tab (rejoining
            // would have the two take turns knocking each other out), or a moderator took it
            // out. A 404 is a session lost to the network: joining again below, naming it.
            let code = "";
            try { code = (await r.json()).error || ""; } catch { /* no body */ }
            if (on === mine) {
              wanted = false;
              teardown();
              showJoined(false);
              status.className = code === "voice_removed" ? "error" : "muted";
              status.textContent = t(code === "voice_removed" ? "voice.removed" : "voice.endedElsewhere");
              render();
            }
            return;
          }
          if (r.status !== 200) throw new Error(await r.text());
          await pc.setRemoteDescription({ type: "answer", sdp: await r.text() });
        } catch {
          if (on === mine && wanted) { teardown(); void start(); }
          return;
        }
        rejoinTimer = setTimeout(() => {
          if (on === mine && pc.connectionState !== "connected" && wanted) { teardown(); void start(); }
        }, 5000);
      };
      mine.restart = restart;
      pc.addEventListener("connectionstatechange", () => {
        if (on !== mine) return;
        if (pc.connectionState === "failed" || pc.connectionState === "disconnected") {
          status.className = "muted";
          status.textContent = t("voice.reconnecting");
          // A moment to come back by itself; then an ICE restart.
          clearTimeout(rejoinTimer);
          rejoinTimer = setTimeout(() => {
            if (on === mine && pc.connectionState !== "connected" && wanted) void restart();
          }, pc.connectionState === "failed" ? 0 : 1500);
        } else if (pc.connectionState === "connected") {
          clearTimeout(rejoinTimer);
          status.textContent = t("voice.joined");
        }
      });
      showJoined(true);
      status.textContent = pc.connectionState === "connected" ? t("voice.joined") : t("voice.connecting");
      render();
    } catch (e) {
      teardown();
      status.className = "error";
      status.textContent = errMsg(e);
      const code = /** @type {{ status?: number }} */ (e).status;
      const temporary = !(e instanceof DOMException) && (code === undefined || code >= 500 || code === 429);
      if (wanted && !signal.aborted && temporary) {
        // The server or the network said no for now (full, busy, unreachable): try again.
        rejoinTimer = setTimeout(() => { if (wanted) void start(); }, 5000);
      } else {
        wanted = false;
        showJoined(false);
      }
    } finally {
      join.disabled = false;
    }
  };

  join.addEventListener("click", () => { wanted = true; previous = ""; void start(); });
  leave.addEventListener("click", () => {
    wanted = false;
    cameraWanted = false;
    clearTimeout(rejoinTimer);
    teardown();
    showJoined(false);
    status.className = "muted";
    status.textContent = t("voice.left");
    render();
  });
  mute.addEventListener("click", () => setMuted(!muted));
  camera.addEventListener("click", () => void setCamera(!on?.camTrack));
  // Push to talk: unmuted while the button (or the space bar, outside text fields and
  // buttons) is held; letting go restores what it was, and only a press it began ends it.
  /** @type {boolean | null} muted before the press, while a press is on */
  let before = null;
  const press = () => { if (!on || before !== null) return; before = muted; setMuted(false); };
  const release = () => { if (before === null) return; const was = before; before = null; setMuted(was); };
  ptt.addEventListener("pointerdown", press);
  ptt.addEventListener("pointerup", release);
  ptt.addEventListener("pointercancel", release);
  ptt.addEventListener("pointerleave", release);
  /** @param {KeyboardEvent} e */
  const key = (e) => {
    if (!on || e.code !== "Space") return;
    const target = /** @type {HTMLElement | null} */ (e.target);
    if (target && (["INPUT", "TEXTAREA", "SELECT", "BUTTON"].includes(target.tagName) || target.isContentEditable)) return;
    e.preventDefault();
    if (e.type === "keydown" && !e.repeat) press();
    else if (e.type === "keyup") release();
  };
  document.addEventListener("keydown", key);
  document.addEventListener("keyup", key);

  socket.on("welcome", (f) => { members = f.voice || []; render(); });
  /** Whether the last list had this member in it while connected. */
  let wasListed = false;
  socket.on("voice.members", (f) => {
    members = f.members || [];
    const me = store.get().user;
    const listed = !!(me && members.some((m) => m.user_id === me.id));
    // Taken out while connected (a moderator, a ban): out of voice, and not rejoining.
    if (on && wasListed && !listed && on.pc.connectionState === "connected") {
      wanted = false;
      teardown();
      showJoined(false);
      status.className = "error";
      status.textContent = t("voice.removed");
    }
    wasListed = listed && !!on;
    render();
  });
  // The network is back: no waiting for the next try.
  const online = () => {
    if (!wanted || signal.aborted || join.disabled) return;
    // A connection not back yet restarts ICE now (the server says whether its session lives).
    if (on && on.pc.connectionState === "connected") return;
    clearTimeout(rejoinTimer);
    if (on) void on.restart();
    else void start();
  };
  window.addEventListener("online", online);
  signal.addEventListener("abort", () => {
    window.removeEventListener("online", online);
    wanted = false;
    clearTimeout(rejoinTimer);
    teardown();
    document.removeEventListener("keydown", key);
    document.removeEventListener("keyup", key);
  });
  render();
  const signedIn = !!store.get().user;
  return el("section", { class: "card voice", id: "voice" },
    el("h3", { text: t("voice.title") }),
    list,
    tiles,
    signedIn ? el("div", { class: "row" }, join, mute, ptt, camera, leave) : el("p", { class: "muted", text: t("voice.signIn") }),
    status, audios);
}
