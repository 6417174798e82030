/**
 * CIFAR-10 / CIFAR-100 "binary version" batches, exactly as distributed:
 * - CIFAR-10 (`cifar-10-batches-bin/`): `data_batch_1.bin` .. `data_batch_5.bin`, `test_batch.bin`,
 *   `batches.meta.txt`; each record is 1 label byte + 3072 pixel bytes (1024 red, 1024 green, 1024 blue, row-major 32x32).
 * - CIFAR-100 (`cifar-100-binary/`): `train.bin`, `test.bin`, `fine_label_names.txt`, `coarse_label_names.txt`; each
 *   record is 1 coarse-label byte + 1 fine-label byte + 3072 pixel bytes.
 * Pixels are returned interleaved (HWC, NHWC batches), the layout the models take.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { DatasetFormatError } from '../idx/dataset-format-error.js';

export type CifarVariant = 'cifar10' | 'cifar100';

export const CIFAR_SIDE = 32;
const PIXELS = CIFAR_SIDE * CIFAR_SIDE;

export interface ColorImageSet {
  count: number;
  height: number;
  width: number;
  channels: number;
  /** Interleaved HWC pixels: image i is pixels[i*h*w*c .. (i+1)*h*w*c). */
  pixels: Uint8Array;
  labels: Int32Array;
  /** CIFAR-100 only: the 20 super-class labels. */
  coarseLabels?: Int32Array;
  numClasses: number;
  classNames: string[];
}

export function cifarRecordSize(variant: CifarVariant): number {
  return (variant === 'cifar10' ? 1 : 2) + 3 * PIXELS;
}

/** Parses the records of one batch file, appending to `out` arrays at `start`. */
export function parseCifarBatch(
  bytes: Uint8Array,
  variant: CifarVariant,
  file = 'cifar batch',
): { pixels: Uint8Array; labels: Int32Array; coarseLabels: Int32Array | null } {
  const size = cifarRecordSize(variant);
  if (bytes.length === 0 || bytes.length % size !== 0) {
    throw new DatasetFormatError(
      file,
      null,
      `size ${bytes.length} is not a positive multiple of the ${variant} record size ${size} (truncated or wrong variant)`,
    );
  }
  const count = bytes.length / size;
  const numClasses = variant === 'cifar10' ? 10 : 100;
  const pixels = new Uint8Array(count * 3 * PIXELS);
  const labels = new Int32Array(count);
  const coarse = variant === 'cifar100' ? new Int32Array(count) : null;
  const head = variant === 'cifar10' ? 1 : 2;
  for (let r = 0; r < count; r++) {
    const o = r * size;
    const label = bytes[o + head - 1]!;
    if (label >= numClasses) {
      throw new DatasetFormatError(file, null, `record ${r} (byte offset ${o}): label ${label} is not below ${numClasses}`);
    }
    labels[r] = label;
    if (coarse) {
      const c = bytes[o]!;
      if (c >= 20) throw new DatasetFormatError(file, null, `record ${r} (byte offset ${o}): coarse label ${c} is not below 20`);
      coarse[r] = c;
    }
    const src = o + head;
    const dst = r * 3 * PIXELS;
    for (let p = 0; p < PIXELS; p++) {
      pixels[dst + 3 * p] = bytes[src + p]!;
      pixels[dst + 3 * p + 1] = bytes[src + PIXELS + p]!;
      pixels[dst + 3 * p + 2] = bytes[src + 2 * PIXELS + p]!;
    }
  }
  return { pixels, labels, coarseLabels: coarse };
}

/** Encodes images back into the binary record format (fixtures; the inverse of parseCifarBatch). */
export function encodeCifarBatch(
  variant: CifarVariant,
  pixelsHwc: Uint8Array,
  labels: ArrayLike<number>,
  coarseLabels?: ArrayLike<number>,
): Uint8Array {
  const size = cifarRecordSize(variant);
  const count = labels.length;
  const out = new Uint8Array(count * size);
  const head = variant === 'cifar10' ? 1 : 2;
  for (let r = 0; r < count; r++) {
    const o = r * size;
    if (variant === 'cifar100') out[o] = coarseLabels ? coarseLabels[r]! : 0;
    out[o + head - 1] = labels[r]!;
    for (let p = 0; p < PIXELS; p++) {
      for (let c = 0; c < 3; c++) out[o + head + c * PIXELS + p] = pixelsHwc[r * 3 * PIXELS + 3 * p + c]!;
    }
  }
  return out;
}

async function readNames(file: string, expected: number): Promise<string[]> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return Array.from({ length: expected }, (_, i) => `class ${i}`);
  }
  const names = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  if (names.length !== expected) {
    throw new DatasetFormatError(file, null, `${names.length} class names, expected ${expected}`);
  }
  return names;
}

/**
 * Loads a split from the extracted archive folder (`cifar-10-batches-bin` or `cifar-100-binary`; the folder containing
 * it also works).
 */
export async function loadCifar(root: string, variant: CifarVariant, split: 'train' | 'test'): Promise<ColorImageSet> {
  const sub = variant === 'cifar10' ? 'cifar-10-batches-bin' : 'cifar-100-binary';
  let dir = root;
  try {
    await fs.access(path.join(root, sub));
    dir = path.join(root, sub);
  } catch {
    // root is the batch folder itself
  }
  const files =
    variant === 'cifar10'
      ? split === 'train'
        ? [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`)
        : ['test_batch.bin']
      : [split === 'train' ? 'train.bin' : 'test.bin'];
  const parts: ReturnType<typeof parseCifarBatch>[] = [];
  for (const f of files) {
    const p = path.join(dir, f);
    let bytes: Uint8Array;
    try {
      bytes = await fs.readFile(p);
    } catch {
      throw new DatasetFormatError(p, null, `missing ${variant} batch file`);
    }
    parts.push(parseCifarBatch(bytes, variant, p));
  }
  const count = parts.reduce((a, p) => a + p.labels.length, 0);
  const pixels = new Uint8Array(count * 3 * PIXELS);
  const labels = new Int32Array(count);
  const coarse = variant === 'cifar100' ? new Int32Array(count) : undefined;
  let at = 0;
  for (const p of parts) {
    pixels.set(p.pixels, at * 3 * PIXELS);
    labels.set(p.labels, at);
    if (coarse && p.coarseLabels) coarse.set(p.coarseLabels, at);
    at += p.labels.length;
  }
  const numClasses = variant === 'cifar10' ? 10 : 100;
  const classNames = await readNames(
    path.join(dir, variant === 'cifar10' ? 'batches.meta.txt' : 'fine_label_names.txt'),
    numClasses,
  );
  const set: ColorImageSet = { count, height: 32, width: 32, channels: 3, pixels, labels, numClasses, classNames };
  if (coarse) set.coarseLabels = coarse;
  return set;
}
