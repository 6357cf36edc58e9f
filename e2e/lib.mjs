// What the browser scripts share: Chromium as they run it, a member signed up on its own page,
// and a page's peer connections kept within reach for their stats.
import { chromium } from "playwright-core";

/** How long a step may wait, ms. */
export const T = 30000;

/** @param {unknown} cond @param {string} what */
export function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

/** Debian's Chromium (or MOIM_CHROMIUM), headless, with a fake camera and microphone. */
export function launch() {
  return chromium.launch({
    executablePath: process.env.MOIM_CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run",
      "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required"],
  });
}

/**
 * Keeps every RTCPeerConnection the page makes in `window.__pcs`. With `relayOnly`, each is
 * made with `iceTransportPolicy: "relay"` on top of the page's own configuration (what a
 * browser on a network that lets no UDP out ends up with).
 * @param {import("playwright-core").Page} page
 */
export async function capturePeerConnections(page, { relayOnly = false } = {}) {
  await page.addInitScript((relay) => {
    const Real = window.RTCPeerConnection;
    /** @type {RTCPeerConnection[]} */
    const made = [];
    Object.defineProperty(window, "__pcs", { value: made });
    // @ts-ignore
    window.RTCPeerConnection = function (config) {
      const pc = new Real(relay ? { ...(config || {}), iceTransportPolicy: "relay" } : config);
      made.push(pc);
      return pc;
    };
    window.RTCPeerConnection.prototype = Real.prototype;
    Object.setPrototypeOf(window.RTCPeerConnection, Real);
  }, relayOnly);
}

/**
 * A new member: its own context (English, desktop size, the microphone, or `permissions`,
 * allowed) and page, its
 * peer connections captured, signed up as `name` on moim at `base`.
 * @param {import("playwright-core").Browser} browser @param {string} base @param {string} name
 */
export async function member(browser, base, name, { relayOnly = false, permissions = ["microphone"] } = {}) {
  const ctx = await browser.newContext({ locale: "en-US", viewport: { width: 1280, height: 900 }, permissions });
  const page = await ctx.newPage();
  page.on("pageerror", (e) => { console.error(`[${name}] page error:`, e); process.exitCode = 1; });
  await capturePeerConnections(page, { relayOnly });
  await page.goto(`${base}/`);
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.locator("#auth-form input[name=username]").fill(name);
  await page.locator("#auth-form input[name=password]").fill("correct horse battery");
  await page.locator("#auth-form button[type=submit]").click();
  await page.locator("#create-room").waitFor({ timeout: T });
  return page;
}

/**
 * A page of its own context, not signed in, at moim's `base`: its errors and console errors
 * printed (a page error fails the script).
 * @param {import("playwright-core").Browser} browser @param {string} base @param {string} name
 */
export async function page(browser, base, name) {
  const ctx = await browser.newContext();
  const p = await ctx.newPage();
  p.on("pageerror", (e) => { console.error(`[${name}] page error:`, e); process.exitCode = 1; });
  p.on("console", (m) => { if (m.type() === "error") console.error(`[${name}]`, m.text()); });
  await p.goto(`${base}/`);
  return p;
}
