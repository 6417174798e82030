import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../src/runtime/backend.js';
import { DataParameters } from '../src/data-parameters/data-parameters.js';
import type { CurriculumMode } from '../src/data-parameters/data-parameters.js';
import { readRun } from '../src/records/run-records.js';
import { Rng } from '../src/util/rng.js';
import { smallCnn } from '../classification/models/models.js';
import { InMemoryImageData } from '../classification/input/image-data.js';
import { ClassifierTrainer, DEFAULT_TRAINER_CONFIG } from '../classification/training/trainer.js';
import type { TrainerConfig } from '../classification/training/trainer.js';
import { NonFiniteLossError, ResumeMismatchError } from '../src/training/harness.js';
import { corruptLabels } from '../datasets/noisy-labels/noisy-labels.js';

test.before(async () => {
  await initBackend('cpu', { log: null });
});

const SIDE = 8;
const CLASSES = 3;
const COUNT = 24;

/** Class k images: a bright square at a class-specific height (flip-invariant), plus seeded noise. */
function synthetic(count: number, seed: number): { pixels: Uint8Array; labels: Int32Array } {
  const rng = new Rng(seed);
  const pixels = new Uint8Array(count * SIDE * SIDE);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const k = i % CLASSES;
    labels[i] = k;
    for (let p = 0; p < SIDE * SIDE; p++) pixels[i * SIDE * SIDE + p] = rng.int(60);
    for (let y = 0; y < 3; y++) for (let x = 0; x < 3; x++) pixels[i * SIDE * SIDE + (y + 1 + 2 * k) * SIDE + x + 2] = 250;
  }
  return { pixels, labels };
}

function makeRun(options: { mode: CurriculumMode; outDir: string | null; noise?: boolean; config?: Partial<TrainerConfig> }) {
  const { pixels, labels } = synthetic(COUNT, 1);
  const noise = options.noise ? corruptLabels(labels, CLASSES, { rate: 0.25, seed: 2, model: 'uniform' }) : null;
  const train = new InMemoryImageData(
    { pixels, height: SIDE, width: SIDE, channels: 1 },
    noise ? noise.imageIndex : Int32Array.from({ length: COUNT }, (_, i) => i),
    noise ? noise.labels : labels,
    CLASSES,
    ['a', 'b', 'c'],
    { mean: [0.2], std: [0.3] },
    { pad: 1, flip: true },
  );
  const v = synthetic(9, 5);
  const val = new InMemoryImageData({ pixels: v.pixels, height: SIDE, width: SIDE, channels: 1 }, Int32Array.from({ length: 9 }, (_, i) => i), v.labels, CLASSES, ['a', 'b', 'c'], { mean: [0.2], std: [0.3] }, null);
  const model = smallCnn({ numClasses: CLASSES, inputShape: [SIDE, SIDE, 1], widths: [4], hidden: 8, seed: 3 });
  const dp = new DataParameters({
    numClasses: CLASSES,
    numInstances: COUNT,
    mode: options.mode,
    class: { lr: 0.1, weightDecay: 5e-4 },
    instance: { lr: 0.2, weightDecay: 0 },
  });
  const config: TrainerConfig = { ...DEFAULT_TRAINER_CONFIG, epochs: 2, batchSize: 8, lr: 0.05, logEvery: 2, evalBatchSize: 5, trackCount: 5, seed: 11, ...options.config };
  const trainer = new ClassifierTrainer(
    { model, dp, train, val, noise, outDir: options.outDir, log: () => {}, progress: false, recordConfig: { test: true } },
    config,
  );
  const dispose = (): void => {
    trainer.dispose();
    dp.dispose();
    model.store.dispose();
  };
  return { trainer, model, dp, dispose };
}

function snapshot(r: ReturnType<typeof makeRun>): { weights: Record<string, number[]>; dp: number[]; rng: number[]; step: number } {
  const weights: Record<string, number[]> = {};
  for (const [k, v] of Object.entries(r.model.store.snapshot())) weights[k] = Array.from(v);
  for (const [k, v] of Object.entries(r.trainer.optimizer.getState().slots)) weights[`slot:${k}`] = Array.from(v);
  const s = r.dp.getState();
  return {
    weights,
    dp: [...(s.classLogSigma ?? []), ...(s.instanceLogSigma ?? []), ...(s.classMomentum ?? []), ...(s.instanceMomentum ?? [])],
    rng: r.trainer.rng.getState(),
    step: r.trainer.step,
  };
}

