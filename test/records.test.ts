import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync, appendFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  RunRecorder,
  readRun,
  summariseSigma,
  sigmaGroups,
  noisyTopFraction,
  RunRecordError,
  type RunManifest,
  type SigmaEntry,
} from '../src/index.js';

const manifest: RunManifest = {
  task: 'detection',
  createdAt: '2026-11-28T22:00:00.000Z',
  config: { epochs: 2 },
  classNames: ['car'],
  tracked: [
    { id: 0, image: 'img/000000.png', box: [10, 20, 50, 60], occlusion: 0, difficulty: 'easy', className: 'car' },
    { id: 7, image: 'img/000000.png', box: [60, 20, 90, 40], occlusion: 2, difficulty: 'hard', className: 'car' },
  ],
};

function sigmaAt(epoch: number, step: number, s: [number, number]): SigmaEntry {
  return {
    epoch,
    step,
    tracked: s,
    groups: summariseSigma(new Float32Array(s), { all: [0, 1], 'occlusion:0': [0], 'occlusion:2': [1] }),
  };
}

async function writeRun(): Promise<{ dir: string; rec: RunRecorder }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'dp-records-'));
  const rec = new RunRecorder(dir);
  await rec.writeManifest(manifest);
  await rec.appendSigma(sigmaAt(0, 0, [1, 1]));
  await rec.appendMetrics({ kind: 'train', step: 5, epoch: 0, loss: 2.5, lr: 0.01 });
  await rec.appendMetrics({ kind: 'train', step: 10, epoch: 1, loss: 1.5, lr: 0.01 });
  await rec.appendSigma(sigmaAt(1, 10, [0.8, 1.6]));
  await rec.appendMetrics({ kind: 'val', step: 10, epoch: 1, ap_car_moderate_r40: 0.25 });
  await rec.appendMetrics({ kind: 'train', step: 15, epoch: 1, loss: 1.0, lr: 0.01 });
  await rec.appendMetrics({ kind: 'train', step: 20, epoch: 2, loss: 0.5, lr: 0.001 });
  await rec.appendSigma(sigmaAt(2, 20, [0.5, 3]));
  return { dir, rec };
}

async function expectError(dir: string, file: string, line: number | null, pattern: RegExp): Promise<void> {
  try {
    await readRun(dir);
    assert.unreachable('readRun should have thrown');
  } catch (err) {
    assert.instance(err, RunRecordError);
    const e = err as RunRecordError;
    assert.is(e.file, path.join(dir, file));
    assert.is(e.line, line);
    assert.ok(e.message.startsWith(`${path.join(dir, file)}${line === null ? '' : `:${line}`}: `), e.message);
    assert.match(e.message, pattern);
  }
}

test('summariseSigma: count, mean, population std, min, max per group (hand-computed)', () => {
  const s = summariseSigma(new Float32Array([1, 2, 4, 0.5]), { all: [0, 1, 2, 3], ab: [0, 1], c: [2], none: [] });
  assert.equal(s['all'], { count: 4, mean: 1.875, std: Math.sqrt((0.765625 + 0.015625 + 4.515625 + 1.890625) / 4), min: 0.5, max: 4 });
  assert.equal(s['ab'], { count: 2, mean: 1.5, std: 0.5, min: 1, max: 2 });
  assert.equal(s['c'], { count: 1, mean: 4, std: 0, min: 4, max: 4 });
  assert.is(s['none']!.count, 0);
  assert.ok(Number.isNaN(s['none']!.mean));
  assert.throws(() => summariseSigma([1, 2], { bad: [2] }), /group "bad" has index 2, outside 0\.\.1/);
});

test('sigmaGroups: standard keys from occlusion, difficulty and noisy flags', () => {
  const g = sigmaGroups([
    { occlusion: 0, difficulty: 'easy' },
    { occlusion: 1, difficulty: 'moderate' },
    { occlusion: 0, difficulty: null },
    { occlusion: 2, difficulty: 'hard' },
  ]);
  assert.equal(g, {
    all: [0, 1, 2, 3],
    'occlusion:0': [0, 2],
    'difficulty:easy': [0],
    'occlusion:1': [1],
    'difficulty:moderate': [1],
    'difficulty:none': [2],
    'occlusion:2': [3],
    'difficulty:hard': [3],
  });
  assert.equal(sigmaGroups([{ noisy: true }, { noisy: false }, { noisy: true }]), { all: [0, 1, 2], noisy: [0, 2], clean: [1] });
});

