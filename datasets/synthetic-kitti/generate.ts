/**
 * Writes a synthetic KITTI object dataset in the real layout:
 *   DIR/training/image_2/000000.png ...   (PNG, RGB, width x height)
 *   DIR/training/label_2/000000.txt ...   (15 columns, labels true to the rendering, see scene.ts)
 *   DIR/ImageSets/train.txt, val.txt, trainval.txt
 *
 *   const summary = await generateSyntheticKitti({ out, images: 200, seed: 1 });   // default 480x145
 *   const { generated } = await ensureSyntheticKitti({ out, images: 200, seed: 1 }); // only if not there yet
 *
 * Deterministic for (seed, images, width, height, valFraction or valImages): image k is rendered from Rng(seed)
 * stream k, so the files are byte-identical across runs. Images are written as they are rendered, a few in flight, so
 * memory does not grow with the set (KITTI_SCALE: 7,481 images of 1242x375).
 *
 * With `corruptBoxes: p`, each Car label is corrupted with probability p (corrupt-boxes.ts: shifted, resized, an extra
 * box on background, or left out) and DIR/training/corrupted_boxes.csv records which. The images are the same as
 * without corruption; the corruption draws come from their own stream.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { Rng } from '../../src/util/rng.js';
import { writeFileAtomic } from '../../src/util/atomic-file.js';
import { formatKittiObject, kittiDifficulty, type KittiDifficulty } from '../kitti/label-file.js';
import { renderScene, sampleScene } from './scene.js';
import { CORRUPTION_KINDS, CORRUPTION_RECORD_COLUMNS, CORRUPTION_RECORD_FILE, corruptionRows, corruptLabels } from './corrupt-boxes.js';

/** Default size: KITTI's aspect (1242x375 ≈ 3.31), small. */
export const SYNTHETIC_KITTI_DEFAULT_SIZE = { width: 480, height: 145 } as const;

/** Real KITTI object training set's size and geometry, and its common car split (3DOP: 3,712 train / 3,769 val). */
export const KITTI_SCALE = { images: 7481, width: 1242, height: 375, valImages: 3769 } as const;

export interface SyntheticKittiOptions {
  out: string;
  images: number;
  seed: number;
  width?: number;
  height?: number;
  /** Share of images in val (default 0.5: the 3DOP split is 3712 train / 3769 val). */
  valFraction?: number;
  /** Exact number of images in val (instead of valFraction), in [1, images - 1]. */
  valImages?: number;
  /** Fraction of Car labels to corrupt, in [0, 1) (default 0: none). */
  corruptBoxes?: number;
  /** Called after each written image. */
  onProgress?: (done: number) => void;
}

export interface SyntheticKittiSummary {
  images: number;
  train: number;
  val: number;
  seconds: number;
  imagesPerSecond: number;
  /** Label counts by type (Car, Van, Pedestrian, DontCare). */
  byType: Record<string, number>;
  /** Car labels by occlusion level '0' | '1' | '2'. */
  carsByOcclusion: Record<string, number>;
  /** Car labels by easiest difficulty level ('easy' | 'moderate' | 'hard' | 'none'). */
  carsByDifficulty: Record<KittiDifficulty | 'none', number>;
  /** Car labels with truncation > 0. */
  carsTruncated: number;
  /** With corruptBoxes: corrupted labels by kind (shifted, resized, background, missing). Car counts above are of the
   * written labels. */
  corrupted?: Record<string, number>;
}

export function imageIdOf(k: number): string {
  return String(k).padStart(6, '0');
}

