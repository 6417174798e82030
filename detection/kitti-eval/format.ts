/** Printing `evaluateKitti` results: JSON for programs, a table for people. */
import { KITTI_DIFFICULTIES } from '../../datasets/kitti/label-file.js';
import { KITTI_CLASS_PARAMS, type KittiEvalClass } from './classes.js';
import type { KittiClassResult, KittiEvalResult } from './evaluate.js';

/** `{"car": {"easy": {"ap11": .., "ap40": .., "gt": ..}, "moderate": {..}, "hard": {..}}, ...}` on one line. */
export function formatKittiJson(result: KittiEvalResult): string {
  const out: Record<string, unknown> = {};
  for (const [cls, r] of Object.entries(result) as [KittiEvalClass, KittiClassResult][]) {
    const entry: Record<string, unknown> = {};
    for (const d of KITTI_DIFFICULTIES) entry[d.name] = { ap11: r[d.name].ap11, ap40: r[d.name].ap40, gt: r[d.name].gt };
    out[cls] = entry;
  }
  return JSON.stringify(out);
}

function pct(v: number): string {
  return Number.isNaN(v) ? 'nan' : v.toFixed(2);
}

/** A fixed-width table: one row per class; AP11, AP|R40 (percent) and the ground-truth count per difficulty. */
export function formatKittiTable(result: KittiEvalResult): string {
  const header = ['class', 'IoU >', ...KITTI_DIFFICULTIES.flatMap(() => ['AP11', 'AP|R40', 'GT'])];
  const rows = (Object.entries(result) as [KittiEvalClass, KittiClassResult][]).map(([cls, r]) => [
    cls,
    String(KITTI_CLASS_PARAMS[cls].minOverlap),
    ...KITTI_DIFFICULTIES.flatMap((d) => [pct(r[d.name].ap11), pct(r[d.name].ap40), String(r[d.name].gt)]),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c]!.length)));
  const sep = '  ';
  const line = (cells: string[]): string => cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join(sep);
  // Difficulty names over their three columns.
  let groups = ' '.repeat(widths[0]! + sep.length + widths[1]!);
  KITTI_DIFFICULTIES.forEach((d, k) => {
    const span = widths.slice(2 + 3 * k, 5 + 3 * k).reduce((a, w) => a + w, 0) + 2 * sep.length;
    groups += sep + d.name.padStart(Math.floor((span + d.name.length) / 2)).padEnd(span);
  });
  return ['KITTI 2D object detection, official devkit rules (AP in %)', groups.trimEnd(), line(header), ...rows.map(line)].join('\n');
}
