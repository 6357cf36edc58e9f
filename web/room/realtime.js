// @ts-check
// Real-time media in a room (WebRTC through moim's SFU): the owner goes live from this browser
// by WHIP (camera or screen), and viewers watch a browser broadcast by WHEP. The resource URL
// each answer names is DELETEd when it ends.

import { api, el, errMsg } from "../dom.js";
import { t } from "../i18n.js";
import * as store from "../store.js";

/** @type {{ servers: RTCIceServer[], until: number, who: string | null } | null} */
let iceCache = null;

/**
 * A peer connection set up with the site's STUN and TURN servers (a relay for networks that
 * block UDP to the media socket; TURN credentials only for signed-in members). They are kept
 * for at most ten minutes and a tenth of their lifetime, and per member (signing in brings
 * TURN); a failed fetch keeps the last ones. Without any the connection goes direct.
 */
export async function peerConnection() {
  const who = store.get().user?.id ?? null;
  if (!iceCache || Date.now() > iceCache.until || iceCache.who !== who) {
    try {
      /** @type {{ ice_servers: RTCIceServer[], ttl_s: number }} */
      const got = await api("GET", "/webrtc/ice-servers");
      const keep = Math.min(600, Math.max(30, got.ttl_s / 10));
      iceCache = { servers: got.ice_servers || [], until: Date.now() + keep * 1000, who };
    } catch {
      if (!iceCache || iceCache.who !== who) iceCache = { servers: [], until: 0, who };
    }
  }
  return new RTCPeerConnection({ iceServers: iceCache ? iceCache.servers : [] });
}

/** Waits until the connection is up, or says why not. @param {RTCPeerConnection} pc */
function connected(pc) {
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(t("rt.noConnection"))), 15000);
    const check = () => {
      if (pc.connectionState === "connected") { clearTimeout(timer); ok(undefined); }
      else if (pc.connectionState === "failed") { clearTimeout(timer); fail(new Error(t("rt.noConnection"))); }
    };
    pc.addEventListener("connectionstatechange", check);
    check();
  });
}

/**
 * Sends an offer to a WHIP/WHEP endpoint; the answer is applied. Returns the session's URL.
 * @param {RTCPeerConnection} pc @param {string} url @param {Record<string, string>} headers
 */
export async function negotiate(pc, url, headers) {
  await pc.setLocalDescription(await pc.createOffer());
  const resp = await fetch(url, { method: "POST", headers: { "content-type": "application/sdp", ...headers }, body: pc.localDescription?.sdp || "" });
  const text = await resp.text();
  if (resp.status !== 201) {
    let message = text;
    try { message = JSON.parse(text).message || text; } catch { /* plain text */ }
    throw Object.assign(new Error(message), { status: resp.status });
  }
  await pc.setRemoteDescription({ type: "answer", sdp: text });
  return resp.headers.get("location") || "";
}

/**
 * Puts H.264 first among a video sender's codecs: moim packages it into the room's LL-HLS and
 * recording as it is, which it cannot do with VP8 (a VP8 broadcast reaches WebRTC viewers only).
 * @param {RTCRtpTransceiver} tr
 */
function preferH264(tr) {
  const caps = typeof RTCRtpSender.getCapabilities === "function" ? RTCRtpSender.getCapabilities("video") : null;
  if (!caps || typeof tr.setCodecPreferences !== "function") return;
  /** @param {RTCRtpCodec} c */
  const rank = (c) => c.mimeType.toLowerCase() !== "video/h264" ? 2 : (c.sdpFmtpLine || "").includes("packetization-mode=1") ? 0 : 1;
  try {
    tr.setCodecPreferences([...caps.codecs].sort((a, b) => rank(a) - rank(b)));
  } catch {
    // A browser that will not take them sends its default (VP8): real time still works.
  }
}

/**
 * The simulcast layers a browser broadcast is sent as: moim gives each real-time viewer the best
 * one its connection carries (a phone on a weak network gets the quarter-size picture rather
 * than stalling), and keeps the top one for the recording and LL-HLS. A shared screen is sent
 * as two (text is unreadable at a quarter).
 * @param {string} source
 * @returns {RTCRtpEncodingParameters[]}
 */
function layers(source) {
  const full = { rid: "f", maxBitrate: 2_500_000 };
  const half = { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 600_000 };
  return source === "screen" ? [half, full] : [{ rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 }, half, full];
}

/**
 * The owner's "Go live from this browser" controls.
 * @param {string} slug @param {AbortSignal} signal
 */
