/**
 * What the classifier trainer reads: a numbered list of entries (entry i = data parameter i) with a label each and a
 * way to produce a normalised NHWC float batch for any entries, augmented when given an Rng.
 *
 * Augmentations follow the paper's setups: random-resized crop + horizontal flip for ImageNet-style data (evaluation:
 * resize the shorter side to 256/224 of the crop, centre crop), and crop-with-zero-padding + horizontal flip for
 * CIFAR and Fashion-MNIST. Every random number is drawn synchronously when loadBatch is called, before any I/O, so a
 * batch prepared ahead consumes the Rng in the same order as one prepared on demand.
 */
import sharp from 'sharp';
import { Rng } from '../../src/util/rng.js';

export interface ClassificationData {
  readonly count: number;
  readonly numClasses: number;
  readonly classNames: string[];
  /** The label each entry is trained or evaluated with. */
  readonly labels: Int32Array;
  /** [height, width, channels] of the batches. */
  readonly inputShape: [number, number, number];
  /** Normalised pixels of the entries, NHWC, augmented with `rng` when it is given. */
  loadBatch(ids: ArrayLike<number>, rng: Rng | null): Promise<Float32Array>;
  /** The image file of an entry, where there is one (run records show it). */
  imagePath?(i: number): string;
}

export interface PadCropFlip {
  /** Zero padding on each side before the random crop back to the original size (4 for CIFAR). */
  pad: number;
  flip: boolean;
}

/** Images held in memory as uint8 HWC (idx and CIFAR readers), with an optional entry → image mapping. */
export class InMemoryImageData implements ClassificationData {
  readonly count: number;
  readonly inputShape: [number, number, number];
  private readonly imageSize: number;

  constructor(
    readonly source: { pixels: Uint8Array; height: number; width: number; channels: number },
    /** Source image of each entry (subsets, label-noise permutations). */
    readonly imageIndex: Int32Array,
    readonly labels: Int32Array,
    readonly numClasses: number,
    readonly classNames: string[],
    readonly normalise: { mean: number[]; std: number[] },
    readonly augment: PadCropFlip | null,
  ) {
    if (imageIndex.length !== labels.length) throw new Error(`${imageIndex.length} entries but ${labels.length} labels`);
    this.count = labels.length;
    this.inputShape = [source.height, source.width, source.channels];
    this.imageSize = source.height * source.width * source.channels;
    if (normalise.mean.length !== source.channels || normalise.std.length !== source.channels) {
      throw new Error(`normalisation needs ${source.channels} means and stds`);
    }
  }

  async loadBatch(ids: ArrayLike<number>, rng: Rng | null): Promise<Float32Array> {
    const { height: h, width: w, channels: c, pixels } = this.source;
    const out = new Float32Array(ids.length * this.imageSize);
    const scale = this.normalise.std.map((s) => 1 / (255 * s));
    const shift = this.normalise.mean.map((m, k) => m / this.normalise.std[k]!);
    const pad = this.augment?.pad ?? 0;
    for (let b = 0; b < ids.length; b++) {
      const src = this.imageIndex[ids[b]!]! * this.imageSize;
      let dy = pad;
      let dx = pad;
      let flip = false;
      if (rng && this.augment) {
        dy = rng.int(2 * pad + 1);
        dx = rng.int(2 * pad + 1);
        flip = this.augment.flip && rng.next() < 0.5;
      }
      const dst = b * this.imageSize;
      for (let y = 0; y < h; y++) {
        const sy = y + dy - pad;
        for (let x = 0; x < w; x++) {
          const cx = flip ? w - 1 - x : x;
          const sx = cx + dx - pad;
          const inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
          const o = dst + (y * w + x) * c;
          const i = src + (sy * w + sx) * c;
          for (let k = 0; k < c; k++) out[o + k] = (inside ? pixels[i + k]! : 0) * scale[k]! - shift[k]!;
        }
      }
    }
    return out;
  }
}

export const IMAGENET_MEAN = [0.485, 0.456, 0.406];
export const IMAGENET_STD = [0.229, 0.224, 0.225];

export interface RandomResizedCrop {
  scale: [number, number];
  ratio: [number, number];
  flip: boolean;
}

export const IMAGENET_TRAIN_AUGMENT: RandomResizedCrop = { scale: [0.08, 1], ratio: [3 / 4, 4 / 3], flip: true };

const ATTEMPTS = 10;

/**
 * torchvision's RandomResizedCrop box for an image of w x h from 2·ATTEMPTS + 0 pre-drawn uniforms: area fraction in
 * `scale`, log-uniform aspect ratio; the first box that fits wins, else the centre crop at the clamped ratio.
 */
