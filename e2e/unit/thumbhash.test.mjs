// Unit tests of web/community/thumbhash.js (node --test): placeholders drawn from hashes the
// server's encoder made, against the pixels the reference decoder draws from the same hashes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { decode } from "../../web/community/thumbhash.js";

/** @param {{ w: number, rgba: Uint8ClampedArray }} img @param {number} x @param {number} y */
const px = (img, x, y) => Array.from(img.rgba.slice((y * img.w + x) * 4, (y * img.w + x) * 4 + 4));

/** Within 2 of each channel (the reference truncates where canvas pixels round). */
const near = (got, want) => got.every((v, i) => Math.abs(v - want[i]) <= 2);

test("an opaque gradient draws as the reference decoder draws it", () => {
  // 60 × 40: red grows to the right, green downwards, blue 90.
  const img = decode("HAkKNZqAh4eAh4eHeHiIeICAB/h4");
  assert.ok(img);
  assert.deepEqual([img.w, img.h], [32, 23]);
  for (const [x, y, want] of [
    [0, 0, [35, 22, 110, 255]],
    [31, 0, [255, 0, 95, 255]],
    [0, 22, [0, 255, 91, 255]],
    [16, 11, [136, 125, 91, 255]],
    [31, 22, [255, 255, 101, 255]],
  ]) {
    assert.ok(near(px(img, x, y), want), `(${x}, ${y}): ${px(img, x, y)} vs ${want}`);
  }
});

test("transparency is drawn from the alpha channel", () => {
  // Red, the left half transparent.
  const img = decode("VzqDA4BYgIqIiHiAeAeId4CKiIiIiHg=");
  assert.ok(img);
  assert.deepEqual([img.w, img.h], [32, 19]);
  for (const [x, y, want] of [
    [0, 0, [197, 39, 41, 134]],
    [31, 0, [197, 39, 41, 255]],
    [16, 9, [197, 39, 41, 141]],
  ]) {
    assert.ok(near(px(img, x, y), want), `(${x}, ${y}): ${px(img, x, y)} vs ${want}`);
  }
});

test("short or broken hashes draw nothing", () => {
  assert.equal(decode(""), null);
  assert.equal(decode("AAAA"), null);
  assert.equal(decode("HAkKNZqA"), null);
  assert.equal(decode("not base64!"), null);
});
