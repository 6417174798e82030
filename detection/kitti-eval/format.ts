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

/** A fixed-width table: one row per class, AP11 / AP|R40 (percent) and ground-truth count per difficulty. */
export function formatKittiTable(result: KittiEvalResult): string {
  const head1 = ['', ...KITTI_DIFFICULTIES.map((d) => d.name)];
  const rows: string[][] = [];
  for (const [cls, r] of Object.entries(result) as [KittiEvalClass, KittiClassResult][]) {
    rows.push([
      `${cls} (IoU > ${KITTI_CLASS_PARAMS[cls].minOverlap})`,
      ...KITTI_DIFFICULTIES.map((d) => `${pct(r[d.name].ap11)}  ${pct(r[d.name].ap40)}  ${r[d.name].gt}`),
    ]);
  }
  const sub = ['', ...KITTI_DIFFICULTIES.map(() => 'AP11  AP|R40  GT')];
  const widths = head1.map((_, c) => Math.max(head1[c]!.length, sub[c]!.length, ...rows.map((row) => row[c]!.length)));
  const line = (cells: string[]): string =>
    cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('   ').trimEnd();
  return ['KITTI 2D detection AP (%), official devkit rules', line(head1), line(sub), ...rows.map(line)].join('\n');
}