export function randomResizedCropBox(
  w: number,
  h: number,
  aug: RandomResizedCrop,
  u: ArrayLike<number>,
): { left: number; top: number; width: number; height: number } {
  const area = w * h;
  const [lr0, lr1] = [Math.log(aug.ratio[0]), Math.log(aug.ratio[1])];
  for (let a = 0; a < ATTEMPTS; a++) {
    const target = area * (aug.scale[0] + (aug.scale[1] - aug.scale[0]) * u[4 * a]!);
    const ratio = Math.exp(lr0 + (lr1 - lr0) * u[4 * a + 1]!);
    const cw = Math.round(Math.sqrt(target * ratio));
    const ch = Math.round(Math.sqrt(target / ratio));
    if (cw > 0 && ch > 0 && cw <= w && ch <= h) {
      const top = Math.floor(u[4 * a + 2]! * (h - ch + 1));
      const left = Math.floor(u[4 * a + 3]! * (w - cw + 1));
      return { left, top, width: cw, height: ch };
    }
  }
  const r = w / h;
  let cw = w;
  let ch = h;
  if (r < aug.ratio[0]) ch = Math.round(w / aug.ratio[0]);
  else if (r > aug.ratio[1]) cw = Math.round(h * aug.ratio[1]);
  return { left: Math.floor((w - cw) / 2), top: Math.floor((h - ch) / 2), width: cw, height: ch };
}

/** Images read from files (ImageNet, WebVision) and decoded with sharp, `concurrency` at a time. */
export class FileImageData implements ClassificationData {
  readonly count: number;
  readonly inputShape: [number, number, number];

  constructor(
    readonly files: { count: number; path(i: number): string },
    readonly labels: Int32Array,
    readonly numClasses: number,
    readonly classNames: string[],
    readonly size: number,
    readonly augment: RandomResizedCrop | null,
    readonly normalise: { mean: number[]; std: number[] } = { mean: IMAGENET_MEAN, std: IMAGENET_STD },
    readonly concurrency = 8,
  ) {
    this.count = labels.length;
    this.inputShape = [size, size, 3];
  }

  imagePath(i: number): string {
    return this.files.path(i);
  }

  async loadBatch(ids: ArrayLike<number>, rng: Rng | null): Promise<Float32Array> {
    const n = ids.length;
    const per = this.size * this.size * 3;
    const out = new Float32Array(n * per);
    // Draw every random number now (see the module comment).
    const draws: Float64Array[] = [];
    for (let b = 0; b < n; b++) {
      const u = new Float64Array(4 * ATTEMPTS + 1);
      if (rng && this.augment) for (let k = 0; k < u.length; k++) u[k] = rng.next();
      draws.push(u);
    }
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < n) {
        const b = next++;
        const rgb = await this.decode(ids[b]!, draws[b]!);
        const o = b * per;
        for (let p = 0; p < per; p++) {
          const k = p % 3;
          out[o + p] = (rgb[p]! / 255 - this.normalise.mean[k]!) / this.normalise.std[k]!;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, n) }, worker));
    return out;
  }

  private async decode(i: number, u: Float64Array): Promise<Uint8Array> {
    const file = this.files.path(i);
    try {
      const img = sharp(file, { failOn: 'error' }).rotate();
      const meta = await img.metadata();
      const w0 = meta.autoOrient?.width ?? meta.width;
      const h0 = meta.autoOrient?.height ?? meta.height;
      if (!w0 || !h0) throw new Error('no image size');
      let pipeline: sharp.Sharp;
      if (this.augment) {
        const box = randomResizedCropBox(w0, h0, this.augment, u);
        pipeline = img.extract(box).resize(this.size, this.size, { fit: 'fill' });
        if (this.augment.flip && u[4 * ATTEMPTS]! < 0.5) pipeline = pipeline.flop();
      } else {
        // Evaluation: shorter side to size·256/224, centre crop size x size.
        const short = Math.round((this.size * 256) / 224);
        const s = short / Math.min(w0, h0);
        const rw = Math.max(this.size, Math.round(w0 * s));
        const rh = Math.max(this.size, Math.round(h0 * s));
        const resized = await img.resize(rw, rh, { fit: 'fill' }).removeAlpha().toColourspace('srgb').raw().toBuffer();
        pipeline = sharp(resized, { raw: { width: rw, height: rh, channels: 3 } }).extract({
          left: Math.floor((rw - this.size) / 2),
          top: Math.floor((rh - this.size) / 2),
          width: this.size,
          height: this.size,
        });
      }
      const { data, info } = await pipeline.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
      if (info.channels !== 3 || info.width !== this.size || info.height !== this.size) {
        throw new Error(`decoded to ${info.width}x${info.height}x${info.channels}`);
      }
      return data;
    } catch (err) {
      throw new Error(`${file}: unreadable image (${(err as Error).message})`);
    }
  }
}

/** A reproducible subset: `count` entries drawn without replacement, stratified by class (as equal as possible),
 * returned in increasing order. */
export function stratifiedSubset(labels: ArrayLike<number>, numClasses: number, count: number, seed: number): Int32Array {
  if (count >= labels.length) return Int32Array.from({ length: labels.length }, (_, i) => i);
  const rng = new Rng(seed);
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < labels.length; i++) byClass[labels[i]!]!.push(i);
  for (const list of byClass) rng.shuffle(list);
  const picked: number[] = [];
  let round = 0;
  while (picked.length < count) {
    let added = false;
    for (const list of byClass) {
      if (round < list.length && picked.length < count) {
        picked.push(list[round]!);
        added = true;
      }
    }
    if (!added) break;
    round++;
  }
  return Int32Array.from(picked.sort((a, b) => a - b));
}
