// Forwarding with real libwebrtc clients (@roamhq/wrtc, Chromium's WebRTC library in Node):
// one publisher sends VP8 video at a set bitrate through an SFU to N subscribers, which decode
// it. The SFU is moim (WHIP/WHEP) or Janus (its VideoRoom plugin over the HTTP API).
// Prints `WINDOW-START` and `WINDOW-END` around the measured window (the caller reads the SFU's
// CPU then) and, last, one JSON line of what the subscribers got.
// Env: TARGET (moim | janus), URL (moim's base URL, or Janus's `http://…/janus`), KEY (moim's
// stream key, room live-0), SUBSCRIBERS, SECONDS, KBPS.
import wrtc from "@roamhq/wrtc";

const { RTCPeerConnection, RTCRtpSender, nonstandard } = wrtc;
const target = process.env.TARGET;
const url = process.env.URL;
const n = Number(process.env.SUBSCRIBERS || 1);
const seconds = Number(process.env.SECONDS || 10);
const kbps = Number(process.env.KBPS || 1500);
if ((target !== "moim" && target !== "janus") || !url) throw new Error("TARGET (moim|janus) and URL are needed");
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

// The picture: 640×360 at 30 frames a second, with noise in it, so the encoder needs its bitrate.
const W = 640, H = 360;
const source = new nonstandard.RTCVideoSource();
const track = source.createTrack();
const frame = { width: W, height: H, data: new Uint8ClampedArray((W * H * 3) / 2) };
let framesSent = 0;
const timer = setInterval(() => {
  const d = frame.data;
  for (let i = (framesSent * 7) % 64; i < d.length; i += 64) d[i] = (Math.random() * 255) | 0;
  source.onFrame(frame);
  framesSent++;
}, 1000 / 30);

/** Resolves once ICE gathering is done, so the SDP holds the candidates (no trickle). */
function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((ok) => pc.addEventListener("icegatheringstatechange", () => { if (pc.iceGatheringState === "complete") ok(); }));
}
function connected(pc) {
  return new Promise((ok, fail) => {
    const t = setTimeout(() => fail(new Error(`not connected in 20 s (${pc.connectionState})`)), 20000);
    const look = () => {
      if (pc.connectionState === "connected") { clearTimeout(t); ok(); }
      if (pc.connectionState === "failed") { clearTimeout(t); fail(new Error("connection failed")); }
    };
    pc.addEventListener("connectionstatechange", look);
    look();
  });
}

async function publisherPc() {
  const pc = new RTCPeerConnection();
  const tr = pc.addTransceiver(track, { direction: "sendonly" });
  const vp8 = RTCRtpSender.getCapabilities?.("video")?.codecs.filter((c) => /vp8|rtx/i.test(c.mimeType));
  if (vp8 && tr.setCodecPreferences) tr.setCodecPreferences(vp8);
  const params = tr.sender.getParameters();
  params.encodings = [{ maxBitrate: kbps * 1000 }];
  await tr.sender.setParameters(params).catch((e) => console.error(`the bitrate cap was not taken: ${e}`));
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  return pc;
}

// ---- moim: WHIP and WHEP --------------------------------------------------------------------
async function post(path, sdp, key) {
  const headers = { "content-type": "application/sdp" };
  if (key) headers.authorization = `Bearer ${key}`;
  const r = await fetch(`${url}${path}`, { method: "POST", headers, body: sdp });
  const body = await r.text();
  if (r.status !== 201) throw new Error(`${path}: ${r.status} ${body}`);
  return body;
}
async function moim() {
  const pub = await publisherPc();
  const answer = await post("/api/v1/rooms/live-0/whip", pub.localDescription.sdp, process.env.KEY);
  await pub.setRemoteDescription({ type: "answer", sdp: answer });
  await connected(pub);
  const subs = [];
  for (let i = 0; i < n; i++) {
    const pc = new RTCPeerConnection();
    pc.addTransceiver("video", { direction: "recvonly" });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const a = await post("/api/v1/rooms/live-0/whep", pc.localDescription.sdp, null);
    await pc.setRemoteDescription({ type: "answer", sdp: a });
    subs.push(pc);
  }
  await Promise.all(subs.map(connected));
  return { pub, subs };
}

