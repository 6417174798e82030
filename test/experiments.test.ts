import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../src/runtime/backend.js';
import { encodeIdxUint8 } from '../datasets/idx/idx-file.js';
import { Rng } from '../src/util/rng.js';
import { applyOverrides, buildRun, readConfig } from '../classification/config.js';
import { corruptedAboveAllClean, labelFit } from '../classification/training/predictions.js';
import { armConfig, collectResults, runExperiment } from '../experiments/classifier-experiment.js';
import type { ClassifierExperiment, ExperimentResults, RunExperimentOptions } from '../experiments/classifier-experiment.js';
import { findExperiment, isDetectionExperiment } from '../experiments/index.js';
import { noisyFashionMnist } from '../experiments/noisy-fashion-mnist.js';
import { writeReport } from '../experiments/report.js';
import { collectDetectionResults, detectionReportHtml, epochValues, runDetectionExperiment } from '../experiments/detection-experiment.js';
import type { DetectionResults, RunDetectionOptions } from '../experiments/detection-experiment.js';
import { syntheticKittiCurriculum } from '../experiments/synthetic-kitti-curriculum.js';
import { rankingQuality } from '../src/review/label-review.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(ROOT, 'dist', 'experiments', 'cli', 'experiment.js');

/** A tiny MNIST-layout folder: class c is a bright 6x6 square at a position of its own, plus noise. */
function idxFixture(train: number, testCount: number): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'dp-exp-idx-'));
  const rng = new Rng(5);
  const make = (n: number): { px: Uint8Array; labels: Uint8Array } => {
    const px = new Uint8Array(n * 784);
    const labels = Uint8Array.from({ length: n }, (_, i) => i % 10);
    for (let i = 0; i < n; i++) {
      const c = labels[i]!;
      for (let p = 0; p < 784; p++) px[i * 784 + p] = rng.int(40);
      const [y0, x0] = [2 + 8 * Math.floor(c / 3), 2 + 8 * (c % 3)];
      for (let y = y0; y < y0 + 6; y++) for (let x = x0; x < x0 + 6; x++) px[i * 784 + y * 28 + x] = 200 + rng.int(56);
    }
    return { px, labels };
  };
  const tr = make(train);
  const te = make(testCount);
  writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), encodeIdxUint8([train, 28, 28], tr.px));
  writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), encodeIdxUint8([train], tr.labels));
  writeFileSync(path.join(dir, 't10k-images-idx3-ubyte'), encodeIdxUint8([testCount, 28, 28], te.px));
  writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte'), encodeIdxUint8([testCount], te.labels));
  return dir;
}

const DATA = idxFixture(50, 20);
const quiet = (): void => {};

function classifierExperiment(name: string): ClassifierExperiment {
  const e = findExperiment(name);
  if (isDetectionExperiment(e)) throw new Error(`${name} is a detector experiment`);
  return e;
}

function options(out: string, extra: Partial<RunExperimentOptions> = {}): RunExperimentOptions {
  return { out, quick: true, seeds: 3, overrides: { data: DATA, epochs: 2, batchSize: 16 }, log: quiet, ...extra };
}

/** Every per-epoch figure of every arm and seed, without the folders. */
function figures(r: ExperimentResults): unknown {
  return r.arms.map((a) => ({ arm: a.name, seeds: a.seeds.map((s) => ({ seed: s.seed, trainCount: s.trainCount, corrupted: s.corruptedCount, epochs: s.epochs })) }));
}

