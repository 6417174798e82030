import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { initBackend } from '../src/runtime/backend.js';
import { DataParameters } from '../src/data-parameters/data-parameters.js';
import type { CurriculumMode } from '../src/data-parameters/data-parameters.js';
import {
  CLASSIFICATION_REVIEW_COLUMNS,
  LABEL_REVIEW_FILE,
  formatCsv,
  orderByScore,
  parseCsv,
  precisionAtK,
  rankingQuality,
  rankSuspects,
  ranksOf,
  recallAtK,
  rocAuc,
  scoresFromLogits,
} from '../src/review/label-review.js';
import { Rng } from '../src/util/rng.js';
import { smallCnn } from '../classification/models/models.js';
import { InMemoryImageData } from '../classification/input/image-data.js';
import { ClassifierTrainer, DEFAULT_TRAINER_CONFIG } from '../classification/training/trainer.js';
import { corruptLabels as corruptClassLabels } from '../datasets/noisy-labels/noisy-labels.js';
import type { KittiObject } from '../datasets/kitti/label-file.js';
import { parseKittiObjects } from '../datasets/kitti/label-file.js';
import type { DetectionRecord } from '../detection/train/batches.js';
import type { ImageDecoder } from '../datasets/pipeline/types.js';
import { trainDetector, type DetectorConfig } from '../detection/train/trainer.js';
import { readDetectorConfig, validateDetectorConfig } from '../detection/config.js';
import { DETECTION_REVIEW_COLUMNS } from '../detection/train/box-scores.js';
import { ensureSyntheticKitti, generateSyntheticKitti } from '../datasets/synthetic-kitti/generate.js';
import { boxIou, CORRUPTION_RECORD_COLUMNS, CORRUPTION_RECORD_FILE, corruptLabels, MAX_IOU } from '../datasets/synthetic-kitti/corrupt-boxes.js';
import { visualizeCurriculum } from '../src/visualize/curriculum-report.js';
import { makeClassificationRun, makeDetectionRun } from './support/visualize-fixture.js';

test.before(async () => {
  await initBackend('cpu', { log: null });
});

const close = (a: number, b: number, eps = 1e-6): boolean => Math.abs(a - b) <= eps * Math.max(1, Math.abs(b));

// --- ranking metrics against hand-computed values ---------------------------------------------------------------------

test('rocAuc: pairs counted by hand, ties count one half, degenerate cases NaN', () => {
  // Positives 0.9 and 0.7, negatives 0.8 and 0.6: 3 of 4 pairs ordered.
  assert.is(rocAuc([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]), 0.75);
  // Positives 1, 0.5; negatives 1, 0: (1,1) tie ½, (1,0) 1, (0.5,1) 0, (0.5,0) 1 → 2.5 / 4.
  assert.is(rocAuc([1, 1, 0, 0.5], [true, false, false, true]), 0.625);
  assert.is(rocAuc([2, 2, 2, 2], [1, 0, 1, 0]), 0.5);
  assert.is(rocAuc([3, 2, 1], [1, 1, 0]), 1);
  assert.is(rocAuc([1, 2, 3], [1, 1, 0]), 0);
  assert.ok(Number.isNaN(rocAuc([1, 2], [0, 0])));
  assert.ok(Number.isNaN(rocAuc([1, 2], [1, 1])));
  assert.ok(Number.isNaN(rocAuc([], [])));
  // NaN scores rank lowest.
  assert.is(rocAuc([NaN, 1], [0, 1]), 1);
  assert.throws(() => rocAuc([1, 2], [1]), /2 scores but 1 labels/);
});

test('precision@k, recall@k, orderings: ties broken by index, NaN last', () => {
  const s = [0.9, 0.8, 0.7, 0.6];
  const p = [1, 0, 1, 0];
  assert.is(precisionAtK(s, p, 2), 0.5);
  assert.is(recallAtK(s, p, 2), 0.5);
  assert.is(precisionAtK(s, p, 3), 2 / 3);
  assert.is(recallAtK(s, p, 3), 1);
  assert.is(precisionAtK(s, p, 10), 0.5); // k beyond n: all samples
  assert.ok(Number.isNaN(precisionAtK(s, p, 0)));
  assert.ok(Number.isNaN(recallAtK(s, [0, 0, 0, 0], 2)));
  // Ties: indices 0, 1, 2 share the top score; the first two by index are taken.
  assert.is(precisionAtK([1, 1, 1, 0], [0, 1, 1, 0], 2), 0.5);
  assert.equal(Array.from(orderByScore([NaN, 2, 1, 2])), [1, 3, 2, 0]);
  assert.equal(Array.from(ranksOf([NaN, 2, 1, 2])), [4, 1, 3, 2]);
  assert.equal(rankingQuality(s, p), { k: 2, auc: 0.75, precisionAtK: 0.5, recallAtK: 0.5 });
});

