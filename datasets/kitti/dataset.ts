/**
 * KITTI object dataset reader (the layout as distributed: `training/image_2/*.png`, `training/label_2/*.txt`,
 * optional `ImageSets/{train,val,trainval}.txt` with one 6-digit image id per line).
 *
 *   const ds = await KittiDataset.open(root, { split: 'train', classes: ['car'] });
 *   ds.records        // KittiRecord[]: { imageId, imagePath, labelPath, width, height, objects: KittiBox[] }
 *   ds.numInstances   // size of the per-instance data-parameter table (covers the whole labelled set)
 *   ds.classNames     // ['car']: classIndex i of a box means classNames[i] (0-based, no background class)
 *
 * Decisions (documented in docs/datasets.md):
 * - Instance ids: every box of a trained class (`classes`) gets `instanceId`, assigned in order over the sorted image
 *   ids of ALL label files in label_2 (whatever the split), then in file order. So train and val never collide and a
 *   rerun (or another split) gives the same ids. Other boxes have instanceId -1. A label file that cannot be read
 *   contributes no ids; an image skipped later (missing/unreadable image) leaves its ids unused (gaps, never shifts).
 * - classIndex: index in `classes` (0-based); -1 for every other box. `ignore` is true for DontCare and for the devkit's
 *   neighbour classes of a trained class (Van for Car, Person_sitting for Pedestrian): a detector should neither
 *   reward nor punish detections there. Other known classes (Truck, Tram, Misc, Cyclist when not trained) are kept in
 *   `objects` with classIndex -1 and ignore false (background).
 * - Unknown class names (not one of KITTI's nine, case-insensitively, nor in `extraClasses`) are bad input.
 * - Split: ImageSets/<split>.txt when present (trainval falls back to train ∪ val); otherwise a deterministic split of
 *   the sorted labelled ids shuffled by Rng(splitSeed) with the 3DOP proportion 3712/7481 to train, logged.
 * - Bad input (malformed line, unknown class, box with right < left, label without image, split id without label or
 *   listed twice, unreadable image, empty split, and the impossible values of checkLabelValues and
 *   checkBoxesInImage): KittiFormatError / Error naming the file (and line), or with onBadInput 'skip' the image is
 *   left out, one log line per skip and a count at the end. Result files (evaluate-kitti) keep the devkit's leniency.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { Rng } from '../../src/util/rng.js';
import type { Logger } from '../../src/util/log.js';
import { stderrLogger } from '../../src/util/log.js';
import { readTextIfExists } from '../../src/util/read-text.js';
import {
  KittiFormatError,
  kittiDifficulty,
  normaliseClassName,
  parseKittiObjects,
  type KittiDifficulty,
  type KittiObject,
} from './label-file.js';

/** KITTI's nine object types (label files compare them case-insensitively). */
export const KITTI_CLASSES = ['Car', 'Van', 'Truck', 'Pedestrian', 'Person_sitting', 'Cyclist', 'Tram', 'Misc', 'DontCare'] as const;

/** The devkit's neighbouring classes: a neighbour's boxes are ignored (not false negatives/positives) for a class. */
export const KITTI_NEIGHBOUR_CLASSES: Readonly<Record<string, readonly string[]>> = {
  car: ['van'],
  pedestrian: ['person_sitting'],
};

export type KittiSplit = 'train' | 'val' | 'trainval' | 'all';

/** The 3DOP split's share of the labelled set going to train (3712 of 7481). */
export const KITTI_3DOP_TRAIN_FRACTION = 3712 / 7481;

