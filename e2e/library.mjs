// Browser test of the video library: a member uploads a file through the "My videos" page
// (tus-js-client, progress to 100 %), the card turns ready through the live event stream with no
// reload, the video plays with storyboard previews on its seek bar, the owner makes it public and
// creates share links in the UI, and a browser without an account plays a link, is asked for a
// link's password, and is told when a link does not exist or was revoked. Screenshots of the
// library, video and share pages at desktop and phone sizes, in English and Korean.
// Env: MOIM_URL, MOIM_CHROMIUM, MOIM_SCREENSHOTS, MOIM_VIDEO_FILE (an H.264/AAC MP4).
import { chromium } from "playwright-core";
import { basename } from "node:path";
import assert from "node:assert/strict";

const base = process.env.MOIM_URL;
const shots = process.env.MOIM_SCREENSHOTS;
const file = process.env.MOIM_VIDEO_FILE;
if (!base || !file) throw new Error("MOIM_URL and MOIM_VIDEO_FILE are required");
const T = 30000;
// Processing on a busy 2-core machine (thumbnail and storyboard need ffmpeg).
const SLOW = 120000;
// A fresh name per run, so the script can run again against the same server.
const run = Math.random().toString(36).slice(2, 7);
const title = basename(file).replace(/\.[^.]+$/, "");

const browser = await chromium.launch({
  executablePath: process.env.MOIM_CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--autoplay-policy=no-user-gesture-required"],
});
const sizes = {
  desktop: { viewport: { width: 1280, height: 800 } },
  phone: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true },
};
const locales = { en: "en-US", ko: "ko-KR" };

/** A page whose script errors and CSP refusals (an inline style, say) fail the run. */
async function newPage(opts = {}) {
  const ctx = await browser.newContext({ ...sizes.desktop, locale: "en-US", ...opts });
  const page = await ctx.newPage();
  page.on("pageerror", (e) => { console.error("page error:", e); process.exitCode = 1; });
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy/i.test(m.text())) { console.error("CSP:", m.text()); process.exitCode = 1; }
  });
  page.on("dialog", (d) => d.accept());
  return page;
}

async function signup(page, name) {
  await page.goto(base + "/");
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.locator("#auth-form input[name=username]").fill(name);
  await page.locator("#auth-form input[name=password]").fill("correct horse battery");
  await page.locator("#auth-form button[type=submit]").click();
  await page.locator("[data-testid=whoami]").filter({ hasText: name }).waitFor({ timeout: T });
}

/**
 * Starts the page's video (muted, so autoplay rules allow it) and waits until it is past 1 s.
 * A press while the player is still attaching its source is cut short by that load
 * (`AbortError`), as a viewer's would be: then it presses again.
 */
async function plays(page) {
  await page.locator("#video").waitFor({ timeout: T });
  for (let tries = 0; ; tries++) {
    const started = await page.locator("#video").evaluate(async (v) => {
      v.muted = true;
      try { await v.play(); return true; } catch (e) { if (e.name === "AbortError") return false; throw e; }
    });
    if (started) break;
    assert.ok(tries < 50, "play() was interrupted by a new load 50 times");
    await page.waitForTimeout(100);
  }
  await page.waitForFunction(() => {
    const v = document.getElementById("video");
    return v && !v.paused && v.readyState >= 2 && v.currentTime > 1;
  }, null, { timeout: T });
}

/** The same frame in every screenshot. */
async function still(page) {
  await page.locator("#video").evaluate(async (v) => {
    v.pause();
    v.currentTime = 2;
    await new Promise((r) => v.addEventListener("seeked", r, { once: true }));
  });
}

async function shot(page, name, fullPage = true) {
  if (shots) await page.screenshot({ path: `${shots}/${name}.png`, fullPage });
}