test('labelFit and corruptedAboveAllClean: pinned values, empty and mismatched input', () => {
  const fit = labelFit([1, 2, 3, 0, 5], [1, 2, 0, 0, 4], [0, 1, 1, 0, 1]);
  assert.is(fit.trainAccuracy, 3 / 5);
  assert.is(fit.memorised, 1 / 3);
  assert.is(fit.cleanFit, 1);
  const none = labelFit([], [], null);
  assert.ok(Number.isNaN(none.trainAccuracy) && Number.isNaN(none.memorised) && Number.isNaN(none.cleanFit));
  assert.throws(() => labelFit([1], [1, 2], null), /1 predictions, 2 labels/);
  assert.is(corruptedAboveAllClean([0.5, 2, 1.8, 3, 1.5], [0, 1, 0, 1, 1]), 2 / 3);
  assert.is(corruptedAboveAllClean([1, 1], [0, 1]), 0);
  assert.ok(Number.isNaN(corruptedAboveAllClean([1, 2], [0, 0])));
  assert.ok(Number.isNaN(corruptedAboveAllClean([1, 2], [1, 1])));
});

test('config: noise.cleanOnly keeps exactly the entries the noise left correct', async () => {
  await initBackend('wasm', { log: null });
  const base = await readConfig(path.join(ROOT, 'configs', 'experiments', 'noisy-fashion-mnist.json'));
  const noisy = await buildRun(applyOverrides(base, { data: DATA, seed: 1 }), quiet);
  const clean = await buildRun(applyOverrides({ ...base, noise: { ...base.noise!, cleanOnly: true } }, { data: DATA, seed: 1 }), quiet);
  const kept = 50 - noisy.noise!.corruptedCount;
  assert.ok(noisy.noise!.corruptedCount > 5, 'the fixture has corrupted labels');
  assert.is(clean.train.count, kept);
  assert.is(clean.noise, null);
  assert.equal(Array.from(clean.train.labels), Array.from(noisy.train.labels).filter((_, i) => noisy.noise!.corrupted[i] === 0));
  noisy.dispose();
  clean.dispose();
  assert.throws(() => applyOverrides({ ...base, noise: { ...base.noise!, cleanOnly: 'yes' as unknown as boolean } }, {}), /"noise\.cleanOnly" must be true or false/);
});

