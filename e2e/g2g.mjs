// Benchmark helper (bench/loadgen, `moim-bench live`): plays an HLS URL in headless Chromium with
// hls.js and prints, as JSON, the median of how far playback is behind the playlist's live edge
// (`hls.latency`) and behind the encoder's clock (encoder start + currentTime).
// Args: URL LOW_LATENCY(0|1) SECONDS MS_SINCE_ENCODER_START PATH_TO_HLS_JS
import { chromium } from "playwright-core";

const [url, ll, secs, sinceStart, hlsPath] = process.argv.slice(2);
const encoderStart = Date.now() - Number(sinceStart);
const browser = await chromium.launch({
  executablePath: process.env.MOIM_CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"],
});
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.floor(s.length / 2)] : null; };
try {
  const page = await browser.newPage();
  await page.setContent("<video id=v muted autoplay playsinline></video>");
  await page.addScriptTag({ path: hlsPath });
  await page.evaluate(([u, low]) => {
    const hls = new window.Hls({ lowLatencyMode: low, enableWorker: false });
    window.hls = hls;
    hls.loadSource(u);
    hls.attachMedia(document.getElementById("v"));
    document.getElementById("v").play().catch(() => {});
  }, [url, ll === "1"]);
  await page.waitForFunction(() => document.getElementById("v").currentTime > 2, null, { timeout: 30000 });
  const edge = [], clock = [];
  const end = Date.now() + Number(secs) * 1000;
  while (Date.now() < end) {
    const s = await page.evaluate(() => ({ lat: window.hls.latency, t: document.getElementById("v").currentTime }));
    if (Number.isFinite(s.lat)) edge.push(s.lat);
    clock.push((Date.now() - encoderStart) / 1000 - s.t);
    await new Promise((r) => setTimeout(r, 250));
  }
  console.log(JSON.stringify({ edge_s: median(edge), clock_s: median(clock) }));
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