export interface KittiBox {
  /** Left, top, right, bottom in original image pixels. */
  bbox: [number, number, number, number];
  /** Type as written in the file. */
  type: string;
  /** Lower-case type. */
  className: string;
  /** Index in the dataset's `classNames`, or -1 (DontCare, neighbour and other classes). */
  classIndex: number;
  /** True for DontCare regions and the devkit's neighbour classes of a trained class. */
  ignore: boolean;
  /** Dataset-wide index of this box's data parameter; -1 when classIndex is -1. */
  instanceId: number;
  /** KITTI occluded column: 0 visible, 1 partly, 2 largely occluded, 3 unknown (-1 for DontCare). */
  occlusion: number;
  /** KITTI truncated column, 0..1 (-1 for DontCare). */
  truncation: number;
  /** bbox height in pixels (y2 - y1). */
  height: number;
  /** Easiest devkit difficulty level the box passes, or null. */
  difficulty: KittiDifficulty | null;
  /** 1-based line in the label file. */
  line: number;
  /** All 15 columns as parsed. */
  object: KittiObject;
}

export interface KittiRecord {
  imageId: string;
  imagePath: string;
  labelPath: string;
  /** Known once the image header was read (verify 'header' or 'decode'). */
  width?: number;
  height?: number;
  objects: KittiBox[];
}

export interface KittiOpenOptions {
  /** Default 'train'. */
  split?: KittiSplit;
  /** Trained classes, case-insensitive (default ['car']). */
  classes?: readonly string[];
  /** Class names accepted in addition to KITTI's nine (treated as background). */
  extraClasses?: readonly string[];
  /** 'error' (default): throw at the first bad input. 'skip': leave the image out, log it, count the skips. */
  onBadInput?: 'error' | 'skip';
  /** How to check the split's images at open: 'none' (existence only), 'header' (default: sharp metadata, fills
   * width/height), 'decode' (full decode: also catches truncated files; slow on the full set). */
  verify?: 'none' | 'header' | 'decode';
  /** Seed of the fallback split when ImageSets/ is missing (default 0). */
  splitSeed?: number;
  /** Log lines (fallback split, skips); default stderr, null for none. */
  log?: Logger | null;
}

export interface KittiSkip {
  file: string;
  reason: string;
}

/** A bad image or label file (message names the file; KittiFormatError is used where a line is known). */
export class KittiInputError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'KittiInputError';
  }
}

const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg'];

export class KittiDataset {
  private constructor(
    readonly root: string,
    readonly split: KittiSplit,
    readonly classNames: readonly string[],
    readonly records: KittiRecord[],
    readonly numInstances: number,
    readonly skipped: KittiSkip[],
    /** 'imagesets' when the split came from ImageSets/, 'generated' for the seeded fallback, 'all' for split 'all'. */
    readonly splitSource: 'imagesets' | 'generated' | 'all',
  ) {}

