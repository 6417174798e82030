/**
 * Detector experiments: arms (curriculum on or off, on a synthetic KITTI set with or without corrupted boxes) trained
 * over several seeds with `trainDetector`, each in its own run directory (`OUT/ARM/seed-N`, as train-detector writes
 * it) on its own generated set (`OUT/data/ARM-seed-N`: the set's seed is the run's seed, so the arms of one seed see the
 * same images). The runner trains one epoch at a time through the trainer's checkpoint and adds after every epoch what
 * the trainer does not record: the car AP table, σ per box by occlusion and difficulty, and on a set with corrupted
 * boxes how well σ, the loss, 1 − p(given) and 1 − best IoU rank the corrupted boxes first. A rerun skips finished runs
 * and continues the others from their checkpoints, with the same numbers.
 */
import * as path from 'node:path';
import { readRun } from '../src/records/run-records.js';
import { parseCsv, rankingQuality, type RankingQuality } from '../src/review/label-review.js';
import { writeFileAtomic } from '../src/util/atomic-file.js';
import type { Logger } from '../src/util/log.js';
import { KittiDataset } from '../datasets/kitti/dataset.js';
import { ensureSyntheticKitti } from '../datasets/synthetic-kitti/generate.js';
import { CORRUPTION_RECORD_FILE } from '../datasets/synthetic-kitti/corrupt-boxes.js';
import { readDetectorConfig, validateDetectorConfig, type DetectorConfig } from '../detection/config.js';
import { evaluateKitti } from '../detection/kitti-eval/index.js';
import { detectionBoxScores, trainedBoxesOf } from '../detection/train/box-scores.js';
import type { DetectionRecord } from '../detection/train/batches.js';
import { trainDetector, type ApTable, type KittiEvaluator } from '../detection/train/trainer.js';
import { PACKAGE_ROOT, experimentResults, readFinishedSeeds, readJsonOr, runPendingArmSeeds, stat, statPerEpoch, type Claim, type ResultsOf, type Stat } from './experiment-runs.js';
import { claimsTable, figuresHtml, formatStat, pageStart, statSeries, type FigureSpec } from './report.js';
import type { PlotSeries } from '../src/visualize/line-plot.js';
import { escapeXml as esc } from '../src/visualize/svg.js';
import { readTextIfExists } from '../src/util/read-text.js';

export interface DetectionArmSpec {
  /** Directory name and key in results.json. */
  name: string;
  label: string;
  color: string;
  curriculum: 'instance' | 'none';
  /** Fraction of Car labels the generator corrupts (make-synthetic-kitti --corrupt-boxes); 0 for a clean set. */
  corruptBoxes: number;
}

/** What a command line may change in a detector experiment. */
export interface DetectionOverrides {
  epochs?: number;
  /** Images of each generated set (half train, half val). */
  images?: number;
}

export interface DetectionExperiment {
  task: 'detection';
  name: string;
  title: string;
  summary: string;
  setup: string;
  /** The detector config every arm starts from (relative to the package root); its `data.synthetic` sizes the sets. */
  configFile: string;
  quick: { images: number; epochs: number; batchSize: number };
  arms: readonly DetectionArmSpec[];
  claims(results: DetectionResults): Claim[];
  figures(results: DetectionResults): FigureSpec[];
}

export const OCCLUSION_LEVELS = ['0', '1', '2'] as const;
export const DIFFICULTIES = ['easy', 'moderate', 'hard', 'none'] as const;
export const AP_LEVELS = ['easy', 'moderate', 'hard'] as const;
/** The rankings of the corrupted boxes: by σ, by the loss at the box's anchors, by 1 − p(given), by 1 − best IoU. */
export const RANKINGS = ['sigma', 'loss', 'confident', 'iou'] as const;
export type RankingName = (typeof RANKINGS)[number];

