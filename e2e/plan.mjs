// Planning a dinner in real browsers: mina makes a private room and an invite link; joon (in
// Korean) and sora open the link signed out, sign up on its page and land in the room. On the
// Map tab (tiles from the test's tile server) each sees the others' viewports move, one follows
// another, and each drops a candidate place; mina starts a ranked poll from the pins, all three
// vote and watch the count move, mina closes it, and everyone sees the winner on the map and
// in the chat. Screenshots: the map with three viewports and the poll (desktop), the same room
// at phone size, and the invite page. Exits non-zero on any failure.
// Env: MOIM_URL, MOIM_CHROMIUM, MOIM_SCREENSHOTS.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const base = process.env.MOIM_URL;
const shots = process.env.MOIM_SCREENSHOTS || "target/screenshots";
if (!base) throw new Error("MOIM_URL is needed");
mkdirSync(shots, { recursive: true });
const T = 30000;

const browser = await chromium.launch({
  executablePath: process.env.MOIM_CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
});

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

/** A page in a context of its own. */
async function open(name, opts = {}) {
  const ctx = await browser.newContext({ locale: "en-US", viewport: { width: 1280, height: 900 }, ...opts });
  const page = await ctx.newPage();
  page.on("pageerror", (e) => { console.error(`[${name}] page error:`, e); process.exitCode = 1; });
  return page;
}

/** Signs up on whatever page shows the auth card. */
async function signUp(page, name, signUpLabel) {
  await page.getByRole("button", { name: signUpLabel }).click();
  await page.locator("#auth-form input[name=username]").fill(name);
  await page.locator("#auth-form input[name=password]").fill("correct horse battery");
  await page.locator("#auth-form button[type=submit]").click();
}

/** Drags the map by (dx, dy) pixels. */
async function drag(page, dx, dy) {
  const box = await page.locator("#plan-map").boundingBox();
  const x = box.x + box.width / 2;
  const y = box.y + box.height / 2;
  await page.mouse.move(x, y);
  await page.mouse.down();
  for (let i = 1; i <= 8; i++) await page.mouse.move(x + (dx * i) / 8, y + (dy * i) / 8);
  await page.mouse.up();
}

/** Clicks the map at (fx, fy), fractions of its box, and names the pin dropped there. */
async function dropPin(page, fx, fy, name) {
  const box = await page.locator("#plan-map").boundingBox();
  await page.mouse.click(box.x + box.width * fx, box.y + box.height * fy);
  await page.locator("#pin-form").waitFor({ state: "visible", timeout: T });
  await page.locator("#pin-name").fill(name);
  await page.locator("#pin-form button[type=submit]").click();
}

const whereOf = (page, user) => page.locator(`#plan-people [data-user="${user}"] .where`).textContent();

