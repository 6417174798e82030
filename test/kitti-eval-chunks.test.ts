/**
 * The chunked two-thread reader (read-chunks.ts): any split of the chunks between threads, and the worker itself,
 * give the sequential reader's tables, missing files and first error (label files before result files).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { KittiFormatError } from '../datasets/kitti/label-file.js';
import { evaluateKittiDirs, readKittiDirs, readKittiDirsAsync } from '../detection/kitti-eval/index.js';
import { evaluateKernelTables, evaluateKittiTables, summarise } from '../detection/kitti-eval/evaluate.js';
import { WasmTableScanner } from '../detection/kitti-eval/scan-wasm.js';
import { EvalKernel } from '../detection/kitti-eval/evaluate-wasm.js';
import {
  CHUNK_FILES,
  chunkCount,
  chunksLeft,
  firstError,
  joinChunkScans,
  newChunkControl,
  scanChunks,
  type ChunkJob,
  type ChunkScan,
  type PostedChunkScan,
} from '../detection/kitti-eval/read-chunks.js';
import { deserialiseError, scanInto } from '../detection/kitti-eval/read-files.js';
import { TAIL, sameTable } from './support/kitti-eval-fixture.js';

const DET_TAIL = '-1 -1 -1 -1000 -1000 -1000 -10';
// Three chunks per kind, the last one short.
const N = 2 * CHUNK_FILES + 17;
let root = '';
let labels = '';
let results = '';
const ids = Array.from({ length: N }, (_, i) => String(i).padStart(6, '0'));

const label = (i: number): string =>
  Array.from({ length: i % 4 }, (_, k) => `${k % 2 ? 'Pedestrian' : 'Car'} 0.${k} ${k % 3} 0.10 ${i} ${k * 10} ${i + 50.5} 200 ${TAIL}\n`).join('');
const result = (i: number): string =>
  Array.from({ length: (i * 7) % 5 }, (_, k) => `Car -1 -1 -10 ${i + k} 100 ${i + 80} 200.25 ${DET_TAIL} 0.${(i * 31 + k) % 97}\n`).join('');

function write(dir: string, id: string, text: string): void {
  writeFileSync(path.join(dir, id + '.txt'), text);
}

function job(): ChunkJob {
  return { labels, results, ids, control: newChunkControl() };
}

/** Reads chunks as threads would: `owner(c)` says which of `threads` scanners reads chunk c. */
function splitScan(threads: number, owner: (c: number) => number): ChunkScan[] {
  const j = job();
  const total = chunkCount(N);
  return Array.from({ length: threads }, (_, t) => {
    const mine = Array.from({ length: total }, (_, c) => c).filter((c) => owner(c) === t);
    let k = 0;
    return scanChunks(j, () => (k < mine.length ? mine[k++]! : -1));
  });
}

function fromWorker(j: ChunkJob): Promise<ChunkScan> {
  const worker = new Worker(new URL('../detection/kitti-eval/read-worker.js', import.meta.url));
  return new Promise<ChunkScan>((resolve, reject) => {
    worker.once('message', (m: PostedChunkScan) => {
      const { error, ...rest } = m;
      resolve(error === undefined ? rest : { ...rest, error: { chunk: error.chunk, error: deserialiseError(error.error) } });
    });
    worker.once('error', reject);
    worker.postMessage(j);
  }).finally(() => worker.terminate());
}

test.before(() => {
  root = mkdtempSync(path.join(tmpdir(), 'kitti-eval-chunks-'));
  labels = path.join(root, 'label_2');
  results = path.join(root, 'results');
  mkdirSync(labels);
  mkdirSync(results);
  ids.forEach((id, i) => {
    write(labels, id, label(i));
    // Some images without a result file, in every chunk.
    if (i % 23 !== 5) write(results, id, result(i));
  });
});
test.after(() => rmSync(root, { recursive: true, force: true }));

test('any split of the chunks between threads gives the sequential tables and missing files', () => {
  const seq = readKittiDirs({ labels, results });
  assert.ok(seq.missingResults.length > 3);
  const total = chunkCount(N);
  assert.is(total, 6);
  const splits: ((c: number) => number)[] = [() => 0, (c) => c % 2, (c) => (c < 2 ? 1 : 0), (c) => (c * 5) % 3, (c) => (c === total - 1 ? 1 : 0)];
  for (const owner of splits) {
    const scans = splitScan(3, owner);
    assert.is(firstError(scans), undefined);
    assert.equal(chunksLeft(scans, total), []);
    const joined = joinChunkScans(scans, N);
    sameTable(joined.groundTruth, seq.groundTruth);
    sameTable(joined.detections, seq.detections);
    assert.equal(joined.missing.map((i) => ids[i]), seq.missingResults);
  }
  // A chunk nobody read is found, and joining without it is refused.
  const partial = splitScan(2, (c) => (c === 3 ? 2 : c % 2));
  assert.equal(chunksLeft(partial, total), [3]);
  assert.throws(() => joinChunkScans(partial, N), /chunk 3 was not read/);
});

test('the worker reads whatever it claims; its tables join with this thread\'s', async () => {
  const seq = readKittiDirs({ labels, results });
  // This thread takes the first two chunks, the worker claims the rest.
  const j = job();
  j.control[0] = 2;
  let k = 0;
  const mine = scanChunks(j, () => (k < 2 ? k++ : -1));
  const theirs = await fromWorker(j);
  assert.equal(theirs.chunks, [2, 3, 4, 5]);
  const joined = joinChunkScans([mine, theirs], N);
  sameTable(joined.groundTruth, seq.groundTruth);
  sameTable(joined.detections, seq.detections);
  assert.equal(joined.missing.map((i) => ids[i]), seq.missingResults);
});

