// Screenshots of the main pages, for looking at: desktop (1280x800) and phone (390x844), in
// English and Korean (the Korean pages come from the browser's language, ko-KR). Not a test.
// Usage: MOIM_URL=http://127.0.0.1:PORT MOIM_SCREENSHOTS=/tmp/shots node e2e/screens.mjs
// against a fresh server (the first account made is the admin).
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const base = process.env.MOIM_URL;
const shots = process.env.MOIM_SCREENSHOTS || "target/screenshots";
mkdirSync(shots, { recursive: true });
const T = 20000;

const browser = await chromium.launch({
  executablePath: process.env.MOIM_CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
});
const sizes = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };

try {
  // One account and a room with a few messages, made in English.
  const setup = await (await browser.newContext({ locale: "en-US" })).newPage();
  await setup.goto(base + "/");
  await setup.getByRole("button", { name: "Sign up" }).click();
  await setup.locator("#auth-form input[name=username]").fill("minji");
  await setup.locator("#auth-form input[name=password]").fill("correct horse battery");
  await setup.locator("#auth-form button[type=submit]").click();
  await setup.locator("[data-testid=whoami]").waitFor({ timeout: T });
  await setup.locator("#create-room input[name=title]").fill("금요일 영화의 밤 · Friday movies");
  await setup.locator("#create-room input[name=slug]").fill("movies");
  await setup.locator("#create-room button[type=submit]").click();
  await setup.locator("#chat-status.online").waitFor({ timeout: T });
  for (const text of ["안녕하세요! 오늘 뭐 볼까요?", "Something with subtitles, please 🙏"]) {
    await setup.locator("#chat-input").fill(text);
    await setup.locator("#chat-input").press("Enter");
    await setup.locator("#messages .msg .text", { hasText: text }).waitFor({ timeout: T });
  }
  const cookies = await setup.context().cookies();

  for (const [lang, locale] of [["en", "en-US"], ["ko", "ko-KR"]]) {
    for (const [size, viewport] of Object.entries(sizes)) {
      const opts = { locale, viewport, isMobile: size === "phone", hasTouch: size === "phone" };
      const anon = await (await browser.newContext(opts)).newPage();
      anon.on("pageerror", (e) => { console.error("page error:", e); process.exitCode = 1; });
      await anon.goto(base + "/");
      await anon.locator("#room-list a").first().waitFor({ timeout: T });
      await anon.screenshot({ path: `${shots}/${lang}-${size}-home-anonymous.png`, fullPage: true });
      await anon.goto(base + "/no/such/page");
      await anon.locator("h1").waitFor({ timeout: T });
      await anon.screenshot({ path: `${shots}/${lang}-${size}-not-found.png` });

      const ctx = await browser.newContext(opts);
      await ctx.addCookies(cookies);
      const page = await ctx.newPage();
      page.on("pageerror", (e) => { console.error("page error:", e); process.exitCode = 1; });
      await page.goto(base + "/");
      await page.locator("#room-list a").first().waitFor({ timeout: T });
      await page.screenshot({ path: `${shots}/${lang}-${size}-home.png`, fullPage: true });
      await page.locator("#room-list a[data-slug=movies]").click();
      await page.locator("#chat-status.online").waitFor({ timeout: T });
      await page.locator("#streaming summary").click();
      await page.locator("#room-settings summary").click();
      await page.locator("#ban-list li").first().waitFor({ timeout: T });
      await page.screenshot({ path: `${shots}/${lang}-${size}-room.png`, fullPage: true });
      await page.locator("a[href='/videos']").click();
      await page.locator("#video-list li").first().waitFor({ timeout: T });
      await page.screenshot({ path: `${shots}/${lang}-${size}-videos.png` });
      await page.locator("a[href='/admin']").click();
      await page.locator("#terms-form").waitFor({ timeout: T });
      await page.screenshot({ path: `${shots}/${lang}-${size}-admin.png` });
      await ctx.close();
      await anon.context().close();
    }
  }
  console.log(`screenshots in ${shots}`);
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
