/**
 * Geometric augmentation for detection, planned on the boxes first (SSD order: expand -> min-IoU crop -> flip ->
 * resize), as one axis-aligned affine map from the original image to the output; the pixels are then sampled once
 * (see render.ts), so that an expand by 4 never materialises a 16x larger image.
 *
 *   const plan = planGeometry(w, h, target, { width: 384, height: 128, resize: 'warp', augment }, rng);
 *   plan.affine   // original pixels -> output pixels
 *   plan.target   // boxes in output pixels; boxes whose centres left a crop are dropped with their ids and labels
 */
import type { Rng } from '../../src/util/rng.js';
import type { Affine, DetectionTarget } from './types.js';

export interface GeometricAugmentOptions {
  /** Probability of the zoom-out (default 0.5). */
  expandProb?: number;
  /** Largest expand ratio (default 4). */
  maxExpand?: number;
  /** Min-IoU crop modes: null keeps the image, a number is the minimum IoU with some box, -Infinity unconstrained
   * (default [null, 0.1, 0.3, 0.5, 0.7, 0.9, -Infinity], SSD's). Empty array: no crop. */
  cropModes?: readonly (number | null)[];
  /** Crop side range as a share of the (expanded) image side (default [0.3, 1]). */
  cropScale?: readonly [number, number];
  /** Allowed crop aspect (h/w) relative to the output aspect (default [0.5, 2]). */
  cropAspect?: readonly [number, number];
  /** Attempts per crop mode before giving up on cropping (default 50). */
  cropTrials?: number;
  /** Probability of a horizontal flip (default 0.5). */
  flipProb?: number;
}

export interface GeometryOptions {
  width: number;
  height: number;
  /** 'warp' stretches to width x height; 'letterbox' keeps the aspect and pads (centred) with the fill colour. */
  resize: 'warp' | 'letterbox';
  /** Geometric augmentation, or null/undefined for none (evaluation). */
  augment?: GeometricAugmentOptions | null;
}

export interface GeometryPlan {
  affine: Affine;
  flipped: boolean;
  /** Target in output pixels. */
  target: DetectionTarget;
  /** Boxes left without area in the output (degenerate in the label file, or outside the image), dropped. */
  dropped: number;
}

const SSD_CROP_MODES: readonly (number | null)[] = [null, 0.1, 0.3, 0.5, 0.7, 0.9, -Infinity];

/** Horizontal flip within a canvas of the given width: [x1, y1, x2, y2] -> [W - x2, y1, W - x1, y2]. */
export function flipBoxes(boxes: Float32Array, width: number): Float32Array {
  const out = new Float32Array(boxes.length);
  for (let k = 0; k < boxes.length; k += 4) {
    out[k] = width - boxes[k + 2]!;
    out[k + 1] = boxes[k + 1]!;
    out[k + 2] = width - boxes[k]!;
    out[k + 3] = boxes[k + 3]!;
  }
  return out;
}

/** IoU of box k of `boxes` with rect [x1, y1, x2, y2]. */
export function boxIoU(boxes: Float32Array, k: number, rect: readonly number[]): number {
  const ix = Math.min(boxes[k + 2]!, rect[2]!) - Math.max(boxes[k]!, rect[0]!);
  const iy = Math.min(boxes[k + 3]!, rect[3]!) - Math.max(boxes[k + 1]!, rect[1]!);
  if (ix <= 0 || iy <= 0) return 0;
  const inter = ix * iy;
  const a = (boxes[k + 2]! - boxes[k]!) * (boxes[k + 3]! - boxes[k + 1]!);
  const b = (rect[2]! - rect[0]!) * (rect[3]! - rect[1]!);
  return inter / (a + b - inter);
}

/**
 * Crops a target to rect [l, t, r, b]: keeps the boxes whose centres lie strictly inside (with their labels and
 * instance ids), clips them to the rect and shifts them to the rect's origin; ignore regions are clipped and kept when
 * they still have an area.
 */
