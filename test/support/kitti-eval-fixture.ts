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

/** Malformed lines that every scanner must reject with the reference parser's message (file and line). */
export const MALFORMED_LINES: readonly [string, 'label' | 'result'][] = [
  [`Car 0 0 0 1 2 3 4 ${TAIL}\nCar 0 0 0 1 2 3\n`, 'label'],
  [`Car 0 0 0 1 2 3 4 ${TAIL}\n`, 'result'],
  [`Car 0 1.5 0 1 2 3 4 ${TAIL}\n`, 'label'],
  [`Car 0 0 0 1 2 3- 4 ${TAIL}\n`, 'label'],
  [`Car 0 0 0 1 2 . 4 ${TAIL}\n`, 'label'],
  [`Car 0 0 0 1 2 inf 4 ${TAIL}\n`, 'label'],
  [`Car 0 0 0 1 2 3 4 ${TAIL} 0.5 7\n`, 'label'],
];

/** Asserts that `scan` throws exactly the reference parser's error for each case. */
export function assertReferenceErrors(scan: (texts: string[], kind: 'label' | 'result') => unknown, cases: readonly [string, 'label' | 'result'][]): void {
  for (const [text, kind] of cases) {
    let expected = '';
    try {
      parseKittiObjects(text, 'f0.txt', { kind });
    } catch (e) {
      expected = (e as Error).message;
    }
    assert.ok(expected !== '', `reference parser accepted ${JSON.stringify(text)}`);
    assert.throws(() => scan([text], kind), (e: Error) => e.message === expected);
  }
}
