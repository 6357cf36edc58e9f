// @ts-check
// ThumbHash placeholders: the 20-odd bytes the server gives with each photo, drawn as a small
// blurred picture while the real one loads. The hash holds a colour (L, P, Q, and alpha when
// the picture has transparency) as a DC value and a few low-frequency cosine coefficients per
// channel; drawing it is an inverse DCT over a tiny grid, then L/P/Q back to RGB. Pure: no DOM
// here (`placeholderUrl` in `photos.js` paints the result), unit-tested under `node --test`.

/**
 * Decodes a base64 ThumbHash into pixels.
 * @param {string} b64
 * @returns {{ w: number, h: number, rgba: Uint8ClampedArray<ArrayBuffer> } | null} null when it is too short
 */
export function decode(b64) {
  let bytes;
  try {
    bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
  if (bytes.length < 5) return null;
  const h24 = bytes[0] | (bytes[1] << 8) | (bytes[2] << 16);
  const h16 = bytes[3] | (bytes[4] << 8);
  const alpha = (h24 >> 23) & 1;
  const landscape = (h16 >> 15) & 1;
  const lMax = alpha ? 5 : 7;
  const lx = Math.max(3, landscape ? lMax : h16 & 7);
  const ly = Math.max(3, landscape ? h16 & 7 : lMax);
  const dc = { l: (h24 & 63) / 63, p: ((h24 >> 6) & 63) / 31.5 - 1, q: ((h24 >> 12) & 63) / 31.5 - 1, a: 1 };
  const scale = { l: ((h24 >> 18) & 31) / 31, p: ((h16 >> 3) & 63) / 63, q: ((h16 >> 9) & 63) / 63, a: 1 };
  let at = 5;
  if (alpha) {
    if (bytes.length < 6) return null;
    dc.a = (bytes[5] & 15) / 15;
    scale.a = (bytes[5] >> 4) / 15;
    at = 6;
  }
  // Coefficients are 4-bit nibbles, low nibble first, in triangle order per channel.
  let nibble = 0;
  const next = () => {
    const byte = bytes[at + (nibble >> 1)];
    const v = nibble & 1 ? byte >> 4 : byte & 15;
    nibble += 1;
    return v;
  };
  /** The (cx, cy) pairs of a channel's coefficients, DC left out. @param {number} nx @param {number} ny */
  const triangle = (nx, ny) => {
    /** @type {Array<[number, number]>} */
    const out = [];
    for (let cy = 0; cy < ny; cy++) {
      for (let cx = cy ? 0 : 1; cx * ny < nx * (ny - cy); cx++) out.push([cx, cy]);
    }
    return out;
  };
  /** @param {Array<[number, number]>} cells @param {number} s */
  const channel = (cells, s) => cells.map(() => (next() / 7.5 - 1) * s);
  const lCells = triangle(lx, ly);
  const pqCells = triangle(3, 3);
  const aCells = alpha ? triangle(5, 5) : [];
  const need = lCells.length + 2 * pqCells.length + aCells.length;
  if (bytes.length < at + Math.ceil(need / 2)) return null;
  const lAc = channel(lCells, scale.l);
  // Saturation is boosted a little to make up for the coarse steps.
  const pAc = channel(pqCells, scale.p * 1.25);
  const qAc = channel(pqCells, scale.q * 1.25);
  const aAc = channel(aCells, scale.a);

  // The drawn size keeps the picture's rough aspect, which the header gives before clamping.
  const lMin = Math.max(1, h16 & 7);
  const ratio = landscape ? lMax / lMin : lMin / lMax;
  const w = ratio > 1 ? 32 : Math.max(1, Math.round(32 * ratio));
  const h = ratio > 1 ? Math.max(1, Math.round(32 / ratio)) : 32;
  const rgba = new Uint8ClampedArray(new ArrayBuffer(w * h * 4));
  /** @param {Array<[number, number]>} cells @param {number[]} ac @param {number[]} fx @param {number[]} fy */
  const sum = (cells, ac, fx, fy) => {
    let v = 0;
    for (let i = 0; i < cells.length; i++) v += ac[i] * fx[cells[i][0]] * fy[cells[i][1]] * 2;
    return v;
  };
  for (let y = 0; y < h; y++) {
    const fy = Array.from({ length: 7 }, (_, c) => Math.cos((Math.PI / h) * (y + 0.5) * c));
    for (let x = 0; x < w; x++) {
      const fx = Array.from({ length: 7 }, (_, c) => Math.cos((Math.PI / w) * (x + 0.5) * c));
      const l = dc.l + sum(lCells, lAc, fx, fy);
      const p = dc.p + sum(pqCells, pAc, fx, fy);
      const q = dc.q + sum(pqCells, qAc, fx, fy);
      const a = alpha ? dc.a + sum(aCells, aAc, fx, fy) : 1;
      const b = l - (2 / 3) * p;
      const r = (3 * l - b + q) / 2;
      const g = r - q;
      const o = (y * w + x) * 4;
      rgba[o] = Math.max(0, Math.min(1, r)) * 255;
      rgba[o + 1] = Math.max(0, Math.min(1, g)) * 255;
      rgba[o + 2] = Math.max(0, Math.min(1, b)) * 255;
      rgba[o + 3] = Math.max(0, Math.min(1, a)) * 255;
    }
  }
  return { w, h, rgba };
}