test('scoresFromLogits: softmax probability, p(given), cross-entropy and margin (literal values); bad input', () => {
  // Row 0: p = [1/4, 3/4], label 0. Row 1: p = [1/2, 1/2], label 1 (tie: the first class is predicted).
  const s = scoresFromLogits([0, Math.log(3), 5, 5], [0, 1], 2);
  assert.equal(Array.from(s.predicted), [1, 0]);
  assert.ok(close(s.probability[0]!, 0.75) && close(s.pGiven[0]!, 0.25) && close(s.loss[0]!, Math.log(4)) && close(s.margin[0]!, 0.5));
  assert.ok(close(s.probability[1]!, 0.5) && close(s.pGiven[1]!, 0.5) && close(s.loss[1]!, Math.log(2)) && close(s.margin[1]!, 0));
  assert.throws(() => scoresFromLogits([0, 1, 2], [0, 1], 2), /3 logits for 2 samples of 2 classes/);
  assert.throws(() => scoresFromLogits([0, 1], [2], 2), /label 2 of sample 0 is not in \[0, 2\)/);
});

test('rankSuspects: by σ values, by a DataParameters (instance and class σ), by loss without σ', () => {
  const scores = scoresFromLogits([0, 0, 0, 2, 2, 0], [0, 0, 0], 2); // losses: ln 2, 2.127, 0.127
  const bySigma = rankSuspects({ sigma: [1, 3, 2], ids: [10, 11, 12], givenLabels: [0, 0, 0], scores });
  assert.ok(bySigma.bySigma);
  assert.equal(bySigma.suspects.map((x) => x.id), [11, 12, 10]);
  assert.equal(bySigma.suspects.map((x) => x.sigmaRank), [1, 2, 3]);
  assert.equal(bySigma.suspects.map((x) => x.lossRank), [1, 3, 2]);
  assert.equal(bySigma.suspects.map((x) => x.confidentRank), [1, 3, 2]);

  const none = rankSuspects({ sigma: null, ids: [10, 11, 12], givenLabels: [0, 0, 0], scores });
  assert.not.ok(none.bySigma);
  assert.equal(none.suspects.map((x) => x.id), [11, 10, 12]);
  assert.equal(none.suspects.map((x) => x.sigma), [null, null, null]);

  const dp = new DataParameters({ numClasses: 2, numInstances: 4, mode: 'joint' });
  dp.setState({
    classLogSigma: Float32Array.from([Math.log(0.5), Math.log(2)]),
    instanceLogSigma: Float32Array.from([0, Math.log(4), Math.log(0.25), 0]),
    classMomentum: null,
    instanceMomentum: null,
    step: 0,
  });
  // Samples (id, label): (1, 0) → 0.5 + 4; (2, 1) → 2 + 0.25; (3, 0) → 0.5 + 1.
  const r = rankSuspects({ sigma: dp, ids: [1, 2, 3], givenLabels: [0, 1, 0], scores: scoresFromLogits([0, 0, 0, 0, 0, 0], [0, 1, 0], 2) });
  assert.equal(r.suspects.map((x) => x.id), [1, 2, 3]);
  assert.ok(close(r.suspects[0]!.sigma!, 4.5, 1e-5) && close(r.suspects[1]!.sigma!, 2.25, 1e-5) && close(r.suspects[2]!.sigma!, 1.5, 1e-5));
  dp.dispose();
  const off = new DataParameters({ numClasses: 2, numInstances: 3, mode: 'none' });
  assert.not.ok(rankSuspects({ sigma: off, ids: [0, 1, 2], givenLabels: [0, 0, 0], scores }).bySigma);
  off.dispose();
  assert.throws(() => rankSuspects({ sigma: [1, 2], ids: [0, 1, 2], givenLabels: [0, 0, 0], scores }), /3 ids but 2 σ values/);
  assert.throws(() => rankSuspects({ sigma: null, ids: [0, 1], givenLabels: [0, 0], scores }), /2 ids but 3 values of predicted/);
});

