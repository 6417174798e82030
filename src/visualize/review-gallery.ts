/**
 * The review gallery: contact sheets of the training samples with the highest σ (the suspects, most likely mislabelled)
 * and the lowest σ (what "easy" means), read from the run's label-review.csv.
 * - classification: the image with its given and predicted label and σ; images come from the row's file, or, for
 *   in-memory datasets (idx, CIFAR), from the dataset named in run.json at the row's source_image;
 * - detection: a crop around the box with the box drawn and its σ.
 * A run without σ gets a note instead of a gallery. Images that cannot be found are named and skipped.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import type { RunRecords } from '../records/run-records.js';
import { LABEL_REVIEW_FILE, parseCsv } from '../review/label-review.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { resolveImage } from './box-curriculum.js';
import { el, svgDocument, svgToPng, text } from './svg.js';
import { loadMnistLike } from '../../datasets/idx/mnist-like.js';
import { loadCifar } from '../../datasets/cifar/cifar-binary.js';

export const REVIEW_THUMB = 112;
const CELL_W = REVIEW_THUMB + 28;
const CELL_H = REVIEW_THUMB + 58;
const PER_ROW = 8;
const SIDE = 16;
const HEADER = 40;

export interface ReviewCell {
  png: Buffer;
  lines: string[];
  /** Box in thumbnail pixels, drawn on top (detection). */
  box?: [number, number, number, number];
}

export interface ReviewSheetResult {
  /** File name of the PNG inside the output folder, or null when no image could be shown. */
  png: string | null;
  shown: number;
  /** Rows whose image could not be found or read: "rank N: path (why)". */
  skipped: string[];
}

export interface ReviewGalleryResult {
  /** Null when the run has no review to show; `note` then says why. */
  sheets: { title: string; caption: string; result: ReviewSheetResult }[];
  note: string | null;
  /** True when the run directory has no label-review.csv (a run from before the trainers wrote one, or unfinished). */
  missing: boolean;
}

export function reviewSheetSvg(title: string, cells: readonly ReviewCell[]): string {
  const rows = Math.max(1, Math.ceil(cells.length / PER_ROW));
  const width = Math.max(2 * SIDE + Math.min(PER_ROW, Math.max(1, cells.length)) * CELL_W, 480);
  const height = HEADER + rows * CELL_H + 8;
  const body: string[] = [text(SIDE, 26, title, { 'font-size': 15, 'font-weight': 'bold' })];
  cells.forEach((c, i) => {
    const x = SIDE + (i % PER_ROW) * CELL_W + 8;
    const y = HEADER + Math.floor(i / PER_ROW) * CELL_H + 4;
    body.push(el('image', { x, y, width: REVIEW_THUMB, height: REVIEW_THUMB, href: `data:image/png;base64,${c.png.toString('base64')}` }));
    if (c.box) {
      const [x1, y1, x2, y2] = c.box;
      body.push(el('rect', { x: x + x1, y: y + y1, width: Math.max(1, x2 - x1), height: Math.max(1, y2 - y1), fill: 'none', stroke: '#ff2d2d', 'stroke-width': 2.5 }));
    }
    c.lines.forEach((line, j) => body.push(text(x + REVIEW_THUMB / 2, y + REVIEW_THUMB + 15 + 14 * j, line, { 'text-anchor': 'middle', 'font-size': 11, fill: j === 0 ? '#222' : '#555' })));
  });
  return svgDocument(width, height, body);
}

type Row = Record<string, string>;

/** σ per row, NaN when empty. */
const sigmaOf = (r: Row): number => (r['sigma'] === undefined || r['sigma'] === '' ? NaN : Number(r['sigma']));

function fmtSigma(v: number): string {
  return Number.isFinite(v) ? (v >= 10 ? v.toFixed(1) : v.toFixed(3)) : '?';
}

function truncate(s: string, n: number): string {
  return s.length <= n ? s : s.slice(0, n - 1) + '…';
}

/** True when the run learned no σ (curriculum none). */
export function runHasNoSigma(run: RunRecords, rows: readonly Row[]): boolean {
  const c = run.manifest.config as { curriculum?: unknown };
  const mode = typeof c.curriculum === 'string' ? c.curriculum : (c.curriculum as { mode?: string } | undefined)?.mode;
  return mode === 'none' || (rows.length > 0 && rows.every((r) => !Number.isFinite(sigmaOf(r))));
}

type SourceImages = (index: number) => { pixels: Uint8Array; width: number; height: number; channels: number } | null;