test('joint curriculum: 2 epochs straight == 1 epoch + resume from checkpoint + 1 epoch, bitwise; records consistent', async () => {
  const dirA = mkdtempSync(path.join(tmpdir(), 'dp-cls-resume-a-'));
  const dirB = mkdtempSync(path.join(tmpdir(), 'dp-cls-resume-b-'));
  const a = makeRun({ mode: 'joint', outDir: dirA, noise: true });
  const resA = await a.trainer.run();
  const straight = snapshot(a);
  a.dispose();

  const b1 = makeRun({ mode: 'joint', outDir: dirB, noise: true });
  await b1.trainer.run({ stopAfterEpoch: 1 });
  assert.is(b1.trainer.step, 3);
  b1.dispose();
  const b2 = makeRun({ mode: 'joint', outDir: dirB, noise: true });
  const resB = await b2.trainer.run({ resume: true });
  const resumed = snapshot(b2);
  b2.dispose();

  assert.is(straight.step, 6);
  assert.equal(resumed, straight);
  assert.is(resB.epochs.length, 1);
  assert.is(resB.epochs[0]!.trainLoss, resA.epochs[1]!.trainLoss);
  assert.is(resB.epochs[0]!.valTop1, resA.epochs[1]!.valTop1);

  const runA = await readRun(dirA);
  const runB = await readRun(dirB);
  assert.is(runA.manifest.task, 'classification');
  assert.is(runA.manifest.tracked.length, 5);
  assert.equal(runA.sigma.map((s) => s.epoch), [0, 1, 2]);
  assert.equal(runB.sigma.map((s) => s.epoch), [0, 1, 2]);
  assert.equal(runB.sigma[2]!.tracked, runA.sigma[2]!.tracked);
  assert.ok(runA.sigma[2]!.groups['noisy']!.count > 0);
  assert.is(runA.sigma[0]!.groups['all']!.mean, 2); // joint: σ* = class σ 1 + instance σ 1 before training
  assert.equal(
    runB.metrics.map((m) => `${m.kind}@${m.step}`),
    runA.metrics.map((m) => `${m.kind}@${m.step}`),
  );
  assert.equal(runA.metrics.filter((m) => m.kind === 'val').map((m) => m.step), [3, 6]);
});

test('an interrupt inside an epoch writes a mid-epoch checkpoint from which resume continues bitwise', async () => {
  const dirA = mkdtempSync(path.join(tmpdir(), 'dp-cls-mid-a-'));
  const dirB = mkdtempSync(path.join(tmpdir(), 'dp-cls-mid-b-'));
  const a = makeRun({ mode: 'joint', outDir: dirA, noise: true });
  await a.trainer.run();
  const straight = snapshot(a);
  a.dispose();

  // Stop after step 4 of 6: inside the second epoch (3 steps per epoch).
  const b1 = makeRun({ mode: 'joint', outDir: dirB, noise: true });
  const stopped = await b1.trainer.run({ shouldStop: () => b1.trainer.step >= 4 });
  assert.ok(stopped.interrupted);
  assert.is(b1.trainer.step, 4);
  assert.is(b1.trainer.epoch, 1);
  b1.dispose();
  const b2 = makeRun({ mode: 'joint', outDir: dirB, noise: true });
  const resumed = await b2.trainer.run({ resume: true });
  assert.not.ok(resumed.interrupted);
  assert.equal(snapshot(b2), straight);
  b2.dispose();
  const runA = await readRun(dirA);
  const runB = await readRun(dirB);
  assert.equal(runB.sigma.map((s) => s.tracked), runA.sigma.map((s) => s.tracked));
  assert.equal(
    runB.metrics.map((m) => `${m.kind}@${m.step}`),
    runA.metrics.map((m) => `${m.kind}@${m.step}`),
  );
  const lossOf = (r: typeof runA) => r.metrics.filter((m) => m.kind === 'epoch').map((m) => m['trainLoss']);
  assert.equal(lossOf(runB), lossOf(runA), 'the resumed epoch reports the same mean loss as the uninterrupted one');
});

