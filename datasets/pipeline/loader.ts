/**
 * Detection batches with a bounded prefetch queue and exact resume (pure typed arrays, no tfjs).
 *
 *   const ds = await KittiDataset.open(root, { split: 'train', classes: ['car'] });
 *   const loader = new DetectionLoader(kittiDetectionItems(ds.records), {
 *     batchSize: 8, width: 384, height: 128, seed: 1, augment: SSD_AUGMENTATION, prefetch: 2, workers: 1 });
 *   loader.setState(checkpoint.loader);                 // optional: resume
 *   for await (const batch of loader.epochBatches()) {  // the rest of the current epoch
 *     train(batch);                                     // batch.images: Float32Array NHWC
 *     checkpoint.loader = loader.getState();            // position after this batch
 *   }
 *   await loader.close();                               // ends the worker threads
 *
 * Batch targets are in NORMALISED output coordinates ([0, 1] of width/height, [x1, y1, x2, y2]); `transforms[i]` maps
 * original image pixels to output pixels (u = sx·x + tx, v = sy·y + ty; sx < 0 when flipped), so that detections can
 * be mapped back with `boxesToSource`.
 *
 * Determinism: epoch e's order is a permutation drawn from a Rng seeded by (seed, e); the sample at position p of
 * epoch e is augmented with a Rng seeded by (seed, e, p). Nothing depends on timing or on how far ahead the queue
 * reads, so the state { seed, epoch, batch } resumes exactly: a resumed run sees the very same batches.
 * While the trainer works on batch k, batches k+1 .. k+prefetch are being prepared: decoding in sharp's threads, and
 * with `workers > 0` the augmentation too, in worker threads (the same results bit for bit).
 */
import { Rng } from '../../src/util/rng.js';
import { decodeImage } from './decode.js';
import type { GeometricAugmentOptions } from './geometry.js';
import type { NormaliseOptions, PhotometricOptions } from './render.js';
import { prepareSample, type PreparedSample } from './sample.js';
import type { Affine, DetectionTarget, ImageDecoder, RawImage } from './types.js';
import { SampleWorkerPool } from './worker-pool.js';

export { prepareSample } from './sample.js';

/** One image of a detection dataset, independent of where it came from. */
export interface DetectionItem {
  imageId: string;
  imagePath: string;
  /** Original image pixels. */
  target: DetectionTarget;
}

export interface AugmentOptions {
  /** Expand, min-IoU crop, flip; null for none. */
  geometric?: GeometricAugmentOptions | null;
  /** Colour jitter; null for none. */
  photometric?: PhotometricOptions | null;
}

/** SSD's augmentation with its default parameters (see ../../shared notes ssd-defaults). */
export const SSD_AUGMENTATION: AugmentOptions = { geometric: {}, photometric: {} };

/** The settings of the simple preset (the detector's defaults are in detection/config.ts). */
export interface SimpleAugmentOptions {
  /** Horizontal flip with probability 0.5. */
  flip: boolean;
  /** Brightness delta range (±, in 0..255 units), applied with probability 0.5; 0: off. */
  brightness: number;
  /** Contrast factor range [1 − c, 1 + c] about mid-grey (127.5), applied with probability 0.5; 0: off. */
  contrast: number;
}

/** The simple preset: horizontal flip, brightness and contrast jitter; no expand, crop, saturation, hue or channel
 * swap, so every box stays in the image at its place (mirrored when flipped). */
export function simpleAugmentation(o: SimpleAugmentOptions): AugmentOptions {
  return {
    geometric: { expandProb: 0, cropModes: [], flipProb: o.flip ? 0.5 : 0 },
    photometric: {
      brightness: o.brightness > 0 ? o.brightness : null,
      contrast: o.contrast > 0 ? [1 - o.contrast, 1 + o.contrast] : null,
      contrastCentre: 127.5,
      saturation: null,
      hue: null,
      channelSwapProb: 0,
    },
  };
}

export interface DetectionLoaderOptions {
  batchSize: number;
  width: number;
  height: number;
  seed: number;
  /** Reshuffle every epoch (default true). */
  shuffle?: boolean;
  /** Drop the last incomplete batch (default: same as shuffle). */
  dropLast?: boolean;
  resize?: 'warp' | 'letterbox';
  /** Default null: no augmentation (evaluation). */
  augment?: AugmentOptions | null;
  normalise?: NormaliseOptions;
  /** Batches prepared ahead of the one being consumed (default 2; 0 prepares on demand). */
  prefetch?: number;
  /** Injected decoder (default sharp, `decodeImage`). */
  decode?: ImageDecoder;
  /** Keep decoded images in memory (small sets such as synthetic KITTI; default false; in-thread path only). */
  cacheDecoded?: boolean;
  /** Worker threads that decode and augment off the main thread (default 0: in the main thread, decoding still in
   * sharp's threads). 1-2 lets a synchronous training step and batch preparation truly overlap. Not combinable with
   * `decode` or `cacheDecoded`. Results are identical either way. */
  workers?: number;
}