/** In-memory training images named by the run's dataset config (idx or CIFAR), or a reason why not. */
async function sourceImages(run: RunRecords): Promise<SourceImages | string> {
  const d = (run.manifest.config as { dataset?: { kind?: string; root?: string } }).dataset;
  if (!d?.kind || d.root === undefined) return 'run.json names no dataset';
  try {
    const set =
      d.kind === 'fashion-mnist' || d.kind === 'mnist'
        ? { ...(await loadMnistLike(d.root, 'train')), channels: 1 }
        : d.kind === 'cifar10' || d.kind === 'cifar100'
          ? await loadCifar(d.root, d.kind, 'train')
          : null;
    if (!set) return `dataset kind ${d.kind} has image files, not in-memory images`;
    const size = set.height * set.width * set.channels;
    return (i) =>
      Number.isInteger(i) && i >= 0 && i < set.count
        ? { pixels: set.pixels.subarray(i * size, (i + 1) * size), width: set.width, height: set.height, channels: set.channels }
        : null;
  } catch (err) {
    return `the training images of ${d.kind} at ${d.root} could not be read (${(err as Error).message})`;
  }
}

async function fitThumb(input: sharp.Sharp): Promise<Buffer> {
  return input
    .resize({ width: REVIEW_THUMB, height: REVIEW_THUMB, fit: 'contain', background: { r: 30, g: 30, b: 30, alpha: 1 }, kernel: 'nearest' })
    .flatten({ background: { r: 30, g: 30, b: 30 } })
    .png()
    .toBuffer();
}

/** A crop around a box (the box plus half its size on each side, at least 48 px), fitted into the thumbnail. */
async function boxCrop(file: string, box: [number, number, number, number]): Promise<{ png: Buffer; box: [number, number, number, number] }> {
  const meta = await sharp(file).metadata();
  if (!meta.width || !meta.height) throw new Error('no image size');
  const [x1, y1, x2, y2] = box;
  const w = Math.max(1, x2 - x1);
  const h = Math.max(1, y2 - y1);
  const side = Math.max(48, 2 * w, 2 * h);
  const cx = (x1 + x2) / 2;
  const cy = (y1 + y2) / 2;
  const left = Math.max(0, Math.min(meta.width - 1, Math.floor(cx - side / 2)));
  const top = Math.max(0, Math.min(meta.height - 1, Math.floor(cy - side / 2)));
  const cw = Math.max(1, Math.min(meta.width - left, Math.ceil(side)));
  const ch = Math.max(1, Math.min(meta.height - top, Math.ceil(side)));
  const s = Math.min(REVIEW_THUMB / cw, REVIEW_THUMB / ch);
  const ox = (REVIEW_THUMB - cw * s) / 2;
  const oy = (REVIEW_THUMB - ch * s) / 2;
  const png = await fitThumb(sharp(file).extract({ left, top, width: cw, height: ch }));
  return { png, box: [ox + (x1 - left) * s, oy + (y1 - top) * s, ox + (x2 - left) * s, oy + (y2 - top) * s] };
}

async function cellFor(run: RunRecords, row: Row, source: () => Promise<SourceImages | string>): Promise<ReviewCell | string> {
  const rank = row['rank'] ?? '?';
  const sigma = `σ ${fmtSigma(sigmaOf(row))}`;
  if (run.manifest.task === 'detection') {
    const file = row['file'] ?? '';
    const found = file ? await resolveImage(file, run.dir) : null;
    if (!found) return `rank ${rank}: ${file || row['image'] || '(no file)'} (not found)`;
    const box = [row['x1'], row['y1'], row['x2'], row['y2']].map(Number) as [number, number, number, number];
    try {
      const crop = await boxCrop(found, box);
      const iou = row['best_iou'] !== undefined && row['best_iou'] !== '' ? ` IoU ${Number(row['best_iou']).toFixed(2)}` : '';
      return { png: crop.png, box: crop.box, lines: [`#${rank} ${truncate(row['image'] ?? '', 12)}`, `${sigma}${iou}`, `occl. ${row['occluded'] ?? '?'}`] };
    } catch (err) {
      return `rank ${rank}: ${found} (unreadable: ${(err as Error).message})`;
    }
  }
  const labels = [
    `given: ${truncate(row['given_class'] || row['given_label'] || '?', 14)}`,
    `pred: ${truncate(row['predicted_class'] || row['predicted_label'] || '?', 14)}`,
    `#${rank} ${sigma}`,
  ];
  const file = row['file'] ?? '';
  if (file) {
    const found = await resolveImage(file, run.dir);
    if (!found) return `rank ${rank}: ${file} (not found)`;
    try {
      return { png: await fitThumb(sharp(found)), lines: labels };
    } catch (err) {
      return `rank ${rank}: ${found} (unreadable: ${(err as Error).message})`;
    }
  }
  const src = await source();
  if (typeof src === 'string') return `rank ${rank}: sample ${row['index'] ?? '?'} (${src})`;
  const img = src(Number(row['source_image'] ?? NaN));
  if (!img) return `rank ${rank}: sample ${row['index'] ?? '?'} (no image ${row['source_image'] ?? ''} in the dataset)`;
  const raw = sharp(Buffer.from(img.pixels.buffer, img.pixels.byteOffset, img.pixels.byteLength), { raw: { width: img.width, height: img.height, channels: img.channels as 1 | 3 } });
  return { png: await fitThumb(raw), lines: labels };
}