  static async open(root: string, options: KittiOpenOptions = {}): Promise<KittiDataset> {
    const split = options.split ?? 'train';
    const classNames = (options.classes ?? ['car']).map(normaliseClassName);
    if (classNames.length === 0) throw new Error('KittiDataset: classes must not be empty');
    const onBad = options.onBadInput ?? 'error';
    const log = options.log === undefined ? stderrLogger : (options.log ?? (() => {}));
    const known = new Set([...KITTI_CLASSES, ...(options.extraClasses ?? [])].map(normaliseClassName));
    for (const c of classNames) {
      if (!known.has(c)) throw new Error(`KittiDataset: class '${c}' is not a KITTI class (${KITTI_CLASSES.join(', ')})`);
    }
    const ignored = new Set(['dontcare', ...classNames.flatMap((c) => KITTI_NEIGHBOUR_CLASSES[c] ?? [])]);
    for (const c of classNames) ignored.delete(c);

    const trainingDir = path.join(root, 'training');
    const labelDir = path.join(trainingDir, 'label_2');
    const imageDir = path.join(trainingDir, 'image_2');
    const labelFiles = await listDir(labelDir, 'label directory');
    const imageFiles = await listDir(imageDir, 'image directory');
    const imageById = new Map<string, string>();
    for (const f of imageFiles) {
      const ext = path.extname(f).toLowerCase();
      if (IMAGE_EXTENSIONS.includes(ext)) imageById.set(f.slice(0, -ext.length), path.join(imageDir, f));
    }
    const labelIds = labelFiles
      .filter((f) => f.endsWith('.txt'))
      .map((f) => f.slice(0, -4))
      .sort();
    if (labelIds.length === 0) throw new KittiInputError(labelDir, 'no label files (*.txt)');
    const labelled = new Set(labelIds);
    const unlabelled = [...imageById.keys()].filter((id) => !labelled.has(id)).length;
    if (unlabelled > 0) log(`kitti: ${unlabelled} image(s) in ${imageDir} have no label file and are not used`);

    const skipped: KittiSkip[] = [];
    const bad = (err: Error, file: string): void => {
      if (onBad === 'error') throw err;
      skipped.push({ file, reason: err.message });
      log(`kitti: skipping ${err.message}`);
    };

    // Pass 1: parse every label file (ids are assigned over the whole labelled set, in sorted order).
    const parsed = new Map<string, KittiRecord>();
    let nextInstance = 0;
    for (const id of labelIds) {
      const labelPath = path.join(labelDir, `${id}.txt`);
      let objects: KittiBox[];
      try {
        const text = await fs.readFile(labelPath, 'utf8');
        objects = toBoxes(text, labelPath, classNames, ignored, known);
      } catch (err) {
        if (err instanceof KittiFormatError) {
          bad(err, labelPath);
          continue;
        }
        throw err;
      }
      for (const o of objects) if (o.classIndex >= 0) o.instanceId = nextInstance++;
      const imagePath = imageById.get(id);
      if (imagePath === undefined) {
        bad(new KittiInputError(labelPath, `label without image: no ${path.join(imageDir, id)}.png`), labelPath);
        continue;
      }
      parsed.set(id, { imageId: id, imagePath, labelPath, objects });
    }

    // Pass 2: the split.
    let ids: string[];
    let splitSource: 'imagesets' | 'generated' | 'all';
    if (split === 'all') {
      ids = labelIds;
      splitSource = 'all';
    } else {
      const fromFiles = await readImageSet(root, split);
      if (fromFiles !== null) {
        ids = [];
        const listed = new Map<string, string>();
        for (const entry of fromFiles) {
          if (!labelled.has(entry.id)) {
            bad(new KittiFormatError(entry.file, entry.line, `image id '${entry.id}' has no label file in ${labelDir}`), entry.file);
            continue;
          }
          const first = listed.get(entry.id);
          if (first !== undefined) {
            bad(new KittiFormatError(entry.file, entry.line, `image id '${entry.id}' listed twice (first at ${first})`), entry.file);
            continue;
          }
          listed.set(entry.id, `${entry.file}:${entry.line}`);
          ids.push(entry.id);
        }
        splitSource = 'imagesets';
      } else {
        const seed = options.splitSeed ?? 0;
        const order = new Rng(seed).permutation(labelIds.length);
        const nTrain = Math.round(labelIds.length * KITTI_3DOP_TRAIN_FRACTION);
        const pick = split === 'train' ? order.subarray(0, nTrain) : split === 'val' ? order.subarray(nTrain) : order;
        ids = Array.from(pick, (i) => labelIds[i]!).sort();
        splitSource = 'generated';
        log(
          `kitti: no ImageSets/${split}.txt under ${root}; made a deterministic split (seed ${seed}, ` +
            `${nTrain} train / ${labelIds.length - nTrain} val of ${labelIds.length}, 3DOP proportion 3712/7481)`,
        );
      }
    }

    // Pass 3: check the split's images.
    const verify = options.verify ?? 'header';
    const records: KittiRecord[] = [];
    const chosen = ids.map((id) => parsed.get(id)).filter((r): r is KittiRecord => r !== undefined);
    const checks = await mapLimit(chosen, 8, async (r) => {
      try {
        await checkImage(r, verify);
        checkBoxesInImage(r);
        return null;
      } catch (err) {
        return err instanceof Error ? err : new Error(String(err));
      }
    });
    for (let i = 0; i < chosen.length; i++) {
      const err = checks[i];
      if (err) {
        bad(err, chosen[i]!.imagePath);
        continue;
      }
      records.push(chosen[i]!);
    }
    if (skipped.length > 0) log(`kitti: skipped ${skipped.length} bad input file(s) under ${root}`);
    if (records.length === 0) {
      throw new KittiInputError(root, `split '${split}' is empty (${ids.length} listed, ${skipped.length} skipped)`);
    }
    return new KittiDataset(root, split, classNames, records, nextInstance, skipped, splitSource);
  }