try {
  const mina = await open("mina");
  await mina.goto(base + "/");
  await signUp(mina, "mina", "Sign up");
  await mina.locator("[data-testid=whoami]").waitFor({ timeout: T });
  await mina.locator("#create-room input[name=title]").fill("Friday dinner");
  await mina.locator("#create-room input[name=slug]").fill("friday-dinner");
  await mina.locator("#create-private").check();
  await mina.locator("#create-room button[type=submit]").click();
  await mina.waitForURL(/\/r\/friday-dinner$/, { timeout: T });
  check(await mina.locator("#room-private").isChecked(), "the room was made private");
  await mina.locator("#invite-expiry").selectOption("7");
  await mina.locator("#invite-uses").fill("5");
  await mina.locator("#invite-create").click();
  const link = await mina.locator("#invite-list .invite-url").first().inputValue({ timeout: T });
  check(/\/i\/[a-z2-9]{16}$/.test(link), `an invite link: ${link}`);

  // The friends open it signed out, sign up there, and land in the room.
  const joon = await open("joon", { locale: "ko-KR" });
  await joon.goto(link);
  await joon.locator("#invite-room").waitFor({ timeout: T });
  check((await joon.locator("#invite-room").textContent()).includes("Friday dinner"), "the invite names the room");
  await joon.screenshot({ path: `${shots}/invite-ko.png` });
  await signUp(joon, "joon", "가입하기");
  await joon.waitForURL(/\/r\/friday-dinner/, { timeout: T });
  const sora = await open("sora");
  await sora.goto(link);
  await signUp(sora, "sora", "Sign up");
  await sora.waitForURL(/\/r\/friday-dinner/, { timeout: T });
  // A stranger without the link is told the room does not exist.
  const stranger = await open("stranger");
  await stranger.goto(base + "/r/friday-dinner");
  await stranger.locator("h1").filter({ hasText: /not found|없/ }).waitFor({ timeout: T });

  // Everyone on the Map tab: the tiles come from the operator's (test) tile server.
  const pages = { mina, joon, sora };
  for (const p of Object.values(pages)) {
    await p.locator("#tab-map").click();
    await p.locator("#plan-map .leaflet-tile-loaded").first().waitFor({ timeout: T });
  }
  // Each moves a little; each then sees the other two (outlines on the map, lines in the list).
  await drag(mina, -60, 20);
  await drag(joon, 80, -40);
  await drag(sora, 30, 70);
  for (const [name, p] of Object.entries(pages)) {
    for (const other of Object.keys(pages).filter((o) => o !== name)) {
      await p.locator(`#plan-people [data-user="${other}"]`).waitFor({ timeout: T });
    }
    await p.waitForFunction(() => document.querySelectorAll("#plan-map path.view-outline").length === 2, null, { timeout: T });
  }
  // joon's view moves on mina's screen when he drags.
  const before = await whereOf(mina, "joon");
  await drag(joon, -150, 0);
  await mina.waitForFunction((b) => document.querySelector('#plan-people [data-user="joon"] .where')?.textContent !== b, before, { timeout: T });
  // mina follows joon: her map goes where his goes, which sora sees as mina's view.
  await mina.locator('#plan-people [data-follow="joon"]').click();
  await drag(joon, 0, 120);
  await mina.locator('#plan-people [data-follow="joon"][aria-pressed="true"]').waitFor({ timeout: T });
  await sora.waitForFunction(() => {
    // "lat, lng · zoom z": the same place to within a few metres (maps round to their pixels).
    const w = (u) => (document.querySelector(`#plan-people [data-user="${u}"] .where`)?.textContent || "").match(/-?[\d.]+/g)?.map(Number);
    const [j, m] = [w("joon"), w("mina")];
    return j && m && Math.abs(j[0] - m[0]) < 1e-3 && Math.abs(j[1] - m[1]) < 1e-3 && j[2] === m[2];
  }, null, { timeout: T });
  await mina.locator('#plan-people [data-follow="joon"]').click();

  // Candidates: one each, dropped on the map.
  await dropPin(mina, 0.35, 0.4, "Ramen Bar");
  await dropPin(joon, 0.55, 0.5, "Taco Stand");
  await dropPin(sora, 0.65, 0.3, "Bibimbap House");
  for (const p of Object.values(pages)) {
    await p.waitForFunction(() => document.querySelectorAll("#plan-pins .pin-item").length === 3, null, { timeout: T });
    await p.waitForFunction(() => document.querySelectorAll("#plan-map .map-pin.candidate").length === 3, null, { timeout: T });
  }

  // A ranked poll from the pins, results always.
  await mina.locator("#poll-new").click();
  await mina.locator("#poll-question").fill("Where for dinner?");
  await mina.locator("#poll-from-pins").check();
  await mina.locator("#poll-mode").selectOption("ranked");
  await mina.locator("#poll-form button[type=submit]").click();
  const poll = mina.locator("#poll-list .poll").first();
  await poll.waitFor({ timeout: T });
  const pollId = await poll.getAttribute("data-poll");
  for (const p of [joon, sora]) await p.locator(`[data-poll="${pollId}"]`).waitFor({ timeout: T });
  /** Ranks options (by their index, in order) and votes. */
  const rankAndVote = async (p, order) => {
    const card = p.locator(`[data-poll="${pollId}"]`);
    for (const i of order) await card.locator(`[data-rank-option="${i}"]`).click();
    await card.locator("[data-vote]").click();
  };
  // Options are the pins in order: Ramen Bar 0, Taco Stand 1, Bibimbap House 2.
  await rankAndVote(mina, [0, 1]);
  for (const p of Object.values(pages)) {
    await p.locator(`[data-poll="${pollId}"] [data-voters="1"]`).waitFor({ timeout: T });
  }
  await rankAndVote(joon, [1, 0]);
  await rankAndVote(sora, [1, 2]);
  // Live: everyone sees three ballots, two first choices for the taco stand.
  for (const p of Object.values(pages)) {
    await p.locator(`[data-poll="${pollId}"] [data-voters="3"]`).waitFor({ timeout: T });
    await p.locator(`[data-poll="${pollId}"] [data-option="1"] [data-count="2"]`).waitFor({ timeout: T });
  }
  // The whole Map tab at once: the map with the other two's viewports, the lists, the poll.
  await mina.setViewportSize({ width: 1280, height: 1400 });
  await mina.locator("#room-title").scrollIntoViewIfNeeded();
  await mina.screenshot({ path: `${shots}/plan-map-desktop.png` });

  // mina closes it: the winner on every map and in every chat.
  await mina.locator(`[data-poll="${pollId}"] [data-close]`).click();
  for (const p of Object.values(pages)) {
    await p.locator(`[data-poll="${pollId}"] .poll-option.winner[data-option="1"]`).waitFor({ timeout: T });
    await p.locator("#plan-pins .pin-item.winner").filter({ hasText: "Taco Stand" }).waitFor({ timeout: T });
    await p.locator("#plan-map .map-pin.winner").waitFor({ timeout: T });
    await p.locator(".msg.notice").filter({ hasText: "Taco Stand" }).waitFor({ timeout: T });
  }
  await mina.screenshot({ path: `${shots}/plan-winner-desktop.png` });
  await joon.setViewportSize({ width: 1280, height: 1400 });
  await joon.locator("#room-title").scrollIntoViewIfNeeded();
  await joon.screenshot({ path: `${shots}/plan-map-ko.png` });
  // At phone size the map, the lists and the poll stack.
  await sora.setViewportSize({ width: 390, height: 844 });
  await sora.locator("#plan-map").scrollIntoViewIfNeeded();
  await sora.screenshot({ path: `${shots}/plan-phone.png`, fullPage: true });
  console.log("PLAN-OK");
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