export function browserBroadcast(slug, signal) {
  const status = el("p", { class: "muted", role: "status", id: "rt-status" });
  const preview = el("video", { class: "rt-preview", id: "rt-preview", muted: true, autoplay: true, playsinline: true, hidden: true });
  const source = el("select", { id: "rt-source", "aria-label": t("rt.source") },
    el("option", { value: "camera", text: t("rt.camera") }),
    el("option", { value: "screen", text: t("rt.screen") }));
  const start = el("button", { type: "button", id: "rt-start", text: t("rt.goLive") });
  const stop = el("button", { type: "button", class: "danger", id: "rt-stop", text: t("rt.stop"), hidden: true });
  /** @type {{ pc: RTCPeerConnection | null, stream: MediaStream | null, session: string, key: string } | null} */
  let on = null;
  const end = async () => {
    if (!on) return;
    const { pc, stream, session, key } = on;
    on = null;
    stream?.getTracks().forEach((tr) => tr.stop());
    pc?.close();
    if (session) fetch(session, { method: "DELETE", headers: { authorization: `Bearer ${key}` }, keepalive: true }).catch(() => {});
    preview.hidden = true;
    start.hidden = false; stop.hidden = true; source.disabled = false;
    status.textContent = t("rt.ended");
  };
  start.addEventListener("click", async () => {
    start.disabled = true;
    status.className = "muted";
    status.textContent = t("rt.starting");
    // Held from the first step, so whatever has been made is undone on failure or on leaving.
    const mine = { pc: /** @type {RTCPeerConnection | null} */ (null), stream: /** @type {MediaStream | null} */ (null), session: "", key: "" };
    on = mine;
    const left = () => { if (signal.aborted || on !== mine) throw new Error(t("rt.ended")); };
    try {
      const { stream_key: key } = await api("GET", `/rooms/${encodeURIComponent(slug)}/stream-key`, undefined, { signal });
      mine.key = key;
      left();
      const stream = source.value === "screen"
        ? await navigator.mediaDevices.getDisplayMedia({ video: true, audio: true })
        : await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720 }, audio: true });
      mine.stream = stream;
      left();
      const pc = await peerConnection();
      mine.pc = pc;
      left();
      for (const track of stream.getTracks()) {
        if (track.kind === "video") preferH264(pc.addTransceiver(track, { direction: "sendonly", sendEncodings: layers(source.value) }));
        else pc.addTransceiver(track, { direction: "sendonly" });
      }
      mine.session = await negotiate(pc, `/api/v1/rooms/${encodeURIComponent(slug)}/whip`, { authorization: `Bearer ${key}` });
      left();
      await connected(pc);
      left();
      preview.srcObject = stream;
      preview.hidden = false;
      start.hidden = true; stop.hidden = false; source.disabled = true;
      status.textContent = t("rt.live");
      stream.getVideoTracks()[0]?.addEventListener("ended", end);
      pc.addEventListener("connectionstatechange", () => { if (pc.connectionState === "failed") void end(); });
    } catch (e) {
      if (on === mine) await end();
      else { mine.stream?.getTracks().forEach((tr) => tr.stop()); mine.pc?.close(); }
      status.className = "error";
      status.textContent = errMsg(e);
    } finally {
      start.disabled = false;
    }
  });
  stop.addEventListener("click", () => void end());
  signal.addEventListener("abort", () => void end());
  const whipUrl = el("input", { id: "whip-url", readonly: true, value: `${location.origin}/api/v1/rooms/${encodeURIComponent(slug)}/whip`, "aria-label": t("rt.whipUrl") });
  return el("div", { class: "rt-broadcast", id: "rt-broadcast" },
    el("h3", { text: t("rt.fromBrowser") }),
    el("div", { class: "row" }, source, start, stop),
    status, preview,
    el("p", { class: "muted", text: t("rt.obsHelp") }),
    el("div", { class: "row" }, el("label", { for: "whip-url", text: t("rt.whipUrl") }), whipUrl));
}

/** A viewer's real-time player: WHEP into a <video>, with the mode shown. */
export class RealtimePlayer {
  /** @param {HTMLElement} box @param {string} slug */
  constructor(box, slug) {
    this.box = box;
    this.slug = slug;
    /** @type {RTCPeerConnection | null} */
    this.pc = null;
    this.session = "";
    /** Bumped by every stop: a start that was waiting gives up. */
    this.attempt = 0;
    this.video = el("video", { id: "rt-video", class: "rt-video", autoplay: true, playsinline: true, controls: true, muted: true });
    this.note = el("p", { class: "muted rt-mode", id: "rt-mode", text: t("rt.modeRealtime") });
  }

  /** Starts watching; resolves false when WHEP could not connect. */
  async start() {
    this.stop();
    const attempt = this.attempt;
    const pc = await peerConnection();
    if (attempt !== this.attempt) { pc.close(); return false; } // stopped meanwhile
    this.pc = pc;
    this.note.className = "muted rt-mode";
    this.note.textContent = t("rt.modeRealtime");
    pc.addTransceiver("audio", { direction: "recvonly" });
    pc.addTransceiver("video", { direction: "recvonly" });
    const stream = new MediaStream();
    pc.addEventListener("track", (ev) => { stream.addTrack(ev.track); this.video.srcObject = stream; });
    this.box.replaceChildren(this.video, this.note);
    try {
      const session = await negotiate(pc, `/api/v1/rooms/${encodeURIComponent(this.slug)}/whep`, {});
      if (this.pc !== pc) { // stopped meanwhile: this session is nobody's
        fetch(session, { method: "DELETE", keepalive: true }).catch(() => {});
        return false;
      }
      this.session = session;
      await connected(pc);
      this.video.play().catch(() => {});
      return true;
    } catch (e) {
      if (this.pc !== pc) return false;
      this.note.className = "error rt-mode";
      this.note.textContent = errMsg(e);
      return false;
    }
  }

  stop() {
    this.attempt += 1;
    if (this.pc) this.pc.close();
    this.pc = null;
    if (this.session) fetch(this.session, { method: "DELETE", keepalive: true }).catch(() => {});
    this.session = "";
  }
}