/**
 * One epoch of one run, flat so that a script can read it: `ap_<easy|moderate|hard>_<r40|11>` (car, in %),
 * `sigma_all`, `sigma_occlusion_<0|1|2>`, `sigma_difficulty_<easy|moderate|hard|none>` (means over the training boxes),
 * on a set with corrupted boxes `sigma_clean`, `sigma_corrupted`, `sigma_clean_occlusion_<0|1|2>`, and per ranking
 * `auc_<ranking>`, `pk_<ranking>` (precision@k, k = the corrupted boxes). Null where the run cannot have the figure
 * (σ of the baseline, rankings on a clean set, a group without boxes).
 */
export interface DetectionEpochRecord {
  epoch: number;
  trainLoss: number | null;
  values: Record<string, number | null>;
}

export interface DetectionSeedResult {
  seed: number;
  dir: string;
  plannedEpochs: number;
  trainBoxes: number;
  /** Labelled boxes the generator corrupted (shifted, resized, on background); null on a clean set. */
  corruptedBoxes: number | null;
  /** Cars of the training images left unlabelled by the generator (no box to rank); null on a clean set. */
  missingCars: number | null;
  epochs: DetectionEpochRecord[];
}

export interface DetectionArmResult {
  name: string;
  label: string;
  color: string;
  curriculum: 'instance' | 'none';
  corruptBoxes: number;
  seeds: DetectionSeedResult[];
  unfinishedSeeds: number[];
  /** Mean ± std over seeds of the last epoch's values (and `epoch`). */
  final: Record<string, Stat>;
  /** Mean ± std over seeds of each run's best epoch, per value (AP and ranking AUC/precision: highest). */
  best: Record<string, Stat>;
}

export type DetectionResults = ResultsOf<DetectionArmResult, DetectionOverrides>;

export interface RunDetectionOptions {
  out: string;
  quick: boolean;
  seeds: number;
  arms?: readonly string[];
  overrides: DetectionOverrides;
  log: Logger;
  shouldStop?: () => boolean;
}

const EXTRAS_FILE = 'experiment-epochs.json';

/** The detector config of one arm and seed; its data root is the arm and seed's generated set under `out`. */
export async function detectionArmConfig(
  exp: DetectionExperiment,
  arm: DetectionArmSpec,
  seed: number,
  options: Pick<RunDetectionOptions, 'out' | 'quick' | 'overrides'>,
): Promise<{ config: DetectorConfig; dir: string; images: number; width: number | undefined; height: number | undefined }> {
  const file = path.resolve(PACKAGE_ROOT, exp.configFile);
  const c = structuredClone(await readDetectorConfig(file));
  const synthetic = c.data.synthetic;
  if (!synthetic) throw new Error(`${file}: a detector experiment needs data.synthetic (the size of the generated sets)`);
  const images = options.overrides.images ?? (options.quick ? exp.quick.images : synthetic.images);
  delete c.data.synthetic;
  c.data.root = path.join(options.out, 'data', `${arm.name}-seed-${seed}`);
  if (options.quick) {
    c.train.epochs = exp.quick.epochs;
    c.train.batchSize = exp.quick.batchSize;
  }
  if (options.overrides.epochs !== undefined) c.train.epochs = options.overrides.epochs;
  c.train.seed = seed;
  // AP after every epoch, and none before training (the runner records every epoch).
  c.train.valEvery = 1;
  c.train.valAtStart = false;
  c.curriculum.mode = arm.curriculum;
  const dir = path.join(options.out, arm.name, `seed-${seed}`);
  c.out = dir;
  return { config: validateDetectorConfig(c, file), dir, images, width: synthetic.width, height: synthetic.height };
}

/** Instance ids of the training boxes the generator corrupted (joined on image and label line), and the cars it left
 * unlabelled in the training images. */