test('noisyTopFraction: share of corrupted samples among the highest σ', () => {
  const sigma = [5, 1, 4, 0.5, 3, 2, 1.5, 0.7, 0.9, 6];
  const noisy = [true, false, false, false, true, false, false, false, false, true];
  // top 20% = 2 samples: σ 6 (noisy), 5 (noisy) → 1; top 40% = 6, 5, 4, 3 → 3 of 4.
  assert.is(noisyTopFraction(sigma, noisy, 0.2), 1);
  assert.is(noisyTopFraction(sigma, noisy, 0.4), 0.75);
  assert.is(noisyTopFraction(sigma, noisy, 1), 0.3);
  assert.throws(() => noisyTopFraction([1], [true, false], 0.5), /1 σ values but 2 noisy flags/);
});

test('RunRecorder writes records that readRun reads back exactly', async () => {
  const { dir } = await writeRun();
  const run = await readRun(dir);
  assert.equal(run.manifest, manifest);
  assert.equal(run.sigma.map((s) => [s.epoch, s.step, s.tracked]), [[0, 0, [1, 1]], [1, 10, [0.8, 1.6]], [2, 20, [0.5, 3]]]);
  assert.equal(run.sigma[2]!.groups['occlusion:2'], { count: 1, mean: 3, std: 0, min: 3, max: 3 });
  assert.equal(run.sigma[2]!.groups['all']!.mean, 1.75);
  assert.is(run.metrics.length, 5);
  assert.equal(run.metrics[2], { kind: 'val', step: 10, epoch: 1, ap_car_moderate_r40: 0.25 });
  // One line per record: the file is plain JSONL.
  assert.is(readFileSync(path.join(dir, 'sigma.jsonl'), 'utf8').split('\n').length, 4);
});

test('a non-finite number is stored as null and read back as NaN', async () => {
  const { dir, rec } = await writeRun();
  await rec.appendMetrics({ kind: 'train', step: 25, epoch: 2, loss: NaN, lr: 0.001 });
  const run = await readRun(dir);
  assert.ok(Number.isNaN(run.metrics[5]!['loss']));
});

test('truncateAfter(step) drops later records (resume) and a torn last line', async () => {
  const { dir, rec } = await writeRun();
  appendFileSync(path.join(dir, 'metrics.jsonl'), '{"kind":"train","ste');
  await rec.truncateAfter(10);
  const run = await readRun(dir);
  assert.equal(run.sigma.map((s) => s.step), [0, 10]);
  assert.equal(run.metrics.map((m) => [m.kind, m.step]), [['train', 5], ['train', 10], ['val', 10]]);
  // The resumed run continues appending after the kept records.
  await rec.appendSigma(sigmaAt(2, 20, [0.5, 3]));
  assert.equal((await readRun(dir)).sigma.map((s) => s.epoch), [0, 1, 2]);
  await rec.truncateAfter(-1);
  assert.is((await readRun(dir)).sigma.length, 0);
});

test('readRun: a missing file is an error naming it; a missing metrics.jsonl may be read as empty', async () => {
  const { dir, rec } = await writeRun();
  rmSync(path.join(dir, 'sigma.jsonl'));
  await expectError(dir, 'sigma.jsonl', null, /missing; a run directory .* holds run\.json, sigma\.jsonl and metrics\.jsonl/);
  rmSync(path.join(dir, 'metrics.jsonl'));
  await rec.appendSigma(sigmaAt(0, 0, [1, 1]));
  await expectError(dir, 'metrics.jsonl', null, /missing/);
  const told: string[] = [];
  const early = await readRun(dir, { missingMetrics: 'empty', onSkip: (m) => told.push(m) });
  assert.equal([early.sigma.length, early.metrics.length], [1, 0]);
  assert.equal(told, [`${path.join(dir, 'metrics.jsonl')}: missing; no training curves`]);
  const empty = mkdtempSync(path.join(tmpdir(), 'dp-records-'));
  await expectError(empty, 'run.json', null, /missing/);
});

