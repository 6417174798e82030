import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../src/runtime/backend.js';
import { readRun } from '../src/records/run-records.js';
import { loadCheckpoint } from '../src/util/checkpoint.js';
import { Rng } from '../src/util/rng.js';
import type { KittiObject } from '../datasets/kitti/label-file.js';
import { detectorLoader, trainingBatch, type DetectionRecord } from '../detection/train/batches.js';
import type { ImageDecoder } from '../datasets/pipeline/types.js';
import { simpleAugmentation, type DetectionLoader } from '../datasets/pipeline/loader.js';
import { CHECKPOINT_FILE, detectorLoaders, NonFiniteLossError, trainDetector, type ApTable, type DetectorConfig, type KittiEvaluator } from '../detection/train/trainer.js';
import { ResumeMismatchError, TrainingInputError } from '../src/training/harness.js';
import type { MetricsEntry } from '../src/records/run-records.js';
import { loadSSD } from '../detection/model/io.js';

test.before(async () => {
  await initBackend('cpu', { log: null });
});

const W = 96, H = 32;

function object(bbox: [number, number, number, number], type = 'Car', occluded = 0): KittiObject {
  return { type, truncated: 0, occluded, alpha: 0, bbox, dimensions: [1.5, 1.6, 3.9], location: [0, 1.6, 20], rotationY: 0 };
}

/** Tiny in-memory scenes: dark road, bright car rectangles; one DontCare region in image 2. */
function scenes(n: number): { records: DetectionRecord[]; read: ImageDecoder } {
  const rng = new Rng(11);
  const records: DetectionRecord[] = [];
  const pixels = new Map<string, Uint8Array>();
  let nextId = 0;
  for (let k = 0; k < n; k++) {
    const px = new Uint8Array(W * H * 3).fill(40);
    const objects: DetectionRecord['objects'] = [];
    const cars = 1 + (k % 2);
    for (let c = 0; c < cars; c++) {
      const w = 20 + rng.int(16), h = 10 + rng.int(8);
      const x1 = rng.int(W - w), y1 = rng.int(H - h);
      for (let i = y1; i < y1 + h; i++) for (let j = x1; j < x1 + w; j++) px.set([200, 60, 60], (i * W + j) * 3);
      const bbox: [number, number, number, number] = [x1, y1, x1 + w, y1 + h];
      objects.push({ bbox, classIndex: 0, ignore: false, instanceId: nextId++, occlusion: c, truncation: 0, difficulty: c === 0 ? 'moderate' : 'hard', object: object(bbox, 'Car', c) });
    }
    if (k === 2) objects.push({ bbox: [0, 0, 10, 10], classIndex: -1, ignore: true, instanceId: -1, occlusion: -1, truncation: -1, difficulty: null, object: object([0, 0, 10, 10], 'DontCare') });
    const id = String(k).padStart(6, '0');
    pixels.set(id, px);
    records.push({ imageId: id, imagePath: `/nonexistent/${id}.png`, width: W, height: H, objects });
  }
  const read: ImageDecoder = (file) => {
    const data = pixels.get(path.basename(file, '.png'));
    return data ? Promise.resolve({ data, width: W, height: H }) : Promise.reject(new Error(`${file}: no such image`));
  };
  return { records, read };
}

function config(over: Partial<DetectorConfig['train']> = {}, mode: 'none' | 'instance' = 'instance'): DetectorConfig {
  return {
    model: {
      backbone: { type: 'light', widths: [4, 8, 8], extraChannels: 8, featureMaps: 2 },
      inputSize: { width: W, height: H },
      classNames: ['car'],
      anchors: { minScale: 0.4, maxScale: 0.8, aspectRatios: [1, 2] },
    },
    data: { root: '', split: 'train', valSplit: 'val' },
    train: { epochs: 2, batchSize: 2, seed: 3, optimizer: { name: 'sgd', momentum: 0.9 }, lr: 0.02, warmupSteps: 2, logEvery: 1, ...over },
    curriculum: { mode, instance: { lr: 0.5 } },
  };
}