export function cropTarget(target: DetectionTarget, rect: readonly [number, number, number, number]): DetectionTarget {
  const [l, t, r, b] = rect;
  const keep: number[] = [];
  const n = target.labels.length;
  for (let i = 0; i < n; i++) {
    const cx = (target.boxes[4 * i]! + target.boxes[4 * i + 2]!) / 2;
    const cy = (target.boxes[4 * i + 1]! + target.boxes[4 * i + 3]!) / 2;
    if (cx > l && cx < r && cy > t && cy < b) keep.push(i);
  }
  const boxes = new Float32Array(keep.length * 4);
  const labels = new Int32Array(keep.length);
  const instanceIds = new Int32Array(keep.length);
  keep.forEach((i, j) => {
    boxes[4 * j] = Math.max(target.boxes[4 * i]!, l) - l;
    boxes[4 * j + 1] = Math.max(target.boxes[4 * i + 1]!, t) - t;
    boxes[4 * j + 2] = Math.min(target.boxes[4 * i + 2]!, r) - l;
    boxes[4 * j + 3] = Math.min(target.boxes[4 * i + 3]!, b) - t;
    labels[j] = target.labels[i]!;
    instanceIds[j] = target.instanceIds[i]!;
  });
  const ign: number[] = [];
  for (let k = 0; k < target.ignore.length; k += 4) {
    const x1 = Math.max(target.ignore[k]!, l);
    const y1 = Math.max(target.ignore[k + 1]!, t);
    const x2 = Math.min(target.ignore[k + 2]!, r);
    const y2 = Math.min(target.ignore[k + 3]!, b);
    if (x2 > x1 && y2 > y1) ign.push(x1 - l, y1 - t, x2 - l, y2 - t);
  }
  return { boxes, labels, instanceIds, ignore: Float32Array.from(ign) };
}

function mapTarget(target: DetectionTarget, a: Affine): DetectionTarget {
  const map = (src: Float32Array): Float32Array => {
    const out = new Float32Array(src.length);
    for (let k = 0; k < src.length; k += 4) {
      const u1 = a.sx * src[k]! + a.tx;
      const u2 = a.sx * src[k + 2]! + a.tx;
      out[k] = Math.min(u1, u2);
      out[k + 1] = a.sy * src[k + 1]! + a.ty;
      out[k + 2] = Math.max(u1, u2);
      out[k + 3] = a.sy * src[k + 3]! + a.ty;
    }
    return out;
  };
  return { boxes: map(target.boxes), labels: target.labels, instanceIds: target.instanceIds, ignore: map(target.ignore) };
}

/** Maps boxes in output pixels back to original image pixels (inverse of `affine`, flip included). */
export function boxesToSource(boxes: Float32Array, a: Affine): Float32Array {
  return mapTarget(
    { boxes, labels: new Int32Array(0), instanceIds: new Int32Array(0), ignore: new Float32Array(0) },
    { sx: 1 / a.sx, tx: -a.tx / a.sx, sy: 1 / a.sy, ty: -a.ty / a.sy },
  ).boxes;
}

/** Composes `then ∘ first`. */
function compose(first: Affine, then: Affine): Affine {
  return { sx: then.sx * first.sx, tx: then.sx * first.tx + then.tx, sy: then.sy * first.sy, ty: then.sy * first.ty + then.ty };
}

/** Plans the geometry of one sample; with no augmentation (or rng null) it is the plain resize. */
export function planGeometry(srcWidth: number, srcHeight: number, target: DetectionTarget, options: GeometryOptions, rng: Rng | null): GeometryPlan {
  const aug = rng === null ? null : (options.augment ?? null);
  let affine: Affine = { sx: 1, tx: 0, sy: 1, ty: 0 };
  let cur = target;
  let cw = srcWidth;
  let ch = srcHeight;
  let flipped = false;
  if (aug && rng) {
    // Expand (zoom out): the image lands at a random place on a canvas up to maxExpand times larger.
    if (rng.bernoulli(aug.expandProb ?? 0.5)) {
      const ratio = rng.uniform(1, aug.maxExpand ?? 4);
      const left = rng.uniform(0, cw * ratio - cw);
      const top = rng.uniform(0, ch * ratio - ch);
      const shift: Affine = { sx: 1, tx: left, sy: 1, ty: top };
      affine = compose(affine, shift);
      cur = mapTarget(cur, shift);
      cw *= ratio;
      ch *= ratio;
    }
    // Min-IoU random crop.
    const modes = aug.cropModes ?? SSD_CROP_MODES;
    if (modes.length > 0) {
      const mode = modes[rng.int(modes.length)]!;
      if (mode !== null) {
        const rect = findCrop(cur, cw, ch, mode, options.height / options.width, aug, rng);
        if (rect) {
          cur = cropTarget(cur, rect);
          const shift: Affine = { sx: 1, tx: -rect[0], sy: 1, ty: -rect[1] };
          affine = compose(affine, shift);
          cw = rect[2] - rect[0];
          ch = rect[3] - rect[1];
        }
      }
    }
    if (rng.bernoulli(aug.flipProb ?? 0.5)) {
      const flip: Affine = { sx: -1, tx: cw, sy: 1, ty: 0 };
      affine = compose(affine, flip);
      cur = { ...cur, boxes: flipBoxes(cur.boxes, cw), ignore: flipBoxes(cur.ignore, cw) };
      flipped = true;
    }
  }
  let resize: Affine;
  if (options.resize === 'warp') {
    resize = { sx: options.width / cw, tx: 0, sy: options.height / ch, ty: 0 };
  } else {
    const s = Math.min(options.width / cw, options.height / ch);
    resize = { sx: s, tx: (options.width - cw * s) / 2, sy: s, ty: (options.height - ch * s) / 2 };
  }
  affine = compose(affine, resize);
  const out = clampTarget(mapTarget(cur, resize), options.width, options.height);
  return { affine, flipped, target: out, dropped: cur.labels.length - out.labels.length };
}