test('CSV: quoting round-trips; a short row is an error naming the file and line', () => {
  const text = formatCsv(['a', 'b', 'c'], [
    [1, 'x,y', null],
    [0.1 + 0.2, 'say "hi"\nthere', NaN],
  ]);
  assert.is(text, 'a,b,c\n1,"x,y",\n0.3,"say ""hi""\nthere",\n');
  const back = parseCsv(text, 'f.csv');
  assert.equal(back.header, ['a', 'b', 'c']);
  assert.equal(back.rows, [
    { a: '1', b: 'x,y', c: '' },
    { a: '0.3', b: 'say "hi"\nthere', c: '' },
  ]);
  assert.throws(() => parseCsv('a,b\n1,2\n3\n', 'bad.csv'), /bad\.csv:3: 1 fields, the header has 2/);
  assert.throws(() => parseCsv('', 'empty.csv'), /empty\.csv: empty/);
  assert.throws(() => formatCsv(['a'], [[1, 2]]), /a row has 2 fields, the header 1/);
});

// --- classification trainer: label-review.csv -------------------------------------------------------------------------

const SIDE = 8;
const CLASSES = 3;
const COUNT = 24;

function classificationRun(mode: CurriculumMode, outDir: string | null) {
  const rng = new Rng(1);
  const pixels = new Uint8Array(COUNT * SIDE * SIDE);
  const clean = new Int32Array(COUNT);
  for (let i = 0; i < COUNT; i++) {
    clean[i] = i % CLASSES;
    for (let p = 0; p < SIDE * SIDE; p++) pixels[i * SIDE * SIDE + p] = rng.int(60);
    for (let y = 0; y < 3; y++) for (let x = 0; x < 3; x++) pixels[i * SIDE * SIDE + (y + 1 + 2 * (i % CLASSES)) * SIDE + x + 2] = 250;
  }
  const noise = corruptClassLabels(clean, CLASSES, { rate: 0.25, seed: 2, model: 'uniform' });
  const train = new InMemoryImageData({ pixels, height: SIDE, width: SIDE, channels: 1 }, noise.imageIndex, noise.labels, CLASSES, ['a', 'b', 'c'], { mean: [0.2], std: [0.3] }, { pad: 1, flip: true });
  const model = smallCnn({ numClasses: CLASSES, inputShape: [SIDE, SIDE, 1], widths: [4], hidden: 8, seed: 3 });
  const dp = new DataParameters({ numClasses: CLASSES, numInstances: COUNT, mode, instance: { lr: 2, weightDecay: 0 } });
  const trainer = new ClassifierTrainer(
    { model, dp, train, val: null, noise, outDir, log: () => {}, progress: false, recordConfig: { curriculum: mode } },
    { ...DEFAULT_TRAINER_CONFIG, epochs: 2, batchSize: 8, lr: 0.05, evalBatchSize: 5, trackCount: 4, seed: 11 },
  );
  return {
    trainer,
    train,
    noise,
    dp,
    dispose: () => {
      trainer.dispose();
      dp.dispose();
      model.store.dispose();
    },
  };
}