export async function generateSyntheticKitti(options: SyntheticKittiOptions): Promise<SyntheticKittiSummary> {
  const width = options.width ?? SYNTHETIC_KITTI_DEFAULT_SIZE.width;
  const height = options.height ?? SYNTHETIC_KITTI_DEFAULT_SIZE.height;
  const n = options.images;
  if (!Number.isInteger(n) || n < 2) throw new Error(`--images must be an integer >= 2, got ${n}`);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 64 || height < 32) {
    throw new Error(`image size must be integers of at least 64x32, got ${width}x${height}`);
  }
  const valFraction = options.valFraction ?? 0.5;
  const valImages = options.valImages;
  if (valImages !== undefined && !(Number.isInteger(valImages) && valImages >= 1 && valImages <= n - 1)) {
    throw new Error(`--val-images must be an integer in [1, ${n - 1}] for ${n} images, got ${valImages}`);
  }
  const corruptRate = options.corruptBoxes ?? 0;
  if (!(corruptRate >= 0 && corruptRate < 1)) throw new Error(`--corrupt-boxes must be a fraction in [0, 1), got ${corruptRate}`);
  const imageDir = path.join(options.out, 'training', 'image_2');
  const labelDir = path.join(options.out, 'training', 'label_2');
  const setDir = path.join(options.out, 'ImageSets');
  await Promise.all([imageDir, labelDir, setDir].map((d) => fs.mkdir(d, { recursive: true })));
  // Regenerating in place: the old manifest goes first (an interrupted run must not look complete), and images and
  // labels of an earlier, larger run are removed so that split 'all' does not pick them up.
  await fs.rm(path.join(options.out, MANIFEST_FILE), { force: true });
  const recordFile = path.join(options.out, 'training', CORRUPTION_RECORD_FILE);
  await fs.rm(recordFile, { force: true });
  for (const [dir, ext] of [
    [imageDir, '.png'],
    [labelDir, '.txt'],
  ] as const) {
    for (const f of await fs.readdir(dir)) {
      const m = /^(\d{6})\.(png|txt)$/.exec(f);
      if (m && `.${m[2]}` === ext && Number(m[1]) >= n) await fs.rm(path.join(dir, f));
    }
  }

  const summary: SyntheticKittiSummary = {
    images: n,
    train: 0,
    val: 0,
    seconds: 0,
    imagesPerSecond: 0,
    byType: {},
    carsByOcclusion: { '0': 0, '1': 0, '2': 0 },
    carsByDifficulty: { easy: 0, moderate: 0, hard: 0, none: 0 },
    carsTruncated: 0,
  };
  if (corruptRate > 0) summary.corrupted = Object.fromEntries(CORRUPTION_KINDS.map((k) => [k, 0]));
  const records: string[] = [];
  const start = performance.now();
  const master = new Rng(options.seed);
  const pending = new Set<Promise<void>>();
  for (let k = 0; k < n; k++) {
    // One independent stream per image: image k does not depend on how many numbers image k-1 drew.
    const rng = new Rng([(master.nextUint32() | 1) >>> 0, master.nextUint32(), master.nextUint32(), master.nextUint32()]);
    const { rgb, labels: rendered } = renderScene(sampleScene(rng, width, height));
    const id = imageIdOf(k);
    let labels = rendered.map((l) => l.object);
    if (corruptRate > 0) {
      const c = corruptLabels(labels, corruptRate, new Rng((Math.imul(options.seed ^ 0x0c0bb1e5, 0x9e3779b1) + Math.imul(k + 1, 0x85ebca6b)) >>> 0), width, height);
      labels = c.labels;
      for (const x of c.corruptions) summary.corrupted![x.kind]!++;
      records[k] = corruptionRows(id, c.corruptions);
    }
    const text = labels.map((l) => formatKittiObject(l)).join('\n') + (labels.length ? '\n' : '');
    for (const o of labels) {
      summary.byType[o.type] = (summary.byType[o.type] ?? 0) + 1;
      if (o.type !== 'Car') continue;
      summary.carsByOcclusion[String(o.occluded)] = (summary.carsByOcclusion[String(o.occluded)] ?? 0) + 1;
      const d = kittiDifficulty(o) ?? 'none';
      summary.carsByDifficulty[d]++;
      if (o.truncated > 0) summary.carsTruncated++;
    }
    const job = (async () => {
      await sharp(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), { raw: { width, height, channels: 3 } })
        .png({ compressionLevel: 6 })
        .toFile(path.join(imageDir, `${id}.png`));
      await fs.writeFile(path.join(labelDir, `${id}.txt`), text);
      options.onProgress?.(k + 1);
    })();
    pending.add(job);
    void job.then(
      () => pending.delete(job),
      () => {},
    );
    if (pending.size >= 4) await Promise.race(pending);
  }
  await Promise.all(pending);

  const order = new Rng(options.seed ^ 0x3d0f).permutation(n);
  const nVal = valImages ?? Math.min(n - 1, Math.max(1, Math.round(n * valFraction)));
  const val = Array.from(order.subarray(0, nVal)).sort((a, b) => a - b);
  const train = Array.from(order.subarray(nVal)).sort((a, b) => a - b);
  const lines = (ids: number[]): string => ids.map((i) => imageIdOf(i) + '\n').join('');
  await fs.writeFile(path.join(setDir, 'train.txt'), lines(train));
  await fs.writeFile(path.join(setDir, 'val.txt'), lines(val));
  await fs.writeFile(path.join(setDir, 'trainval.txt'), lines(Array.from({ length: n }, (_, i) => i)));
  if (corruptRate > 0) await writeFileAtomic(recordFile, CORRUPTION_RECORD_COLUMNS.join(',') + '\n' + records.join(''));
  summary.train = train.length;
  summary.val = val.length;
  summary.seconds = (performance.now() - start) / 1000;
  summary.imagesPerSecond = n / summary.seconds;
  // Written last (atomically): its presence means the set is complete.
  const manifest: SyntheticKittiManifest = { generator: GENERATOR_VERSION, images: n, seed: options.seed, width, height, valFraction, summary };
  if (valImages !== undefined) manifest.valImages = valImages;
  if (corruptRate > 0) manifest.corruptBoxes = corruptRate;
  await writeFileAtomic(path.join(options.out, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
  return summary;
}

/** Bumped whenever the rendering changes, so that `ensureSyntheticKitti` regenerates old sets. */
export const GENERATOR_VERSION = 2;
const MANIFEST_FILE = 'synthetic-kitti.json';

export interface SyntheticKittiManifest {
  generator: number;
  images: number;
  seed: number;
  width: number;
  height: number;
  valFraction: number;
  /** Absent when the split came from valFraction. */
  valImages?: number;
  /** Absent when no labels were corrupted. */
  corruptBoxes?: number;
  summary: SyntheticKittiSummary;
}

/**
 * Generates the set unless `out` already holds a complete one made with the same parameters (its
 * synthetic-kitti.json manifest matches); for `npm start` and tests that need the data once.
 */
export async function ensureSyntheticKitti(options: SyntheticKittiOptions & { onStart?: () => void }): Promise<{ generated: boolean; summary: SyntheticKittiSummary }> {
  const want = {
    generator: GENERATOR_VERSION,
    images: options.images,
    seed: options.seed,
    width: options.width ?? SYNTHETIC_KITTI_DEFAULT_SIZE.width,
    height: options.height ?? SYNTHETIC_KITTI_DEFAULT_SIZE.height,
    valFraction: options.valFraction ?? 0.5,
  };
  try {
    const have = JSON.parse(await fs.readFile(path.join(options.out, MANIFEST_FILE), 'utf8')) as SyntheticKittiManifest;
    const sameCorruption = (have.corruptBoxes ?? 0) === (options.corruptBoxes ?? 0);
    const sameSplit = have.valImages === options.valImages;
    if (sameCorruption && sameSplit && (Object.keys(want) as (keyof typeof want)[]).every((k) => have[k] === want[k])) return { generated: false, summary: have.summary };
  } catch {
    // No manifest (or an unreadable one): generate.
  }
  options.onStart?.();
  return { generated: true, summary: await generateSyntheticKitti(options) };
}