async function corruptedOf(root: string, train: KittiDataset): Promise<{ ids: Set<number>; missing: number } | null> {
  const file = path.join(root, 'training', CORRUPTION_RECORD_FILE);
  const text = await readTextIfExists(file);
  if (text === null) return null;
  const { rows } = parseCsv(text, file);
  const bad = new Set(rows.filter((r) => r['line'] !== '').map((r) => `${r['image']}:${r['line']}`));
  const trainIds = new Set(train.records.map((r) => r.imageId));
  const missing = rows.filter((r) => r['line'] === '' && trainIds.has(r['image'] ?? '')).length;
  const ids = new Set<number>();
  for (const rec of train.records) for (const box of rec.objects) if (box.instanceId >= 0 && bad.has(`${rec.imageId}:${box.line}`)) ids.add(box.instanceId);
  return { ids, missing };
}

const mean = (v: readonly number[]): number | null => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : null);
const finiteOrNull = (v: number): number | null => (Number.isFinite(v) ? v : null);

/** The per-epoch values of a trained state (see DetectionEpochRecord). */
export function epochValues(
  ap: Partial<ApTable> | null,
  boxes: readonly { occlusion: number; difficulty: string | null; corrupted: boolean }[],
  sigma: ArrayLike<number> | null,
  rankings: Partial<Record<RankingName, RankingQuality>> | null,
): Record<string, number | null> {
  const v: Record<string, number | null> = {};
  const car = ap?.['car'];
  for (const d of AP_LEVELS) {
    v[`ap_${d}_r40`] = car ? car[d].ap40 : null;
    v[`ap_${d}_11`] = car ? car[d].ap11 : null;
  }
  const sigmaMean = (keep: (i: number) => boolean): number | null => {
    if (!sigma) return null;
    const s: number[] = [];
    for (let i = 0; i < boxes.length; i++) if (keep(i)) s.push(sigma[i] ?? NaN);
    return mean(s);
  };
  const box = (i: number): (typeof boxes)[number] | undefined => boxes[i];
  v['sigma_all'] = sigmaMean(() => true);
  for (const o of OCCLUSION_LEVELS) v[`sigma_occlusion_${o}`] = sigmaMean((i) => String(box(i)?.occlusion) === o);
  for (const d of DIFFICULTIES) v[`sigma_difficulty_${d}`] = sigmaMean((i) => (box(i)?.difficulty ?? 'none') === d);
  const noisy = rankings !== null;
  v['sigma_clean'] = noisy ? sigmaMean((i) => box(i)?.corrupted === false) : null;
  v['sigma_corrupted'] = noisy ? sigmaMean((i) => box(i)?.corrupted === true) : null;
  for (const o of OCCLUSION_LEVELS) v[`sigma_clean_occlusion_${o}`] = noisy ? sigmaMean((i) => box(i)?.corrupted === false && String(box(i)?.occlusion) === o) : null;
  for (const r of RANKINGS) {
    const q = rankings?.[r];
    v[`auc_${r}`] = q ? finiteOrNull(q.auc) : null;
    v[`pk_${r}`] = q ? finiteOrNull(q.precisionAtK) : null;
  }
  return v;
}

