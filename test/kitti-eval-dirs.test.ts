/** Reading label/result directories: layouts, the image set, missing files, the parallel reader, error order. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { KittiFormatError } from '../datasets/kitti/label-file.js';
import { readKittiDirs, readKittiDirsAsync, evaluateKittiDirs } from '../detection/kitti-eval/index.js';

const TAIL = '1.50 1.60 3.90 1.00 1.70 20.00 0.10';
const DET_TAIL = '-1 -1 -1 -1000 -1000 -1000 -10';
let root = '';

function write(dir: string, files: Record<string, string>): string {
  mkdirSync(dir, { recursive: true });
  for (const [id, text] of Object.entries(files)) writeFileSync(path.join(dir, id + '.txt'), text);
  return dir;
}

const label = (x: number): string => `Car 0.00 0 0.10 ${x} 100 ${x + 100} 200 ${TAIL}\n`;
const result = (x: number, s: number): string => `Car -1 -1 -10 ${x} 100 ${x + 100} 200 ${DET_TAIL} ${s}\n`;

test.before(() => {
  root = mkdtempSync(path.join(tmpdir(), 'kitti-eval-dirs-'));
});
test.after(() => rmSync(root, { recursive: true, force: true }));

test('results in DIR/data or DIR; images are the label files, sorted; missing results are listed', () => {
  const labels = write(path.join(root, 'a', 'label_2'), { '000002': label(0), '000000': label(0), '000001': '' });
  const results = write(path.join(root, 'a', 'results', 'data'), { '000000': result(0, 0.9), '000007': result(0, 0.1) });
  const d = readKittiDirs({ labels, results: path.join(root, 'a', 'results') });
  assert.equal(d.ids, ['000000', '000001', '000002']);
  assert.equal(d.missingResults, ['000001', '000002']);
  assert.is(d.resultsDir, results);
  assert.equal([...d.groundTruth.start], [0, 1, 1, 2]);
  assert.equal([...d.detections.start], [0, 1, 1, 1]);
  assert.equal([...d.detections.score], [0.9]);
  assert.is(readKittiDirs({ labels, results }).resultsDir, results);
});

test('the parallel reader gives the same tables, and reports label errors before result errors', async () => {
  const files: Record<string, string> = {};
  const dets: Record<string, string> = {};
  for (let i = 0; i < 50; i++) {
    files[String(i).padStart(6, '0')] = label(i) + label(i + 300);
    dets[String(i).padStart(6, '0')] = result(i, i / 100) + result(i + 301, 0.5);
  }
  const labels = write(path.join(root, 'b', 'label_2'), files);
  const results = write(path.join(root, 'b', 'results'), dets);
  const seq = readKittiDirs({ labels, results });
  const par = await readKittiDirsAsync({ labels, results, parallel: true });
  assert.equal(par.ids, seq.ids);
  for (const key of ['start', 'type', 'box', 'truncated', 'occluded'] as const) {
    assert.equal([...par.groundTruth[key]], [...seq.groundTruth[key]]);
    assert.equal([...par.detections[key]], [...seq.detections[key]]);
  }
  assert.equal([...par.detections.score], [...seq.detections.score]);
  const ap = await evaluateKittiDirs({ labels, results, classes: ['car'], parallel: true });
  assert.equal(ap, await evaluateKittiDirs({ labels, results, classes: ['car'], parallel: false }));

  // A bad result line in image 3 and a bad label line in image 40: the label error wins, as a KittiFormatError.
  write(results, { '000003': 'Car 1 2 3\n' });
  write(labels, { '000040': label(0) + 'Car 0 0 0 a 2 3 4 ' + TAIL + '\n' });
  for (const parallel of [false, true]) {
    try {
      await readKittiDirsAsync({ labels, results, parallel });
      assert.unreachable('should have thrown');
    } catch (e) {
      assert.instance(e, KittiFormatError);
      assert.match((e as Error).message, /000040\.txt:2: column 5 \(left\) is not a number: 'a'/);
      assert.is((e as KittiFormatError).line, 2);
    }
  }
  write(labels, { '000040': label(0) });
  try {
    await readKittiDirsAsync({ labels, results, parallel: true });
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.match((e as Error).message, /000003\.txt:1: expected 16 columns, found 4/);
  }
});

test('an ids file selects and orders images; an empty label directory is an error', () => {
  const labels = write(path.join(root, 'c', 'label_2'), { '000000': label(0), '000001': label(0), '000002': label(0) });
  const results = write(path.join(root, 'c', 'results'), {});
  const ids = path.join(root, 'c', 'val.txt');
  writeFileSync(ids, '000002\r\n000000.txt\n\n');
  const d = readKittiDirs({ labels, results, ids });
  assert.equal(d.ids, ['000002', '000000']);
  assert.equal(d.missingResults, ['000002', '000000']);
  const empty = write(path.join(root, 'c', 'empty'), {});
  assert.throws(() => readKittiDirs({ labels: empty, results }), /no images to evaluate: no label files \(\*\.txt\) in .*empty/);
  assert.throws(() => readKittiDirs({ labels, results: path.join(root, 'none') }), /results directory not found/);
});

test.run();
