/**
 * Pixels of one sample: samples the source through the plan's affine map (bilinear, with k×k supersampling when
 * shrinking so that a 1242-pixel KITTI image does not alias at 384), applies the photometric jitter as one affine
 * colour map, clamps to [0, 255] and normalises ((v - mean) · scale) into a Float32Array (HWC) at an offset.
 * Canvas outside the source (expand, letterbox) gets the fill colour, which is not jittered (SSD fills after the
 * photometric step) and so normalises to 0 when fill = mean.
 *
 * Photometric jitter (SSD defaults, each with probability 0.5): brightness +δ (δ ∈ ±32), contrast ×α (α ∈ [0.5, 1.5],
 * multiplicative as in ssd.pytorch), saturation s ∈ [0.5, 1.5] (mix with Rec. 601 luma), hue ±18° (exact rotation
 * about the grey axis), then a random channel permutation with probability channelSwapProb. All five are affine in
 * RGB, so they are composed into one 3x4 matrix and commute with the bilinear sampling; only the clamp is deferred
 * to the end (ssd.pytorch does not clamp in between either). A jitter set to null is off (and draws nothing), which is
 * how the detector's 'simple' preset keeps only brightness and contrast.
 */
import type { Rng } from '../../src/util/rng.js';
import type { Affine, RawImage } from './types.js';

export interface PhotometricOptions {
  /** Largest brightness delta (±, in 0..255 units); null: off. */
  brightness?: number | null;
  /** Contrast factor range; null: off. */
  contrast?: readonly [number, number] | null;
  /** Grey level the contrast factor scales about (default 0: multiplicative, as in ssd.pytorch). */
  contrastCentre?: number;
  /** Saturation factor range; null: off. */
  saturation?: readonly [number, number] | null;
  /** Largest hue rotation, in degrees; null: off. */
  hue?: number | null;
  /** Probability of each of the four jitters (default 0.5). */
  prob?: number;
  /** Probability of a random channel permutation (default 0.5, SSD's "random lighting noise"). */
  channelSwapProb?: number;
}

export interface NormaliseOptions {
  /** Per-channel mean subtracted (default [123, 117, 104], SSD's). */
  mean?: readonly [number, number, number];
  /** Multiplier after the subtraction (default 1). */
  scale?: number;
  /** Colour of canvas outside the image (default: mean). */
  fill?: readonly [number, number, number];
}

/** Row-major 3x4 colour matrix: out_c = Σ m[c][k] in_k + m[c][3]. */
export type ColourMap = Float64Array;

export function identityColourMap(): ColourMap {
  return Float64Array.from([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]);
}

/** then ∘ first for 3x4 colour maps. */
function composeColour(first: ColourMap, then: ColourMap): ColourMap {
  const out = new Float64Array(12);
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 4; c++) {
      let v = c === 3 ? then[4 * r + 3]! : 0;
      for (let k = 0; k < 3; k++) v += then[4 * r + k]! * first[4 * k + c]!;
      out[4 * r + c] = v;
    }
  }
  return out;
}

export function brightnessMap(delta: number): ColourMap {
  return Float64Array.from([1, 0, 0, delta, 0, 1, 0, delta, 0, 0, 1, delta]);
}

/** v -> centre + alpha · (v - centre) per channel. */
export function contrastMap(alpha: number, centre = 0): ColourMap {
  const t = centre * (1 - alpha);
  return Float64Array.from([alpha, 0, 0, t, 0, alpha, 0, t, 0, 0, alpha, t]);
}

const LUMA = [0.299, 0.587, 0.114];

export function saturationMap(s: number): ColourMap {
  const m = new Float64Array(12);
  for (let r = 0; r < 3; r++) for (let k = 0; k < 3; k++) m[4 * r + k] = (r === k ? s : 0) + (1 - s) * LUMA[k]!;
  return m;
}

/** Rotation by `degrees` about the grey axis (1,1,1)/√3 (Rodrigues): keeps grey grey and the mean intensity. */
export function hueMap(degrees: number): ColourMap {
  const t = (degrees * Math.PI) / 180;
  const c = Math.cos(t);
  const s = Math.sin(t) / Math.sqrt(3);
  const o = (1 - c) / 3;
  return Float64Array.from([c + o, o - s, o + s, 0, o + s, c + o, o - s, 0, o - s, o + s, c + o, 0]);
}

