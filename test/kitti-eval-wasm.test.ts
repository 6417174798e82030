/** The WebAssembly scanner must read exactly what the JavaScript scanner and the reference parser read. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatKittiDetection, formatKittiObject, parseKittiObjects } from '../datasets/kitti/label-file.js';
import { tableFromObjects, TypeCode, type KittiBoxTable } from '../detection/kitti-eval/box-table.js';
import { enc, jsScan, sameTable, TAIL, assertReferenceErrors, MALFORMED_LINES } from './support/kitti-eval-fixture.js';
import { buildScannerWasm, WasmTableScanner } from '../detection/kitti-eval/scan-wasm.js';
import { buildEvalWasm } from '../detection/kitti-eval/evaluate-wasm.js';
import { EVAL_WASM, SCANNER_WASM } from '../detection/kitti-eval/wasm-binaries.js';
import { makeSyntheticKittiEvalSet } from '../detection/kitti-eval/synthetic.js';
import { evaluateKittiTables } from '../detection/kitti-eval/evaluate.js';

function wasmScan(texts: string[], kind: 'label' | 'result', expectedRows = 4): KittiBoxTable {
  const s = new WasmTableScanner(expectedRows);
  texts.forEach((t, i) => {
    const bytes = enc.encode(t);
    s.input.set(bytes);
    s.scan(bytes.length, `f${i}.txt`, kind);
    s.endImage();
  });
  return s.finish();
}

test('the stored kernel bytes are those the kernel code writes (else regenerate: see tools/generate-wasm-binaries.ts)', () => {
  assert.equal([...Buffer.from(SCANNER_WASM, 'base64')], [...buildScannerWasm()]);
  assert.equal([...Buffer.from(EVAL_WASM, 'base64')], [...buildEvalWasm()]);
  assert.ok(SCANNER_WASM.length > 1000 && EVAL_WASM.length > 1000);
});

test('plain and unusual files: the same table as the JavaScript scanner and the reference parser', () => {
  const labels = [
    `Car 0.00 0 -1.58 587.01 173.33 614.12 200.12 ${TAIL}\r\nPERSON_SITTING 0.5 2 0 1 2 3 4 ${TAIL}\r\n`,
    `\n  \n\tpedestrian\t0.15  1 .5 +10. -0.00 123.456789012345 99999.9999999999 ${TAIL} 0.25\ncyclist 0 3 0 1 2 3 4 ${TAIL}`,
    '',
    `DontCare -1 -1 -10 1 2 3 4 -1 -1 -1 -1000 -1000 -1000 -10\nVan 0 0 0 1 2 3 4 ${TAIL}\nTruck 0 0 0 1 2 3 4 ${TAIL}\nVANS 0 0 0 1 2 3 4 ${TAIL}\n`,
    // Outside the fast path: an exponent after two plain lines, a non-ASCII type, a 16-digit number.
    `Car 0 0 0 1 2 3 4 ${TAIL}\nCar 0 0 0 5 6 7 8 ${TAIL}\nCar 0 0 0 1e2 2 3 4 ${TAIL}\n`,
    `Cär 0 0 0 1 2 3 4 ${TAIL}\n`,
    `Car 0 0 0 1 2 3 4.000000000000001 ${TAIL}\n`,
  ];
  const t = wasmScan(labels, 'label');
  sameTable(t, jsScan(labels, 'label'));
  sameTable(t, tableFromObjects(labels.map((text, i) => parseKittiObjects(text, `f${i}.txt`, { kind: 'label' }))));
  assert.equal([...t.start], [0, 2, 4, 4, 8, 11, 12, 13]);
  assert.equal([...t.type.slice(0, 8)], [1, 5, 2, 3, 6, 4, 0, 0].map((c) => c as TypeCode));
  assert.ok(Object.is(t.box[9], -0));
  assert.is(t.box[10], 123.456789012345);
  assert.is(t.box[11], 99999.9999999999);
  assert.is(t.box[4 * 10], 100);
  assert.is(t.score[2], 0.25);
  assert.ok(Number.isNaN(t.score[0]!));
});

test('errors are the reference parser\'s, naming file and line', () => {
  assertReferenceErrors(wasmScan, MALFORMED_LINES);
});

test('a synthetic set, with the columns growing from a capacity of 16 rows', () => {
  const set = makeSyntheticKittiEvalSet({ images: 60, seed: 3 });
  const labels = set.ids.map((id) => set.groundTruth.get(id)!.map((o) => formatKittiObject(o) + '\n').join(''));
  const results = set.ids.map((id) => (set.detections.get(id) ?? []).map((o) => formatKittiDetection(o.type, o.bbox, o.score!) + '\n').join(''));
  const l = wasmScan(labels, 'label', 16);
  const r = wasmScan(results, 'result', 16);
  assert.ok(l.type.length > 200 && r.type.length > 200);
  sameTable(l, jsScan(labels, 'label'));
  sameTable(r, jsScan(results, 'result'));
});

test('the WebAssembly evaluator gives exactly the JavaScript evaluator\'s thresholds, curves and APs', () => {
  for (const grid of ['fine', 'coarse'] as const) {
    for (const seed of [1, 2]) {
      // Coarse coordinates and scores make ties, IoU exactly at the threshold and 25 / 40 px heights common.
      const set = makeSyntheticKittiEvalSet({ images: 150, seed, grid });
      const groundTruth = tableFromObjects(set.ids.map((id) => set.groundTruth.get(id)!));
      const detections = tableFromObjects(set.ids.map((id) => set.detections.get(id) ?? []));
      const wasm = evaluateKittiTables({ groundTruth, detections, engine: 'wasm' });
      const js = evaluateKittiTables({ groundTruth, detections, engine: 'js' });
      assert.equal(wasm, js, `${grid} grid, seed ${seed}`);
      assert.ok(js.car!.moderate.thresholds.length > 10 && js.pedestrian!.hard.gt > 10);
    }
  }
});

test.run();
