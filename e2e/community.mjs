// The community in a real browser: a member creates a place with two photos (dropped in, their
// upload progress seen, then reordered), reviews it with stars, and lists an item in the
// market; a second member, in another browser context, finds the place by a Korean word, likes
// it, comments, opens the listing and contacts the seller, and the two chat in the private
// room. Screenshots of the feed (desktop and phone, both languages), a place page, a listing
// and the editor. Exits non-zero on any failure.
// Env: MOIM_URL, MOIM_CHROMIUM, MOIM_SCREENSHOTS, MOIM_PHOTOS (comma-separated JPEG paths).
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";
import { basename } from "node:path";

const base = process.env.MOIM_URL;
const shots = process.env.MOIM_SCREENSHOTS || "target/screenshots";
const photos = (process.env.MOIM_PHOTOS || "").split(",").filter(Boolean);
if (!base || photos.length < 2) throw new Error("MOIM_URL and two MOIM_PHOTOS are needed");
mkdirSync(shots, { recursive: true });
const T = 30000;

const browser = await chromium.launch({
  executablePath: process.env.MOIM_CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
});

/** A signed-up member's page in a context of its own. */
async function member(name, opts = {}) {
  const ctx = await browser.newContext({ locale: "en-US", viewport: { width: 1280, height: 900 }, ...opts });
  const page = await ctx.newPage();
  page.on("pageerror", (e) => { console.error(`[${name}] page error:`, e); process.exitCode = 1; });
  await page.goto(base + "/");
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.locator("#auth-form input[name=username]").fill(name);
  await page.locator("#auth-form input[name=password]").fill("correct horse battery");
  await page.locator("#auth-form button[type=submit]").click();
  await page.locator("[data-testid=whoami]").waitFor({ timeout: T });
  return page;
}

