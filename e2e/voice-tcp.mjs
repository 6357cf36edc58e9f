// Voice over ICE-TCP: moim's UDP candidate names an address where nothing listens (as for a
// client whose network lets no UDP out), so the only way in is the passive TCP candidate of
// `webrtc_tcp_listen`. Two members join a room's voice chat: each hears the other, and the
// selected candidate pair is a TCP one.
// Env: MOIM_URL, MOIM_CHROMIUM.
import { T, check, launch, member } from "./lib.mjs";

const base = process.env.MOIM_URL;
if (!base) throw new Error("MOIM_URL is needed");
const browser = await launch();

async function path(page) {
  return page.evaluate(async () => {
    const pcs = /** @type {RTCPeerConnection[]} */ (/** @type {any} */ (window).__pcs).filter((pc) => pc.connectionState === "connected");
    if (!pcs.length) return null;
    const stats = await pcs[pcs.length - 1].getStats();
    /** @type {any} */ let pair = null;
    let packets = 0;
    stats.forEach((s) => {
      if (s.type === "transport" && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
      if (s.type === "inbound-rtp" && s.kind === "audio") packets += s.packetsReceived || 0;
    });
    const remote = pair ? stats.get(pair.remoteCandidateId) : null;
    return { protocol: remote?.protocol || "", tcpType: remote?.tcpType || "", packets };
  });
}

const host = await member(browser, base, "host");
await host.locator("#create-room input[name=title]").fill("TCP room");
await host.locator("#create-room input[name=slug]").fill("tcp");
await host.locator("#create-room button[type=submit]").click();
await host.waitForURL(`${base}/r/tcp`, { timeout: T });
const guest = await member(browser, base, "guest");
await guest.goto(`${base}/r/tcp`);
for (const p of [host, guest]) {
  await p.locator("#voice-join").click();
  await p.locator("#voice-status").filter({ hasText: "You are in voice." }).waitFor({ timeout: T });
}
for (const [name, p] of [["host", host], ["guest", guest]]) {
  let got = await path(p);
  for (let i = 0; i < 40 && !(got && got.packets > 50); i++) {
    await p.waitForTimeout(250);
    got = await path(p);
  }
  check(got !== null, `${name} is connected`);
  check(got.protocol === "tcp", `${name} reaches moim over TCP: ${JSON.stringify(got)}`);
  check(got.packets > 50, `${name} hears the other: ${JSON.stringify(got)}`);
  console.log(`${name}: ${JSON.stringify(got)}`);
}
for (const p of [host, guest]) await p.locator("#voice-leave").click();
await browser.close();
if (process.exitCode) process.exit(process.exitCode);
console.log("VOICE-TCP-OK");
