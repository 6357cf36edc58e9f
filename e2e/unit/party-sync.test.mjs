// Unit tests of web/party/sync.js (node --test): the clock estimate, the timeline's position
// and the correction rule, with made-up numbers (no browser, no clock).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ServerClock, PROBES, expectedPosition, correction, DEADBAND_S, SETTLE_S, MAX_NUDGE, COOLDOWN_MS,
  JUMP_SEEK_S, JUMP_COOLDOWN_MS,
} from "../../web/party/sync.js";

test("the clock trusts the probe with the lowest round trip of the last few", () => {
  const c = new ServerClock();
  assert.equal(c.ready(), false);
  assert.equal(c.offset(), 0);
  // The server is 1000 ms ahead; round trips of 80, 10 and 40 ms, answered halfway.
  c.add(0, 1040, 80);
  c.add(100, 1105, 110);
  c.add(200, 1220, 240);
  assert.equal(c.rtt(), 10);
  assert.equal(c.offset(), 1000);
  assert.equal(c.serverTime(5000), 6000);
  // An asymmetric slow probe does not move it.
  c.add(300, 1390, 500);
  assert.equal(c.offset(), 1000);
  // Old probes age out: after PROBES more, the 10 ms one is gone.
  for (let i = 0; i < PROBES; i++) c.add(1000 + i * 100, 2000 + i * 100 + 30, 1000 + i * 100 + 60);
  assert.equal(c.rtt(), 60);
  assert.equal(c.offset(), 1000);
  // Nonsense is ignored.
  c.add(10, 5, 0);
  c.add(0, NaN, 5);
  assert.equal(c.samples.length, PROBES);
});

test("the expected position follows the timeline", () => {
  const t = { playing: true, position_s: 10, at_server_ms: 50_000, rate: 1, video: { duration_s: 60 } };
  assert.equal(expectedPosition(t, 49_000), 10, "before the start instant it waits");
  assert.equal(expectedPosition(t, 55_000), 15);
  assert.equal(expectedPosition({ ...t, rate: 2 }, 55_000), 20);
  assert.equal(expectedPosition(t, 999_000), 60, "not past the end");
  assert.equal(expectedPosition({ ...t, playing: false }, 55_000), 10);
  assert.equal(expectedPosition({ ...t, waiting_for: [3] }, 55_000), 10, "held for a member");
});

test("small drift is left alone, medium drift nudges the rate, large drift seeks", () => {
  const base = { rate: 1, canChangeRate: true };
  assert.deepEqual(correction({ ...base, expected: 10, actual: 10 + DEADBAND_S / 2 }),
    { action: "none", rate: 1 });
  // A correction under way goes on inside the deadband, until the drift has settled.
  const settling = correction({ ...base, expected: 10, actual: 10 + DEADBAND_S / 2, correcting: true });
  assert.equal(settling.action, "rate");
  assert.ok(settling.rate < 1, String(settling.rate));
  assert.deepEqual(correction({ ...base, expected: 10, actual: 10 + SETTLE_S / 2, correcting: true }),
    { action: "none", rate: 1 });
  // 100 ms ahead: slow down gently, never beyond MAX_NUDGE.
  const ahead = correction({ ...base, expected: 10, actual: 10.1 });
  assert.equal(ahead.action, "rate");
  assert.ok(ahead.rate < 1 && ahead.rate >= 1 - MAX_NUDGE, String(ahead.rate));
  const behind = correction({ ...base, expected: 10, actual: 9.5 });
  assert.equal(behind.action, "rate");
  assert.equal(behind.rate, 1 + MAX_NUDGE);
  // At double speed the nudge scales with the party's rate.
  assert.ok(correction({ ...base, rate: 2, expected: 10, actual: 9.5 }).rate > 2);
  // Beyond a second: seek to where the timeline will be after the seek takes.
  const far = correction({ ...base, expected: 30, actual: 12, seekLatencyS: 0.2 });
  assert.deepEqual(far, { action: "seek", to: 30.2, rate: 1 });
  // Right after a seek, the player settles before anything else is tried.
  assert.equal(correction({ ...base, expected: 30, actual: 12, sinceSeekMs: COOLDOWN_MS - 1 }).action, "none");
  // A player without playbackRate seeks only, and only for drift worth a stutter.
  assert.equal(correction({ rate: 1, canChangeRate: false, expected: 10, actual: 10.1 }).action, "none");
  assert.equal(correction({ rate: 1, canChangeRate: false, expected: 10, actual: 10.6 }).action, "seek");
});

test("right after a jump the landing error is sought away, once the first seek is done", () => {
  const base = { rate: 1, canChangeRate: true, expected: 40, seekLatencyS: 0.02 };
  // 300 ms behind after the first seek fetched its segment: not a rate nudge of seconds.
  assert.equal(correction({ ...base, actual: 39.7, jumped: true, sinceSeekMs: 0 }).action, "none",
    "not while the first seek is under way");
  assert.equal(correction({ ...base, actual: 39.7, jumped: true, sinceSeekMs: JUMP_COOLDOWN_MS - 1 }).action, "none");
  assert.deepEqual(correction({ ...base, actual: 39.7, jumped: true, sinceSeekMs: JUMP_COOLDOWN_MS }),
    { action: "seek", to: 40.02, rate: 1 });
  // Small landing errors are left to the rate.
  assert.equal(correction({ ...base, actual: 40 - JUMP_SEEK_S / 2, jumped: true, sinceSeekMs: 5000 }).action, "rate");
  // Without a jump the same drift is nudged.
  assert.equal(correction({ ...base, actual: 39.7, sinceSeekMs: 5000 }).action, "rate");
});
