// Signing up with a provider in a real browser: the log-in card shows "Continue with …" for each
// configured provider (Google, Kakao, Naver in their colours, and the community's own OpenID
// Connect provider, the test's oidc-provider); a member clicks the last, logs in at the provider,
// consents, chooses a username on moim's step (suggested from the provider's nickname) and lands
// signed in; settings show the provider connected. A second person does the same in Korean at
// phone size. A forged answer shows the error page. Screenshots: the log-in card and the username
// step (desktop English, phone Korean), settings, the error page. Exits non-zero on any failure.
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

async function open(name, opts = {}) {
  const ctx = await browser.newContext({ locale: "en-US", viewport: { width: 1280, height: 900 }, ...opts });
  const page = await ctx.newPage();
  page.on("pageerror", (e) => { console.error(`[${name}] page error:`, e); process.exitCode = 1; });
  return page;
}

/** From moim's log-in card through the provider's pages, back to moim. */
async function throughProvider(page, login) {
  await page.locator('#providers a[data-provider="test"]').click();
  await page.waitForURL(/\/interaction\//, { timeout: T }).catch(async (e) => { await page.screenshot({ path: `${shots}/signin-failed.png` }); throw new Error(`not at the provider login page but ${page.url()}: ${e}`); });
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill("anything");
  await page.locator('button[type="submit"]').click();
  // Consent, when the provider asks for it.
  await page.waitForURL((u) => u.href.startsWith(base) || /\/interaction\//.test(u.pathname), { timeout: T });
  if (!page.url().startsWith(base)) {
    await page.locator('button[type="submit"]').click();
  }
  await page.waitForURL(`${base}/welcome`, { timeout: T }).catch((e) => { throw new Error(`not at the username step but ${page.url()}: ${e}`); });
}

// English, desktop.
const en = await open("en");
await en.goto(`${base}/`);
await en.locator("#providers a").first().waitFor({ timeout: T });
const labels = await en.locator("#providers a").allTextContents();
check(labels.length === 4, `four providers, got ${labels}`);
check(labels.some((l) => l.includes("Continue with Google")) && labels.some((l) => l.includes("Continue with Kakao"))
  && labels.some((l) => l.includes("Continue with Naver")) && labels.some((l) => l.includes("Continue with Community ID")), `${labels}`);
const kakaoBg = await en.locator('#providers a[data-provider="kakao"]').evaluate((a) => getComputedStyle(a).backgroundColor);
check(kakaoBg === "rgb(254, 229, 0)", `Kakao's yellow, got ${kakaoBg}`);
await en.screenshot({ path: `${shots}/signin-login-desktop.png`, fullPage: true });

await throughProvider(en, "minji");
const name = en.locator("#welcome-username");
await name.waitFor({ timeout: T });
check(await name.inputValue() === "김민지", `suggested from the nickname, got ${await name.inputValue()}`);
await en.screenshot({ path: `${shots}/signin-username-desktop.png`, fullPage: true });
// A bad name is explained, then a good one makes the account.
await name.fill("x");
await en.locator("#welcome-form button[type=submit]").click();
await en.locator("#welcome-form .error").filter({ hasText: /2 to 32/ }).waitFor({ timeout: T });
await name.fill("minji_k");
await en.locator("#welcome-form button[type=submit]").click();
await en.waitForURL(`${base}/`, { timeout: T });
await en.locator('[data-testid="whoami"]').filter({ hasText: "minji_k" }).waitFor({ timeout: T });

await en.goto(`${base}/settings`);
const row = en.locator('#identities li[data-provider="test"]');
await row.locator('[data-action="disconnect"]').waitFor({ timeout: T });
check(await en.locator('#identities li[data-provider="google"] [data-action="connect"]').count() === 1, "google offered to connect");
// The only way in cannot be disconnected: the page says why.
await row.locator('[data-action="disconnect"]').click();
await en.locator("#signin-methods .error").filter({ hasText: /only way to sign in/ }).waitFor({ timeout: T });
await en.screenshot({ path: `${shots}/signin-settings-desktop.png`, fullPage: true });
// With a password set, it can.
await en.locator("#new-password").fill("a long enough password");
await en.locator("#password-form button[type=submit]").click();
await en.locator("#password-form").filter({ hasText: "Your account has a password." }).waitFor({ timeout: T });

// The first account is the admin: the admin page shows each provider's redirect URL.
await en.goto(`${base}/admin`);
const setup = en.locator('#provider-setup li[data-provider="test"] input.redirect-url');
await setup.waitFor({ timeout: T });
check(await setup.inputValue() === `${base}/auth/test/callback`, `redirect URL shown: ${await setup.inputValue()}`);
await en.locator("#signin-providers").screenshot({ path: `${shots}/signin-admin-desktop.png` });

// Korean, phone size: the same, to the username step.
const ko = await open("ko", { locale: "ko-KR", viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
await ko.goto(`${base}/`);
await ko.locator("#providers a").first().waitFor({ timeout: T });
const koLabels = await ko.locator("#providers a").allTextContents();
check(koLabels.some((l) => l.includes("카카오") || l.includes("Kakao(으)로 계속하기")), `${koLabels}`);
await ko.screenshot({ path: `${shots}/signin-login-phone-ko.png`, fullPage: true });
await throughProvider(ko, "kim-jun");
await ko.locator("#welcome-username").waitFor({ timeout: T });
check(await ko.locator("#welcome-username").inputValue() === "Kim_Jun", "Kim Jun suggested as Kim_Jun");
await ko.locator("#welcome h1").filter({ hasText: "사용자 이름 정하기" }).waitFor({ timeout: T });
await ko.screenshot({ path: `${shots}/signin-username-phone-ko.png`, fullPage: true });
await ko.locator("#welcome-form button[type=submit]").click();
await ko.waitForURL(`${base}/`, { timeout: T });
await ko.locator('[data-testid="whoami"]').filter({ hasText: "Kim_Jun" }).waitFor({ timeout: T });

// A forged answer: the page a person understands, with a way back.
const forged = await en.goto(`${base}/auth/test/callback?code=forged&state=forged`);
check(forged.status() === 400, `forged callback answered ${forged.status()}`);
await en.getByRole("link", { name: "Back to log in" }).waitFor({ timeout: T });
await en.screenshot({ path: `${shots}/signin-error-desktop.png` });

await browser.close();
if (process.exitCode) process.exit(process.exitCode);
console.log("SIGNIN-OK");
