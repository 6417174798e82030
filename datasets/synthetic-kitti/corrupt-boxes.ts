/**
 * Known label errors for the synthetic KITTI set: each Car label is corrupted independently with probability `rate`,
 * in one of four ways (chosen uniformly):
 *   shifted     the box moved sideways or up/down until its IoU with the true car is below MAX_IOU;
 *   resized     the box shrunk about its centre to a side factor in [0.35, 0.5] (IoU with the true car 0.12-0.25);
 *   background  an extra Car box of the same size on background (IoU < 0.05 with every labelled object); the true
 *               car keeps its own, correct label;
 *   missing     the car's label line is left out (the car is unlabelled).
 * A shifted or background box that cannot be placed within the image after 50 tries becomes a resized one. Images are
 * not touched: only label files change. The record (`corrupted_boxes.csv` next to label_2/) names every corrupted
 * label by image and line, so that a ranking of the label file's boxes can be scored against it.
 */
import type { Rng } from '../../src/util/rng.js';
import type { KittiObject } from '../kitti/label-file.js';

export const CORRUPTION_KINDS = ['shifted', 'resized', 'background', 'missing'] as const;
export type CorruptionKind = (typeof CORRUPTION_KINDS)[number];

/** File of the record, in DIR/training/ next to label_2/. */
export const CORRUPTION_RECORD_FILE = 'corrupted_boxes.csv';
/** Columns of the record. Boxes are x1 y1 x2 y2 in pixels; `line` is the 1-based line in label_2/<image>.txt. */
export const CORRUPTION_RECORD_COLUMNS = ['image', 'line', 'kind', 'x1', 'y1', 'x2', 'y2', 'true_x1', 'true_y1', 'true_x2', 'true_y2', 'iou'] as const;
/** Largest IoU a shifted box keeps with its car (and with any other labelled object). */
export const MAX_IOU = 0.3;

export interface Corruption {
  kind: CorruptionKind;
  /** 1-based line of the written label (null for 'missing'). */
  line: number | null;
  /** The written box (null for 'missing'). */
  box: [number, number, number, number] | null;
  /** The true car's box (null for 'background'). */
  trueBox: [number, number, number, number] | null;
  /** IoU of the written box with the true car (null for 'background' and 'missing'). */
  iou: number | null;
}

type Box = [number, number, number, number];

export function boxIou(a: readonly number[], b: readonly number[]): number {
  const iw = Math.max(0, Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!));
  const ih = Math.max(0, Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!));
  const inter = iw * ih;
  const union = (a[2]! - a[0]!) * (a[3]! - a[1]!) + (b[2]! - b[0]!) * (b[3]! - b[1]!) - inter;
  return union > 0 ? inter / union : 0;
}

const round2 = (v: number): number => Math.round(v * 100) / 100;
const roundBox = (b: Box): Box => [round2(b[0]), round2(b[1]), round2(b[2]), round2(b[3])];

function place(rng: Rng, width: number, height: number, w: number, h: number, ok: (b: Box) => boolean, around?: Box): Box | null {
  for (let t = 0; t < 50; t++) {
    let x1: number;
    let y1: number;
    if (around) {
      // Shift by 0.8-1.6 box sizes along one axis, either way.
      const horizontal = rng.next() < 0.75;
      const sign = rng.next() < 0.5 ? -1 : 1;
      const d = rng.uniform(0.8, 1.6);
      x1 = around[0] + (horizontal ? sign * d * w : 0);
      y1 = around[1] + (horizontal ? 0 : sign * d * h);
    } else {
      x1 = rng.uniform(0, Math.max(0, width - w));
      y1 = rng.uniform(0, Math.max(0, height - h));
    }
    const b: Box = [Math.max(0, x1), Math.max(0, y1), Math.min(width, x1 + w), Math.min(height, y1 + h)];
    if (b[2] - b[0] >= 2 && b[3] - b[1] >= 2 && ok(b)) return b;
  }
  return null;
}

/**
 * Corrupts one image's labels (in file order). Returns the labels to write and the record of what changed. Only Car
 * labels are corrupted; every other label is written as it is.
 */
export function corruptLabels(labels: readonly KittiObject[], rate: number, rng: Rng, width: number, height: number): { labels: KittiObject[]; corruptions: Corruption[] } {
  if (!(rate >= 0 && rate < 1)) throw new Error(`the corrupted fraction must be in [0, 1), got ${rate}`);
  const out: { object: KittiObject; corruption: Omit<Corruption, 'line'> | null }[] = [];
  const added: { object: KittiObject; corruption: Omit<Corruption, 'line'> }[] = [];
  const missing: Corruption[] = [];
  const allBoxes = labels.map((l) => l.bbox);
  for (const l of labels) {
    // Two draws per label whatever happens, so one label's fate does not shift the next one's.
    const u = rng.next();
    const k = rng.next();
    if (l.type !== 'Car' || u >= rate) {
      out.push({ object: l, corruption: null });
      continue;
    }
    let kind: CorruptionKind = CORRUPTION_KINDS[Math.min(3, Math.floor(k * 4))]!;
    const t = l.bbox;
    const w = t[2] - t[0];
    const h = t[3] - t[1];
    const clear = (b: Box, limit: number): boolean => allBoxes.every((o) => boxIou(o, b) < limit) && added.every((a) => boxIou(a.corruption.box!, b) < limit);
    let box: Box | null = null;
    if (kind === 'shifted') box = place(rng, width, height, w, h, (b) => clear(b, MAX_IOU), t);
    if (kind === 'background') box = place(rng, width, height, w, h, (b) => clear(b, 0.05));
    if ((kind === 'shifted' || kind === 'background') && box === null) kind = 'resized';
    if (kind === 'missing') {
      missing.push({ kind, line: null, box: null, trueBox: roundBox(t), iou: null });
      continue;
    }
    if (kind === 'resized') {
      const s = rng.uniform(0.35, 0.5);
      const cx = (t[0] + t[2]) / 2;
      const cy = (t[1] + t[3]) / 2;
      box = [cx - (s * w) / 2, cy - (s * h) / 2, cx + (s * w) / 2, cy + (s * h) / 2];
    }
    const written = roundBox(box!);
    const object: KittiObject = { ...l, bbox: written };
    if (kind === 'background') {
      out.push({ object: l, corruption: null });
      added.push({ object, corruption: { kind, box: written, trueBox: null, iou: null } });
    } else {
      out.push({ object, corruption: { kind, box: written, trueBox: roundBox(t), iou: boxIou(written, t) } });
    }
  }
  const all = [...out, ...added];
  const corruptions: Corruption[] = [];
  all.forEach((e, i) => {
    if (e.corruption) corruptions.push({ ...e.corruption, line: i + 1 });
  });
  return { labels: all.map((e) => e.object), corruptions: [...corruptions, ...missing] };
}

/** The record's rows for one image (CSV, no header). */
export function corruptionRows(imageId: string, corruptions: readonly Corruption[]): string {
  const f = (v: number | null | undefined): string => (v === null || v === undefined ? '' : String(v));
  return corruptions
    .map((c) =>
      [imageId, f(c.line), c.kind, ...(c.box ?? [null, null, null, null]).map(f), ...(c.trueBox ?? [null, null, null, null]).map(f), c.iou === null ? '' : c.iou.toFixed(4)].join(',') + '\n',
    )
    .join('');
}