test('classifier: label-review.csv has every sample once, sorted by σ, with σ*, loss and ranks matching the run', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dp-review-cls-'));
  const r = classificationRun('instance', dir);
  const res = await r.trainer.run();
  assert.is(res.reviewFile, path.join(dir, LABEL_REVIEW_FILE));
  const { header, rows } = parseCsv(readFileSync(res.reviewFile!, 'utf8'), res.reviewFile!);
  assert.equal(header, [...CLASSIFICATION_REVIEW_COLUMNS]);
  assert.is(rows.length, COUNT);
  assert.equal(rows.map((x) => Number(x['index'])).sort((a, b) => a - b), Array.from({ length: COUNT }, (_, i) => i));
  assert.equal(rows.map((x) => Number(x['rank'])), Array.from({ length: COUNT }, (_, i) => i + 1));
  const sigmaStar = r.trainer.sigmaStar();
  assert.ok(new Set(sigmaStar).size > 1, 'σ moved and differs between samples');
  for (const [j, x] of rows.entries()) {
    const i = Number(x['index']);
    assert.ok(close(Number(x['sigma']), sigmaStar[i]!, 1e-6), `σ of ${i}`);
    if (j > 0) assert.ok(Number(rows[j - 1]!['sigma']) >= Number(x['sigma']), 'sorted by σ descending');
    assert.is(Number(x['given_label']), r.train.labels[i]);
    assert.is(x['given_class'], ['a', 'b', 'c'][r.train.labels[i]!]);
    assert.is(Number(x['source_image']), r.train.imageIndex[i]);
    assert.is(x['file'], '');
    assert.is(Number(x['corrupted']), r.noise.corrupted[i]);
    assert.ok(close(Number(x['loss']), -Math.log(Number(x['p_given'])), 1e-4), 'loss = −ln p(given)');
    assert.ok(Number(x['probability']) >= Number(x['p_given']) - 1e-7);
    assert.is(Number(x['sigma_rank']), j + 1);
  }
  // The loss and 1 − p(given) rankings are permutations of 1..N.
  for (const col of ['loss_rank', 'confident_rank', 'margin_rank']) {
    assert.equal(rows.map((x) => Number(x[col])).sort((a, b) => a - b), Array.from({ length: COUNT }, (_, i) => i + 1), col);
  }
  r.dispose();
});

test('classifier baseline (no σ): the review is sorted by loss with an empty σ column; an interrupted run writes none', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dp-review-cls-none-'));
  const r = classificationRun('none', dir);
  const res = await r.trainer.run();
  const { rows } = parseCsv(readFileSync(res.reviewFile!, 'utf8'));
  assert.is(rows.length, COUNT);
  assert.ok(rows.every((x) => x['sigma'] === '' && x['sigma_rank'] === ''));
  for (let j = 1; j < rows.length; j++) assert.ok(Number(rows[j - 1]!['loss']) >= Number(rows[j]!['loss']), 'sorted by loss');
  assert.equal(rows.map((x) => Number(x['loss_rank'])), Array.from({ length: COUNT }, (_, i) => i + 1));
  r.dispose();
  // The baseline's run directory given to the gallery: a note saying why there is none, no sheets, the review kept.
  const review = readFileSync(res.reviewFile!, 'utf8');
  const pictures = await visualizeCurriculum(dir, { out: path.join(dir, 'pictures'), top: 4 });
  assert.ok(pictures.warnings.some((w) => w.startsWith('this run has no σ (curriculum none)') && w.includes(res.reviewFile!)), pictures.warnings.join('\n'));
  assert.equal(pictures.figures.filter((f) => f.section === 'review'), []);
  assert.not.ok(existsSync(path.join(dir, 'pictures', 'review-suspects.png')));
  assert.is(readFileSync(res.reviewFile!, 'utf8'), review);
  // Without its review (as after an interrupted run) the baseline still gets the no-σ note, also without --top.
  rmSync(res.reviewFile!);
  const again = await visualizeCurriculum(dir, { out: path.join(dir, 'pictures') });
  assert.equal(again.warnings.filter((w) => w.includes('σ')), ['this run has no σ (curriculum none): no review gallery by σ; train with a curriculum to rank the samples by σ']);
  assert.equal(again.figures.filter((f) => f.section === 'review'), []);

  const dir2 = mkdtempSync(path.join(tmpdir(), 'dp-review-cls-stop-'));
  const s = classificationRun('instance', dir2);
  const stopped = await s.trainer.run({ shouldStop: () => s.trainer.step >= 2 });
  assert.ok(stopped.interrupted);
  assert.is(stopped.reviewFile, null);
  assert.not.ok(existsSync(path.join(dir2, LABEL_REVIEW_FILE)));
  s.dispose();
});

// --- detection trainer: label-review.csv ------------------------------------------------------------------------------

const DW = 96;
const DH = 32;

function object(bbox: [number, number, number, number], occluded: number): KittiObject {
  return { type: 'Car', truncated: 0, occluded, alpha: 0, bbox, dimensions: [1.5, 1.6, 3.9], location: [0, 1.6, 20], rotationY: 0 };
}

