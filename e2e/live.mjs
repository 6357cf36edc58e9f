// Browser test of live broadcasting: the owner copies the server URL and stream key from the
// room's "Go live" panel, ffmpeg publishes a test pattern with them, a viewer's Chromium plays the
// LL-HLS stream with hls.js beside the chat, the broadcast ends, and the recording plays.
// Started by tests/it/browser.rs with MOIM_URL, MOIM_CHROMIUM, MOIM_SCREENSHOTS.
import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import assert from "node:assert/strict";

const base = process.env.MOIM_URL;
const shots = process.env.MOIM_SCREENSHOTS;
const T = 30000;
// Steps that wait on ffmpeg (thumbnails, the end of a recording) on a busy 2-core machine.
const SLOW = 120000;

/**
 * Asks the page `fn` (which may be async) every half second until it returns a truthy value,
 * and returns that value. (`waitForFunction` does not wait for a promise: it is truthy.)
 */
async function until(page, fn, timeout, what) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await page.evaluate(fn);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const browser = await chromium.launch({
  executablePath: process.env.MOIM_CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--autoplay-policy=no-user-gesture-required"],
});

let ffmpeg = null;
let ffmpegStart = 0;

function publish(url, seconds) {
  ffmpegStart = Date.now();
  const p = spawn("ffmpeg", ["-hide_banner", "-loglevel", "error", "-re",
    "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
    "-t", String(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
    "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-f", "flv", url],
  { stdio: ["ignore", "ignore", "inherit"] });
  p.exited = new Promise((resolve) => p.on("exit", (code) => resolve(code)));
  return p;
}

async function signup(page, name) {
  await page.goto(base + "/");
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.locator("#auth-form input[name=username]").fill(name);
  await page.locator("#auth-form input[name=password]").fill("correct horse battery");
  await page.locator("#auth-form button[type=submit]").click();
  await page.locator("[data-testid=whoami]").filter({ hasText: name }).waitFor({ timeout: T });
}

/** Waits until the page's video has played `seconds` more than when called. */
async function playsFor(page, seconds) {
  const t0 = await page.locator("#video").evaluate((v) => v.currentTime);
  await page.waitForFunction(([t, s]) => {
    const v = document.getElementById("video");
    return v && !v.paused && v.readyState >= 2 && v.currentTime > t + s;
  }, [t0, seconds], { timeout: T });
}

try {
  const owner = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  const viewer = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  for (const p of [owner, viewer]) p.on("pageerror", (e) => { console.error("page error:", e); process.exitCode = 1; });

  await signup(owner, "streamer");
  await owner.locator("#create-room input[name=title]").fill("라이브 · Live test");
  await owner.locator("#create-room input[name=slug]").fill("live-room");
  await owner.locator("#create-room button[type=submit]").click();
  await owner.waitForURL(base + "/r/live-room", { timeout: T });
  await owner.locator("#player-state", { hasText: "offline" }).waitFor({ timeout: T });

  // The "Go live" panel shows the server and a hidden key.
  await owner.locator("#streaming summary").click();
  const keyInput = owner.locator("#stream-key");
  await owner.waitForFunction(() => document.getElementById("stream-key").value.length > 0, null, { timeout: T });
  assert.equal(await keyInput.getAttribute("type"), "password", "the key is hidden until revealed");
  await owner.getByRole("button", { name: "Show" }).click();
  assert.equal(await keyInput.getAttribute("type"), "text");
  const server = await owner.locator("#rtmp-url").inputValue();
  const key = await keyInput.inputValue();
  assert.match(server, /^rtmp:\/\/127\.0\.0\.1:\d+\/live$/);
  assert.match(key, /^live_[A-Za-z0-9]{32}$/);
  await owner.getByRole("button", { name: "Hide" }).click();

  // A viewer waits in the room; nothing plays yet.
  await viewer.goto(base + "/r/live-room");
  await viewer.locator("#player-state", { hasText: "offline" }).waitFor({ timeout: T });

  ffmpeg = publish(`${server}/${key}`, 25);

  // The viewer's page turns live by itself and plays.
  await viewer.locator("#live-badge", { hasText: "LIVE" }).waitFor({ timeout: T });
  await viewer.locator("#video").waitFor({ timeout: T });
  await playsFor(viewer, 3);
  const uptime = await viewer.locator("#uptime").textContent();
  assert.match(uptime, /^\d+:\d\d$/, `uptime shown: ${uptime}`);
  assert.equal(await viewer.locator("#latency").isVisible(), false, "latency is for the owner");

  // Glass-to-glass, roughly: ffmpeg's test pattern starts at timestamp 0 when it is spawned
  // (a little before, so this overestimates), and hls.js keeps the stream's timestamps, so the
  // frame on screen was "captured" at ffmpegStart + currentTime.
  const onScreen = await viewer.locator("#video").evaluate((v) => v.currentTime);
  const glass = (Date.now() - ffmpegStart) / 1000 - onScreen;
  console.log(`glass-to-glass (upper bound): ${glass.toFixed(2)} s`);
  assert.ok(Number.isFinite(glass) && glass > 0, `latency ${glass}`);

  // The transcoder's 240p rung shows up in the quality picker; picking it switches the picture.
  await viewer.locator("#quality").waitFor({ state: "visible", timeout: T });
  const names = await viewer.locator("#quality option").allTextContents();
  assert.deepEqual(names, ["Auto", "360p (original)", "240p"], `qualities: ${names}`);
  await viewer.locator("#quality").selectOption({ label: "240p" });
  await viewer.waitForFunction(() => document.getElementById("video").videoHeight === 240, null, { timeout: T });
  await playsFor(viewer, 1);
  await viewer.locator("#quality").selectOption({ label: "Auto" });

  // The owner sees the stream too, with the latency readout.
  await owner.locator("#live-badge", { hasText: "LIVE" }).waitFor({ timeout: T });
  await playsFor(owner, 1);
  await owner.waitForFunction(() => document.getElementById("latency").dataset.seconds, null, { timeout: T });
  const behind = Number(await owner.locator("#latency").getAttribute("data-seconds"));
  console.log(`owner readout (program date time → screen): ${behind.toFixed(2)} s`);
  assert.ok(Number.isFinite(behind), "latency readout is a number");

  // Chat works beside the player.
  await owner.locator("#chat-input").fill("방송 시작했어요 — we are live");
  await owner.locator("#chat-input").press("Enter");
  await viewer.locator("#messages .msg .text", { hasText: "we are live" }).waitFor({ timeout: T });
  if (shots) await viewer.screenshot({ path: `${shots}/live-room.png` });

  // The home page lists the room first, as live, with a thumbnail once one is made.
  const home = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  await home.goto(base + "/");
  const first = home.locator("#room-list li").first();
  await first.locator(".badge.live").waitFor({ timeout: T });
  assert.equal(await first.locator("a").getAttribute("data-slug"), "live-room");
  await until(home, async () => {
    const r = await (await fetch("/api/v1/rooms/live-room")).json();
    return Boolean(r.room.thumbnail_url);
  }, SLOW, "the live thumbnail");
  await home.reload();
  await home.locator("#room-list li .thumb img").first().waitFor({ timeout: T });
  await home.waitForFunction(() => { const i = document.querySelector("#room-list .thumb img"); return i && i.naturalWidth > 0; }, null, { timeout: T });
  if (shots) await home.screenshot({ path: `${shots}/home-live.png` });

  // The broadcast ends: both pages say so.
  assert.equal(await ffmpeg.exited, 0, "ffmpeg published without error");
  ffmpeg = null;
  await viewer.locator("#player-state", { hasText: "ended" }).waitFor({ timeout: T });
  await viewer.locator("#live-badge", { hasText: "offline" }).waitFor({ timeout: T });

  // The recording is in the owner's videos and plays.
  await owner.goto(base + "/videos");
  // Processing ends in ready (with a thumbnail) or failed: wait for that, then say which.
  const recording = await until(owner, async () => {
    const { videos } = await (await fetch("/api/v1/videos")).json();
    return videos.length === 1 && videos[0].status !== "processing" && videos[0];
  }, SLOW, "the recording to be processed");
  assert.equal(recording.status, "ready", `the recording is ${recording.status}`);
  assert.ok(recording.thumbnail_url, "the recording has a thumbnail");
  await owner.reload();
  const card = owner.locator("#video-list a[data-video]").first();
  await card.locator(".thumb img").waitFor({ timeout: T });
  if (shots) await owner.screenshot({ path: `${shots}/videos.png` });
  await card.click();
  await owner.locator("#video").waitFor({ timeout: T });
  await owner.locator("#video").evaluate((v) => { v.muted = true; return v.play(); });
  await playsFor(owner, 2);
  const duration = await owner.locator("#video").evaluate((v) => v.duration);
  assert.ok(duration > 20 && duration < 30, `recording lasts ${duration} s for a 25 s broadcast`);
  if (shots) await owner.screenshot({ path: `${shots}/video.png` });
  console.log("live browser test passed");
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  if (ffmpeg) ffmpeg.kill("SIGKILL");
  await browser.close();
}
