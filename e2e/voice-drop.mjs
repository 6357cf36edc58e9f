// Voice survives the network dropping: two members talk in a room's voice chat with their media
// through a UDP relay in this script (moim advertises the relay's address), then lose the
// network (the relay drops every datagram and the pages go offline) for 2 s, and again for
// 12 s (past the 8 s after which moim lets a silent session go). Each time both come back by
// themselves and hear each other again; how long that took after the network returned is
// printed (`VOICE-RECOVERY`).
// Env: MOIM_URL, MOIM_CHROMIUM, MOIM_RELAY_LISTEN (ip:port the relay takes datagrams on, the
// address moim advertises), MOIM_RELAY_TARGET (moim's media socket).
import { T, check, launch, member } from "./lib.mjs";
import dgram from "node:dgram";

const base = process.env.MOIM_URL;
const [listenIp, listenPort] = (process.env.MOIM_RELAY_LISTEN || "").split(":");
const [targetIp, targetPort] = (process.env.MOIM_RELAY_TARGET || "").split(":");
if (!base || !listenPort || !targetPort) throw new Error("MOIM_URL, MOIM_RELAY_LISTEN and MOIM_RELAY_TARGET are needed");

// The relay: one socket towards moim per client address, so moim sees each client as itself.
let down = false;
const front = dgram.createSocket("udp4");
/** @type {Map<string, dgram.Socket>} */
const backs = new Map();
front.on("message", (msg, from) => {
  if (down) return;
  const key = `${from.address}:${from.port}`;
  let back = backs.get(key);
  if (!back) {
    check(backs.size < 64, "the relay serves a few clients");
    back = dgram.createSocket("udp4");
    back.bind(0, targetIp);
    back.on("message", (m) => { if (!down) front.send(m, from.port, from.address); });
    backs.set(key, back);
  }
  back.send(msg, Number(targetPort), targetIp);
});
await new Promise((ok) => front.bind(Number(listenPort), listenIp, ok));

const browser = await launch();

/** Audio packets the page's newest connection has received, and how many connections it made. */
async function heard(page) {
  return page.evaluate(async () => {
    const pcs = /** @type {RTCPeerConnection[]} */ (/** @type {any} */ (window).__pcs);
    const pc = pcs[pcs.length - 1];
    let packets = 0;
    if (pc && pc.connectionState !== "closed") {
      (await pc.getStats()).forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "audio") packets += s.packetsReceived || 0; });
    }
    return { packets, connections: pcs.length };
  });
}

/** Waits until each page's newest connection receives audio again: ms it took. */
async function untilBothHear(pages, limitMs) {
  const start = Date.now();
  const first = await Promise.all(pages.map(heard));
  const done = pages.map(() => false);
  while (!done.every(Boolean)) {
    check(Date.now() - start < limitMs, `both hear each other again within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
    const now = await Promise.all(pages.map(heard));
    now.forEach((h, i) => {
      // More packets on the same connection, or any on a new one.
      const fresh = h.connections > first[i].connections ? h.packets > 5 : h.packets > first[i].packets + 5;
      if (fresh) done[i] = true;
    });
  }
  return Date.now() - start;
}

const host = await member(browser, base, "host");
await host.locator("#create-room input[name=title]").fill("Drop room");
await host.locator("#create-room input[name=slug]").fill("drop");
await host.locator("#create-room button[type=submit]").click();
await host.waitForURL(`${base}/r/drop`, { timeout: T });
const guest = await member(browser, base, "guest");
await guest.goto(`${base}/r/drop`);
const pages = [host, guest];
for (const p of pages) {
  await p.locator("#voice-join").click();
  await p.locator("#voice-status").filter({ hasText: "You are in voice." }).waitFor({ timeout: T });
}
await untilBothHear(pages, T);
check(backs.size === 2, `both talk through the relay (${backs.size} clients seen)`);

const figures = [];
for (const seconds of [2, 12]) {
  const madeBefore = (await Promise.all(pages.map(heard))).map((h) => h.connections);
  down = true;
  for (const p of pages) await p.context().setOffline(true);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  down = false;
  for (const p of pages) await p.context().setOffline(false);
  const ms = await untilBothHear(pages, 30000);
  for (const p of pages) await p.locator("#voice-status").filter({ hasText: "You are in voice." }).waitFor({ timeout: T });
  const made = (await Promise.all(pages.map(heard))).map((h) => h.connections);
  // Two seconds keep the session: the same connection resumes, nothing new is made. Twelve
  // outlive it (moim lets a session go after 8 s of silence): each page joined anew.
  if (seconds === 2) check(made.every((n, i) => n === madeBefore[i]), `a 2 s drop resumes the same connection: ${madeBefore} → ${made}`);
  else check(made.every((n, i) => n > madeBefore[i]), `a 12 s drop ends in a new connection: ${madeBefore} → ${made}`);
  figures.push(`${seconds} s drop: both hear again ${ms} ms after the network returned (connections made: ${made.join(", ")})`);
}
// Each member is listed once: the sessions that were let go were replaced, not doubled.
for (const p of pages) {
  await p.locator("#voice-members li.voice-member").nth(1).waitFor({ timeout: T });
  check(await p.locator("#voice-members li.voice-member").count() === 2, "two members listed");
}
for (const f of figures) console.log(`VOICE-RECOVERY ${f}`);
for (const p of pages) await p.locator("#voice-leave").click();
await browser.close();
front.close();
for (const b of backs.values()) b.close();
if (process.exitCode) process.exit(process.exitCode);
console.log("VOICE-DROP-OK");
