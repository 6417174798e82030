#!/usr/bin/env node
/**
 * `npm run label-ranking -- classification|detection [options]`: how well σ finds known label errors, against the
 * ranking by loss, by 1 − p(given label) and by the margin, at several epochs of one training run each.
 *
 * classification: Fashion-MNIST (Debian's dataset-fashion-mnist) with uniform label noise; one run per curriculum
 *   (instance and none by default) on a stratified subset; positives are the samples whose label was corrupted.
 * detection: a synthetic KITTI set generated with corrupted Car boxes (make-synthetic-kitti --corrupt-boxes); the
 *   light SSD with a σ per box; positives are the labelled boxes the generator corrupted (shifted, resized, on
 *   background; cars left unlabelled have no box to rank and are counted apart).
 *
 * Per ranking: ROC AUC, precision@k and recall@k with k = the number of positives. Prints a Markdown table and one
 * JSON line per (run, epoch, ranking); writes everything to <out>/label-ranking-<task>.json.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { initBackend, parseBackendName } from '../src/runtime/backend.js';
import { rankingQuality, type RankingQuality, type SampleScores } from '../src/review/label-review.js';
import { applyOverrides, buildRun, readConfig, trainerConfig } from '../classification/config.js';
import { ClassifierTrainer } from '../classification/training/trainer.js';
import { classificationSampleScores } from '../classification/training/sample-scores.js';
import { generateSyntheticKitti } from '../datasets/synthetic-kitti/generate.js';
import { CORRUPTION_RECORD_FILE } from '../datasets/synthetic-kitti/corrupt-boxes.js';
import { KittiDataset } from '../datasets/kitti/dataset.js';
import { parseCsv } from '../src/review/label-review.js';
import { readDetectorConfig } from '../detection/config.js';
import { trainDetector, type KittiEvaluator } from '../detection/train/trainer.js';
import { detectionBoxScores } from '../detection/train/box-scores.js';
import { evaluateKitti } from '../detection/kitti-eval/index.js';

interface Row {
  run: string;
  epoch: number;
  ranking: string;
  quality: RankingQuality;
  extra?: Record<string, number>;
}

const int = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number');
  return n;
};
const num = (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError('expected a number');
  return n;
};
const list = (v: string): number[] => v.split(',').map((s) => int(s.trim()));

/** The comparison rankings of one set of scores (and σ, where the run has it). Higher = more suspect. */
function rankings(scores: SampleScores, sigma: ArrayLike<number> | null, positives: ArrayLike<number>, extra: Record<string, ArrayLike<number>> = {}): [string, RankingQuality][] {
  const out: [string, RankingQuality][] = [];
  if (sigma) out.push(['sigma', rankingQuality(sigma, positives)]);
  out.push(['loss', rankingQuality(scores.loss, positives)]);
  out.push(['1-p(given)', rankingQuality(Float32Array.from(scores.pGiven, (p) => 1 - p), positives)]);
  out.push(['margin', rankingQuality(scores.margin, positives)]);
  for (const [name, v] of Object.entries(extra)) out.push([name, rankingQuality(v, positives)]);
  return out;
}

function emit(rows: Row[], row: Row): void {
  rows.push(row);
  process.stdout.write(JSON.stringify({ run: row.run, epoch: row.epoch, ranking: row.ranking, ...row.quality, ...row.extra }) + '\n');
}

function table(rows: Row[]): string {
  const f = (v: number): string => (Number.isFinite(v) ? v.toFixed(3) : '-');
  const lines = ['| run | epoch | ranking | k | ROC AUC | precision@k | recall@k |', '|---|---|---|---|---|---|---|'];
  for (const r of rows) lines.push(`| ${r.run} | ${r.epoch} | ${r.ranking} | ${r.quality.k} | ${f(r.quality.auc)} | ${f(r.quality.precisionAtK)} | ${f(r.quality.recallAtK)} |`);
  return lines.join('\n');
}