test('readRun: a truncated last record is an error naming file and line, or a reported skip', async () => {
  const { dir } = await writeRun();
  const file = path.join(dir, 'sigma.jsonl');
  const text = readFileSync(file, 'utf8');
  writeFileSync(file, text.slice(0, text.length - 15));
  await expectError(dir, 'sigma.jsonl', 3, /truncated record/);
  const skipped: string[] = [];
  const run = await readRun(dir, { truncatedTail: 'skip', onSkip: (m) => skipped.push(m) });
  assert.is(run.sigma.length, 2);
  assert.equal(skipped, [`${file}:3: skipped a truncated last record`]);
  // Complete JSON without its newline: the writer still did not finish.
  writeFileSync(file, text.slice(0, text.length - 1));
  await expectError(dir, 'sigma.jsonl', 3, /no newline/);
});

test('readRun: a corrupt line in the middle is an error naming file and line', async () => {
  const { dir } = await writeRun();
  const file = path.join(dir, 'metrics.jsonl');
  const lines = readFileSync(file, 'utf8').split('\n');
  lines[1] = lines[1]!.replace('"loss":', '"loss"');
  writeFileSync(file, lines.join('\n'));
  await expectError(dir, 'metrics.jsonl', 2, /corrupt record \(not valid JSON\)/);
});

test('readRun: records that do not fit the manifest or the format are errors naming file, line and field', async () => {
  const { dir } = await writeRun();
  const sigmaFile = path.join(dir, 'sigma.jsonl');
  const good = readFileSync(sigmaFile, 'utf8');
  const lines = good.split('\n');
  lines[1] = JSON.stringify({ ...JSON.parse(lines[1]!), tracked: [1, 2, 3] });
  writeFileSync(sigmaFile, lines.join('\n'));
  await expectError(dir, 'sigma.jsonl', 2, /"tracked" has 3 values but run\.json tracks 2 instances/);

  lines[1] = JSON.stringify({ ...JSON.parse(good.split('\n')[1]!), groups: { all: { count: 2, mean: 'x' } } });
  writeFileSync(sigmaFile, lines.join('\n'));
  await expectError(dir, 'sigma.jsonl', 2, /groups\["all"\]\."mean" must be a number, got "x"/);

  // Records repeated after a resume that did not truncate.
  writeFileSync(sigmaFile, good + good.split('\n')[1] + '\n');
  await expectError(dir, 'sigma.jsonl', 4, /epoch 1 \(step 10\) does not follow epoch 2 \(step 20\) of line 3/);
  writeFileSync(sigmaFile, good);

  const metricsFile = path.join(dir, 'metrics.jsonl');
  appendFileSync(metricsFile, JSON.stringify({ kind: 'test', step: 30, epoch: 3 }) + '\n');
  await expectError(dir, 'metrics.jsonl', 6, /"kind" must be "train", "val" or "epoch", got "test"/);

  const manifestFile = path.join(dir, 'run.json');
  writeFileSync(manifestFile, JSON.stringify({ ...manifest, tracked: [{ id: 1, box: [1, 2, 3] }] }));
  await expectError(dir, 'run.json', null, /tracked\[0\]\.box must be \[x1, y1, x2, y2\]/);
  writeFileSync(manifestFile, '{\n  "task": "detection",\n  "config": {,\n}\n');
  await expectError(dir, 'run.json', 3, /not valid JSON/);
});

test('RunRecorder refuses to write a record readRun would reject', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dp-records-'));
  const rec = new RunRecorder(dir);
  try {
    await rec.appendSigma({ epoch: 0, step: 0, tracked: [1], groups: { all: { count: 1, mean: 1 } } } as unknown as SigmaEntry);
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.match((err as Error).message, /groups\["all"\]\."std" must be a number/);
  }
  try {
    await rec.writeManifest({ ...manifest, task: 'segmentation' } as unknown as RunManifest);
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.match((err as Error).message, /run\.json: "task" must be "detection" or "classification"/);
  }
});

test.run();