/** Drops files onto the editor's drop zone, as a desktop drag would. */
async function dropFiles(page, paths) {
  const files = paths.map((p) => ({ name: basename(p), b64: readFileSync(p).toString("base64") }));
  const handle = await page.evaluateHandle((list) => {
    const dt = new DataTransfer();
    for (const f of list) {
      const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
      dt.items.add(new File([bytes], f.name, { type: "image/jpeg" }));
    }
    return dt;
  }, files);
  await page.locator("#photo-drop").dispatchEvent("drop", { dataTransfer: handle });
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

try {
  const seller = await member("mina");
  // A place with two photos, dropped in; then the second is moved first.
  await seller.locator("#nav-community").click();
  await seller.locator("#write-post").click();
  await seller.locator("#compose [data-kind=place]").click();
  await seller.locator("input[name='place.name']").fill("망원 골목 카페");
  await seller.locator("select[name='place.category']").selectOption("cafe");
  await seller.locator("input[name='place.address']").fill("서울 마포구 망원동");
  // The pin: a click on the map (its tiles from the operator's tile server) fills the fields,
  // which then take the exact spot typed in.
  await seller.locator("#compose .map-picker .leaflet-tile-loaded").first().waitFor({ timeout: T });
  await seller.locator("#compose .map-picker").click({ position: { x: 120, y: 90 } });
  await seller.locator("#compose .map-picker .map-pin").waitFor({ timeout: T });
  const clicked = [await seller.locator("input[name=lat]").inputValue(), await seller.locator("input[name=lng]").inputValue()].map(Number);
  check(Math.abs(clicked[0] - 37.5665) < 0.2 && Math.abs(clicked[1] - 126.978) < 0.3, `a click on the map near Seoul set the pin: ${clicked}`);
  await seller.locator("input[name=lat]").fill("37.5563");
  await seller.locator("input[name=lng]").fill("126.9019");
  await seller.locator("input[name=lng]").dispatchEvent("change");
  await seller.locator("textarea[name=body]").fill("조용하고 커피가 맛있어요.\n강아지 동반 가능!");
  await seller.locator("input[name=tags]").fill("#카페 #망원동");
  await dropFiles(seller, photos.slice(0, 2));
  // Each photo shows its own progress, then its uploaded thumb.
  await seller.locator("#photo-list .photo-item").nth(1).waitFor({ timeout: T });
  await seller.locator("#photo-list .photo-item[data-state=done]").nth(1).waitFor({ timeout: T });
  await seller.screenshot({ path: `${shots}/en-desktop-compose.png`, fullPage: true });
  const firstBefore = await seller.locator("#photo-list .photo-item [data-image]").first().getAttribute("data-image");
  await seller.locator("#photo-list .photo-item").nth(1).locator("button.move").first().click();
  const firstAfter = await seller.locator("#photo-list .photo-item [data-image]").first().getAttribute("data-image");
  check(firstBefore !== firstAfter, "moving the second photo left puts it first");
  await seller.locator("#post-submit").click();
  await seller.locator("#post-title", { hasText: "망원 골목 카페" }).waitFor({ timeout: T });
  const placeUrl = seller.url();
  const shown = await seller.locator("#gallery [data-image]").first().getAttribute("data-image");
  check(shown === firstAfter, "the gallery keeps the order chosen");
  // Photos show their placeholder, then load.
  await seller.locator("#gallery .photo:not(.loading)").first().waitFor({ timeout: T });
  // The place page shows its pin on a map, with the tiles' attribution.
  await seller.locator("#place-map .map-pin").waitFor({ timeout: T });
  await seller.locator("#place-map .leaflet-tile-loaded").first().waitFor({ timeout: T });
  check((await seller.locator("#place-map .leaflet-control-attribution").innerText()).includes("moim test tiles <b>bold</b>")
    && await seller.locator("#place-map .leaflet-control-attribution b").count() === 0,
  "the attribution is shown as text, not HTML");
  check(await seller.locator("#place-map .map-pin[title='망원 골목 카페']").count() === 1, "the pin is named after the place");

  // A review of it, with four stars, drafted by the AI and then edited.
  await seller.locator("#write-review").click();
  await seller.locator("#review-place").selectOption({ label: "망원 골목 카페" });
  await seller.locator("#compose input[name=title]").fill("또 가고 싶어요");
  await seller.locator("#draft-panel:not([hidden])").waitFor({ timeout: T });
  await seller.locator("#draft-panel input[name=menu]").fill("latte, scone");
  await seller.locator("#draft-panel input[name=notes]").fill("quiet, sunny window seat");
  await seller.locator("#draft-ai").click();
  await seller.locator("#draft-status", { hasText: "Draft ready" }).waitFor({ timeout: 120000 });
  const drafted = await seller.locator("textarea[name=body]").inputValue();
  check(drafted.trim().length > 5, `the draft streamed into the editor: ${JSON.stringify(drafted)}`);
  const reviewsBefore = await (await seller.request.get(base + "/api/v1/posts?kind=review")).json();
  check(reviewsBefore.posts.length === 0, "nothing is posted before Post is pressed");
  await seller.screenshot({ path: `${shots}/en-desktop-draft.png`, fullPage: true });
  await seller.locator("textarea[name=body]").fill(`${drafted.trim()}\n라떼가 진하고 사장님이 친절해요.`);
  await seller.locator(".star-input [data-stars='4']").click();
  await seller.locator("#post-submit").click();
  await seller.locator("#post-title", { hasText: "또 가고 싶어요" }).waitFor({ timeout: T });
  await seller.goto(placeUrl);
  await seller.locator("#place-rating strong").waitFor({ timeout: T });
  check(/\d\.\d\d/.test(await seller.locator("#place-rating strong").innerText()), "the place shows its rating");
  await seller.locator("#reviews .post-card").first().waitFor({ timeout: T });
  await seller.screenshot({ path: `${shots}/en-desktop-place.png`, fullPage: true });

  // A market listing.
  await seller.goto(base + "/c/new?kind=market");
  await seller.locator("#compose input[name=title]").fill("유아용 자전거");
  await seller.locator("input[name=price]").fill("35000");
  await seller.locator("select[name=condition]").selectOption("good");
  await seller.locator("input[name=neighbourhood]").fill("망원동");
  await seller.locator("textarea[name=body]").fill("한 시즌 탔어요. 직거래 원해요.");
  await seller.locator("#photo-input").setInputFiles(photos[2] || photos[0]);
  await seller.locator("#photo-list .photo-item[data-state=done]").first().waitFor({ timeout: T });
  await seller.locator("#post-submit").click();
  await seller.locator("#listing-status").waitFor({ timeout: T });
  const listingUrl = seller.url();

  // A second member finds the place by a two-syllable Korean word, likes it and comments.
  const buyer = await member("joon");
  await buyer.goto(base + "/c");
  await buyer.locator("input[name=q]").fill("카페");
  await buyer.locator(".feed-search button").click();
  await buyer.locator("#posts .post-card[data-kind=place]").first().waitFor({ timeout: T });
  await buyer.locator("#posts .post-card[data-kind=place]").first().click();
  await buyer.locator("#like").click();
  await buyer.locator("#like[aria-pressed=true]").waitFor({ timeout: T });
  check((await buyer.locator("#like").innerText()).includes("1"), "the like is counted");
  await buyer.locator(".comment-form textarea").fill("저도 가 봤어요! <b>추천</b>");
  await buyer.locator(".comment-form button[type=submit]").click();
  await buyer.locator("#comments .comment-body", { hasText: "<b>추천</b>" }).waitFor({ timeout: T });
  check(await buyer.locator("#comments b").count() === 0, "comment text is shown as text, not HTML");

  // Near a point chosen on the map: the place (about 7 km west of the map's opening centre) is
  // within 20 km of a click at the centre, and not within 1 km.
  for (const [km, found] of [[20, true], [1, false]]) {
    await buyer.goto(base + "/c?kind=place");
    await buyer.locator("#near-button").click();
    await buyer.locator("#near-panel .leaflet-tile-loaded").first().waitFor({ timeout: T });
    await buyer.locator("#near-radius").selectOption(String(km * 1000));
    await buyer.locator("#near-panel .map").click();
    if (found) {
      await buyer.locator("#near-panel .map-pin").waitFor({ timeout: T });
      await buyer.screenshot({ path: `${shots}/en-desktop-near-picker.png`, fullPage: true });
    }
    await buyer.locator("#near-apply:not([disabled])").click();
    await buyer.waitForURL(/near=/, { timeout: T });
    await buyer.locator("#near-status", { hasText: `${km} km` }).waitFor({ timeout: T });
    if (found) {
      await buyer.locator("#posts .post-card[data-kind=place]").first().waitFor({ timeout: T });
      await buyer.screenshot({ path: `${shots}/en-desktop-near.png`, fullPage: true });
    } else {
      await buyer.locator("#posts ~ [role=status]", { hasText: "No posts match" }).waitFor({ timeout: T });
    }
  }

  // The buyer opens the listing and contacts the seller; the two chat in the private room.
  await buyer.goto(listingUrl);
  await buyer.locator("#contact-seller").click();
  await buyer.waitForURL(/\/r\/m-/, { timeout: T });
  const roomUrl = buyer.url();
  await buyer.locator("#chat-status.online").waitFor({ timeout: T });
  await buyer.locator("#chat-input").fill("아직 판매 중인가요?");
  await buyer.locator("#chat-input").press("Enter");
  await seller.goto(base + "/c/messages");
  await seller.locator("#contacts a[data-room]").first().waitFor({ timeout: T });
  await seller.screenshot({ path: `${shots}/en-desktop-messages.png`, fullPage: true });
  await seller.locator("#contacts a[data-room]").first().click();
  await seller.locator("#messages .msg .text", { hasText: "아직 판매 중인가요?" }).waitFor({ timeout: T });
  await seller.locator("#chat-input").fill("네, 주말에 가능해요.");
  await seller.locator("#chat-input").press("Enter");
  await buyer.locator("#messages .msg .text", { hasText: "네, 주말에 가능해요." }).waitFor({ timeout: T });
  check(seller.url() === roomUrl, "both are in the same room");
  // Someone else cannot open it.
  const stranger = await member("stranger");
  const res = await stranger.request.get(roomUrl.replace("/r/", "/api/v1/rooms/"));
  check(res.status() === 404, `a stranger gets 404 for the private room, got ${res.status()}`);

  // The seller reserves it for the buyer.
  await seller.goto(listingUrl);
  await seller.locator("#status-controls input[name=buyer]").fill("joon");
  await seller.locator("#status-controls [data-status=reserved]").click();
  await seller.locator("#listing-status", { hasText: "Reserved" }).waitFor({ timeout: T });
  await seller.screenshot({ path: `${shots}/en-desktop-listing.png`, fullPage: true });

  // The feed, desktop and phone, English and Korean.
  for (const [lang, locale] of [["en", "en-US"], ["ko", "ko-KR"]]) {
    for (const [size, viewport] of [["desktop", { width: 1280, height: 900 }], ["phone", { width: 390, height: 844 }]]) {
      const ctx = await browser.newContext({ locale, viewport, isMobile: size === "phone", hasTouch: size === "phone" });
      const page = await ctx.newPage();
      page.on("pageerror", (e) => { console.error("page error:", e); process.exitCode = 1; });
      await page.goto(base + "/c");
      await page.locator("#posts .post-card").nth(2).waitFor({ timeout: T });
      await page.waitForFunction(() => document.querySelectorAll("#posts .photo.loading").length === 0, null, { timeout: T });
      await page.screenshot({ path: `${shots}/${lang}-${size}-feed.png`, fullPage: true });
      if (size === "phone") {
        await page.goto(placeUrl);
        await page.locator("#place-rating").waitFor({ timeout: T });
        await page.screenshot({ path: `${shots}/${lang}-${size}-place.png`, fullPage: true });
      }
      await page.goto(base + "/c/popular");
      await page.locator("#ranking-places .post-card").first().waitFor({ timeout: T });
      if (size === "desktop") await page.screenshot({ path: `${shots}/${lang}-${size}-popular.png`, fullPage: true });
      await ctx.close();
    }
  }
  console.log("COMMUNITY-OK");
} finally {
  await browser.close();
}