test('loader: batches are a function of (seed, epoch, index); flips mirror boxes; ignore regions kept apart', async () => {
  const { records, read } = scenes(6);
  const flipOnly = simpleAugmentation({ flip: true, brightness: 0, contrast: 0 });
  const mk = (): DetectionLoader => detectorLoader(records, { inputSize: { width: W, height: H }, batchSize: 2, seed: 5, augment: flipOnly, decode: read });
  const a = trainingBatch(await mk().prepareBatch(1, 2));
  const b = mk();
  await b.prepareBatch(0, 0);
  const c = trainingBatch(await b.prepareBatch(1, 2));
  assert.equal(Array.from(a.x), Array.from(c.x));
  assert.equal(Array.from(a.instanceIds), Array.from(c.instanceIds));
  assert.equal(a.images.map((i) => Array.from(i.boxes)), c.images.map((i) => Array.from(i.boxes)));
  // Unflipped boxes are the originals / size; flipped ones are mirrored.
  const all = trainingBatch(await detectorLoader(records, { inputSize: { width: W, height: H }, batchSize: 6, seed: 5, augment: null, decode: read }).prepareBatch(0, 0));
  const r0 = records[0]!.objects[0]!.bbox;
  assert.equal(Array.from(all.images[0]!.boxes), Array.from(new Float32Array([r0[0] / W, r0[1] / H, r0[2] / W, r0[3] / H])));
  assert.equal(Array.from(all.images[2]!.ignore!), Array.from(new Float32Array([0, 0, 10 / W, 10 / H])));
  assert.is(all.instanceIds.length, 9);
});

test('the trainer validates through the pipeline without augmentation (training batches are augmented)', async () => {
  const { records, read } = scenes(6);
  const cfg = config();
  cfg.data.valLimit = 4;
  const { train, val, valRecords } = detectorLoaders(cfg, { train: records, val: records, decode: read });
  assert.is(valRecords.length, 4);
  assert.ok(val);
  const flips = (await Promise.all([0, 1, 2, 3].map((e) => train.prepareBatch(e, 0)))).flatMap((b) => b.transforms.filter((a) => a.sx < 0));
  assert.ok(flips.length > 0, 'some training image is flipped');
  for (const epoch of [0, 3]) {
    const b = await val.prepareBatch(epoch, 0);
    assert.equal(b.imageIds, ['000000', '000001']);
    assert.equal(b.transforms, [{ sx: 1, tx: 0, sy: 1, ty: 0 }, { sx: 1, tx: 0, sy: 1, ty: 0 }]);
    const px = (await read(records[0]!.imagePath)).data;
    for (let k = 0; k < px.length; k++) assert.is(b.images[k], Math.fround((px[k]! - 127.5) * (1 / 127.5)));
    const r0 = records[1]!.objects[0]!.bbox;
    assert.equal(Array.from(b.targets[1]!.boxes.subarray(0, 4)), Array.from(Float32Array.from([r0[0] / W, r0[1] / H, r0[2] / W, r0[3] / H])));
  }
  await train.close();
  await val.close();
});

test('resume is exact: N steps straight == N/2, then --resume for the rest (model, optimiser, σ)', async () => {
  const { records, read } = scenes(6);
  const straight = mkdtempSync(path.join(tmpdir(), 'det-a-'));
  const split = mkdtempSync(path.join(tmpdir(), 'det-b-'));
  const common = { train: records, val: [], numInstances: 9, decode: read, progress: null, log: () => {} };
  const a = await trainDetector({ ...common, config: config(), out: straight });
  const wa = a.model.params.snapshot();
  const sa = a.dp!.instanceSigmaValues();
  a.model.dispose();
  a.dp!.dispose();
  assert.is(a.steps, 6);
  // σ moved away from its initial 1 (lr 0.5): the curriculum is active.
  assert.ok(sa.some((s) => Math.abs(s - 1) > 1e-3), `σ ${Array.from(sa)}`);

  const b1 = await trainDetector({ ...common, config: config(), out: split, stopAtStep: 4 });
  assert.ok(b1.stoppedEarly);
  b1.model.dispose();
  b1.dp!.dispose();
  const b2 = await trainDetector({ ...common, config: config(), out: split, resume: true });
  assert.is(b2.steps, 6);
  const wb = b2.model.params.snapshot();
  for (const k of Object.keys(wa)) assert.equal(Array.from(wb[k]!), Array.from(wa[k]!), k);
  assert.equal(Array.from(b2.dp!.instanceSigmaValues()), Array.from(sa));
  b2.model.dispose();
  b2.dp!.dispose();
  // The run records of the resumed run are valid (no repeated steps) and equal in length to the straight run's.
  const ra = await readRun(straight), rb = await readRun(split);
  assert.is(rb.metrics.length, ra.metrics.length);
  assert.equal(rb.sigma.map((s) => s.tracked), ra.sigma.map((s) => s.tracked));
  assert.ok('occlusion:1' in ra.sigma[2]!.groups);
  // The trained model was saved in the tfjs format and loads.
  const { model } = await loadSSD(path.join(split, 'model'));
  model.dispose();
});

test('a training run leaves no tensors behind (tensor count flat over steps)', async () => {
  const { records, read } = scenes(6);
  const out = mkdtempSync(path.join(tmpdir(), 'det-mem-'));
  const before = tf.memory().numTensors;
  const r = await trainDetector({ config: config({ epochs: 1 }, 'none'), out, train: records, val: [], numInstances: 9, decode: read, progress: null, log: () => {} });
  r.model.dispose();
  assert.is(tf.memory().numTensors, before);
});

