// Browser test: two people sign up in Chromium, chat both ways in one room, one reloads and sees
// history, the server restarts and both pages recover without losing or repeating messages.
// Started by tests/it/browser.rs with MOIM_URL, MOIM_CHROMIUM, MOIM_SCREENSHOTS, MOIM_RESTART_FILE.
import { chromium } from "playwright-core";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import assert from "node:assert/strict";

const base = process.env.MOIM_URL;
const shots = process.env.MOIM_SCREENSHOTS;
const restartFile = process.env.MOIM_RESTART_FILE;
const T = 20000;

const browser = await chromium.launch({
  executablePath: process.env.MOIM_CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
});

async function signup(page, name) {
  await page.goto(base + "/");
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.locator("#auth-form input[name=username]").fill(name);
  await page.locator("#auth-form input[name=password]").fill("correct horse battery");
  await page.locator("#auth-form button[type=submit]").click();
  await page.locator("[data-testid=whoami]").filter({ hasText: name }).waitFor({ timeout: T });
}

async function say(page, text) {
  await page.locator("#chat-input").fill(text);
  await page.locator("#chat-input").press("Enter");
}

const lines = (page, text) => page.locator("#messages .msg .text", { hasText: text });

async function expectOnce(page, text) {
  await lines(page, text).first().waitFor({ timeout: T });
  assert.equal(await lines(page, text).count(), 1, `"${text}" shown exactly once`);
}

async function seqsUnique(page) {
  const seqs = await page.locator("#messages .msg[data-seq]").evaluateAll((els) => els.map((e) => e.dataset.seq));
  assert.equal(new Set(seqs).size, seqs.length, `duplicate messages: ${seqs}`);
}

try {
  const a = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  const b = await (await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true })).newPage();
  for (const p of [a, b]) p.on("pageerror", (e) => { console.error("page error:", e); process.exitCode = 1; });

  await signup(a, "alice");
  await a.locator("#create-room input[name=title]").fill("모임 테스트 · Friday chat");
  await a.locator("#create-room input[name=slug]").fill("e2e-room");
  await a.locator("#create-room button[type=submit]").click();
  await a.waitForURL(base + "/r/e2e-room", { timeout: T });
  await a.locator("#chat-status.online").waitFor({ timeout: T });

  // Anonymous visitors can read but are asked to log in.
  await b.goto(base + "/r/e2e-room");
  await b.locator("#login-hint").waitFor({ timeout: T });
  await signup(b, "bob");
  await b.goto(base + "/r/e2e-room");
  await b.locator("#chat-status.online").waitFor({ timeout: T });

  await say(a, "안녕하세요 from alice <b>not bold</b>");
  await expectOnce(b, "안녕하세요 from alice <b>not bold</b>");
  assert.equal(await b.locator("#messages b").count(), 0, "user text must not become HTML");
  await say(b, "hello from bob 👋");
  await expectOnce(a, "hello from bob 👋");
  await a.locator("#viewers[data-count='2']").waitFor({ timeout: T });

  // The owner turns on slow mode from the moderation panel; the other page shows it at once.
  await a.locator("#room-settings summary").click();
  await a.locator("#slow-mode").selectOption("10");
  await b.locator("#slow-note").filter({ hasText: "10 s" }).waitFor({ timeout: T });
  await a.locator("#slow-mode").selectOption("0");
  await b.locator("#slow-note").waitFor({ state: "hidden", timeout: T });
  await a.locator("#room-settings summary").click();

  // Reload: history comes back, once.
  await b.reload();
  await b.locator("#chat-status.online").waitFor({ timeout: T });
  await expectOnce(b, "안녕하세요 from alice");
  await expectOnce(b, "hello from bob 👋");

  // The owner deletes a message from the chat panel: it disappears for everyone.
  await say(b, "a message to delete");
  await expectOnce(a, "a message to delete");
  const doomed = a.locator("#messages .msg", { hasText: "a message to delete" });
  await doomed.hover();
  await doomed.getByRole("button", { name: "Delete" }).click();
  await lines(b, "a message to delete").waitFor({ state: "detached", timeout: T });
  await lines(a, "a message to delete").waitFor({ state: "detached", timeout: T });

  await a.screenshot({ path: `${shots}/room.png` });
  await b.screenshot({ path: `${shots}/room-phone.png` });

  // The admin sets blocked terms in the admin page; evasions arrive masked.
  const admin = await (await browser.newContext()).newPage();
  await admin.context().addCookies(await a.context().cookies());
  await admin.goto(base + "/admin");
  await admin.locator("#terms").fill("시발\nfuck*");
  await admin.locator("#terms-form button[type=submit]").click();
  await admin.getByText("Saved 2 terms.").waitFor({ timeout: T });
  await admin.screenshot({ path: `${shots}/admin.png` });
  await admin.close();
  await say(b, "아 ㅅㅣㅂㅏㄹ 진짜");
  await expectOnce(a, "아 ***** 진짜");
  assert.equal(await lines(a, "ㅅㅣㅂㅏㄹ").count(), 0, "raw term never shown");

  // Server restart: both pages notice, reconnect by themselves, and miss nothing.
  writeFileSync(restartFile, "restart");
  const deadline = Date.now() + 60000;
  while (readFileSync(restartFile, "utf8") !== "restarted") {
    assert.ok(Date.now() < deadline, "restart not done in 60 s");
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const p of [a, b]) await p.locator("#chat-status.online").waitFor({ timeout: 30000 });
  await say(a, "after the restart");
  await expectOnce(b, "after the restart");
  await expectOnce(a, "after the restart");
  await say(b, "bob is back too");
  await expectOnce(a, "bob is back too");
  for (const p of [a, b]) {
    await expectOnce(p, "hello from bob 👋");
    await seqsUnique(p);
  }

  // Home page lists the room with its viewers.
  await a.goto(base + "/");
  await a.locator("#room-list a[data-slug='e2e-room']").waitFor({ timeout: T });
  await a.screenshot({ path: `${shots}/home.png` });
  await b.goto(base + "/");
  await b.locator("#room-list a[data-slug='e2e-room']").waitFor({ timeout: T });
  await b.screenshot({ path: `${shots}/home-phone.png` });
  const anon = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  await anon.goto(base + "/");
  await anon.locator("#auth-form").waitFor({ timeout: T });
  await anon.screenshot({ path: `${shots}/home-anonymous.png` });
  assert.ok(existsSync(`${shots}/home.png`));
  console.log("browser chat test: 1 passed, 0 failed");
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
