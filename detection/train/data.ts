/**
 * Training and validation batches for the detector: images resized (warped) to the network input, a light
 * augmentation (horizontal flip, brightness and contrast jitter), boxes normalised to the input, per-box instance ids.
 *
 * A batch is a pure function of (seed, epoch, index): the epoch's order is a permutation drawn from an Rng seeded by
 * (seed, epoch) and each image's augmentation from one seeded by (seed, epoch, position). So the loader has no state to
 * checkpoint beyond its position, and a resumed run sees exactly the batches the uninterrupted run would have seen.
 *
 * Boxes: a box of a trained class (classIndex ≥ 0, not ignored) is a target with label classIndex + 1 and its instance
 * id; `ignore` boxes (DontCare, Van for Car) become ignore regions; boxes of other classes are background. A target box
 * whose size is not positive after normalisation is dropped and counted (`droppedBoxes`).
 */
import sharp from 'sharp';
import type { KittiObject } from '../../datasets/kitti/label-file.js';
import { Rng } from '../../src/util/rng.js';
import type { InputSize } from '../anchors/anchor-generator.js';
import type { ImageTargets } from '../targets.js';

/** What the loader needs of a box (a structural subset of the KITTI reader's KittiBox). */
export interface DetectionBox {
  bbox: [number, number, number, number];
  classIndex: number;
  ignore: boolean;
  instanceId: number;
  occlusion: number;
  truncation: number;
  difficulty: 'easy' | 'moderate' | 'hard' | null;
  /** The label line as parsed (ground truth for the KITTI evaluator). */
  object: KittiObject;
}

/** What the loader needs of an image record (a structural subset of the KITTI reader's KittiRecord). */
export interface DetectionRecord {
  imageId: string;
  imagePath: string;
  width?: number;
  height?: number;
  objects: DetectionBox[];
}

export interface LoadedImage {
  /** RGB bytes at the network input size, [H, W, 3]. */
  pixels: Uint8Array;
  /** Original size (box coordinates are relative to it). */
  width: number;
  height: number;
}

/** Reads an image and resizes it to the input size. */
export type ImageReader = (record: DetectionRecord, size: InputSize) => Promise<LoadedImage>;