test('non-finite loss: stops with a clear error and a checkpoint of the last finite state', async () => {
  const { records, read } = scenes(6);
  const out = mkdtempSync(path.join(tmpdir(), 'det-nan-'));
  let err: unknown = null;
  try {
    await trainDetector({ config: config({ lr: 1e12, warmupSteps: 0 }, 'none'), out, train: records, val: [], numInstances: 9, decode: read, progress: null, log: () => {} });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof NonFiniteLossError, String(err));
  const e = err;
  assert.match(e.message, /non-finite loss at step \d+/);
  assert.ok(existsSync(path.join(out, CHECKPOINT_FILE)));
  const ck = await loadCheckpoint<{ step: number }>(path.join(out, CHECKPOINT_FILE));
  assert.is(ck.meta.step, e.step);
  for (const [k, v] of Object.entries(ck.arrays)) if (k.startsWith('model/')) assert.ok(v.every((x) => Number.isFinite(x)), k);
});

/** Metrics without the wall-clock fields (which no two runs share). */
function comparable(metrics: readonly MetricsEntry[]): Record<string, unknown>[] {
  return metrics.map((m) => Object.fromEntries(Object.entries(m).filter(([k]) => k !== 'imagesPerSecond' && k !== 'dataWait')));
}

test('a mid-epoch resume records the same epoch loss as an uninterrupted run (running sums in the checkpoint)', async () => {
  const { records, read } = scenes(6);
  const common = { train: records, val: [], numInstances: 9, decode: read, progress: null, log: () => {} };
  const straight = mkdtempSync(path.join(tmpdir(), 'det-sum-a-'));
  const split = mkdtempSync(path.join(tmpdir(), 'det-sum-b-'));
  const a = await trainDetector({ ...common, config: config(), out: straight });
  a.model.dispose();
  a.dp!.dispose();
  // Step 4 of 6 is inside the second epoch (3 steps per epoch).
  const b1 = await trainDetector({ ...common, config: config(), out: split, stopAtStep: 4 });
  b1.model.dispose();
  b1.dp!.dispose();
  const b2 = await trainDetector({ ...common, config: config(), out: split, resume: true });
  b2.model.dispose();
  b2.dp!.dispose();
  const ra = await readRun(straight), rb = await readRun(split);
  const epochLoss = (r: typeof ra): number[] => r.metrics.filter((m) => m.kind === 'epoch').map((m) => m['loss'] as number);
  assert.is(epochLoss(ra).length, 2);
  assert.equal(epochLoss(rb), epochLoss(ra));
  assert.equal(comparable(rb.metrics), comparable(ra.metrics));
  assert.equal(rb.sigma, ra.sigma);
});

test('--resume refuses changed options, listing them; a longer --epochs is accepted and noted in run.json', async () => {
  const { records, read } = scenes(6);
  const common = { train: records, val: [], numInstances: 9, decode: read, progress: null, log: () => {} };
  const out = mkdtempSync(path.join(tmpdir(), 'det-opts-'));
  const first = await trainDetector({ ...common, config: config(), out, stopAtStep: 2 });
  first.model.dispose();
  first.dp!.dispose();
  const changed = config({ lr: 0.05, batchSize: 3, seed: 4 });
  changed.curriculum.mode = 'none';
  const err = await trainDetector({ ...common, config: changed, out, resume: true }).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof ResumeMismatchError, String(err));
  const msg = (err as Error).message;
  for (const line of ['curriculum.mode: "instance" in the checkpoint, "none" now', 'train.batchSize: 2 in the checkpoint, 3 now', 'train.lr: 0.02 in the checkpoint, 0.05 now', 'train.seed: 3 in the checkpoint, 4 now']) {
    assert.ok(msg.includes(line), `${line} in ${msg}`);
  }
  assert.match(msg, /only train\.epochs, out may change/);
  const longer = await trainDetector({ ...common, config: config({ epochs: 3 }), out, resume: true });
  assert.is(longer.steps, 9);
  longer.model.dispose();
  longer.dp!.dispose();
  const run = await readRun(out);
  assert.equal(run.manifest.resumes!.map((r) => [r.step, r.changed]), [[2, [{ key: 'train.epochs', checkpoint: 2, now: 3 }]]]);
  assert.is(run.sigma.at(-1)!.epoch, 3);
});