const PERMUTATIONS = [
  [0, 1, 2],
  [0, 2, 1],
  [1, 0, 2],
  [1, 2, 0],
  [2, 0, 1],
  [2, 1, 0],
];

/** Draws the photometric jitter of one sample (order: brightness, contrast, saturation, hue, channel swap). */
export function samplePhotometric(options: PhotometricOptions, rng: Rng): ColourMap {
  const p = options.prob ?? 0.5;
  let m = identityColourMap();
  const brightness = options.brightness === undefined ? 32 : options.brightness;
  const contrast = options.contrast === undefined ? ([0.5, 1.5] as const) : options.contrast;
  const saturation = options.saturation === undefined ? ([0.5, 1.5] as const) : options.saturation;
  const hue = options.hue === undefined ? 18 : options.hue;
  if (brightness !== null && rng.bernoulli(p)) m = composeColour(m, brightnessMap(rng.uniform(-brightness, brightness)));
  if (contrast !== null && rng.bernoulli(p)) m = composeColour(m, contrastMap(rng.uniform(...contrast), options.contrastCentre ?? 0));
  if (saturation !== null && rng.bernoulli(p)) m = composeColour(m, saturationMap(rng.uniform(...saturation)));
  if (hue !== null && rng.bernoulli(p)) m = composeColour(m, hueMap(rng.uniform(-hue, hue)));
  if (rng.bernoulli(options.channelSwapProb ?? 0.5)) {
    const perm = PERMUTATIONS[rng.int(PERMUTATIONS.length)]!;
    const swap = new Float64Array(12);
    for (let r = 0; r < 3; r++) swap[4 * r + perm[r]!] = 1;
    m = composeColour(m, swap);
  }
  return m;
}

interface AxisSamples {
  i0: Int32Array;
  i1: Int32Array;
  w1: Float32Array;
  inside: Uint8Array;
  k: number;
}

/** Per output coordinate, k sample positions mapped into the source: neighbours, weights, and whether inside. */
function axisSamples(outSize: number, srcSize: number, scale: number, offset: number): AxisSamples {
  // One bilinear sample down to a 1.5x shrink; beyond, k×k samples (box-filter-like) against aliasing.
  const k = Math.max(1, Math.min(4, Math.round(1 / Math.abs(scale))));
  const n = outSize * k;
  const i0 = new Int32Array(n);
  const i1 = new Int32Array(n);
  const w1 = new Float32Array(n);
  const inside = new Uint8Array(n);
  for (let u = 0; u < outSize; u++) {
    for (let j = 0; j < k; j++) {
      const x = (u + (j + 0.5) / k - offset) / scale; // continuous source coordinate
      const idx = u * k + j;
      inside[idx] = x >= 0 && x < srcSize ? 1 : 0;
      const f = Math.min(Math.max(x - 0.5, 0), srcSize - 1);
      const a = Math.floor(f);
      i0[idx] = a;
      i1[idx] = Math.min(a + 1, srcSize - 1);
      w1[idx] = f - a;
    }
  }
  return { i0, i1, w1, inside, k };
}

/**
 * Renders `src` through `affine` into `out` (width × height × 3 floats from `offset`), colour map applied to image
 * pixels, clamped, then normalised.
 */
