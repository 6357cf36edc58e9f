// Voice through a TURN relay: two members whose browsers use relayed candidates only (as on a
// network whose firewall lets out nothing but TCP to the TURN server) join a room's voice chat. Their only way to moim's media socket is the TURN server moim
// names (`webrtc_ice_servers`, credentials from `webrtc_turn_secret`), over TCP: each hears
// the other, and the connection's selected candidate pair is a relayed one.
// Env: MOIM_URL, MOIM_CHROMIUM.
import { T, check, launch, member } from "./lib.mjs";

const base = process.env.MOIM_URL;
if (!base) throw new Error("MOIM_URL is needed");
const browser = await launch();

/** The live connection's selected pair, its local candidate, and audio packets received. */
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
    const local = pair ? stats.get(pair.localCandidateId) : null;
    return { type: local?.candidateType || "", relay: local?.relayProtocol || "", protocol: local?.protocol || "", packets };
  });
}

const host = await member(browser, base, "host", { relayOnly: true });
await host.locator("#create-room input[name=title]").fill("Relay room");
await host.locator("#create-room input[name=slug]").fill("relay");
await host.locator("#create-room button[type=submit]").click();
await host.waitForURL(`${base}/r/relay`, { timeout: T });
const guest = await member(browser, base, "guest", { relayOnly: true });
await guest.goto(`${base}/r/relay`);
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
  check(got.type === "relay", `${name}'s media goes through the TURN relay (local candidate: ${JSON.stringify(got)})`);
  check(got.relay === "tcp", `${name} reaches the relay over TCP: ${JSON.stringify(got)}`);
  check(got.packets > 50, `${name} hears the other through it: ${JSON.stringify(got)}`);
  console.log(`${name}: ${JSON.stringify(got)}`);
}
for (const p of [host, guest]) await p.locator("#voice-leave").click();
await browser.close();
if (process.exitCode) process.exit(process.exitCode);
console.log("VOICE-TURN-OK");