/** Trains one arm and seed to the end (or until stopped), one epoch at a time. Returns false when stopped. */
async function trainArmSeed(exp: DetectionExperiment, arm: DetectionArmSpec, seed: number, options: RunDetectionOptions): Promise<boolean> {
  const { config, dir, images, width, height } = await detectionArmConfig(exp, arm, seed, options);
  const extrasFile = path.join(dir, EXTRAS_FILE);
  const done = await readJsonOr<DetectionEpochRecord[]>(extrasFile, []);
  const epochs = config.train.epochs;
  if (done.at(-1)?.epoch === epochs) return true;
  const { log } = options;
  log(`${exp.name}: arm ${arm.name}, seed ${seed} -> ${dir}`);
  const root = config.data.root;
  await ensureSyntheticKitti({ out: root, images, seed, ...(width ? { width } : {}), ...(height ? { height } : {}), corruptBoxes: arm.corruptBoxes });
  const classes = config.model.classNames;
  const trainSet = await KittiDataset.open(root, { split: config.data.split, classes, log });
  const valSet = await KittiDataset.open(root, { split: config.data.valSplit, classes, log });
  const records: DetectionRecord[] = trainSet.records;
  const corrupted = arm.corruptBoxes > 0 ? await corruptedOf(root, trainSet) : null;
  if (arm.corruptBoxes > 0 && !corrupted) throw new Error(`${root}: no ${CORRUPTION_RECORD_FILE} (the set was generated without corrupted boxes)`);
  const boxes = trainedBoxesOf(records);
  const ids = Int32Array.from(boxes, (b) => b.box.instanceId);
  const boxInfo = boxes.map((b) => ({ occlusion: b.box.occlusion, difficulty: b.box.difficulty, corrupted: corrupted?.ids.has(b.box.instanceId) ?? false }));
  const positives = Uint8Array.from(boxInfo, (b) => (b.corrupted ? 1 : 0));
  const stepsPerEpoch = Math.floor(records.length / config.train.batchSize);
  if (stepsPerEpoch < 1) throw new Error(`${root}: ${records.length} training images, fewer than a batch of ${config.train.batchSize}`);
  const evaluate: KittiEvaluator = (input) => evaluateKitti(input);
  const extras = new Map(done.map((e) => [e.epoch, e]));
  // Every epoch ends in a checkpoint at its last step, so the state after epoch e is always there to record.
  for (let e = (done.at(-1)?.epoch ?? 0) + 1; e <= epochs; e++) {
    const result = await trainDetector({
      config,
      out: dir,
      train: records,
      val: valSet.records,
      numInstances: Math.max(1, trainSet.numInstances),
      resume: true,
      evaluate,
      progress: null,
      log: (l) => log(`[${arm.name} seed ${seed}] ${l}`),
      ...(e < epochs ? { stopAtStep: e * stepsPerEpoch } : {}),
      ...(options.shouldStop ? { shouldStop: options.shouldStop } : {}),
    });
    try {
      if (result.steps < e * stepsPerEpoch) return false;
      const sigma = result.dp ? result.dp.instanceSigmaValues(ids) : null;
      let rankings: Partial<Record<RankingName, RankingQuality>> | null = null;
      if (corrupted) {
        const scores = await detectionBoxScores(result.model, records, { batchSize: config.train.batchSize });
        if (scores.ids.some((id, i) => id !== ids[i])) throw new Error('box scores out of order with the training boxes');
        rankings = {
          loss: rankingQuality(scores.loss, positives),
          confident: rankingQuality(Float32Array.from(scores.pGiven, (p) => 1 - p), positives),
          iou: rankingQuality(Float32Array.from(scores.bestIou, (x) => 1 - x), positives),
        };
        if (sigma) rankings.sigma = rankingQuality(sigma, positives);
      }
      extras.set(e, { epoch: e, trainLoss: null, values: epochValues(result.finalAp, boxInfo, sigma, rankings) });
      await writeFileAtomic(extrasFile, JSON.stringify([...extras.values()].sort((a, b) => a.epoch - b.epoch)) + '\n');
    } finally {
      result.model.dispose();
      result.dp?.dispose();
    }
  }
  return true;
}

/** Runs every arm and seed that is not finished yet; false when stopped (a rerun continues). */
export async function runDetectionExperiment(exp: DetectionExperiment, options: RunDetectionOptions): Promise<boolean> {
  return runPendingArmSeeds(exp, options, (arm, seed) => trainArmSeed(exp, arm, seed, options));
}

async function readSeed(dir: string, seed: number): Promise<DetectionSeedResult | null> {
  const extras = await readJsonOr<DetectionEpochRecord[]>(path.join(dir, EXTRAS_FILE), []);
  if (extras.length === 0) return null;
  const records = await readRun(dir, { truncatedTail: 'skip' });
  const loss = new Map<number, number>();
  for (const m of records.metrics) if (m.kind === 'epoch' && typeof m['loss'] === 'number') loss.set(m.epoch, m['loss']);
  const config = records.manifest.config as { train?: { epochs?: number }; data?: { root?: string; split?: 'train' | 'val' | 'trainval' | 'all' } };
  const last = records.sigma.at(-1);
  const root = config.data?.root;
  let corruptedBoxes: number | null = null;
  let missingCars: number | null = null;
  if (root) {
    const c = await corruptedOf(root, await KittiDataset.open(root, { split: config.data?.split ?? 'train', verify: 'none', log: null }));
    corruptedBoxes = c?.ids.size ?? null;
    missingCars = c?.missing ?? null;
  }
  return {
    seed,
    dir,
    plannedEpochs: config.train?.epochs ?? NaN,
    trainBoxes: last?.groups['all']?.count ?? 0,
    corruptedBoxes,
    missingCars,
    epochs: extras.map((x) => ({ ...x, trainLoss: loss.get(x.epoch) ?? null })),
  };
}