test('resuming a finished run trains nothing and reports the final AP from the checkpoint', async () => {
  const { records, read } = scenes(6);
  const table = (ap: number): Partial<ApTable> => ({ car: { easy: { ap11: ap, ap40: ap, gt: 3 }, moderate: { ap11: ap, ap40: ap, gt: 4 }, hard: { ap11: ap, ap40: ap, gt: 5 } } });
  let calls = 0;
  const evaluate: KittiEvaluator = () => table(++calls * 10);
  const out = mkdtempSync(path.join(tmpdir(), 'det-done-'));
  const common = { train: records.slice(0, 4), val: records.slice(4), numInstances: 9, decode: read, progress: null, log: () => {}, evaluate };
  const a = await trainDetector({ ...common, config: config({ valEvery: 1 }), out });
  assert.equal(a.finalAp, table(20));
  a.model.dispose();
  a.dp!.dispose();
  const lines: string[] = [];
  const b = await trainDetector({ ...common, config: config({ valEvery: 1 }), out, resume: true, log: (l) => lines.push(l) });
  assert.is(calls, 2, 'no validation run again');
  assert.is(b.steps, a.steps);
  assert.equal(b.finalAp, table(20));
  assert.match(lines.join('\n'), /at step 4: all 2 epochs are done; reporting the final results/);
  b.model.dispose();
  b.dp!.dispose();
});

test('an image that fails mid-run stops training with a checkpoint; after fixing it, --resume ends as an uninterrupted run', async () => {
  const { records, read } = scenes(6);
  const common = { train: records, val: [], numInstances: 9, progress: null, log: () => {} };
  const straight = mkdtempSync(path.join(tmpdir(), 'det-img-a-'));
  const a = await trainDetector({ ...common, decode: read, config: config(), out: straight });
  const wa = a.model.params.snapshot();
  a.model.dispose();
  a.dp!.dispose();
  const out = mkdtempSync(path.join(tmpdir(), 'det-img-b-'));
  let reads = 0;
  // The 5th image read (the batch of step 2 of 6: batches of 2, each image read once in the first epoch) fails as a
  // truncated file would.
  const broken: ImageDecoder = async (file) => {
    if (++reads === 5) throw new Error(`${file}: cannot read the image (VipsPngload: premature end of file)`);
    return read(file);
  };
  const err = await trainDetector({ ...common, decode: broken, config: config(), out }).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof TrainingInputError, String(err));
  assert.match((err as Error).message, /^\/nonexistent\/\d{6}\.png: cannot read the image \(VipsPngload: premature end of file\)\ntraining stopped at step 2; the state before that step is in .*checkpoint\.dpckpt: replace the file, then rerun with --resume\.$/);
  const ck = await loadCheckpoint<{ step: number }>(path.join(out, CHECKPOINT_FILE));
  assert.is(ck.meta.step, 2);
  const b = await trainDetector({ ...common, decode: read, config: config(), out, resume: true });
  const wb = b.model.params.snapshot();
  for (const k of Object.keys(wa)) assert.equal(Array.from(wb[k]!), Array.from(wa[k]!), k);
  b.model.dispose();
  b.dp!.dispose();
  assert.equal(comparable((await readRun(out)).metrics), comparable((await readRun(straight)).metrics));
});

test('a validation image that fails at an epoch end keeps the epoch in a checkpoint; --resume validates first', async () => {
  const { records, read } = scenes(6);
  const evaluate: KittiEvaluator = (input) => ({ car: { easy: { ap11: input.detections.size, ap40: 1, gt: 1 }, moderate: { ap11: 1, ap40: 1, gt: 1 }, hard: { ap11: 1, ap40: 1, gt: 1 } } });
  const common = { train: records.slice(0, 4), val: records.slice(4), numInstances: 9, progress: null, log: () => {}, evaluate };
  const straight = mkdtempSync(path.join(tmpdir(), 'det-val-a-'));
  const a = await trainDetector({ ...common, decode: read, config: config({ valEvery: 1 }), out: straight });
  a.model.dispose();
  a.dp!.dispose();
  const out = mkdtempSync(path.join(tmpdir(), 'det-val-b-'));
  const broken: ImageDecoder = async (file) => {
    if (path.basename(file, '.png') === '000005') throw new Error(`${file}: cannot read the image (premature end of file)`);
    return read(file);
  };
  const err = await trainDetector({ ...common, decode: broken, config: config({ valEvery: 1 }), out }).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof TrainingInputError, String(err));
  assert.match((err as Error).message, /^\/nonexistent\/000005\.png: cannot read the image \(premature end of file\)\ntraining stopped at step 2;/);
  const ck = await loadCheckpoint<{ step: number; pendingValidation?: boolean }>(path.join(out, CHECKPOINT_FILE));
  assert.equal([ck.meta.step, ck.meta.pendingValidation], [2, true]);
  const b = await trainDetector({ ...common, decode: read, config: config({ valEvery: 1 }), out, resume: true });
  b.model.dispose();
  b.dp!.dispose();
  assert.equal(comparable((await readRun(out)).metrics), comparable((await readRun(straight)).metrics));
  assert.equal((await readRun(out)).metrics.filter((m) => m.kind === 'val').map((m) => m.step), [2, 4]);
});

test.run();