test('instance curriculum learns σ, keeps the tensor count flat, and reports noisy statistics', async () => {
  const r = makeRun({ mode: 'instance', outDir: null, noise: true, config: { epochs: 1 } });
  const before = r.dp.instanceSigmaValues();
  assert.ok(before.every((s) => s === 1));
  await r.trainer.run(); // warm-up (kernels, lazily created state)
  const n0 = tf.memory().numTensors;
  r.trainer.config.epochs = 3;
  const res = await r.trainer.run();
  assert.is(tf.memory().numTensors, n0);
  const after = r.dp.instanceSigmaValues();
  assert.ok(after.some((s) => Math.abs(s - 1) > 1e-3), 'instance σ moved');
  const e = res.epochs.at(-1)!;
  assert.ok(Number.isFinite(e.cleanSigmaMean!) && Number.isFinite(e.noisySigmaMean!));
  assert.ok(e.noisyTopFraction! >= 0 && e.noisyTopFraction! <= 1);
  assert.ok(e.valTop5! >= e.valTop1!);
  assert.is(e.valTop5, 1); // 3 classes: top-5 covers them all
  r.dispose();
});

test('baseline training on separable data fits it (loss falls, train top-1 rises)', async () => {
  const r = makeRun({ mode: 'none', outDir: null, config: { epochs: 12, lr: 0.1 } });
  const res = await r.trainer.run();
  const first = res.epochs[0]!;
  const last = res.epochs.at(-1)!;
  assert.ok(last.trainLoss < first.trainLoss * 0.7, `loss ${first.trainLoss} -> ${last.trainLoss}`);
  assert.ok(last.valTop1! >= 0.66, `val top-1 ${last.valTop1}`);
  r.dispose();
});

test('a non-finite loss stops at once with a checkpoint of the last finite state, from which resume ends as a clean run', async () => {
  const clean = makeRun({ mode: 'instance', outDir: null });
  await clean.trainer.run();
  const straight = snapshot(clean);
  clean.dispose();

  const dir = mkdtempSync(path.join(tmpdir(), 'dp-cls-nonfinite-'));
  const r = makeRun({ mode: 'instance', outDir: dir });
  const train = r.trainer.parts.train as InMemoryImageData;
  const load = train.loadBatch.bind(train);
  let calls = 0;
  // The 5th batch (epoch 2, step 2 of 3) is poisoned after its augmentation drew its random numbers as usual.
  train.loadBatch = async (ids, rng) => {
    const x = await load(ids, rng);
    return calls++ === 4 ? x.fill(NaN) : x;
  };
  const w4 = { value: null as Record<string, Float32Array> | null };
  const err = await r.trainer.run({ shouldStop: () => ((w4.value = r.trainer.step === 4 ? r.model.store.snapshot() : w4.value), false) }).then(
    () => null,
    (e: unknown) => e,
  );
  assert.ok(err instanceof NonFiniteLossError, String(err));
  assert.match((err as Error).message, /non-finite loss at step 4: training stopped\. The last finite state is in .*checkpoint\.bin/);
  assert.is(r.trainer.step, 4, 'no step counted for the non-finite one');
  assert.equal(r.model.store.snapshot(), w4.value!, 'weights and running statistics as before the non-finite step');
  r.dispose();

  const resumed = makeRun({ mode: 'instance', outDir: dir });
  const res = await resumed.trainer.run({ resume: true });
  assert.equal(snapshot(resumed), straight);
  assert.is(res.final!.epoch, 2);
  resumed.dispose();
});