test('experiment runner, quick mode on an idx fixture: every arm and seed, figures per epoch, report; a stopped run resumes to the same numbers', async () => {
  await initBackend('wasm', { log: null });
  const exp = classifierExperiment('noisy-fashion-mnist');
  const a = mkdtempSync(path.join(tmpdir(), 'dp-exp-a-'));
  assert.ok(await runExperiment(exp, options(a)));
  const full = await collectResults(exp, options(a));
  assert.equal(full.arms.map((x) => x.name), ['baseline', 'instance', 'oracle']);
  for (const arm of full.arms) {
    assert.equal(arm.seeds.map((s) => s.seed), [0, 1, 2]);
    for (const s of arm.seeds) {
      assert.equal(s.epochs.map((e) => e.epoch), [1, 2]);
      assert.is(s.trainCount, arm.name === 'oracle' ? 50 - full.arms[0]!.seeds[s.seed]!.corruptedCount! : 50);
      for (const e of s.epochs) {
        assert.ok(e.testTop1 !== null && e.testTop1 >= 0 && e.testTop1 <= 1);
        assert.ok(e.trainAccuracy >= 0 && e.trainAccuracy <= 1);
        assert.is(e.memorised === null, arm.name === 'oracle');
        assert.is(e.corruptAboveAllClean === null, arm.name !== 'instance');
        assert.is(e.sigmaCorruptMean === null, arm.name === 'oracle');
      }
    }
    assert.is(arm.final['testTop1']!.n, 3);
  }
  assert.is(full.claims.length, 5);
  const instance = full.arms[1]!.seeds[0]!.epochs[1]!;
  assert.ok(instance.sigmaCorruptMean! > instance.sigmaCleanMean!, 'corrupted σ above clean σ after 2 epochs');

  // The instance arm alone, stopped inside its second seed in the middle of epoch 2 (4 steps and one check between epochs per epoch,
  // 2 epochs), then rerun to the end: the same numbers as the uninterrupted run.
  const b = mkdtempSync(path.join(tmpdir(), 'dp-exp-b-'));
  let calls = 0;
  const stopped = await runExperiment(exp, options(b, { arms: ['instance'], shouldStop: () => ++calls > 14 }));
  assert.is(stopped, false);
  assert.ok(existsSync(path.join(b, 'instance', 'seed-1', 'checkpoint.bin')));
  assert.not.ok(existsSync(path.join(b, 'instance', 'seed-2')));
  const partial = await collectResults(exp, options(b));
  assert.equal(partial.arms.map((x) => [x.name, x.seeds.map((s) => s.seed), x.unfinishedSeeds]), [['instance', [0], [1]]]);
  assert.ok(await runExperiment(exp, options(b, { arms: ['instance'] })));
  const resumed = await collectResults(exp, options(b));
  assert.equal(figures(resumed), figures({ ...full, arms: full.arms.filter((x) => x.name === 'instance') }));

  await writeReport(b, resumed, exp.figures(resumed));
  const json = JSON.parse(readFileSync(path.join(b, 'results.json'), 'utf8')) as ExperimentResults;
  assert.is(json.experiment, 'noisy-fashion-mnist');
  assert.is(json.arms[0]!.seeds[2]!.epochs[1]!.epoch, 2);
  const html = readFileSync(path.join(b, 'index.html'), 'utf8');
  assert.match(html, /The paper's claims and ours/);
  assert.match(html, /CIFAR-10 91\.1 vs 68\.0/);
  for (const f of exp.figures(resumed)) assert.match(readFileSync(path.join(b, 'figures', `${f.id}.svg`), 'utf8'), /^<svg /);

  // Other settings in the same folder are refused.
  assert.not.ok(await runExperiment(exp, { ...options(b), overrides: { data: DATA, epochs: 3, batchSize: 16 } }).catch((e: Error) => {
    assert.match(e.message, /experiment\.json: this folder holds noisy-fashion-mnist --quick/);
    return false;
  }));
});

test('random-labels, quick mode on the fixture: every label random, class σ per epoch for the class curriculum', async () => {
  await initBackend('wasm', { log: null });
  const exp = classifierExperiment('random-labels');
  const out = mkdtempSync(path.join(tmpdir(), 'dp-exp-rl-'));
  assert.ok(await runExperiment(exp, options(out)));
  const r = await collectResults(exp, options(out));
  assert.equal(r.arms.map((x) => x.name), ['baseline', 'class']);
  for (const arm of r.arms) {
    for (const s of arm.seeds) {
      assert.ok(s.corruptedCount! > 30, 'about 9 in 10 random labels are wrong');
      for (const e of s.epochs) {
        assert.is(e.classSigma === null, arm.name === 'baseline');
        if (e.classSigma) assert.is(e.classSigma.length, 10);
      }
    }
  }
  assert.is(r.claims.length, 2);
  assert.ok(r.claims.every((c) => c.holds !== null));
  const figs = exp.figures(r);
  assert.equal(figs.map((f) => f.id), ['train-accuracy', 'class-sigma', 'test-accuracy']);
  assert.is(figs[1]!.plot.series.length, 10);
});

test('armConfig: the oracle needs label noise; unknown arms and bad seeds are refused', async () => {
  const oracle = noisyFashionMnist.arms.find((x) => x.name === 'oracle')!;
  const c = await armConfig(noisyFashionMnist, oracle, 2, { quick: true, overrides: { data: DATA } });
  assert.is(c.noise!.cleanOnly, true);
  assert.is(c.seed, 2);
  assert.is(c.train.epochs, noisyFashionMnist.quick.epochs!);
  assert.not.ok(await armConfig(noisyFashionMnist, oracle, 0, { quick: false, overrides: { noiseRate: 0 } }).then(
    () => true,
    (e: Error) => {
      assert.match(e.message, /noisy-fashion-mnist\.json: arm 'oracle' trains on the clean entries but the config has no label noise/);
      return false;
    },
  ));
  const out = mkdtempSync(path.join(tmpdir(), 'dp-exp-c-'));
  await runExperiment(noisyFashionMnist, options(out, { arms: ['nope'] })).then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /noisy-fashion-mnist has no arm nope; its arms: baseline, instance, oracle/),
  );
  await runExperiment(noisyFashionMnist, options(out, { seeds: 0 })).then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /seeds must be a positive integer, got 0/),
  );
});