function scenes(n: number): { records: DetectionRecord[]; read: ImageDecoder; boxes: number } {
  const rng = new Rng(11);
  const records: DetectionRecord[] = [];
  const pixels = new Map<string, Uint8Array>();
  let nextId = 0;
  for (let k = 0; k < n; k++) {
    const px = new Uint8Array(DW * DH * 3).fill(40);
    const objects: DetectionRecord['objects'] = [];
    for (let c = 0; c < 1 + (k % 2); c++) {
      const w = 20 + rng.int(16);
      const h = 10 + rng.int(8);
      const x1 = rng.int(DW - w);
      const y1 = rng.int(DH - h);
      for (let i = y1; i < y1 + h; i++) for (let j = x1; j < x1 + w; j++) px.set([200, 60, 60], (i * DW + j) * 3);
      const bbox: [number, number, number, number] = [x1, y1, x1 + w, y1 + h];
      objects.push({ bbox, classIndex: 0, ignore: false, instanceId: nextId++, occlusion: c, truncation: 0, difficulty: 'moderate', object: object(bbox, c) });
    }
    const id = String(k).padStart(6, '0');
    pixels.set(id, px);
    records.push({ imageId: id, imagePath: `/nonexistent/${id}.png`, width: DW, height: DH, objects });
  }
  const read: ImageDecoder = (file) => {
    const data = pixels.get(path.basename(file, '.png'));
    return data ? Promise.resolve({ data, width: DW, height: DH }) : Promise.reject(new Error(`${file}: no such image`));
  };
  return { records, read, boxes: nextId };
}

function detectorConfig(mode: 'none' | 'instance'): DetectorConfig {
  return {
    model: {
      backbone: { type: 'light', widths: [4, 8, 8], extraChannels: 8, featureMaps: 2 },
      inputSize: { width: DW, height: DH },
      classNames: ['car'],
      anchors: { minScale: 0.4, maxScale: 0.8, aspectRatios: [1, 2] },
    },
    data: { root: '', split: 'train', valSplit: 'val' },
    train: { epochs: 2, batchSize: 2, seed: 3, optimizer: { name: 'sgd', momentum: 0.9 }, lr: 0.02, warmupSteps: 2, logEvery: 1 },
    curriculum: { mode, instance: { lr: 0.5 } },
  };
}

test('detector: label-review.csv has every training box once, sorted by σ, σ as learnt; baseline sorted by loss; no tensors left', async () => {
  const { records, read, boxes } = scenes(6);
  const out = mkdtempSync(path.join(tmpdir(), 'dp-review-det-'));
  const lines: string[] = [];
  const res = await trainDetector({ config: detectorConfig('instance'), out, train: records, val: [], numInstances: boxes, decode: read, progress: null, log: (l) => lines.push(l) });
  assert.is(res.reviewFile, path.join(out, LABEL_REVIEW_FILE));
  assert.ok(lines.some((l) => l.includes(res.reviewFile!)), 'the log says where the file is');
  const { header, rows } = parseCsv(readFileSync(res.reviewFile!, 'utf8'));
  assert.equal(header, [...DETECTION_REVIEW_COLUMNS]);
  assert.is(rows.length, boxes);
  assert.equal(rows.map((x) => Number(x['instance_id'])).sort((a, b) => a - b), Array.from({ length: boxes }, (_, i) => i));
  const sigma = res.dp!.instanceSigmaValues();
  assert.ok(new Set(sigma).size > 1);
  const byId = new Map(records.flatMap((r) => r.objects.map((o) => [o.instanceId, { r, o }] as const)));
  for (const [j, x] of rows.entries()) {
    const id = Number(x['instance_id']);
    const { r, o } = byId.get(id)!;
    assert.ok(close(Number(x['sigma']), sigma[id]!, 1e-6));
    if (j > 0) assert.ok(Number(rows[j - 1]!['sigma']) >= Number(x['sigma']));
    assert.is(x['image'], r.imageId);
    assert.equal([x['x1'], x['y1'], x['x2'], x['y2']].map(Number), o.bbox);
    assert.is(Number(x['occluded']), o.occlusion);
    assert.is(x['class'], 'car');
    const iou = Number(x['best_iou']);
    assert.ok(iou >= 0 && iou <= 1, `IoU ${iou}`);
    const p = Number(x['p_given']);
    assert.ok(p > 0 && p < 1 && Number(x['loss']) > 0);
  }
  res.model.dispose();
  res.dp!.dispose();

  const before = tf.memory().numTensors;
  const base = await trainDetector({ config: detectorConfig('none'), out: mkdtempSync(path.join(tmpdir(), 'dp-review-det0-')), train: records, val: [], numInstances: boxes, decode: read, progress: null, log: () => {} });
  base.model.dispose();
  assert.is(tf.memory().numTensors, before);
  const b = parseCsv(readFileSync(base.reviewFile!, 'utf8')).rows;
  assert.is(b.length, boxes);
  assert.ok(b.every((x) => x['sigma'] === ''));
  for (let j = 1; j < b.length; j++) assert.ok(Number(b[j - 1]!['loss']) >= Number(b[j]!['loss']));
});

