// Glass-to-glass through moim's SFU, against the same two pages connected directly: the
// publisher page draws the wall clock into a canvas as 32 black-or-white blocks 60 times a
// second and sends the canvas stream; the viewer page reads the blocks back from each frame it
// is about to show (requestVideoFrameCallback) and takes the difference from its own clock (one
// machine, one clock). Also: how long a new WHEP viewer waits for its first frame.
// Prints `WEBRTC-FIGURES {json}`. Used by `moim-bench webrtc` and, short, by the browser tests.
// Env: MOIM_URL, MOIM_CHROMIUM, MOIM_G2G_S (seconds sampled per path, default 20),
// MOIM_FIRST_FRAMES (WHEP joins timed, default 10).
import { chromium } from "playwright-core";

const base = process.env.MOIM_URL;
if (!base) throw new Error("MOIM_URL is needed");
const secs = Number(process.env.MOIM_G2G_S || 20);
const joins = Number(process.env.MOIM_FIRST_FRAMES || 10);

const browser = await chromium.launch({
  executablePath: process.env.MOIM_CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    // Direct connections between two pages of one machine need real host candidates.
    "--disable-features=WebRtcHideLocalIpsWithMdns"],
});
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.min(s.length - 1, Math.floor(s.length * p))] : null; };

async function page(name) {
  const ctx = await browser.newContext();
  const p = await ctx.newPage();
  p.on("pageerror", (e) => { console.error(`[${name}] page error:`, e); process.exitCode = 1; });
  await p.goto(`${base}/`);
  return p;
}

// The clock in the picture, and reading it back (both pages get these).
const helpers = () => {
  window.viewerSetup = () => {
    const v = document.createElement("video");
    v.muted = true; v.autoplay = true; v.playsInline = true;
    document.body.append(v);
    window.viewerVideo = v;
    return { v, s: new MediaStream() };
  };
  window.clockCanvas = () => {
    const c = document.createElement("canvas");
    c.width = 640; c.height = 360;
    const g = c.getContext("2d");
    const draw = () => {
      const t = Math.round(performance.timeOrigin + performance.now()) % 2 ** 32;
      g.fillStyle = "#808080"; g.fillRect(0, 0, 640, 360);
      for (let i = 0; i < 32; i++) {
        g.fillStyle = (t >>> (31 - i)) & 1 ? "#fff" : "#000";
        g.fillRect((i % 8) * 80, Math.floor(i / 8) * 80 + 20, 80, 80);
      }
      requestAnimationFrame(draw);
    };
    draw();
    return c.captureStream(60);
  };
  window.readClock = (video, out, until) => {
    const c = document.createElement("canvas");
    c.width = 640; c.height = 360;
    const g = c.getContext("2d", { willReadFrequently: true });
    const tick = () => {
      // When the frame is handed over for showing (the callback's own argument is the
      // vsync's time, a frame interval coarse).
      const now = performance.now();
      g.drawImage(video, 0, 0, 640, 360);
      const px = g.getImageData(0, 0, 640, 360).data;
      let t = 0;
      for (let i = 0; i < 32; i++) {
        const x = (i % 8) * 80 + 40, y = Math.floor(i / 8) * 80 + 60;
        t = (t * 2 + (px[(y * 640 + x) * 4] > 128 ? 1 : 0)) >>> 0;
      }
      const shown = Math.round(performance.timeOrigin + now) % 2 ** 32;
      const d = (shown - t + 2 ** 32) % 2 ** 32;
      if (d < 10000) out.push(d);
      if (performance.now() < until) video.requestVideoFrameCallback(tick);
    };
    video.requestVideoFrameCallback(tick);
  };
};

async function measure(viewer, secs) {
  return viewer.evaluate(async (secs) => {
    const v = window.viewerVideo;
    await new Promise((ok, fail) => {
      const t = setTimeout(() => fail(new Error("no picture")), 15000);
      const go = () => { clearTimeout(t); ok(); };
      if (v.readyState >= 2) go(); else v.addEventListener("loadeddata", go, { once: true });
    });
    await new Promise((r) => setTimeout(r, 1000)); // past the start
    const out = [];
    window.readClock(v, out, performance.now() + secs * 1000);
    await new Promise((r) => setTimeout(r, secs * 1000 + 100));
    return out;
  }, secs);
}