/** Keys where lower is better (the best epoch is the lowest); every other key's best is its highest. */
const LOWER_IS_BETTER = new Set(['trainLoss']);

/** Mean ± std over seeds of a value per epoch (epochs that every seed has). */
export function detectionPerEpoch(arm: DetectionArmResult, key: string): { epoch: number; stat: Stat }[] {
  return statPerEpoch(arm.seeds, (r) => (key === 'trainLoss' ? r.trainLoss : r.values[key]));
}

/** Collects every run directory of the experiment (arms without records are left out). */
export async function collectDetectionResults(exp: DetectionExperiment, options: Pick<RunDetectionOptions, 'out' | 'quick' | 'seeds' | 'overrides'>): Promise<DetectionResults> {
  const arms: DetectionArmResult[] = [];
  let epochs = 0;
  for (const arm of exp.arms) {
    const { runs, unfinishedSeeds } = await readFinishedSeeds(path.join(options.out, arm.name), options.seeds, readSeed);
    if (runs.length === 0) continue;
    const keys = new Set<string>(['trainLoss']);
    for (const r of runs) for (const e of r.epochs) for (const k of Object.keys(e.values)) keys.add(k);
    const value = (e: DetectionEpochRecord, k: string): number | null => (k === 'trainLoss' ? e.trainLoss : (e.values[k] ?? null));
    const final: Record<string, Stat> = {};
    const best: Record<string, Stat> = {};
    for (const k of keys) {
      const f = stat(
        runs
          .map((r) => r.epochs.at(-1))
          .map((e) => (e ? value(e, k) : null))
          .filter((v): v is number => v !== null),
      );
      if (f) final[k] = f;
      const pick = LOWER_IS_BETTER.has(k) ? Math.min : Math.max;
      const b = stat(
        runs
          .map((r) => r.epochs.map((e) => value(e, k)).filter((v): v is number => v !== null))
          .filter((v) => v.length > 0)
          .map((v) => pick(...v)),
      );
      if (b) best[k] = b;
    }
    const finalEpoch = stat(runs.map((r) => r.epochs.at(-1)?.epoch ?? NaN));
    if (finalEpoch) final['epoch'] = finalEpoch;
    epochs = Math.max(epochs, ...runs.map((r) => r.epochs.at(-1)?.epoch ?? 0));
    arms.push({ name: arm.name, label: arm.label, color: arm.color, curriculum: arm.curriculum, corruptBoxes: arm.corruptBoxes, seeds: runs, unfinishedSeeds, final, best });
  }
  return experimentResults(exp, options, epochs, arms);
}

/** The mean over seeds of a value per epoch as a line with a ±std band. */
export function detectionSeries(arm: DetectionArmResult, key: string, o: { scale?: number; label?: string; color?: string; dashed?: boolean } = {}): PlotSeries {
  return statSeries(detectionPerEpoch(arm, key), { ...o, label: o.label ?? arm.label, color: o.color ?? arm.color });
}

function row(cells: readonly string[], head = false): string {
  const t = head ? 'th' : 'td';
  return `<tr>${cells.map((c) => `<${t}>${esc(c)}</${t}>`).join('')}</tr>\n`;
}

