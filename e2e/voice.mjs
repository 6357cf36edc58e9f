// Voice in a room: three members in three Chromium contexts with fake microphones (a beeping
// tone) join the room's voice chat; each hears the two others (audio energy measured with an
// AnalyserNode on what each receiving line plays) and sees them speak; muting one silences it
// for the others and marks it muted; push-to-talk (the button held, then the space bar) is heard
// only while held; a member turned down to nothing plays at volume 0 on that page only; cameras
// turned on show as tiles on the others' pages and go when turned off; the owner (a moderator)
// removes a member, who is told.
// Screenshots of the voice panel, desktop English and phone Korean.
// Env: MOIM_URL, MOIM_CHROMIUM, MOIM_SCREENSHOTS.
import { T, check, launch, member } from "./lib.mjs";
import { mkdirSync } from "node:fs";

const base = process.env.MOIM_URL;
const shots = process.env.MOIM_SCREENSHOTS || "target/screenshots";
if (!base) throw new Error("MOIM_URL is needed");
mkdirSync(shots, { recursive: true });
const browser = await launch();

/** RMS energy of what each receiving line plays, over 600 ms, by line. */
async function energies(page) {
  return page.evaluate(async () => {
    const ctx = new AudioContext();
    const probes = [...document.querySelectorAll("audio[data-line]")].map((a) => {
      const el = /** @type {HTMLAudioElement} */ (a);
      if (!(el.srcObject instanceof MediaStream) || !el.srcObject.getAudioTracks().length) return null;
      const an = ctx.createAnalyser();
      an.fftSize = 2048;
      ctx.createMediaStreamSource(el.srcObject).connect(an);
      return { line: Number(el.dataset.line), an, sum: 0, n: 0 };
    }).filter((p) => p !== null);
    const buf = new Float32Array(2048);
    for (let i = 0; i < 12; i++) {
      await new Promise((r) => setTimeout(r, 50));
      for (const p of probes) {
        p.an.getFloatTimeDomainData(buf);
        let s = 0;
        for (const x of buf) s += x * x;
        p.sum += s / buf.length;
        p.n += 1;
      }
    }
    await ctx.close();
    /** @type {Record<number, number>} */
    const out = {};
    for (const p of probes) out[p.line] = Math.sqrt(p.sum / Math.max(1, p.n));
    return out;
  });
}

const owner = await member(browser, base, "host", { permissions: ["microphone", "camera"] });
await owner.locator("#create-room input[name=title]").fill("Talk room");
await owner.locator("#create-room input[name=slug]").fill("talk");
await owner.locator("#create-room button[type=submit]").click();
await owner.waitForURL(`${base}/r/talk`, { timeout: T });
const ann = await member(browser, base, "ann", { permissions: ["microphone", "camera"] });
const bo = await member(browser, base, "bo", { permissions: ["microphone", "camera"] });
for (const p of [ann, bo]) await p.goto(`${base}/r/talk`);
const all = [owner, ann, bo];
for (const p of all) await p.locator("#voice-members").filter({ hasText: "Nobody is talking yet." }).waitFor({ timeout: T });

for (const p of all) {
  await p.locator("#voice-join").click();
  await p.locator("#voice-status").filter({ hasText: "You are in voice." }).waitFor({ timeout: T });
}
for (const p of all) await p.locator("#voice-members li.voice-member").nth(2).waitFor({ timeout: T });

// Each hears the two others: two receiving lines carry sound, its own does not.
const slots = await owner.evaluate(() =>
  Object.fromEntries([...document.querySelectorAll("#voice-members li.voice-member")].map((li) => [li.getAttribute("data-user"), 0])));
check(Object.keys(slots).sort().join(",") === "ann,bo,host", `the members listed: ${Object.keys(slots)}`);
for (const [name, p] of [["host", owner], ["ann", ann], ["bo", bo]]) {
  let heard = [];
  for (let tries = 0; tries < 20; tries++) {
    const e = await energies(p);
    heard = Object.values(e).filter((v) => v > 0.01);
    if (heard.length === 2) break;
  }
  check(heard.length === 2, `${name} hears the two others`);
}
// The fake microphones beep: someone is shown speaking.
await owner.locator("#voice-members li.voice-member.speaking").first().waitFor({ timeout: T });