test('the first error in chunk order wins: a label error before a result error, whoever read them', async () => {
  // Result error in image 3 (chunk 3), label errors in image 70 (chunk 1) and 140 (chunk 2).
  const id3 = ids[3]!;
  const id70 = ids[70]!;
  const id140 = ids[140]!;
  write(results, id3, 'Car 1 2 3\n');
  write(labels, id70, label(2) + `Car 0 0 0 a 2 3 4 ${TAIL}\n`);
  write(labels, id140, `Van x\n`);
  try {
    const expectLabel70 = (e: unknown): void => {
      assert.instance(e, KittiFormatError);
      assert.is((e as KittiFormatError).line, 3);
      assert.match((e as Error).message, new RegExp(`${id70}\\.txt:3: column 5 \\(left\\) is not a number: 'a'`));
    };
    assert.throws(() => readKittiDirs({ labels, results }), (e: unknown) => (expectLabel70(e), true));
    for (const owner of [(c: number) => (c === 1 ? 1 : 0), (c: number) => (c === 1 ? 0 : 1), (c: number) => c % 2]) {
      const err = firstError(splitScan(2, owner));
      assert.is(err?.chunk, 1);
      expectLabel70(err?.error);
    }
    // The worker meets the label error, this thread the result error.
    const j = job();
    j.control[0] = 1;
    const theirs = await fromWorker(j);
    assert.is(theirs.error?.chunk, 1);
    assert.is(Atomics.load(j.control, 1), 1, 'the worker tells the other thread to stop');
    let k = 3;
    const mine = scanChunks(j, () => (k < 4 ? k++ : -1));
    assert.is(mine.error?.chunk, 3);
    expectLabel70(firstError([mine, theirs])?.error);
    for (const parallel of [false, true]) {
      await readKittiDirsAsync({ labels, results, parallel }).then(
        () => assert.unreachable('should have thrown'),
        (e: unknown) => expectLabel70(e),
      );
    }
    // Without the label errors: the result error, with its file and line.
    write(labels, id70, label(70));
    write(labels, id140, label(140));
    for (const parallel of [false, true]) {
      await readKittiDirsAsync({ labels, results, parallel }).then(
        () => assert.unreachable('should have thrown'),
        (e: unknown) => {
          assert.instance(e, KittiFormatError);
          assert.match((e as Error).message, new RegExp(`${id3}\\.txt:1: expected 16 columns, found 4`));
        },
      );
    }
  } finally {
    write(results, id3, result(3));
    write(labels, id70, label(70));
    write(labels, id140, label(140));
  }
});

test('tables joined into an evaluation kernel score exactly as the sequential tables, and read back whole', () => {
  const seq = readKittiDirs({ labels, results });
  const kernel = new EvalKernel();
  const joined = joinChunkScans(splitScan(2, (c) => c % 2), N, (n, g, d) => kernel.allocTables(n, g, d));
  sameTable(joined.groundTruth, seq.groundTruth);
  sameTable(joined.detections, seq.detections);
  const classes = ['car', 'pedestrian', 'cyclist'] as const;
  const viaKernel = evaluateKernelTables(kernel, classes);
  assert.equal(viaKernel, evaluateKittiTables({ groundTruth: seq.groundTruth, detections: seq.detections, classes }));
  assert.ok(viaKernel.car!.moderate.gt > 0 && viaKernel.pedestrian!.moderate.gt > 0);
  // The evaluation's allocations moved the memory; the tables are still there.
  const back = kernel.loadedTables();
  sameTable(back.groundTruth, seq.groundTruth);
  sameTable(back.detections, seq.detections);
});

test('a kernel adopting a scanner\'s rows in place scores exactly as the JavaScript reference; evaluateKittiDirs too', async () => {
  const seq = readKittiDirs({ labels, results });
  const scanner = new WasmTableScanner(8); // small: the columns move as it grows
  scanInto(scanner, labels, ids, 'label', false);
  assert.equal(scanInto(scanner, results, ids, 'result', true), seq.missingResults);
  const cols = scanner.columnAddresses();
  const kernel = new EvalKernel(cols.memory, cols.end);
  kernel.adoptTables(N, scanner.finish().start, cols);
  const classes = ['car', 'pedestrian', 'cyclist'] as const;
  const reference = evaluateKittiTables({ groundTruth: seq.groundTruth, detections: seq.detections, classes, engine: 'js' });
  assert.equal(evaluateKernelTables(kernel, classes), reference);
  const back = kernel.loadedTables();
  sameTable(back.groundTruth, seq.groundTruth);
  sameTable(back.detections, seq.detections);
  for (const parallel of [false, true]) assert.equal(await evaluateKittiDirs({ labels, results, classes, parallel }), summarise(reference));
});

test('the parallel reader gives the sequential tables on a many-chunk set', async () => {
  const seq = readKittiDirs({ labels, results });
  const par = await readKittiDirsAsync({ labels, results, parallel: true });
  assert.equal(par.ids, seq.ids);
  sameTable(par.groundTruth, seq.groundTruth);
  sameTable(par.detections, seq.detections);
  assert.equal(par.missingResults, seq.missingResults);
});

test.run();