export interface DetectionBatch {
  /** batchSize × height × width × 3, normalised. */
  images: Float32Array;
  batchSize: number;
  height: number;
  width: number;
  channels: 3;
  /** Per image, normalised [0, 1] output coordinates. */
  targets: DetectionTarget[];
  imageIds: string[];
  /** Index of each image in the loader's items. */
  itemIndices: Int32Array;
  /** Original image pixels -> output pixels, per image. */
  transforms: Affine[];
  /** Size of each original image. */
  sourceSizes: { width: number; height: number }[];
  /** Boxes of this batch dropped for having no area in the output (degenerate in the label file, or outside the
   * image); boxes an augmentation crop leaves out are not counted. */
  droppedBoxes: number;
  epoch: number;
  /** Index of this batch within its epoch. */
  batchIndex: number;
}

export interface LoaderState {
  seed: number;
  epoch: number;
  /** Next batch to be consumed within the epoch. */
  batch: number;
}

/** What the loader needs of a labelled box (a structural subset of the KITTI reader's KittiBox). */
export interface LabelledBox {
  /** Left, top, right, bottom in original image pixels. */
  bbox: readonly [number, number, number, number];
  /** Index of a trained class, or -1. */
  classIndex: number;
  /** DontCare regions and neighbour classes: neither positive nor negative. */
  ignore: boolean;
  /** Dataset-wide index of the box's data parameter. */
  instanceId: number;
}

/**
 * A training target: a box of a trained class that is not an ignore region. An `ignore` box is only ever an ignore
 * region: were it a target too, the anchors it matches would be trained as positives and it would get a σ, the very
 * thing the flag is there to prevent.
 */
export function isTrainedBox(box: LabelledBox): boolean {
  return box.classIndex >= 0 && !box.ignore;
}

/** Records (KITTI's, or any with the same fields) -> loader items: targets (`isTrainedBox`) with their labels and
 * instance ids, and ignore regions (DontCare, neighbour classes); other boxes are background. */
export function kittiDetectionItems(records: readonly { imageId: string; imagePath: string; objects: readonly LabelledBox[] }[]): DetectionItem[] {
  return records.map((r) => {
    const trained = r.objects.filter(isTrainedBox);
    const ignored = r.objects.filter((o) => o.ignore);
    return {
      imageId: r.imageId,
      imagePath: r.imagePath,
      target: {
        boxes: Float32Array.from(trained.flatMap((o) => o.bbox)),
        labels: Int32Array.from(trained.map((o) => o.classIndex)),
        instanceIds: Int32Array.from(trained.map((o) => o.instanceId)),
        ignore: Float32Array.from(ignored.flatMap((o) => o.bbox)),
      },
    };
  });
}