// ---- the direct path: the publisher's stream straight into the viewer page -------------------
const pubD = await page("publisher (direct)");
const viewD = await page("viewer (direct)");
for (const p of [pubD, viewD]) await p.evaluate(helpers);
const offerD = await pubD.evaluate(async () => {
  const pc = new RTCPeerConnection();
  window.pc = pc;
  for (const t of window.clockCanvas().getTracks()) pc.addTransceiver(t, { direction: "sendonly" });
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((r) => { if (pc.iceGatheringState === "complete") r(); else pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && r(); });
  return pc.localDescription.sdp;
});
const answerD = await viewD.evaluate(async (sdp) => {
  const { v, s } = window.viewerSetup();
  const pc = new RTCPeerConnection();
  window.pc = pc;
  pc.ontrack = (ev) => { s.addTrack(ev.track); v.srcObject = s; };
  await pc.setRemoteDescription({ type: "offer", sdp });
  await pc.setLocalDescription(await pc.createAnswer());
  await new Promise((r) => { if (pc.iceGatheringState === "complete") r(); else pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && r(); });
  return pc.localDescription.sdp;
}, offerD);
await pubD.evaluate((sdp) => window.pc.setRemoteDescription({ type: "answer", sdp }), answerD);
const direct = await measure(viewD, secs);
await pubD.close(); await viewD.close();

// ---- through moim: WHIP in, WHEP out ---------------------------------------------------------
const pub = await page("publisher (moim)");
await pub.evaluate(helpers);
const key = await pub.evaluate(async () => {
  const j = (m, p, b) => fetch(`/api/v1${p}`, { method: m, headers: { "content-type": "application/json" }, body: b && JSON.stringify(b) }).then((r) => r.json());
  const name = `g2g${Math.floor(Math.random() * 1e6)}`;
  await j("POST", "/auth/signup", { username: name, password: "glass to glass" });
  await j("POST", "/rooms", { slug: name, title: "glass to glass" });
  const { stream_key } = await j("GET", `/rooms/${name}/stream-key`);
  window.slug = name;
  return { slug: name, key: stream_key };
});
await pub.evaluate(async ({ slug, key }) => {
  const pc = new RTCPeerConnection();
  window.pc = pc;
  for (const t of window.clockCanvas().getTracks()) pc.addTransceiver(t, { direction: "sendonly" });
  await pc.setLocalDescription(await pc.createOffer());
  const r = await fetch(`/api/v1/rooms/${slug}/whip`, { method: "POST", headers: { "content-type": "application/sdp", authorization: `Bearer ${key}` }, body: pc.localDescription.sdp });
  if (r.status !== 201) throw new Error(`WHIP ${r.status}: ${await r.text()}`);
  await pc.setRemoteDescription({ type: "answer", sdp: await r.text() });
}, key);

const whep = async (p) => p.evaluate(async (slug) => {
  const { v, s } = window.viewerSetup();
  const pc = new RTCPeerConnection();
  window.pc = pc;
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.ontrack = (ev) => { s.addTrack(ev.track); v.srcObject = s; };
  const t0 = performance.now();
  await pc.setLocalDescription(await pc.createOffer());
  const r = await fetch(`/api/v1/rooms/${slug}/whep`, { method: "POST", headers: { "content-type": "application/sdp" }, body: pc.localDescription.sdp });
  if (r.status !== 201) throw new Error(`WHEP ${r.status}: ${await r.text()}`);
  await pc.setRemoteDescription({ type: "answer", sdp: await r.text() });
  const answered = performance.now() - t0;
  let connectedAt = null;
  pc.addEventListener("connectionstatechange", () => { if (pc.connectionState === "connected") connectedAt = performance.now() - t0; });
  return new Promise((ok, fail) => {
    const t = setTimeout(() => fail(new Error(`no first frame; ICE ${pc.iceConnectionState}`)), 15000);
    v.requestVideoFrameCallback(() => { clearTimeout(t); ok({ first: performance.now() - t0, answered, connected: connectedAt }); });
  });
}, key.slug);

const view = await page("viewer (moim)");
await view.evaluate(helpers);
await whep(view);
const sfu = await measure(view, secs);

// New viewers, one after another: from the WHEP POST to the first frame.
const firsts = [];
const steps = [];
for (let i = 0; i < joins; i++) {
  const p = await page(`joiner ${i}`);
  await p.evaluate(helpers);
  const f = await whep(p);
  firsts.push(f.first);
  steps.push(f);
  await p.close();
}
await browser.close();

const figures = {
  direct_p50_ms: pct(direct, 0.5), direct_p95_ms: pct(direct, 0.95), direct_frames: direct.length,
  moim_p50_ms: pct(sfu, 0.5), moim_p95_ms: pct(sfu, 0.95), moim_frames: sfu.length,
  first_frame_p50_ms: Math.round(pct(firsts, 0.5)), first_frame_p95_ms: Math.round(pct(firsts, 0.95)),
  answered_p50_ms: Math.round(pct(steps.map((x) => x.answered), 0.5)),
  connected_p50_ms: Math.round(pct(steps.filter((x) => x.connected !== null).map((x) => x.connected), 0.5)),
};
if (!direct.length || !sfu.length) { console.error("no clock read back", figures); process.exit(1); }
if (process.exitCode) process.exit(process.exitCode);
console.log(`WEBRTC-FIGURES ${JSON.stringify(figures)}`);
