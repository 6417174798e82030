/** Shared by the scanner tests: KITTI text → box table through the JavaScript scanner or the reference parser. */
import * as assert from 'uvu/assert';
import { parseKittiObjects } from '../../datasets/kitti/label-file.js';
import { BoxTableBuilder, tableFromObjects, type KittiBoxTable } from '../../detection/kitti-eval/box-table.js';
import { scanKittiFile } from '../../detection/kitti-eval/scan.js';

export const enc = new TextEncoder();

/** The 3D columns of a label line, for building test lines. */
export const TAIL = '1.50 1.60 3.90 1.00 1.70 20.00 0.10';

/** One image per text, read by the JavaScript byte scanner. */
export function jsScan(texts: string[], kind: 'label' | 'result'): KittiBoxTable {
  const b = new BoxTableBuilder(4);
  texts.forEach((t, i) => {
    const bytes = enc.encode(t);
    scanKittiFile(bytes, bytes.length, `f${i}.txt`, kind, b);
    b.endImage();
  });
  return b.finish();
}

/** One image per text, read by the reference parser (parseKittiObjects). */
export function referenceTable(texts: string[], kind: 'label' | 'result'): KittiBoxTable {
  return tableFromObjects(texts.map((t, i) => parseKittiObjects(t, `f${i}.txt`, { kind })));
}

/** Tables equal value for value (Object.is: -0 and NaN must agree too). */
export function sameTable(a: KittiBoxTable, b: KittiBoxTable): void {
  assert.is(a.nImages, b.nImages);
  assert.equal([...a.start], [...b.start]);
  assert.equal([...a.type], [...b.type]);
  for (const key of ['box', 'truncated', 'occluded', 'score'] as const) {
    assert.is(a[key].length, b[key].length);
    a[key].forEach((v, i) => assert.ok(Object.is(v, b[key][i]), `${key}[${i}]: ${v} vs ${b[key][i]}`));
  }
}