export function renderSample(
  src: RawImage,
  affine: Affine,
  colour: ColourMap | null,
  normalise: NormaliseOptions,
  width: number,
  height: number,
  out: Float32Array,
  offset: number,
): void {
  const mean = normalise.mean ?? [123, 117, 104];
  const scale = normalise.scale ?? 1;
  const fill = normalise.fill ?? mean;
  const xs = axisSamples(width, src.width, affine.sx, affine.tx);
  const ys = axisSamples(height, src.height, affine.sy, affine.ty);
  const m = colour ?? identityColourMap();
  const [m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11] = Array.from(m) as [number, number, number, number, number, number, number, number, number, number, number, number];
  const data = src.data;
  const rowStride = src.width * 3;
  const kx = xs.k;
  const ky = ys.k;
  const perPixel = kx * ky;
  let o = offset;
  if (perPixel === 1) {
    // Fast path (no supersampling): one bilinear sample per output pixel.
    for (let v = 0; v < height; v++) {
      const rowIn = ys.inside[v] === 1;
      const rowA = ys.i0[v]! * rowStride;
      const rowB = ys.i1[v]! * rowStride;
      const wy = ys.w1[v]!;
      for (let u = 0; u < width; u++) {
        if (!rowIn || !xs.inside[u]) {
          out[o++] = (fill[0] - mean[0]) * scale;
          out[o++] = (fill[1] - mean[1]) * scale;
          out[o++] = (fill[2] - mean[2]) * scale;
          continue;
        }
        const ca = xs.i0[u]! * 3;
        const cb = xs.i1[u]! * 3;
        const wx = xs.w1[u]!;
        const a0 = rowA + ca;
        const a1 = rowA + cb;
        const b0 = rowB + ca;
        const b1 = rowB + cb;
        const w00 = (1 - wx) * (1 - wy);
        const w01 = wx * (1 - wy);
        const w10 = (1 - wx) * wy;
        const w11 = wx * wy;
        const r = w00 * data[a0]! + w01 * data[a1]! + w10 * data[b0]! + w11 * data[b1]!;
        const g = w00 * data[a0 + 1]! + w01 * data[a1 + 1]! + w10 * data[b0 + 1]! + w11 * data[b1 + 1]!;
        const b = w00 * data[a0 + 2]! + w01 * data[a1 + 2]! + w10 * data[b0 + 2]! + w11 * data[b1 + 2]!;
        out[o++] = (clamp255(m0 * r + m1 * g + m2 * b + m3) - mean[0]) * scale;
        out[o++] = (clamp255(m4 * r + m5 * g + m6 * b + m7) - mean[1]) * scale;
        out[o++] = (clamp255(m8 * r + m9 * g + m10 * b + m11) - mean[2]) * scale;
      }
    }
    return;
  }
  for (let v = 0; v < height; v++) {
    for (let u = 0; u < width; u++) {
      let r = 0;
      let g = 0;
      let b = 0;
      let nIn = 0;
      for (let jy = 0; jy < ky; jy++) {
        const sy = v * ky + jy;
        if (!ys.inside[sy]) continue;
        const rowA = ys.i0[sy]! * rowStride;
        const rowB = ys.i1[sy]! * rowStride;
        const wy = ys.w1[sy]!;
        for (let jx = 0; jx < kx; jx++) {
          const sx = u * kx + jx;
          if (!xs.inside[sx]) continue;
          const ca = xs.i0[sx]! * 3;
          const cb = xs.i1[sx]! * 3;
          const wx = xs.w1[sx]!;
          const w00 = (1 - wx) * (1 - wy);
          const w01 = wx * (1 - wy);
          const w10 = (1 - wx) * wy;
          const w11 = wx * wy;
          r += w00 * data[rowA + ca]! + w01 * data[rowA + cb]! + w10 * data[rowB + ca]! + w11 * data[rowB + cb]!;
          g += w00 * data[rowA + ca + 1]! + w01 * data[rowA + cb + 1]! + w10 * data[rowB + ca + 1]! + w11 * data[rowB + cb + 1]!;
          b += w00 * data[rowA + ca + 2]! + w01 * data[rowA + cb + 2]! + w10 * data[rowB + ca + 2]! + w11 * data[rowB + cb + 2]!;
          nIn++;
        }
      }
      let R = fill[0];
      let G = fill[1];
      let B = fill[2];
      if (nIn > 0) {
        r /= nIn;
        g /= nIn;
        b /= nIn;
        const cr = clamp255(m0 * r + m1 * g + m2 * b + m3);
        const cg = clamp255(m4 * r + m5 * g + m6 * b + m7);
        const cb = clamp255(m8 * r + m9 * g + m10 * b + m11);
        const share = nIn / perPixel;
        R = share * cr + (1 - share) * fill[0];
        G = share * cg + (1 - share) * fill[1];
        B = share * cb + (1 - share) * fill[2];
      }
      out[o++] = (R - mean[0]) * scale;
      out[o++] = (G - mean[1]) * scale;
      out[o++] = (B - mean[2]) * scale;
    }
  }
}

function clamp255(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}