/** A 32-bit hash of small integers (FNV-1a over words, then murmur's finaliser). */
export function hashSeed(...values: number[]): number {
  let h = 0x811c9dc5;
  for (const v of values) {
    h = Math.imul(h ^ (v >>> 0), 0x01000193);
    h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

interface Pending {
  epoch: number;
  batch: number;
  promise: Promise<DetectionBatch>;
}

export class DetectionLoader {
  private readonly opts: Required<Pick<DetectionLoaderOptions, 'batchSize' | 'width' | 'height' | 'seed' | 'shuffle' | 'dropLast' | 'resize' | 'prefetch'>>;
  private readonly decode: (file: string) => Promise<RawImage>;
  private readonly cache = new Map<string, Promise<RawImage>>();
  private epoch = 0;
  private batch = 0;
  private queue: Pending[] = [];
  private orders = new Map<number, Int32Array>();
  private closed = false;
  private pool: SampleWorkerPool | null = null;

  constructor(
    readonly items: readonly DetectionItem[],
    private readonly options: DetectionLoaderOptions,
  ) {
    if (items.length === 0) throw new Error('DetectionLoader: no items');
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1) throw new Error(`DetectionLoader: batchSize must be a positive integer, got ${options.batchSize}`);
    const shuffle = options.shuffle ?? true;
    this.opts = {
      batchSize: options.batchSize,
      width: options.width,
      height: options.height,
      seed: options.seed >>> 0,
      shuffle,
      dropLast: options.dropLast ?? shuffle,
      resize: options.resize ?? 'warp',
      prefetch: Math.max(0, options.prefetch ?? 2),
    };
    if (this.opts.dropLast && items.length < this.opts.batchSize) {
      throw new Error(`DetectionLoader: ${items.length} items make no full batch of ${this.opts.batchSize} (dropLast)`);
    }
    const workers = options.workers ?? 0;
    if (workers > 0) {
      if (options.decode || options.cacheDecoded) throw new Error('DetectionLoader: workers cannot be combined with decode or cacheDecoded');
      this.pool = new SampleWorkerPool(workers);
    }
    const decode = options.decode ?? decodeImage;
    this.decode = options.cacheDecoded
      ? (file) => {
          let p = this.cache.get(file);
          if (!p) {
            p = decode(file);
            this.cache.set(file, p);
            p.catch(() => this.cache.delete(file));
          }
          return p;
        }
      : decode;
  }

  get batchesPerEpoch(): number {
    const n = this.items.length / this.opts.batchSize;
    return this.opts.dropLast ? Math.floor(n) : Math.ceil(n);
  }

  getState(): LoaderState {
    return { seed: this.opts.seed, epoch: this.epoch, batch: this.batch };
  }

  /** Moves to a saved position (drops whatever was prefetched). */
  setState(state: LoaderState): void {
    if (state.seed >>> 0 !== this.opts.seed) throw new Error(`DetectionLoader: state was saved with seed ${state.seed}, loader has ${this.opts.seed}`);
    if (!Number.isInteger(state.epoch) || state.epoch < 0 || !Number.isInteger(state.batch) || state.batch < 0 || state.batch > this.batchesPerEpoch) {
      throw new Error(`DetectionLoader: invalid state ${JSON.stringify(state)}`);
    }
    this.epoch = state.epoch;
    this.batch = state.batch;
    if (this.batch === this.batchesPerEpoch) {
      this.epoch++;
      this.batch = 0;
    }
    this.queue = [];
  }

  /** Item indices of an epoch in the order they are served. */
  order(epoch: number): Int32Array {
    let o = this.orders.get(epoch);
    if (!o) {
      o = this.opts.shuffle ? new Rng(hashSeed(this.opts.seed, epoch, 0x5eed)).permutation(this.items.length) : Int32Array.from(this.items.keys());
      if (this.orders.size > 4) this.orders.delete(this.orders.keys().next().value!);
      this.orders.set(epoch, o);
    }
    return o;
  }

  /** The next batch (epochs roll over), from the prefetch queue. */
  async next(): Promise<DetectionBatch> {
    if (this.closed) throw new Error('DetectionLoader: closed');
    this.fill(1);
    const head = this.queue.shift();
    if (head === undefined) throw new Error('DetectionLoader: no batch in preparation after fill');
    this.batch++;
    if (this.batch === this.batchesPerEpoch) {
      this.epoch++;
      this.batch = 0;
    }
    this.fill(this.opts.prefetch);
    return head.promise;
  }

  /** The remaining batches of the current epoch. */
  async *epochBatches(): AsyncGenerator<DetectionBatch> {
    const epoch = this.epoch;
    while (this.epoch === epoch && !this.closed) yield await this.next();
  }

  /** Stops prefetching (in-flight work is dropped) and ends the worker threads. */
  async close(): Promise<void> {
    this.closed = true;
    this.queue = [];
    this.cache.clear();
    await this.pool?.close();
  }

  /** Keeps the next `count` batches (from the consumption position) in preparation. */
  private fill(count: number): void {
    let e = this.epoch;
    let b = this.batch;
    for (let k = 0; k < count; k++) {
      if (k >= this.queue.length) {
        const promise = this.prepareBatch(e, b);
        promise.catch(() => {}); // surfaced when consumed; never an unhandled rejection while queued
        this.queue.push({ epoch: e, batch: b, promise });
      }
      b++;
      if (b === this.batchesPerEpoch) {
        e++;
        b = 0;
      }
    }
  }

  /** Prepares batch `batch` of epoch `epoch` (public for tests and benchmarks; deterministic). */
  async prepareBatch(epoch: number, batch: number): Promise<DetectionBatch> {
    const { batchSize, width, height } = this.opts;
    const order = this.order(epoch);
    const start = batch * batchSize;
    const count = Math.min(batchSize, this.items.length - start);
    const images = new Float32Array(count * height * width * 3);
    const targets: DetectionTarget[] = new Array<DetectionTarget>(count);
    const transforms: Affine[] = new Array<Affine>(count);
    const sourceSizes: { width: number; height: number }[] = new Array<{ width: number; height: number }>(count);
    let droppedBoxes = 0;
    const itemIndices = new Int32Array(count);
    const imageIds: string[] = new Array<string>(count);
    await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const index = order[start + i]!;
        const item = this.items[index]!;
        const seed = this.options.augment ? hashSeed(this.opts.seed, epoch, start + i) : null;
        const offset = i * height * width * 3;
        let s: PreparedSample;
        if (this.pool) {
          const { resize, augment, normalise } = this.options;
          const r = await this.pool.run({ imagePath: item.imagePath, target: item.target, options: { width, height, resize, augment, normalise }, seed });
          images.set(r.pixels, offset);
          s = r;
          sourceSizes[i] = { width: r.width, height: r.height };
        } else {
          const img = await this.decode(item.imagePath);
          s = prepareSample(img, item.target, this.options, seed === null ? null : new Rng(seed), images, offset);
          sourceSizes[i] = { width: img.width, height: img.height };
        }
        targets[i] = s.target;
        transforms[i] = s.affine;
        droppedBoxes += s.dropped;
        itemIndices[i] = index;
        imageIds[i] = item.imageId;
      }),
    );
    return { images, batchSize: count, height, width, channels: 3, targets, imageIds, itemIndices, transforms, sourceSizes, droppedBoxes, epoch, batchIndex: batch };
  }
}