/** The report page: claims, the AP table (final and best epoch), σ by occlusion and difficulty, the rankings, figures. */
export function detectionReportHtml(r: DetectionResults, figures: readonly FigureSpec[]): string {
  const parts: string[] = [pageStart(r), claimsTable(r.claims)];
  const seedsOf = (a: DetectionArmResult): string => `${a.seeds.length} of ${r.seeds.length}${a.unfinishedSeeds.length ? ` (${a.unfinishedSeeds.length} unfinished)` : ''}`;
  const apCols = AP_LEVELS.flatMap((d) => [`${d} AP|R40`, `${d} AP11`]);
  const apKeys = AP_LEVELS.flatMap((d) => [`ap_${d}_r40`, `ap_${d}_11`]);
  for (const [title, pick] of [
    ['Car AP (%) at the final epoch', (a: DetectionArmResult) => a.final],
    ['Car AP (%) at each run\'s best epoch (per column)', (a: DetectionArmResult) => a.best],
  ] as const) {
    parts.push(`<h2>${esc(title)}</h2>\n<table class="results">\n${row(['arm', 'seeds', 'epoch', ...apCols], true)}`);
    for (const a of r.arms) parts.push(row([a.label, seedsOf(a), formatStat(a.final['epoch'], 1, 0), ...apKeys.map((k) => formatStat(pick(a)[k], 1, 2))]));
    parts.push('</table>\n');
  }
  const sigmaArms = r.arms.filter((a) => a.curriculum === 'instance');
  if (sigmaArms.length) {
    const keys = [...OCCLUSION_LEVELS.map((o) => `sigma_occlusion_${o}`), ...DIFFICULTIES.map((d) => `sigma_difficulty_${d}`), 'sigma_clean', 'sigma_corrupted'];
    const cols = [...OCCLUSION_LEVELS.map((o) => `occlusion ${o}`), ...DIFFICULTIES.map((d) => d), 'clean boxes', 'corrupted boxes'];
    parts.push(`<h2>Mean σ per box at the final epoch</h2>\n<table class="results">\n${row(['arm', 'seeds', ...cols], true)}`);
    for (const a of sigmaArms) parts.push(row([a.label, seedsOf(a), ...keys.map((k) => formatStat(a.final[k], 1, 3))]));
    parts.push('</table>\n');
  }
  const noisyArms = r.arms.filter((a) => a.final['auc_loss'] !== undefined);
  if (noisyArms.length) {
    const names: Record<RankingName, string> = { sigma: 'σ', loss: 'loss', confident: '1 − p(given)', iou: '1 − best IoU' };
    parts.push(`<h2>Ranking the corrupted boxes first: ROC AUC / precision@k (k = corrupted boxes), final epoch</h2>\n<table class="results">\n${row(['arm', 'seeds', 'corrupted boxes', ...RANKINGS.map((k) => names[k])], true)}`);
    for (const a of noisyArms) {
      const corrupted = a.seeds.map((s) => `${s.corruptedBoxes ?? '-'} of ${s.trainBoxes}`).join(', ');
      parts.push(row([a.label, seedsOf(a), corrupted, ...RANKINGS.map((k) => (a.final[`auc_${k}`] ? `${formatStat(a.final[`auc_${k}`], 1, 3)} / ${formatStat(a.final[`pk_${k}`], 1, 3)}` : '-'))]));
    }
    parts.push('</table>\n');
  }
  parts.push('<h2>Figures</h2>\n', figuresHtml(figures));
  parts.push(`<h2>Runs</h2>\n<p>Each run directory holds train-detector's records (run.json, metrics.jsonl, sigma.jsonl, checkpoint, model/, label-review.csv): <code>visualize-curriculum --run DIR</code> draws one run.</p>\n<ul>\n`);
  for (const a of r.arms) for (const s of a.seeds) parts.push(`<li>${esc(a.label)}, seed ${s.seed}: <code>${esc(s.dir)}</code> (${s.trainBoxes} training boxes${s.corruptedBoxes !== null ? `, ${s.corruptedBoxes} corrupted, ${s.missingCars ?? 0} cars unlabelled` : ''})</li>\n`);
  parts.push('</ul>\n</body>\n</html>\n');
  return parts.join('');
}
