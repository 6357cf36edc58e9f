// Going live from the browser in a room: the owner opens "Go live", picks the (fake) camera and
// goes live from the page; a viewer on the room page sees the LIVE badge and the real-time
// player decode the picture; the page sends its camera as three simulcast layers and LL-HLS
// carries the largest; the owner stops and the viewer's real-time player goes. Also the
// Korean panel at phone size. Screenshots: the owner's panel live, the viewer's page.
// Env: MOIM_URL, MOIM_CHROMIUM, MOIM_SCREENSHOTS.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { capturePeerConnections } from "./lib.mjs";

const base = process.env.MOIM_URL;
const shots = process.env.MOIM_SCREENSHOTS || "target/screenshots";
if (!base) throw new Error("MOIM_URL is needed");
mkdirSync(shots, { recursive: true });
const T = 30000;
const browser = await chromium.launch({
  executablePath: process.env.MOIM_CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required"],
});
function check(cond, what) { if (!cond) throw new Error(`check failed: ${what}`); }
async function open(name, opts = {}) {
  const ctx = await browser.newContext({ locale: "en-US", viewport: { width: 1280, height: 900 }, permissions: ["camera", "microphone"], ...opts });
  const page = await ctx.newPage();
  page.on("pageerror", (e) => { console.error(`[${name}] page error:`, e); process.exitCode = 1; });
  return page;
}

const owner = await open("owner");
// The page's peer connections, for their stats.
await capturePeerConnections(owner);
await owner.goto(`${base}/`);
await owner.getByRole("button", { name: "Sign up" }).click();
await owner.locator("#auth-form input[name=username]").fill("caster");
await owner.locator("#auth-form input[name=password]").fill("correct horse battery");
await owner.locator("#auth-form button[type=submit]").click();
await owner.locator("#create-room input[name=title]").fill("Browser stage");
await owner.locator("#create-room input[name=slug]").fill("browser-stage");
await owner.locator("#create-room button[type=submit]").click();
await owner.waitForURL(`${base}/r/browser-stage`, { timeout: T });

const viewer = await open("viewer");
await viewer.goto(`${base}/r/browser-stage`);
await viewer.locator("#live-badge").filter({ hasText: "offline" }).waitFor({ timeout: T });
check(await viewer.locator("#rt-player").isHidden(), "no real-time player before the broadcast");

await owner.locator("#streaming summary").click();
await owner.locator("#rt-start").click();
await owner.locator("#rt-status").filter({ hasText: "You are live" }).waitFor({ timeout: T });
await owner.locator("#rt-preview").waitFor({ state: "visible", timeout: T });

await viewer.locator("#rt-player").waitFor({ state: "visible", timeout: T });
await viewer.locator("#live-badge").filter({ hasText: "LIVE" }).waitFor({ timeout: T });
await viewer.waitForFunction(() => {
  const v = document.getElementById("rt-video");
  return v instanceof HTMLVideoElement && v.readyState >= 2 && v.videoWidth > 0;
}, null, { timeout: T });
check(await viewer.locator("#rt-mode").textContent() === "Real-time (WebRTC)", "the mode is said");
check(await viewer.locator("#watch-mode").textContent() === "Real-time (WebRTC)", "the mode row says real time");
check(await viewer.locator("#player").isHidden(), "the LL-HLS player is not playing beside it");
await owner.locator("#streaming").screenshot({ path: `${shots}/webrtc-golive-owner-desktop.png` });
await viewer.screenshot({ path: `${shots}/webrtc-viewer-desktop.png` });

// The same broadcast by LL-HLS: the browser's H.264 and Opus, packaged by moim, play in hls.js.
await viewer.locator("#mode-switch").click();
await viewer.locator("#player").waitFor({ state: "visible", timeout: T });
check(await viewer.locator("#rt-player").isHidden(), "one player at a time");
await viewer.waitForFunction(() => {
  const v = document.querySelector("#player video");
  return v instanceof HTMLVideoElement && v.readyState >= 2 && v.videoWidth > 0 && v.currentTime > 0;
}, null, { timeout: 45000 });
check(await viewer.locator("#watch-mode").textContent() === "Low latency (LL-HLS)", "the mode row says LL-HLS");
const tracks = await viewer.evaluate(async () => {
  const r = await fetch("/live/browser-stage/index.m3u8");
  return r.text();
});
check(/avc1\.[0-9a-f]{6},opus/.test(tracks), `H.264 and Opus in the playlist: ${tracks}`);
// The page sends its camera as three simulcast layers; LL-HLS follows the largest one being
// sent (the browser starts its top layer only once its uplink estimate allows, and drops it
// when the machine is busy).
const layersNow = () => owner.evaluate(async () => {
  /** @type {{rid: string, width: number}[]} */
  const out = [];
  // @ts-ignore
  for (const pc of window.__pcs) {
    (await pc.getStats()).forEach((/** @type {any} */ s) => { if (s.type === "outbound-rtp" && s.kind === "video") out.push({ rid: s.rid, width: s.frameWidth || 0 }); });
  }
  return out;
});
const hlsWidth = () => viewer.evaluate(() => /** @type {HTMLVideoElement} */ (document.querySelector("#player video")).videoWidth);
let layers = await layersNow();
check(layers.map((l) => l.rid).sort().join() === "f,h,q", `the camera goes out as three simulcast layers: ${JSON.stringify(layers)}`);
let top = 0, hls = 0;
for (let i = 0; ; i++) {
  layers = await layersNow();
  top = Math.max(...layers.map((l) => l.width));
  hls = await hlsWidth();
  if (hls === top && layers.filter((l) => l.width > 0).length > 1) break;
  check(i < 80, `LL-HLS follows the largest layer sent: ${hls} wide, layers ${JSON.stringify(layers)}`);
  await viewer.waitForTimeout(250);
}
console.log(`layers sent ${JSON.stringify(layers)}; LL-HLS ${hls} wide`);
await viewer.screenshot({ path: `${shots}/webrtc-viewer-llhls-desktop.png` });
// And back to real time.
await viewer.locator("#mode-switch").click();
await viewer.locator("#rt-player").waitFor({ state: "visible", timeout: T });
await viewer.waitForFunction(() => {
  const v = document.getElementById("rt-video");
  return v instanceof HTMLVideoElement && v.readyState >= 2 && v.videoWidth > 0;
}, null, { timeout: T });

// Stop: the viewer's real-time player goes, the badge says offline.
await owner.locator("#rt-stop").click();
await owner.locator("#rt-status").filter({ hasText: "ended" }).waitFor({ timeout: T });
await viewer.locator("#rt-player").waitFor({ state: "hidden", timeout: T });
await viewer.locator("#live-badge").filter({ hasText: "offline" }).waitFor({ timeout: T });
// The broadcast was kept as a video in the owner's library.
await owner.waitForFunction(async () => {
  const r = await fetch("/api/v1/videos");
  const body = await r.json();
  return body.videos.some((v) => v.status === "ready" && v.duration_s > 1);
}, null, { timeout: 45000, polling: 1000 });

// The panel in Korean at phone size.
const ko = await open("ko", { locale: "ko-KR", viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, storageState: await owner.context().storageState() });
await ko.goto(`${base}/r/browser-stage`);
await ko.locator("#streaming summary").click();
await ko.locator("#rt-broadcast h3").filter({ hasText: "이 브라우저에서 방송하기" }).waitFor({ timeout: T });
await ko.locator("#streaming").screenshot({ path: `${shots}/webrtc-golive-phone-ko.png` });

await browser.close();
if (process.exitCode) process.exit(process.exitCode);
console.log("WEBRTC-ROOM-OK");