// --- synthetic KITTI: corrupted boxes and their record ----------------------------------------------------------------

test('corruptLabels: each kind as documented; rate 0 changes nothing; a bad rate is an error', () => {
  const labels = [object([10, 20, 60, 50], 0), { ...object([100, 20, 140, 50], 1), type: 'Pedestrian' }, object([200, 30, 260, 70], 2)];
  const same = corruptLabels(labels, 0, new Rng(1), 400, 120);
  assert.equal(same.labels, labels);
  assert.equal(same.corruptions, []);
  assert.throws(() => corruptLabels(labels, 1, new Rng(1), 400, 120), /\[0, 1\)/);
  const seen = new Set<string>();
  for (let seed = 0; seed < 40; seed++) {
    const c = corruptLabels(labels, 0.99, new Rng(seed), 400, 120);
    for (const x of c.corruptions) {
      seen.add(x.kind);
      if (x.kind === 'missing') {
        assert.is(x.line, null);
        assert.not.ok(c.labels.some((l) => l.bbox.join() === x.trueBox!.join()));
        continue;
      }
      assert.equal(c.labels[x.line! - 1]!.bbox, x.box);
      assert.is(c.labels[x.line! - 1]!.type, 'Car');
      if (x.kind === 'background') {
        for (const l of labels) assert.ok(boxIou(l.bbox, x.box!) < 0.05, 'background box off every labelled object');
      } else {
        assert.ok(x.iou! < MAX_IOU, `${x.kind} IoU ${x.iou}`);
        assert.ok(close(x.iou!, boxIou(x.box!, x.trueBox!), 1e-9));
      }
    }
    assert.ok(c.labels.some((l) => l.type === 'Pedestrian'), 'other classes are kept');
  }
  assert.equal([...seen].sort(), ['background', 'missing', 'resized', 'shifted']);
});

test('generator --corrupt-boxes: the record names every corrupted label; images are unchanged; ensure regenerates', async () => {
  const clean = mkdtempSync(path.join(tmpdir(), 'dp-sk-clean-'));
  const dirty = mkdtempSync(path.join(tmpdir(), 'dp-sk-dirty-'));
  const a = await generateSyntheticKitti({ out: clean, images: 12, seed: 5, width: 192, height: 58 });
  const b = await generateSyntheticKitti({ out: dirty, images: 12, seed: 5, width: 192, height: 58, corruptBoxes: 0.3 });
  assert.not.ok(existsSync(path.join(clean, 'training', CORRUPTION_RECORD_FILE)));
  for (const f of readdirSync(path.join(clean, 'training/image_2'))) {
    assert.ok(readFileSync(path.join(clean, 'training/image_2', f)).equals(readFileSync(path.join(dirty, 'training/image_2', f))), f);
  }
  const { header, rows } = parseCsv(readFileSync(path.join(dirty, 'training', CORRUPTION_RECORD_FILE), 'utf8'));
  assert.equal(header, [...CORRUPTION_RECORD_COLUMNS]);
  const byKind = (k: string): number => rows.filter((r) => r['kind'] === k).length;
  assert.equal(b.corrupted, { shifted: byKind('shifted'), resized: byKind('resized'), background: byKind('background'), missing: byKind('missing') });
  assert.ok(rows.length > 0);
  assert.is((b.byType['Car'] ?? 0) - (a.byType['Car'] ?? 0), byKind('background') - byKind('missing'));
  const labelsOf = (dir: string, id: string): KittiObject[] => parseKittiObjects(readFileSync(path.join(dir, 'training/label_2', `${id}.txt`), 'utf8'), id);
  for (const r of rows) {
    if (r['kind'] === 'missing') {
      assert.is(r['line'], '');
      const truth = ['true_x1', 'true_y1', 'true_x2', 'true_y2'].map((k) => Number(r[k]));
      assert.ok(labelsOf(clean, r['image']!).some((l) => l.bbox.every((v, i) => Math.abs(v - truth[i]!) < 0.01)), 'the left-out car is a true car');
      continue;
    }
    const written = labelsOf(dirty, r['image']!)[Number(r['line']) - 1]!;
    assert.is(written.type, 'Car');
    assert.equal(written.bbox.map((v) => Math.round(v * 100) / 100), ['x1', 'y1', 'x2', 'y2'].map((k) => Number(r[k])));
    if (r['kind'] !== 'background') assert.ok(Number(r['iou']) < MAX_IOU);
  }
  // A set made without corruption is not reused for a corrupted request, and regenerating without it removes the record.
  assert.is((await ensureSyntheticKitti({ out: clean, images: 12, seed: 5, width: 192, height: 58 })).generated, false);
  assert.is((await ensureSyntheticKitti({ out: clean, images: 12, seed: 5, width: 192, height: 58, corruptBoxes: 0.3 })).generated, true);
  assert.ok(existsSync(path.join(clean, 'training', CORRUPTION_RECORD_FILE)));
  await generateSyntheticKitti({ out: clean, images: 12, seed: 5, width: 192, height: 58 });
  assert.not.ok(existsSync(path.join(clean, 'training', CORRUPTION_RECORD_FILE)));
  try {
    await generateSyntheticKitti({ out: clean, images: 12, seed: 5, corruptBoxes: 1 });
    assert.unreachable('a fraction of 1 is refused');
  } catch (err) {
    assert.match((err as Error).message, /--corrupt-boxes must be a fraction in \[0, 1\), got 1/);
  }
});