test('resume: changed options are refused with a list; more epochs are accepted and noted; a finished run reports its last epoch', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dp-cls-opts-'));
  const a = makeRun({ mode: 'instance', outDir: dir, noise: true });
  a.trainer.parts.recordConfig['train'] = { epochs: 2, lr: 0.05 };
  a.trainer.parts.recordConfig['noise'] = { rate: 0.25, seed: 2 };
  const first = await a.trainer.run();
  a.dispose();

  const b = makeRun({ mode: 'instance', outDir: dir, noise: true });
  b.trainer.parts.recordConfig['train'] = { epochs: 2, lr: 0.05 };
  b.trainer.parts.recordConfig['noise'] = { rate: 0.4, seed: 3 };
  const err = await b.trainer.run({ resume: true }).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof ResumeMismatchError, String(err));
  assert.match((err as Error).message, /\n {2}noise\.rate: 0\.25 in the checkpoint, 0\.4 now\n {2}noise\.seed: 2 in the checkpoint, 3 now\nResume with the original options \(only train\.epochs, calibrate, configFile may change\)/);
  b.dispose();

  const done = makeRun({ mode: 'instance', outDir: dir, noise: true });
  done.trainer.parts.recordConfig['train'] = { epochs: 2, lr: 0.05 };
  done.trainer.parts.recordConfig['noise'] = { rate: 0.25, seed: 2 };
  const again = await done.trainer.run({ resume: true });
  assert.is(again.epochs.length, 0);
  assert.equal(again.final, first.final);
  assert.is(again.final!.epoch, 2);
  assert.ok(again.final!.valTop1 !== null && again.final!.noisyTopFraction !== undefined);
  done.dispose();

  const more = makeRun({ mode: 'instance', outDir: dir, noise: true, config: { epochs: 3 } });
  more.trainer.parts.recordConfig['train'] = { epochs: 3, lr: 0.05 };
  more.trainer.parts.recordConfig['noise'] = { rate: 0.25, seed: 2 };
  const longer = await more.trainer.run({ resume: true });
  assert.equal(longer.epochs.map((e) => e.epoch), [3]);
  more.dispose();
  const run = await readRun(dir);
  assert.equal(run.manifest.resumes!.map((r) => [r.step, r.changed]), [[6, [{ key: 'train.epochs', checkpoint: 2, now: 3 }]]]);
  assert.equal(run.sigma.map((e) => e.epoch), [0, 1, 2, 3]);
});

test('a full disk at the epoch-end checkpoint names the file and keeps the last good checkpoint', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dp-cls-enospc-'));
  const r = makeRun({ mode: 'instance', outDir: dir });
  const file = path.join(dir, 'checkpoint.bin');
  const handle = await fs.open(path.join(dir, 'probe'), 'w');
  const proto = Object.getPrototypeOf(handle) as { write: (...a: unknown[]) => Promise<unknown> };
  await handle.close();
  await fs.rm(path.join(dir, 'probe'));
  const write = proto.write;
  let failing = false;
  proto.write = function (this: unknown, ...args: unknown[]) {
    if (failing) return Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
    return write.apply(this, args);
  };
  try {
    const err = await r.trainer.run({ shouldStop: () => ((failing = r.trainer.step >= 3), false) }).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof Error, String(err));
    assert.is(err.message, `cannot write ${file} (ENOSPC: no space left on device, write); its previous content, if any, is unchanged`);
  } finally {
    proto.write = write;
  }
  r.dispose();
  assert.equal((await fs.readdir(dir)).filter((f) => f.includes('.tmp-')), []);
  const resumed = makeRun({ mode: 'instance', outDir: dir });
  await resumed.trainer.loadCheckpoint(file);
  assert.is(resumed.trainer.epoch, 1, 'the epoch-1 checkpoint is intact');
  assert.is(resumed.trainer.step, 3);
  resumed.dispose();
});

test('temperature calibration reports ECE before and after on the held-out half', async () => {
  const r = makeRun({ mode: 'class', outDir: null, config: { epochs: 3, calibrate: true } });
  const res = await r.trainer.run();
  const c = res.calibration!;
  assert.ok(c.temperature > 0.05 && c.temperature < 20);
  assert.is(c.fitCount, 5);
  assert.is(c.reportCount, 4);
  assert.ok(c.eceBefore >= 0 && c.eceBefore <= 1 && c.eceAfter >= 0 && c.eceAfter <= 1);
  r.dispose();
});

test.run();