  /**
   * The split's trained boxes indexed by instance id (length numInstances; undefined for ids of other splits or
   * skipped images): for run records (tracked instances) and for grouping σ by occlusion/difficulty.
   */
  instances(): ({ box: KittiBox; record: KittiRecord } | undefined)[] {
    const out = new Array<{ box: KittiBox; record: KittiRecord } | undefined>(this.numInstances).fill(undefined);
    for (const record of this.records) for (const box of record.objects) if (box.instanceId >= 0) out[box.instanceId] = { box, record };
    return out;
  }

  /** Number of boxes of trained classes in this split. */
  get numBoxes(): number {
    let n = 0;
    for (const r of this.records) for (const o of r.objects) if (o.classIndex >= 0) n++;
    return n;
  }
}

/** Parses one label file into boxes (instance ids left at -1). Throws KittiFormatError naming file and line. */
export function toBoxes(
  text: string,
  file: string,
  classNames: readonly string[],
  ignored: ReadonlySet<string>,
  known: ReadonlySet<string>,
): KittiBox[] {
  const objects = parseKittiObjects(text, file);
  // parseKittiObjects skips blank lines: object k comes from the k-th non-blank line.
  const lineNumbers: number[] = [];
  text.split(/\r?\n/).forEach((l, i) => {
    if (l.trim() !== '') lineNumbers.push(i + 1);
  });
  const lines = text.split(/\r?\n/);
  return objects.map((o, k) => {
    const line = lineNumbers[k]!;
    const className = normaliseClassName(o.type);
    if (!known.has(className)) {
      throw new KittiFormatError(file, line, `unknown class '${o.type}' (KITTI classes: ${KITTI_CLASSES.join(', ')})`);
    }
    checkLabelValues(lines[line - 1]!, o, className, file, line);
    const [x1, y1, x2, y2] = o.bbox;
    if (x2 < x1 || y2 < y1) throw new KittiFormatError(file, line, `box has right < left or bottom < top: ${o.bbox.join(' ')}`);
    const classIndex = classNames.indexOf(className);
    return {
      bbox: [x1, y1, x2, y2],
      type: o.type,
      className,
      classIndex,
      ignore: classIndex < 0 && ignored.has(className),
      instanceId: -1,
      occlusion: o.occluded,
      truncation: o.truncated,
      height: y2 - y1,
      difficulty: className === 'dontcare' ? null : kittiDifficulty(o),
      line,
      object: o,
    };
  });
}

/** A plain decimal number as KITTI writes them (no hex, no 'Infinity', no digit separators). */
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
/** No image is this many pixels wide: a coordinate beyond it is a broken label, whatever the image size. */
export const MAX_PIXEL_COORDINATE = 100_000;

/**
 * The ground-truth rules the parser (shared with evaluate-kitti, which keeps the devkit's leniency) does not apply:
 * every numeric column a plain decimal; truncation in [0, 1] (-1 only on DontCare, as KITTI writes it); a box of
 * positive width and height (DontCare regions excepted) with coordinates within ±MAX_PIXEL_COORDINATE.
 */