test('detection epochValues: σ by occlusion, difficulty and corruption, rankings; nulls where a run has no figure', () => {
  const boxes = [
    { occlusion: 0, difficulty: 'easy', corrupted: false },
    { occlusion: 0, difficulty: 'moderate', corrupted: true },
    { occlusion: 2, difficulty: 'hard', corrupted: false },
    { occlusion: 1, difficulty: null, corrupted: false },
  ];
  const sigma = [0.5, 2, 1.5, 1];
  const ap = { car: { easy: { ap11: 50, ap40: 60, gt: 3 }, moderate: { ap11: 40, ap40: 45, gt: 5 }, hard: { ap11: 30, ap40: 35, gt: 6 } } };
  const v = epochValues(ap, boxes, sigma, { sigma: rankingQuality(sigma, [0, 1, 0, 0]) });
  assert.is(v['ap_moderate_r40'], 45);
  assert.is(v['ap_hard_11'], 30);
  assert.is(v['sigma_all'], 1.25);
  assert.is(v['sigma_occlusion_0'], 1.25);
  assert.is(v['sigma_occlusion_2'], 1.5);
  assert.is(v['sigma_difficulty_none'], 1);
  assert.is(v['sigma_clean'], 1);
  assert.is(v['sigma_corrupted'], 2);
  assert.is(v['sigma_clean_occlusion_0'], 0.5);
  assert.is(v['auc_sigma'], 1);
  assert.is(v['pk_sigma'], 1);
  assert.is(v['auc_loss'], null);
  // A baseline on a clean set: AP only.
  const b = epochValues(null, boxes, null, null);
  assert.is(b['ap_easy_r40'], null);
  assert.is(b['sigma_occlusion_1'], null);
  assert.is(b['sigma_corrupted'], null);
  // No boxes at all: means are null, not NaN.
  assert.is(epochValues(null, [], [], null)['sigma_all'], null);
});

/** Every per-epoch value of every detector arm and seed, without the folders. */
function detectionFigures(r: DetectionResults): unknown {
  return r.arms.map((a) => ({ arm: a.name, seeds: a.seeds.map((s) => ({ seed: s.seed, boxes: s.trainBoxes, corrupted: s.corruptedBoxes, epochs: s.epochs })) }));
}