async function classification(o: Record<string, unknown>): Promise<Row[]> {
  const rows: Row[] = [];
  const curricula = String(o['curricula']).split(',');
  const epochs = o['epochs'] as number;
  const at = new Set((o['at'] as number[] | undefined) ?? Array.from({ length: epochs }, (_, i) => i + 1));
  at.add(epochs);
  for (const curriculum of curricula) {
    let config = applyOverrides(await readConfig(String(o['config'])), {
      curriculum,
      epochs,
      noiseRate: o['noise'] as number,
      noiseModel: 'uniform',
      trainSubset: o['subset'] as number,
      valSubset: o['valSubset'] as number,
      seed: o['seed'] as number,
      calibrate: false,
    });
    if (o['augment'] === false) config = { ...config, train: { ...config.train, augment: false } };
    if (o['instanceLr'] !== undefined) {
      config = { ...config, dataParameters: { ...config.dataParameters, instance: { ...config.dataParameters.instance, lr: o['instanceLr'] as number } } };
    }
    const log = (l: string): void => void process.stderr.write(`[${curriculum}] ${l}\n`);
    const run = await buildRun(config, log);
    const trainer = new ClassifierTrainer(
      { model: run.model, dp: run.dp, train: run.train, val: run.val, noise: run.noise, outDir: null, log, progress: false, recordConfig: {} },
      trainerConfig(config),
    );
    const noisy = run.noise!.corrupted;
    const name = `${curriculum}${o['instanceLr'] !== undefined && curriculum !== 'none' ? ` (σ lr ${o['instanceLr'] as number})` : ''}${o['augment'] === false ? ', no augmentation' : ''}`;
    for (let e = 1; e <= epochs; e++) {
      const r = await trainer.run({ stopAfterEpoch: e });
      if (!at.has(e)) continue;
      const scores = await classificationSampleScores(run.model, run.train, 500);
      // Memorisation: corrupted samples the model predicts as their (wrong) given label.
      let memorised = 0;
      let corrupted = 0;
      for (let i = 0; i < noisy.length; i++) {
        if (!noisy[i]) continue;
        corrupted++;
        if (scores.predicted[i] === run.train.labels[i]) memorised++;
      }
      const last = r.epochs.at(-1);
      const extra = { memorised: memorised / Math.max(1, corrupted), valTop1: last?.valTop1 ?? NaN, trainTop1: last?.trainTop1 ?? NaN };
      const sigma = curriculum === 'none' ? null : trainer.sigmaStar();
      for (const [ranking, quality] of rankings(scores, sigma, noisy)) emit(rows, { run: name, epoch: e, ranking, quality, extra });
    }
    trainer.dispose();
    run.dispose();
  }
  return rows;
}

async function detection(o: Record<string, unknown>): Promise<Row[]> {
  const rows: Row[] = [];
  const out = String(o['out']);
  const data = path.join(out, 'synthetic-kitti-corrupted');
  const summary = await generateSyntheticKitti({ out: data, images: o['images'] as number, seed: o['seed'] as number, corruptBoxes: o['corrupt'] as number });
  process.stderr.write(`data: ${data}: ${summary.train} train images, corrupted labels ${JSON.stringify(summary.corrupted)}\n`);
  const base = await readDetectorConfig(String(o['detectorConfig']));
  const trainSet = await KittiDataset.open(data, { split: 'train', classes: base.model.classNames });
  const valSet = await KittiDataset.open(data, { split: 'val', classes: base.model.classNames });
  const record = parseCsv(await fs.readFile(path.join(data, 'training', CORRUPTION_RECORD_FILE), 'utf8'), CORRUPTION_RECORD_FILE);
  const trainIds = new Set(trainSet.records.map((r) => r.imageId));
  const bad = new Set(record.rows.filter((r) => r['line'] !== '').map((r) => `${r['image']}:${r['line']}`));
  const missingInTrain = record.rows.filter((r) => r['line'] === '' && trainIds.has(r['image']!)).length;
  const epochs = o['epochs'] as number;
  const at = new Set((o['at'] as number[] | undefined) ?? Array.from({ length: epochs }, (_, i) => i + 1));
  at.add(epochs);
  const evaluate: KittiEvaluator = (input) => evaluateKitti(input);
  for (const mode of String(o['curricula']).split(',') as ('instance' | 'none')[]) {
    const runDir = path.join(out, `detector-${mode}`);
    await fs.rm(runDir, { recursive: true, force: true });
    const config = structuredClone(base);
    config.data.root = data;
    delete config.data.synthetic;
    config.train.epochs = epochs;
    config.train.seed = o['seed'] as number;
    config.train.valEvery = 0;
    config.train.valAtStart = false;
    if (o['sigmaLr'] !== undefined) config.curriculum.instance = { ...config.curriculum.instance, lr: o['sigmaLr'] as number };
    config.curriculum.mode = mode;
    const name = `${mode}${o['sigmaLr'] !== undefined && mode !== 'none' ? ` (σ lr ${o['sigmaLr'] as number})` : ''}`;
    let steps = 0;
    for (let e = 1; e <= epochs; e++) {
      if (!at.has(e)) continue;
      const spe = Math.floor(trainSet.records.length / config.train.batchSize);
      const result = await trainDetector({
        config,
        out: runDir,
        train: trainSet.records,
        val: valSet.records,
        numInstances: Math.max(1, trainSet.numInstances),
        resume: steps > 0,
        evaluate,
        progress: null,
        log: (l) => process.stderr.write(`[${name}] ${l}\n`),
        ...(e < epochs ? { stopAtStep: e * spe } : {}),
      });
      steps = result.steps;
      const scores = await detectionBoxScores(result.model, trainSet.records, { batchSize: config.train.batchSize });
      const positives = Uint8Array.from(scores.boxes, (b) => (bad.has(`${b.record.imageId}:${(b.box as { line?: number }).line}`) ? 1 : 0));
      const sigma = result.dp ? result.dp.instanceSigmaValues(scores.ids) : null;
      const extra: Record<string, number> = { boxes: scores.boxes.length, missingCarsInTrain: missingInTrain };
      const ap = result.finalAp?.['car'];
      if (ap) extra['apModerateR40'] = ap.moderate.ap40;
      // σ's gradient sums over a box's anchors while the loss column is their mean: the summed loss shows how much of
      // the gap between the σ and loss rankings the anchor count explains.
      const extraRankings = {
        '1-best IoU': Float32Array.from(scores.bestIou, (v) => 1 - v),
        'loss × anchors': Float32Array.from(scores.loss, (v, i) => v * scores.anchors[i]!),
      };
      for (const [ranking, quality] of rankings(scores, sigma, positives, extraRankings)) {
        emit(rows, { run: name, epoch: e, ranking, quality, extra });
      }
      result.model.dispose();
      result.dp?.dispose();
    }
  }
  return rows;
}