export function checkLabelValues(text: string, o: KittiObject, className: string, file: string, line: number): void {
  const columns = text.trim().split(/\s+/);
  for (let c = 1; c < columns.length; c++) {
    if (!DECIMAL.test(columns[c]!)) throw new KittiFormatError(file, line, `column ${c + 1} is not a decimal number: '${columns[c]}'`);
  }
  const dontCare = className === 'dontcare';
  if (!((o.truncated >= 0 && o.truncated <= 1) || (dontCare && o.truncated === -1))) {
    throw new KittiFormatError(file, line, `truncation ${columns[1]} is outside [0, 1]${dontCare ? ' (or -1)' : ''}`);
  }
  if (o.bbox.some((v) => Math.abs(v) > MAX_PIXEL_COORDINATE)) {
    throw new KittiFormatError(file, line, `box ${columns.slice(4, 8).join(' ')} has a coordinate beyond ±${MAX_PIXEL_COORDINATE} pixels`);
  }
  const [x1, y1, x2, y2] = o.bbox;
  if (!dontCare && (x2 === x1 || y2 === y1)) {
    throw new KittiFormatError(file, line, `box ${columns.slice(4, 8).join(' ')} has zero ${x2 === x1 ? 'width' : 'height'}`);
  }
}

/**
 * Once the image size is known: every box must overlap the image, and reach no further outside it than the image's
 * own width (height) on either side. KITTI clips its boxes to the image; a box far outside is a broken label.
 */
export function checkBoxesInImage(r: KittiRecord): void {
  const { width: W, height: H } = r;
  if (W === undefined || H === undefined) return;
  for (const b of r.objects) {
    const [x1, y1, x2, y2] = b.bbox;
    const inside = x2 > 0 && y2 > 0 && x1 < W && y1 < H;
    const near = x1 >= -W && y1 >= -H && x2 <= 2 * W && y2 <= 2 * H;
    if (!inside || !near) {
      throw new KittiFormatError(r.labelPath, b.line, `box ${b.bbox.join(' ')} is ${inside ? 'far' : ''}${inside ? ' ' : ''}outside the ${W}x${H} image`);
    }
  }
}

async function listDir(dir: string, what: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new KittiInputError(dir, `cannot read ${what} (${code ?? String(err)}); expected the KITTI layout training/image_2, training/label_2`);
  }
}

interface ImageSetEntry {
  id: string;
  file: string;
  line: number;
}

async function readImageSetFile(file: string): Promise<ImageSetEntry[] | null> {
  const text = await readTextIfExists(file);
  if (text === null) return null;
  const out: ImageSetEntry[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const id = raw.trim();
    if (id === '') return;
    if (!/^[\w.-]+$/.test(id)) throw new KittiFormatError(file, i + 1, `not an image id: '${id}'`);
    out.push({ id, file, line: i + 1 });
  });
  return out;
}

async function readImageSet(root: string, split: 'train' | 'val' | 'trainval'): Promise<ImageSetEntry[] | null> {
  const dir = path.join(root, 'ImageSets');
  const direct = await readImageSetFile(path.join(dir, `${split}.txt`));
  if (direct !== null || split !== 'trainval') return direct;
  const train = await readImageSetFile(path.join(dir, 'train.txt'));
  const val = await readImageSetFile(path.join(dir, 'val.txt'));
  if (train === null || val === null) return null;
  return [...train, ...val];
}

async function checkImage(r: KittiRecord, verify: 'none' | 'header' | 'decode'): Promise<void> {
  try {
    if (verify === 'none') {
      await fs.access(r.imagePath);
    } else if (verify === 'header') {
      const m = await sharp(r.imagePath).metadata();
      if (!m.width || !m.height) throw new Error('no image size in header');
      r.width = m.width;
      r.height = m.height;
    } else {
      const { info } = await sharp(r.imagePath, { failOn: 'truncated' }).raw().toBuffer({ resolveWithObject: true });
      r.width = info.width;
      r.height = info.height;
    }
  } catch (err) {
    throw new KittiInputError(r.imagePath, `unreadable image (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`);
  }
}

/** Maps with at most `limit` promises in flight, results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