// --- review gallery ---------------------------------------------------------------------------------------------------

test('gallery: suspects and easiest sheets from label-review.csv; a moved image is named and skipped', async () => {
  const dir = await makeDetectionRun();
  const a = path.join(dir, '..', 'images', 'a.png');
  const rows = [
    ['1', '000001', a, '1', '40', '40', '160', '120', 'car', '2', '0', '1', '3.5', '0.2', '0.5', '0.4', '0.9', 'car', '1', '1', '1', '1'],
    ['2', '000002', path.join(dir, 'moved', 'gone.png'), '1', '20', '30', '120', '100', 'car', '1', '0', '2', '2.5', '0.7', '0.5', '0.4', '0.9', 'car', '2', '2', '2', '2'],
    ['3', '000001', a, '2', '230', '40', '350', '120', 'car', '0', '0', '0', '0.5', '0.9', '0.9', '0.8', '0.2', 'car', '3', '3', '3', '3'],
  ];
  writeFileSync(path.join(dir, LABEL_REVIEW_FILE), formatCsv(DETECTION_REVIEW_COLUMNS, rows));
  const res = await visualizeCurriculum(dir, { out: path.join(dir, 'pictures'), top: 2 });
  const review = res.figures.filter((f) => f.section === 'review');
  assert.equal(review.map((f) => f.png), ['review-suspects.png', 'review-easiest.png']);
  const skipped = res.warnings.filter((w) => w.includes('gone.png'));
  assert.ok(skipped.length >= 1 && /skipped/.test(skipped[0]!), res.warnings.join('\n'));
  assert.ok(review[0]!.caption.includes('gone.png'));
  // One of the two suspects was shown: a single cell, drawn with the box in red.
  const meta = await sharp(path.join(dir, 'pictures', 'review-suspects.png')).metadata();
  assert.ok(meta.width >= 480 && meta.height > 150);
  const { data, info } = await sharp(path.join(dir, 'pictures', 'review-suspects.png')).raw().toBuffer({ resolveWithObject: true });
  let red = 0;
  for (let i = 0; i < info.width * info.height; i++) {
    const [r, g, b] = [data[i * info.channels]!, data[i * info.channels + 1]!, data[i * info.channels + 2]!];
    if (r > 200 && g < 80 && b < 80) red++;
  }
  assert.ok(red > 50, `red box pixels: ${red}`);
  // The CSV is left as it was.
  assert.is(parseCsv(readFileSync(path.join(dir, LABEL_REVIEW_FILE), 'utf8')).rows.length, 3);
  const html = readFileSync(res.indexFile, 'utf8');
  assert.ok(html.includes('review-suspects.png') && html.includes('Label review'));
});