test('synthetic-kitti-curriculum, quick mode on tiny generated sets: every arm, AP, σ by occlusion, rankings; a stopped run resumes to the same numbers', async () => {
  await initBackend('wasm', { log: null });
  const exp = syntheticKittiCurriculum;
  const opts = (out: string, extra: Partial<RunDetectionOptions> = {}): RunDetectionOptions => ({ out, quick: true, seeds: 1, overrides: { images: 16 }, log: quiet, ...extra });
  const a = mkdtempSync(path.join(tmpdir(), 'dp-exp-det-a-'));
  assert.ok(await runDetectionExperiment(exp, opts(a)));
  const full = await collectDetectionResults(exp, opts(a));
  assert.equal(full.arms.map((x) => x.name), ['baseline', 'instance', 'baseline-corrupted', 'instance-corrupted']);
  for (const arm of full.arms) {
    const s = arm.seeds[0]!;
    assert.equal(s.epochs.map((e) => e.epoch), [1, 2]);
    assert.ok(s.trainBoxes > 5, `${arm.name}: ${s.trainBoxes} training boxes`);
    assert.is(s.corruptedBoxes === null, arm.corruptBoxes === 0);
    for (const e of s.epochs) {
      const ap = e.values['ap_moderate_r40'];
      assert.ok(typeof ap === 'number' && ap >= 0 && ap <= 100, `${arm.name} AP ${ap}`);
      assert.ok(e.trainLoss !== null && e.trainLoss > 0);
      assert.is(e.values['sigma_occlusion_0'] === null, arm.curriculum === 'none');
      assert.is(e.values['auc_loss'] === null, arm.corruptBoxes === 0);
      assert.is(e.values['auc_sigma'] === null, arm.name !== 'instance-corrupted');
    }
    assert.is(arm.final['ap_moderate_r40']!.n, 1);
  }
  // The clean and the corrupted set of a seed have the same images; the corrupted one has corrupted boxes.
  assert.ok(full.arms[3]!.seeds[0]!.corruptedBoxes! > 0);
  assert.is(full.claims.length, 5);
  assert.ok(full.claims.every((c) => c.holds !== null));

  // One arm, stopped in the middle of epoch 2 (2 steps per epoch; the stop is asked before each step), then rerun.
  const b = mkdtempSync(path.join(tmpdir(), 'dp-exp-det-b-'));
  let calls = 0;
  assert.is(await runDetectionExperiment(exp, opts(b, { arms: ['instance-corrupted'], shouldStop: () => ++calls > 3 })), false);
  // Epoch 1 is recorded; an arm without a finished run is left out of the results.
  const recorded = JSON.parse(readFileSync(path.join(b, 'instance-corrupted', 'seed-0', 'experiment-epochs.json'), 'utf8')) as { epoch: number }[];
  assert.equal(recorded.map((e) => e.epoch), [1]);
  assert.equal((await collectDetectionResults(exp, opts(b))).arms, []);
  assert.ok(await runDetectionExperiment(exp, opts(b, { arms: ['instance-corrupted'] })));
  const resumed = await collectDetectionResults(exp, opts(b));
  assert.equal(detectionFigures(resumed), detectionFigures({ ...full, arms: full.arms.filter((x) => x.name === 'instance-corrupted') }));

  const figs = exp.figures(full);
  assert.equal(figs.map((f) => f.id), ['sigma-by-occlusion', 'sigma-by-difficulty', 'sigma-corrupted', 'ap-moderate', 'ranking-auc', 'ranking-precision']);
  const html = detectionReportHtml(full, figs);
  assert.match(html, /The paper's claims and ours/);
  assert.match(html, /Car AP \(%\) at the final epoch/);
  assert.match(html, /Ranking the corrupted boxes first/);
  await runDetectionExperiment(exp, opts(b, { arms: ['nope'] })).then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /synthetic-kitti-curriculum has no arm nope; its arms: baseline, instance, baseline-corrupted, instance-corrupted/),
  );
});

test('experiment CLI: --help lists the experiments; unknown names fail clearly', () => {
  const help = spawnSync(process.execPath, [CLI, '--help'], { cwd: ROOT, encoding: 'utf8' });
  assert.is(help.status, 0);
  assert.match(help.stdout, /noisy-fashion-mnist +Fashion-MNIST, 40 % uniform label noise/);
  assert.match(help.stdout, /random-labels +Fashion-MNIST with every label random/);
  for (const flag of ['--quick', '--out', '--seeds', '--arms', '--data', '--report-only']) assert.ok(help.stdout.includes(flag), flag);
  assert.match(help.stdout, /synthetic-kitti-curriculum +synthetic KITTI, light SSD/);
  const data = spawnSync(process.execPath, [CLI, 'synthetic-kitti-curriculum', '--quick', '--data', 'x', '--out', mkdtempSync(path.join(tmpdir(), 'dp-exp-cli-'))], { cwd: ROOT, encoding: 'utf8' });
  assert.is(data.status, 1);
  assert.match(data.stderr, /synthetic-kitti-curriculum generates its data: --data does not apply/);
  const bad = spawnSync(process.execPath, [CLI, 'nope'], { cwd: ROOT, encoding: 'utf8' });
  assert.is(bad.status, 1);
  assert.match(bad.stderr, /unknown experiment 'nope': expected one of noisy-fashion-mnist, random-labels, synthetic-kitti-curriculum/);
});

test.run();
