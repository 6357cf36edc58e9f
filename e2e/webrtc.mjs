// WebRTC through moim in real browsers: one Chromium page publishes its (fake) camera and
// microphone by WHIP with the room's stream key, two others watch by WHEP; each viewer must
// decode video frames and receive audio (getStats inbound-rtp), the publisher's stats show
// it sending. Exits non-zero on any failure. Env: MOIM_URL, MOIM_CHROMIUM, MOIM_SLUG,
// MOIM_STREAM_KEY.
import { check, launch, page as openPage } from "./lib.mjs";

const base = process.env.MOIM_URL;
const slug = process.env.MOIM_SLUG;
const key = process.env.MOIM_STREAM_KEY;
if (!base || !slug || !key) throw new Error("MOIM_URL, MOIM_SLUG and MOIM_STREAM_KEY are needed");

const browser = await launch();

const publisher = await openPage(browser, base, "publisher");
const started = await publisher.evaluate(async ({ slug, key }) => {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 360 } });
  const pc = new RTCPeerConnection();
  for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: "sendonly" });
  await pc.setLocalDescription(await pc.createOffer());
  const resp = await fetch(`/api/v1/rooms/${slug}/whip`, {
    method: "POST", headers: { "content-type": "application/sdp", authorization: `Bearer ${key}` }, body: pc.localDescription.sdp,
  });
  if (resp.status !== 201) return { status: resp.status, body: await resp.text() };
  await pc.setRemoteDescription({ type: "answer", sdp: await resp.text() });
  window.pc = pc;
  await new Promise((ok, fail) => {
    const t = setTimeout(() => fail(new Error(`publisher ICE ${pc.iceConnectionState}, connection ${pc.connectionState}`)), 15000);
    pc.onconnectionstatechange = () => { if (pc.connectionState === "connected") { clearTimeout(t); ok(); } };
  });
  return { status: 201, location: resp.headers.get("location") };
}, { slug, key });
check(started.status === 201, `WHIP answered ${JSON.stringify(started)}`);
console.log("publisher connected", started.location);

async function watch(p) {
  return p.evaluate(async ({ slug }) => {
    const pc = new RTCPeerConnection();
    pc.addTransceiver("audio", { direction: "recvonly" });
    pc.addTransceiver("video", { direction: "recvonly" });
    const video = document.createElement("video");
    video.muted = true; video.autoplay = true; video.playsInline = true;
    document.body.append(video);
    const stream = new MediaStream();
    pc.ontrack = (ev) => { stream.addTrack(ev.track); video.srcObject = stream; };
    await pc.setLocalDescription(await pc.createOffer());
    const t0 = performance.now();
    const resp = await fetch(`/api/v1/rooms/${slug}/whep`, { method: "POST", headers: { "content-type": "application/sdp" }, body: pc.localDescription.sdp });
    if (resp.status !== 201) return { status: resp.status, body: await resp.text() };
    await pc.setRemoteDescription({ type: "answer", sdp: await resp.text() });
    // The first decoded frame.
    const first = await new Promise((ok, fail) => {
      const t = setTimeout(() => fail(new Error(`no frame; ICE ${pc.iceConnectionState}`)), 15000);
      const tick = () => video.requestVideoFrameCallback(() => { clearTimeout(t); ok(performance.now() - t0); });
      video.addEventListener("loadeddata", tick, { once: true });
      if (video.readyState >= 2) tick();
    });
    // Let a second of media arrive, then read the stats.
    await new Promise((r) => setTimeout(r, 1000));
    const stats = {};
    (await pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp") stats[s.kind] = { packets: s.packetsReceived, frames: s.framesDecoded, energy: s.totalAudioEnergy };
    });
    return { status: 201, first, stats, width: video.videoWidth };
  }, { slug });
}

const viewers = await Promise.all([openPage(browser, base, "viewer 1"), openPage(browser, base, "viewer 2")]);
const seen = await Promise.all(viewers.map(watch));
for (const [i, s] of seen.entries()) {
  console.log(`viewer ${i + 1}:`, JSON.stringify(s));
  check(s.status === 201, `WHEP answered ${JSON.stringify(s)}`);
  check(s.stats.video && s.stats.video.frames > 10, `viewer ${i + 1} decoded video frames`);
  check(s.stats.audio && s.stats.audio.packets > 20, `viewer ${i + 1} received audio`);
  check(s.width === 640, `viewer ${i + 1} sees the publisher's 640 px picture, got ${s.width}`);
}
const sending = await publisher.evaluate(async () => {
  let packets = 0;
  (await window.pc.getStats()).forEach((s) => { if (s.type === "outbound-rtp") packets += s.packetsSent; });
  return packets;
});
check(sending > 100, `publisher sent ${sending} packets`);
await browser.close();
if (process.exitCode) process.exit(process.exitCode);
console.log(`WEBRTC-OK first frame ${seen.map((s) => Math.round(s.first)).join(" ms, ")} ms`);