/** Clamps boxes to the output (float rounding after flips and crops) and drops any left without area, ids included. */
function clampTarget(t: DetectionTarget, width: number, height: number): DetectionTarget {
  const clampAll = (a: Float32Array): Float32Array => {
    const o = new Float32Array(a.length);
    for (let k = 0; k < a.length; k += 2) {
      o[k] = Math.min(Math.max(a[k]!, 0), width);
      o[k + 1] = Math.min(Math.max(a[k + 1]!, 0), height);
    }
    return o;
  };
  const boxes = clampAll(t.boxes);
  const ignore = clampAll(t.ignore);
  const hasArea = (a: Float32Array, k: number): boolean => a[k + 2]! > a[k]! && a[k + 3]! > a[k + 1]!;
  const keep: number[] = [];
  for (let i = 0; i < t.labels.length; i++) if (hasArea(boxes, 4 * i)) keep.push(i);
  const keptIgnore: number[] = [];
  for (let k = 0; k < ignore.length; k += 4) if (hasArea(ignore, k)) keptIgnore.push(...ignore.subarray(k, k + 4));
  if (keep.length === t.labels.length && keptIgnore.length === ignore.length) return { ...t, boxes, ignore };
  return {
    boxes: Float32Array.from(keep.flatMap((i) => Array.from(boxes.subarray(4 * i, 4 * i + 4)))),
    labels: Int32Array.from(keep.map((i) => t.labels[i]!)),
    instanceIds: Int32Array.from(keep.map((i) => t.instanceIds[i]!)),
    ignore: Float32Array.from(keptIgnore),
  };
}

function findCrop(
  target: DetectionTarget,
  cw: number,
  ch: number,
  minIoU: number,
  outAspect: number,
  aug: GeometricAugmentOptions,
  rng: Rng,
): [number, number, number, number] | null {
  const [s0, s1] = aug.cropScale ?? [0.3, 1];
  const [a0, a1] = aug.cropAspect ?? [0.5, 2];
  const trials = aug.cropTrials ?? 50;
  const srcAspect = ch / cw;
  const n = target.labels.length;
  for (let t = 0; t < trials; t++) {
    const w = rng.uniform(s0, s1) * cw;
    const h = rng.uniform(s0, s1) * ch;
    // Aspect relative to the output's: KITTI's 3.3:1 images must not be judged against square crops.
    const rel = h / w / outAspect;
    const relSrc = srcAspect / outAspect;
    if (rel < a0 * Math.min(1, relSrc) || rel > a1 * Math.max(1, relSrc)) continue;
    const l = rng.uniform(0, cw - w);
    const top = rng.uniform(0, ch - h);
    const rect: [number, number, number, number] = [l, top, l + w, top + h];
    if (n === 0) return rect;
    let best = 0;
    let centred = false;
    for (let i = 0; i < n; i++) {
      best = Math.max(best, boxIoU(target.boxes, 4 * i, rect));
      const cx = (target.boxes[4 * i]! + target.boxes[4 * i + 2]!) / 2;
      const cy = (target.boxes[4 * i + 1]! + target.boxes[4 * i + 3]!) / 2;
      if (cx > rect[0] && cx < rect[2] && cy > rect[1] && cy < rect[3]) centred = true;
    }
    if (best < minIoU || !centred) continue;
    return rect;
  }
  return null;
}