// ---- Janus: the VideoRoom plugin over the HTTP API --------------------------------------------
let tx = 0;
async function janus(path, body) {
  const r = await fetch(`${url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...body, transaction: `t${++tx}` }) });
  const j = await r.json();
  if (j.janus === "error") throw new Error(`janus ${body.janus}: ${JSON.stringify(j.error)}`);
  if (j.plugindata?.data?.error) throw new Error(`janus ${body.body?.request}: ${j.plugindata.data.error}`);
  return j;
}
/** Events by handle, from one long poll on the session. */
const events = new Map();
let polling = true;
async function poll(session) {
  while (polling) {
    try {
      const r = await fetch(`${url}/${session}?maxev=50`);
      const list = await r.json();
      for (const e of Array.isArray(list) ? list : [list]) {
        if (process.env.DEBUG) console.error(JSON.stringify(e).slice(0, 300));
        if (!e.sender) continue;
        if (!events.has(e.sender)) events.set(e.sender, []);
        events.get(e.sender).push(e);
      }
    } catch (e) {
      if (polling) throw e;
    }
  }
}
async function eventOf(handle, pred) {
  for (let i = 0; i < 400; i++) {
    const list = events.get(handle) || [];
    const failed = list.find((e) => e.plugindata?.data?.error);
    if (failed) throw new Error(`janus: ${failed.plugindata.data.error}`);
    const k = list.findIndex(pred);
    if (k >= 0) return list.splice(k, 1)[0];
    await sleep(50);
  }
  throw new Error(`janus: no event for handle ${handle}`);
}
async function janusRun() {
  const session = (await janus("", { janus: "create" })).data.id;
  void poll(session);
  const attach = async () => (await janus(`/${session}`, { janus: "attach", plugin: "janus.plugin.videoroom" })).data.id;
  const ph = await attach();
  const room = 1000 + Math.floor(Math.random() * 1e6);
  await janus(`/${session}/${ph}`, { janus: "message", body: { request: "create", room, publishers: 1, bitrate: 0, videocodec: "vp8", audiocodec: "opus", permanent: false } });
  const pub = await publisherPc();
  await janus(`/${session}/${ph}`, { janus: "message", body: { request: "joinandconfigure", room, ptype: "publisher", display: "pub" }, jsep: { type: "offer", sdp: pub.localDescription.sdp } });
  const joined = await eventOf(ph, (e) => e.jsep && e.plugindata?.data?.videoroom === "joined");
  const feed = joined.plugindata.data.id;
  await pub.setRemoteDescription(joined.jsep);
  await connected(pub);
  const subs = [];
  for (let i = 0; i < n; i++) {
    const h = await attach();
    await janus(`/${session}/${h}`, { janus: "message", body: { request: "join", room, ptype: "subscriber", streams: [{ feed }] } });
    const offer = await eventOf(h, (e) => e.jsep);
    const pc = new RTCPeerConnection();
    await pc.setRemoteDescription(offer.jsep);
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    await janus(`/${session}/${h}`, { janus: "message", body: { request: "start", room }, jsep: { type: "answer", sdp: pc.localDescription.sdp } });
    subs.push(pc);
  }
  await Promise.all(subs.map(connected));
  return { pub, subs };
}

const { pub, subs } = target === "moim" ? await moim() : await janusRun();
/** What the subscribers got so far: packets, lost packets, frames decoded. */
async function got() {
  let packets = 0, lost = 0, decoded = 0, bytes = 0;
  const codecs = new Set();
  for (const pc of subs) {
    const stats = await pc.getStats();
    stats.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") {
        packets += s.packetsReceived || 0; lost += s.packetsLost || 0; decoded += s.framesDecoded || 0; bytes += s.bytesReceived || 0;
        if (s.codecId) codecs.add(stats.get(s.codecId)?.mimeType);
      }
    });
  }
  return { packets, lost, decoded, bytes, codecs: [...codecs].sort().join(",") };
}
async function sent() {
  let bytes = 0, packets = 0, frames = 0;
  (await pub.getStats()).forEach((s) => {
    if (s.type === "outbound-rtp" && s.kind === "video") { bytes += s.bytesSent; packets += s.packetsSent; frames += s.framesEncoded || 0; }
  });
  return { bytes, packets, frames };
}
// Warm-up: the publisher's bandwidth estimate climbs to the set bitrate.
await sleep(4000);
const g0 = await got(), s0 = await sent(), c0 = process.cpuUsage();
const t0 = performance.now();
console.log("WINDOW-START");
await sleep(seconds * 1000);
console.log("WINDOW-END");
const t1 = performance.now();
const c1 = process.cpuUsage(c0), g1 = await got(), s1 = await sent();
const secs = (t1 - t0) / 1000;
console.log(JSON.stringify({
  target, subscribers: n, seconds: secs, codecs: g1.codecs,
  publisher_kbps: ((s1.bytes - s0.bytes) * 8) / secs / 1000,
  publisher_packets: s1.packets - s0.packets,
  received_packets: g1.packets - g0.packets,
  lost_packets: g1.lost - g0.lost,
  frames_sent: s1.frames - s0.frames,
  frames_decoded: g1.decoded - g0.decoded,
  client_cores: (c1.user + c1.system) / 1e6 / secs,
}));
polling = false;
clearInterval(timer);
for (const pc of subs) pc.close();
pub.close();
process.exit(0);