export const sharpImageReader: ImageReader = async (record, size) => {
  try {
    const img = sharp(record.imagePath);
    const meta = await img.metadata();
    const { data } = await img.removeAlpha().resize(size.width, size.height, { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
    if (!meta.width || !meta.height) throw new Error('no image size in the header');
    return { pixels: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: meta.width, height: meta.height };
  } catch (err) {
    throw new Error(`${record.imagePath}: cannot read the image (${(err as Error).message})`);
  }
};

export interface AugmentOptions {
  flip?: boolean;
  /** Brightness delta range (±, in 0..255 units), applied with p = 0.5. 0 disables. */
  brightness?: number;
  /** Contrast factor range [1 − c, 1 + c], applied with p = 0.5. 0 disables. */
  contrast?: number;
}

export interface Batch {
  /** Normalised pixels [B, H, W, 3] ((v − 127.5) / 127.5). */
  x: Float32Array;
  images: ImageTargets[];
  /** Instance id of every target box, in target order (images' boxes concatenated). */
  instanceIds: Int32Array;
  records: DetectionRecord[];
  originalSizes: { width: number; height: number }[];
}

/** Where training batches come from: this file's loader, or the input pipeline with SSD's augmentation. */
export interface BatchSource {
  readonly stepsPerEpoch: number;
  /** Batch `index` of `epoch` (both 0-based); a pure function of the seed and the position. */
  batch(epoch: number, index: number): Promise<Batch>;
  close?(): Promise<void>;
}

export interface LoaderOptions {
  records: DetectionRecord[];
  inputSize: InputSize;
  batchSize: number;
  seed: number;
  augment?: AugmentOptions | null;
  shuffle?: boolean;
  read?: ImageReader;
  /** Keep decoded, resized images in memory (default true: the synthetic set is small). */
  cache?: boolean;
  /** Keep a last partial batch (validation) instead of dropping it (training). Default false. */
  keepLast?: boolean;
}

function mix(...xs: number[]): number {
  let h = 0x811c9dc5;
  for (const x of xs) {
    h = Math.imul(h ^ (x >>> 0), 0x01000193) >>> 0;
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
  }
  return h >>> 0;
}

export class DetectionLoader implements BatchSource {
  readonly records: DetectionRecord[];
  readonly inputSize: InputSize;
  readonly batchSize: number;
  readonly stepsPerEpoch: number;
  droppedBoxes = 0;
  private readonly seed: number;
  private readonly augment: AugmentOptions | null;
  private readonly shuffle: boolean;
  private readonly read: ImageReader;
  private readonly cache: Map<string, Promise<LoadedImage>> | null;
  private permutationEpoch = -1;
  private permutation: Int32Array = new Int32Array(0);

  constructor(o: LoaderOptions) {
    if (o.records.length === 0) throw new Error('the detector loader got no images');
    if (!(o.batchSize >= 1)) throw new Error(`batch size must be ≥ 1, got ${o.batchSize}`);
    this.records = o.records;
    this.inputSize = o.inputSize;
    this.batchSize = o.batchSize;
    this.seed = o.seed;
    this.augment = o.augment ?? null;
    this.shuffle = o.shuffle ?? true;
    this.read = o.read ?? sharpImageReader;
    this.cache = o.cache === false ? null : new Map();
    this.stepsPerEpoch = o.keepLast ? Math.ceil(o.records.length / o.batchSize) : Math.floor(o.records.length / o.batchSize);
    if (this.stepsPerEpoch === 0) {
      throw new Error(`${o.records.length} images are fewer than one batch of ${o.batchSize}`);
    }
  }

  private order(epoch: number): Int32Array {
    if (this.permutationEpoch !== epoch) {
      const n = this.records.length;
      this.permutation = this.shuffle ? new Rng(mix(this.seed, epoch, 0x5eed)).permutation(n) : Int32Array.from({ length: n }, (_, i) => i);
      this.permutationEpoch = epoch;
    }
    return this.permutation;
  }

  private load(record: DetectionRecord): Promise<LoadedImage> {
    if (!this.cache) return this.read(record, this.inputSize);
    let p = this.cache.get(record.imagePath);
    if (!p) {
      p = this.read(record, this.inputSize);
      this.cache.set(record.imagePath, p);
      p.catch(() => this.cache?.delete(record.imagePath));
    }
    return p;
  }

  /** Batch `index` (0-based) of `epoch` (0-based). */
  async batch(epoch: number, index: number): Promise<Batch> {
    const order = this.order(epoch);
    const start = index * this.batchSize;
    const picked: DetectionRecord[] = [];
    for (let k = start; k < Math.min(start + this.batchSize, this.records.length); k++) picked.push(this.records[order[k]!]!);
    const loaded = await Promise.all(picked.map((r) => this.load(r)));
    const { width: W, height: H } = this.inputSize;
    const x = new Float32Array(picked.length * H * W * 3);
    const images: ImageTargets[] = [];
    const ids: number[] = [];
    picked.forEach((rec, b) => {
      const img = loaded[b]!;
      const rng = new Rng(mix(this.seed, epoch, start + b, 0xa06));
      const flip = this.augment?.flip === true && rng.next() < 0.5;
      const bright = this.augment?.brightness && rng.next() < 0.5 ? rng.uniform(-this.augment.brightness, this.augment.brightness) : 0;
      const contrast = this.augment?.contrast && rng.next() < 0.5 ? rng.uniform(1 - this.augment.contrast, 1 + this.augment.contrast) : 1;
      const off = b * H * W * 3;
      for (let i = 0; i < H; i++) {
        for (let j = 0; j < W; j++) {
          const src = (i * W + (flip ? W - 1 - j : j)) * 3;
          const dst = off + (i * W + j) * 3;
          for (let c = 0; c < 3; c++) {
            const v = Math.min(255, Math.max(0, (img.pixels[src + c]! - 127.5) * contrast + 127.5 + bright));
            x[dst + c] = (v - 127.5) / 127.5;
          }
        }
      }
      const boxes: number[] = [];
      const labels: number[] = [];
      const ignore: number[] = [];
      for (const o of rec.objects) {
        let x1 = o.bbox[0] / img.width, x2 = o.bbox[2] / img.width;
        const y1 = o.bbox[1] / img.height, y2 = o.bbox[3] / img.height;
        if (flip) [x1, x2] = [1 - x2, 1 - x1];
        if (o.ignore) {
          ignore.push(x1, y1, x2, y2);
        } else if (o.classIndex >= 0) {
          if (!(x2 > x1 && y2 > y1)) {
            this.droppedBoxes++;
            continue;
          }
          boxes.push(x1, y1, x2, y2);
          labels.push(o.classIndex + 1);
          ids.push(o.instanceId);
        }
      }
      images.push({ boxes: Float32Array.from(boxes), labels: Int32Array.from(labels), ignore: Float32Array.from(ignore) });
    });
    return {
      x,
      images,
      instanceIds: Int32Array.from(ids),
      records: picked,
      originalSizes: loaded.map((l) => ({ width: l.width, height: l.height })),
    };
  }
}