// Cameras: the host and ann turn theirs on; each of the others sees them as tiles, playing.
/** Whether `page` shows `name`'s camera tile with moving pictures. */
async function seesCamera(page, name) {
  const tile = page.locator(`#voice-tiles figure.voice-tile[data-user="${name}"] video`);
  await tile.waitFor({ timeout: T });
  // Decoded frames counted by the element (a page in the background may paint rarely, so
  // painted frames are not what is counted), polled for up to 20 s.
  return tile.evaluate(async (v) => {
    const video = /** @type {HTMLVideoElement} */ (v);
    const decoded = () => video.getVideoPlaybackQuality().totalVideoFrames;
    let first = -1;
    for (let i = 0; i < 200; i++) {
      if (video.videoWidth > 0) {
        if (first < 0) first = decoded();
        else if (decoded() >= first + 5) return true;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  });
}
await owner.locator("#voice-camera").click();
await owner.locator("#voice-tiles figure.voice-tile.mine").waitFor({ timeout: T });
await ann.locator("#voice-camera").click();
check(await seesCamera(ann, "host"), "ann sees the host's camera");
check(await seesCamera(bo, "host"), "bo sees the host's camera");
check(await seesCamera(owner, "ann"), "the host sees ann's camera");
check(await seesCamera(bo, "ann"), "bo sees ann's camera");
check(await owner.locator("#voice-camera").getAttribute("aria-pressed") === "true", "the host's camera button says on");
await owner.locator("#voice").screenshot({ path: `${shots}/voice-panel-desktop.png` });
// The host turns it off: its tile goes from the others' pages.
await owner.locator("#voice-camera").click();
await ann.locator('#voice-tiles figure.voice-tile[data-user="host"]').waitFor({ state: "detached", timeout: T });
await bo.locator('#voice-tiles figure.voice-tile[data-user="host"]').waitFor({ state: "detached", timeout: T });
check(await seesCamera(bo, "ann"), "ann's camera stays on for bo");

// Ann mutes: the others see it and stop hearing her (the server stops forwarding her).
const before = await energies(owner);
await ann.locator("#voice-mute").click();
await owner.locator('#voice-members li.voice-member.muted[data-user="ann"]').waitFor({ timeout: T });
await bo.locator('#voice-members li.voice-member.muted[data-user="ann"]').waitFor({ timeout: T });
let quiet = false;
for (let tries = 0; tries < 20 && !quiet; tries++) {
  const e = await energies(owner);
  quiet = Object.values(e).filter((v) => v > 0.01).length === 1;
}
check(quiet, `the host hears only bo once ann mutes (before: ${JSON.stringify(before)})`);
await ann.locator("#voice-mute").click();
await owner.locator('#voice-members li.voice-member.muted[data-user="ann"]').waitFor({ state: "detached", timeout: T });

// Push to talk: muted again, ann holds the button, then the space bar: heard while held, muted
// once let go.
const annMuted = '#voice-members li.voice-member.muted[data-user="ann"]';
await ann.locator("#voice-mute").click();
await owner.locator(annMuted).waitFor({ timeout: T });
await ann.locator("#voice-ptt").dispatchEvent("pointerdown");
await owner.locator(annMuted).waitFor({ state: "detached", timeout: T });
let both = false;
for (let tries = 0; tries < 20 && !both; tries++) both = Object.values(await energies(owner)).filter((v) => v > 0.01).length === 2;
check(both, "the host hears ann while she holds push-to-talk");
await ann.locator("#voice-ptt").dispatchEvent("pointerup");
await owner.locator(annMuted).waitFor({ timeout: T });
await ann.locator("body").click({ position: { x: 5, y: 5 } });
await ann.keyboard.down("Space");
await owner.locator(annMuted).waitFor({ state: "detached", timeout: T });
await ann.keyboard.up("Space");
await owner.locator(annMuted).waitFor({ timeout: T });
check(await ann.locator("#voice-mute").getAttribute("aria-pressed") === "true", "ann is muted again after letting go");
await ann.locator("#voice-mute").click();
await owner.locator(annMuted).waitFor({ state: "detached", timeout: T });

// A volume per person: the host turns ann down to nothing; ann's line plays at 0, bo's at 1.
await owner.locator('#voice-members li[data-user="ann"] input.voice-volume').evaluate((el) => {
  const input = /** @type {HTMLInputElement} */ (el);
  input.value = "0";
  input.dispatchEvent(new Event("input", { bubbles: true }));
});
const volumes = await owner.evaluate(() => [...document.querySelectorAll("audio[data-line]")].map((a) => /** @type {HTMLAudioElement} */ (a).volume).sort());
check(volumes.filter((v) => v === 0).length === 1 && volumes.filter((v) => v === 1).length >= 1, `ann's line at 0, the others at 1: ${JSON.stringify(volumes)}`);

// The host removes bo from voice: bo is told, and the list has two.
await owner.locator('#voice-members li[data-user="bo"] button', { hasText: "Remove" }).click();
await bo.locator("#voice-status").filter({ hasText: "taken out of voice" }).waitFor({ timeout: T });
await owner.locator('#voice-members li[data-user="bo"]').waitFor({ state: "detached", timeout: T });
check(await bo.locator("#voice-join").isVisible(), "bo may join again");

// Korean, phone size.
const ko = await browser.newContext({ locale: "ko-KR", viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, permissions: ["microphone", "camera"], storageState: await ann.context().storageState() });
const kp = await ko.newPage();
await kp.goto(`${base}/r/talk`);
await kp.locator("#voice h3").filter({ hasText: "음성 대화" }).waitFor({ timeout: T });
await kp.locator("#voice-members li.voice-member").first().waitFor({ timeout: T });
await kp.locator("#voice").screenshot({ path: `${shots}/voice-panel-phone-ko.png` });

for (const p of [owner, ann]) await p.locator("#voice-leave").click();
await browser.close();
if (process.exitCode) process.exit(process.exitCode);
console.log("VOICE-OK");