async function main(): Promise<void> {
  const program = new Command('label-ranking')
    .argument('<task>', 'classification | detection')
    .option('--out <dir>', 'where results (and the detection data and runs) go', 'runs/label-ranking')
    .option('--backend <name>', 'auto | wasm | cpu | ...', 'auto')
    .option('--seed <n>', 'seed of data subset, noise and training', int, 0)
    .option('--epochs <n>', 'epochs per run', int)
    .option('--at <list>', 'epochs to measure at (comma-separated; the last epoch is always measured)', list)
    .option('--curricula <list>', 'classification: none,instance,class,joint; detection: instance,none', 'instance,none')
    .option('--config <file>', 'classification config', 'configs/fashion-mnist.json')
    .option('--subset <n>', 'classification: training images (stratified subset)', int, 5000)
    .option('--val-subset <n>', 'classification: test images evaluated per epoch', int, 1000)
    .option('--noise <p>', 'classification: uniform label-noise rate', num, 0.4)
    .option('--no-augment', 'classification: train without augmentation (the baseline memorises sooner)')
    .option('--instance-lr <x>', 'classification: instance σ learning rate (default: the config\'s)', num)
    .option('--detector-config <file>', 'detection config', 'configs/synthetic-kitti.json')
    .option('--images <n>', 'detection: synthetic images (half train, half val)', int, 200)
    .option('--corrupt <p>', 'detection: fraction of Car labels corrupted', num, 0.2)
    .option('--sigma-lr <x>', 'detection: σ learning rate (default: the config\'s)', num);
  program.parse();
  const task = program.args[0];
  const o = program.opts<Record<string, unknown>>();
  if (task !== 'classification' && task !== 'detection') throw new Error(`task must be classification or detection, got '${task}'`);
  o['epochs'] ??= task === 'classification' ? 8 : 6;
  await initBackend(parseBackendName(String(o['backend'])));
  const t0 = Date.now();
  const rows = task === 'classification' ? await classification(o) : await detection(o);
  const seconds = (Date.now() - t0) / 1000;
  await fs.mkdir(String(o['out']), { recursive: true });
  const file = path.join(String(o['out']), `label-ranking-${task}.json`);
  await fs.writeFile(file, JSON.stringify({ task, options: o, seconds, rows }, null, 2) + '\n');
  process.stdout.write(`\n${table(rows)}\n\n${rows.length} rows in ${seconds.toFixed(0)} s; written to ${file}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`label-ranking: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