/**
 * The top-`top` and the lowest-`top` rows of the run's label-review.csv as contact sheets in `out`
 * (review-suspects.png, review-easiest.png).
 */
export async function renderReviewGallery(run: RunRecords, out: string, top: number): Promise<ReviewGalleryResult> {
  const file = path.join(run.dir, LABEL_REVIEW_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    // A baseline is told why it can have no gallery even when its review is missing (an interrupted or older run).
    if (runHasNoSigma(run, [])) {
      return { sheets: [], missing: false, note: `this run has no σ (curriculum none): no review gallery by σ; train with a curriculum to rank the samples by σ` };
    }
    return { sheets: [], missing: true, note: `no ${LABEL_REVIEW_FILE} in ${run.dir} (the trainers write it when training completes): no review gallery` };
  }
  const { rows } = parseCsv(text, file);
  if (runHasNoSigma(run, rows)) {
    return {
      sheets: [],
      missing: false,
      note: `this run has no σ (curriculum none): no review gallery by σ. ${file} lists the samples by loss instead; train with a curriculum to rank them by σ`,
    };
  }
  if (top <= 0 || rows.length === 0) return { sheets: [], missing: false, note: rows.length === 0 ? `${file} has no samples` : null };
  const bySigma = [...rows].sort((a, b) => sigmaOf(b) - sigmaOf(a) || Number(a['rank']) - Number(b['rank']));
  const k = Math.min(top, bySigma.length);
  const high = bySigma.slice(0, k);
  const low = bySigma.slice(-k).reverse();
  let cached: Promise<SourceImages | string> | null = null;
  const source = (): Promise<SourceImages | string> => (cached ??= sourceImages(run));
  const unit = run.manifest.task === 'detection' ? 'boxes' : 'samples';
  const sheet = async (rowsShown: Row[], name: string, title: string): Promise<ReviewSheetResult> => {
    const cells: ReviewCell[] = [];
    const skipped: string[] = [];
    for (const r of rowsShown) {
      const c = await cellFor(run, r, source);
      if (typeof c === 'string') skipped.push(c);
      else cells.push(c);
    }
    if (cells.length === 0) {
      await fs.rm(path.join(out, name), { force: true });
      return { png: null, shown: 0, skipped };
    }
    await writeFileAtomic(path.join(out, name), await svgToPng(reviewSheetSvg(title, cells)));
    return { png: name, shown: cells.length, skipped };
  };
  const what = run.manifest.task === 'detection' ? 'Each crop shows the box (red) with its σ, its best IoU with the model\'s own detections and its occlusion level.' : 'Each image shows its given (training) label, the label the trained model predicts, its rank and σ.';
  return {
    note: null,
    missing: false,
    sheets: [
      {
        title: `Suspects: the ${k} training ${unit} with the highest σ`,
        caption: `The ${k} ${unit} ranked first in ${LABEL_REVIEW_FILE} (highest σ: the ones the curriculum postponed most, likely mislabelled). ${what}`,
        result: await sheet(high, 'review-suspects.png', `Highest σ: the ${k} most suspect ${unit}`),
      },
      {
        title: `Easiest: the ${k} training ${unit} with the lowest σ`,
        caption: `The ${k} ${unit} with the lowest σ, learnt first: what the model finds easy. ${what}`,
        result: await sheet(low, 'review-easiest.png', `Lowest σ: the ${k} easiest ${unit}`),
      },
    ],
  };
}