test('gallery, classification: an image file moved since training is named and skipped; the others are shown, the CSV kept', async () => {
  const dir = await makeClassificationRun(2, { withImages: true });
  const rows = [
    [1, 7, 'moved/7.png', null, 1, 'class-1', 2, 'class-2', 0.8, 0.1, 3.5, 2.3, 0.7, 1, 1, 1, 1, null],
    [2, 0, 'samples/0.png', null, 0, 'class-0', 3, 'class-3', 0.7, 0.2, 2.5, 1.6, 0.5, 2, 2, 2, 2, null],
    [3, 1, 'samples/1.png', null, 1, 'class-1', 1, 'class-1', 0.9, 0.9, 0.5, 0.1, -0.8, 3, 3, 3, 3, null],
  ];
  const csv = formatCsv(CLASSIFICATION_REVIEW_COLUMNS, rows);
  writeFileSync(path.join(dir, LABEL_REVIEW_FILE), csv);
  const res = await visualizeCurriculum(dir, { out: path.join(dir, 'pictures'), top: 2 });
  const review = res.figures.filter((f) => f.section === 'review');
  assert.equal(review.map((f) => f.png), ['review-suspects.png', 'review-easiest.png']);
  assert.equal(res.warnings.filter((w) => w.includes('7.png')), [
    'review gallery: 1 image not found or unreadable, skipped (label-review.csv still lists them): rank 1: moved/7.png (not found)',
  ]);
  assert.ok(review[0]!.caption.endsWith(' 1 could not be shown (moved or unreadable): rank 1: moved/7.png (not found).'), review[0]!.caption);
  assert.not.ok(review[1]!.caption.includes('could not be shown'));
  assert.is(readFileSync(path.join(dir, LABEL_REVIEW_FILE), 'utf8'), csv);
  rmSync(dir, { recursive: true, force: true });
});

test('gallery: a run without σ gets a clear note and no sheets; a run without label-review.csv says so', async () => {
  const dir = await makeClassificationRun(2, { withImages: true });
  const quiet = await visualizeCurriculum(dir, { out: path.join(dir, 'p0') });
  assert.equal(quiet.warnings, [], 'an older run without a review: no gallery, no warning by default');
  const res0 = await visualizeCurriculum(dir, { out: path.join(dir, 'p0'), top: 4 });
  assert.ok(res0.warnings.some((w) => w.includes(`no ${LABEL_REVIEW_FILE}`)), res0.warnings.join('\n'));
  const rows = [0, 1].map((i) => [i + 1, i, `samples/${i}.png`, null, 0, 'class-0', 1, 'class-1', 0.6, 0.3, null, 1.2, 0.3, null, i + 1, i + 1, i + 1, null]);
  writeFileSync(path.join(dir, LABEL_REVIEW_FILE), formatCsv(CLASSIFICATION_REVIEW_COLUMNS, rows));
  const res = await visualizeCurriculum(dir, { out: path.join(dir, 'p1') });
  assert.ok(res.warnings.some((w) => /has no σ \(curriculum none\)/.test(w)), res.warnings.join('\n'));
  assert.equal(res.figures.filter((f) => f.section === 'review'), []);
  assert.not.ok(existsSync(path.join(dir, 'p1', 'review-suspects.png')));
  rmSync(dir, { recursive: true, force: true });
});

test('the label-review detector config: σ per box that forgets (momentum 0, weight decay 0.5); bad loss options are named', async () => {
  const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'configs', 'experiments', 'label-review-synthetic-kitti.json');
  const config = await readDetectorConfig(file);
  assert.equal(config.curriculum.instance, { init: 1, lr: 1, momentum: 0, weightDecay: 0.5 });
  assert.equal([config.curriculum.mode, config.train.epochs, config.train.milestones, config.model.loss?.negativeSigma], ['instance', 15, [12], 'detached']);
  assert.is(config.model.loss?.boxSigmaGradient, undefined);
  const raw = JSON.parse(readFileSync(file, 'utf8')) as { model: { loss: Record<string, unknown> } };
  raw.model.loss['boxSigmaGradient'] = 'mean';
  assert.is(validateDetectorConfig(raw, 'x.json').model.loss?.boxSigmaGradient, 'mean');
  raw.model.loss['boxSigmaGradient'] = 'avg';
  assert.throws(() => validateDetectorConfig(raw, 'x.json'), /x\.json: "model\.loss\.boxSigmaGradient" must be one of sum, mean, got 'avg'/);
});

test.run();