try {
  const owner = await newPage();
  const name = `lib-${run}`;
  await signup(owner, name);

  // Upload through the picker; the row's bar goes to 100 %.
  await owner.goto(base + "/videos");
  await owner.locator("#dropzone").waitFor({ timeout: T });
  await owner.locator("#usage-text").waitFor({ timeout: T });
  await owner.evaluate(() => { window.sameDocument = true; });
  await owner.locator("#file-input").setInputFiles(file);
  const row = owner.locator("#upload-list li.upload").first();
  await row.locator("progress").waitFor({ timeout: T });
  assert.equal(await row.locator(".name").textContent(), basename(file));
  await owner.locator("#upload-list li.upload[data-state=done]").waitFor({ timeout: SLOW });
  assert.equal(await row.locator("progress").evaluate((p) => p.value), 100);
  assert.equal(await row.locator(".pct").textContent(), "100%");
  const id = await row.locator("a[data-video]").getAttribute("data-video");
  assert.ok(id, "the finished upload names its video");
  await shot(owner, "en-desktop-library-upload", false);

  // The card appears and turns ready by itself, from the event stream.
  const card = owner.locator(`#video-list a[data-video="${id}"]`);
  await card.waitFor({ timeout: T });
  await owner.locator(`#video-list a[data-video="${id}"][data-status=ready]`).waitFor({ timeout: SLOW });
  assert.equal(await owner.evaluate(() => window.sameDocument), true, "the list updated without a reload");
  assert.equal(await card.locator(".title").textContent(), title);
  await owner.waitForFunction((sel) => { const i = document.querySelector(sel); return i && i.naturalWidth > 0; },
    `#video-list a[data-video="${id}"] .thumb img`, { timeout: T });
  assert.match(await card.locator(".meta").textContent(), /Private/);
  await owner.locator("#usage-text", { hasText: /[1-9].*used/ }).waitFor({ timeout: T });
  assert.equal(await owner.locator("#public-page").getAttribute("href"), `/u/${name}`);

  // The video page plays it, with the thumbnail as poster and previews on the seek bar.
  await card.click();
  await owner.waitForURL(`${base}/v/${id}`, { timeout: T });
  await plays(owner);
  assert.match(await owner.locator("#video").getAttribute("poster"), /thumbnail\.jpg$/);
  const seek = owner.locator("#seek");
  const box = await seek.boundingBox();
  const tile = owner.locator("#seek-tile");
  // The storyboard loads beside the video: move over the bar until a tile shows.
  for (let i = 0; !(await tile.isVisible()); i++) {
    assert.ok(i < 60, "a storyboard tile shows on hover");
    await owner.mouse.move(box.x + box.width * (0.2 + (i % 2) * 0.5), box.y + box.height / 2);
    await owner.waitForTimeout(250);
  }
  assert.match(await tile.evaluate((e) => e.style.backgroundImage), /storyboard\.jpg/);
  await shot(owner, "en-desktop-video-seek", false);
  const left = Number(await tile.getAttribute("data-x"));
  await owner.mouse.move(box.x + box.width * 0.9, box.y + box.height / 2);
  assert.ok(Number(await tile.getAttribute("data-x")) !== left || (await tile.getAttribute("data-y")) !== "0",
    "a later time shows another tile");
  // A click on the bar seeks there.
  await owner.mouse.click(box.x + box.width * 0.75, box.y + box.height / 2);
  await owner.waitForFunction(() => { const v = document.getElementById("video"); return v.currentTime > v.duration * 0.6; }, null, { timeout: T });

  // The owner renames it, makes it public and makes two links: a plain one and one with a password.
  await owner.locator("#rename-input").fill(`${title} · 테스트`);
  await owner.locator("#rename-form button").click();
  await owner.locator("#video-title", { hasText: "테스트" }).waitFor({ timeout: T });
  await owner.locator("#visibility").selectOption("public");
  await owner.locator("#manage [role=status]", { hasText: "Saved" }).waitFor({ timeout: T });
  assert.equal(await owner.locator("#download-original").getAttribute("href"), `/api/v1/videos/${id}/original`);
  const slug = `e2e-${run}`;
  await owner.locator("#share-slug").fill(slug);
  await owner.locator("#share-form button[type=submit]").click();
  const share = owner.locator(`#share-list li.share[data-code="${slug}"]`);
  await share.waitFor({ timeout: T });
  assert.equal(await share.getAttribute("data-state"), "active");
  const url = await share.locator(".share-url").getAttribute("href");
  assert.equal(url, `${base}/s/${slug}`);
  await owner.waitForFunction((sel) => { const i = document.querySelector(sel); return i && i.naturalWidth > 0; },
    `#share-list li.share[data-code="${slug}"] img.qr`, { timeout: T });
  await owner.locator("#share-password").fill("open sesame");
  await owner.locator("#share-max-views").fill("5");
  await owner.locator("#share-form button[type=submit]").click();
  await owner.locator("#share-list li.share").nth(1).waitFor({ timeout: T });
  const locked = owner.locator("#share-list li.share").first();
  assert.match(await locked.locator(".meta").textContent(), /0 of 5 views/);
  const lockedUrl = await locked.locator(".share-url").getAttribute("href");
  await still(owner);
  await shot(owner, "en-desktop-video");

  // Without an account: the link plays.
  const anon = await newPage();
  await anon.goto(url);
  await anon.locator("#video-title", { hasText: "테스트" }).waitFor({ timeout: T });
  await plays(anon);
  await shot(anon, "en-desktop-share");

  // The password link asks, refuses a wrong one, then plays.
  const guest = await newPage();
  await guest.goto(lockedUrl);
  await guest.locator("#unlock-form").waitFor({ timeout: T });
  await guest.locator("#share-password").fill("wrong");
  await guest.locator("#unlock-form button[type=submit]").click();
  await guest.locator("#unlock-error", { hasText: "not right" }).waitFor({ timeout: T });
  await shot(guest, "en-desktop-share-password", false);
  await guest.locator("#share-password").fill("open sesame");
  await guest.locator("#unlock-form button[type=submit]").click();
  await plays(guest);

  // A link that never existed.
  await guest.goto(`${base}/s/no-such-link-${run}`);
  await guest.locator("#share-state h1", { hasText: "This link does not exist" }).waitFor({ timeout: T });

  // The member page lists the public video.
  await owner.goto(`${base}/u/${name}`);
  await owner.locator(`#member-videos a[data-video="${id}"]`).waitFor({ timeout: T });
  await owner.locator("#member-rooms li.muted").waitFor({ timeout: T });
  await shot(owner, "en-desktop-member", false);

  // The other sizes and Korean, signed in as the owner (the library and video pages) and
  // without an account (the share page).
  const cookies = await owner.context().cookies();
  for (const [lang, locale] of Object.entries(locales)) {
    for (const [size, opts] of Object.entries(sizes)) {
      const page = await newPage({ ...opts, locale });
      await page.context().addCookies(cookies);
      await page.goto(base + "/videos");
      await page.locator(`#video-list a[data-video="${id}"][data-status=ready] .thumb img`).waitFor({ timeout: T });
      await page.locator("#usage-text").waitFor({ timeout: T });
      await page.waitForFunction(() => [...document.images].every((i) => i.complete), null, { timeout: T });
      await shot(page, `${lang}-${size}-library`);
      await page.goto(`${base}/v/${id}`);
      await page.locator("#share-list li.share").first().waitFor({ timeout: T });
      await plays(page);
      await still(page);
      if (!(lang === "en" && size === "desktop")) await shot(page, `${lang}-${size}-video`);
      const visitor = await newPage({ ...opts, locale });
      await visitor.goto(url);
      await plays(visitor);
      await still(visitor);
      if (!(lang === "en" && size === "desktop")) await shot(visitor, `${lang}-${size}-share`);
      await visitor.context().close();
      await page.context().close();
    }
  }

  // Revoked: the owner revokes the link; the visitor who watched it is told so on reload.
  await owner.goto(`${base}/v/${id}`);
  await share.locator("button", { hasText: "Revoke" }).click();
  await owner.locator(`#share-list li.share[data-code="${slug}"][data-state=revoked]`).waitFor({ timeout: T });
  await anon.reload();
  await anon.locator("#share-state h1", { hasText: "This link was revoked" }).waitFor({ timeout: T });
  await shot(anon, "en-desktop-share-revoked", false);

  console.log("library browser test passed");
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
