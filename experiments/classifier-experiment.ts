/**
 * Classifier experiments: several arms (configurations of one run config) trained over several seeds with
 * `ClassifierTrainer`, each in its own run directory (`OUT/ARM/seed-N`: run records and checkpoint, as written by
 * train-classifier). After every epoch the runner adds what the trainer does not record: predictions on the training
 * entries (memorisation of corrupted labels, training accuracy without augmentation), the share of corrupted entries
 * above every clean one by σ, and class σ. A rerun skips finished runs and continues the others through the trainer's
 * checkpoint, exactly where they stopped.
 */
import * as path from 'node:path';
import type { CurriculumMode } from '../src/data-parameters/data-parameters.js';
import { readRun } from '../src/records/run-records.js';
import type { MetricsEntry } from '../src/records/run-records.js';
import { writeFileAtomic } from '../src/util/atomic-file.js';
import type { Logger } from '../src/util/log.js';
import { applyOverrides, buildRun, readConfig, trainerConfig, trainerFor, validateConfig } from '../classification/config.js';
import type { ClassifierRunConfig, ConfigOverrides } from '../classification/config.js';
import { corruptedAboveAllClean, labelFit } from '../classification/training/predictions.js';
import { classificationSampleScores } from '../classification/training/sample-scores.js';
import type { FigureSpec } from './report.js';
import { PACKAGE_ROOT, experimentResults, readFinishedSeeds, readJsonOr, runPendingArmSeeds, stat, statPerEpoch } from './experiment-runs.js';
import type { Claim, ResultsOf, Stat } from './experiment-runs.js';

export interface ArmSpec {
  /** Directory name and key in results.json. */
  name: string;
  label: string;
  color: string;
  curriculum: CurriculumMode;
  /** Train only on the entries the label noise left correct (an oracle). */
  cleanOnly?: boolean;
}

export interface ClassifierExperiment {
  name: string;
  title: string;
  /** One line for --help. */
  summary: string;
  /** What the paper did and how this experiment scales it down (a paragraph of the report). */
  setup: string;
  /** The run config every arm starts from, relative to the package root. */
  configFile: string;
  /** Applied in --quick mode (before the command line's overrides). */
  quick: ConfigOverrides;
  arms: readonly ArmSpec[];
  claims(results: ExperimentResults): Claim[];
  figures(results: ExperimentResults): FigureSpec[];
}

/** One epoch of one run. Figures a run cannot have (σ of the baseline, memorisation without noise) are null. */
export interface EpochRecord {
  epoch: number;
  testTop1: number | null;
  trainLoss: number;
  /** Training top-1 against the training labels as seen during the epoch (augmented, training mode). */
  trainTop1Running: number;
  /** Training top-1 against the training labels after the epoch, inference mode, no augmentation. */
  trainAccuracy: number;
  /** Fraction of corrupted entries predicted as their noisy label. */
  memorised: number | null;
  /** Fraction of clean entries predicted as their label. */
  cleanFit: number | null;
  sigmaMean: number;
  sigmaStd: number;
  sigmaCleanMean: number | null;
  sigmaCleanStd: number | null;
  sigmaCorruptMean: number | null;
  sigmaCorruptStd: number | null;
  /** Of the top ⌊N·rate⌋ entries by σ, the fraction that is corrupted. */
  corruptShareOfTop: number | null;
  /** The fraction of corrupted entries that are in that top. */
  corruptRecallInTop: number | null;
  /** The fraction of corrupted entries whose σ is above the σ of every clean entry. */
  corruptAboveAllClean: number | null;
  classSigma: number[] | null;
}

export interface SeedResult {
  seed: number;
  dir: string;
  /** The epochs the run is configured for (its records may stop earlier while it runs). */
  plannedEpochs: number;
  trainCount: number;
  corruptedCount: number | null;
  epochs: EpochRecord[];
}

export interface ArmResult {
  name: string;
  label: string;
  color: string;
  curriculum: CurriculumMode;
  cleanOnly: boolean;
  /** The finished runs (every planned epoch recorded). */
  seeds: SeedResult[];
  /** Seeds with records that have not reached their last epoch yet (left out of every figure). */
  unfinishedSeeds: number[];
  /** Mean ± std over seeds of the last epoch's numeric figures. */
  final: Record<string, Stat>;
  /** Mean ± std over seeds of each run's best test top-1 (and the epoch it was reached). */
  bestTestTop1: Stat | null;
}

export type ExperimentResults = ResultsOf<ArmResult, ConfigOverrides>;

export interface RunExperimentOptions {
  out: string;
  quick: boolean;
  /** Seeds 0 .. seeds-1. */
  seeds: number;
  /** Only these arms (default all); results and report cover the arms that have records. */
  arms?: readonly string[];
  /** Command-line overrides (data folder, sizes), applied after the quick ones. */
  overrides: ConfigOverrides;
  log: Logger;
  progress?: boolean;
  /** Checked between training steps; a stop leaves a checkpoint from which a rerun continues. */
  shouldStop?: () => boolean;
}

const EXTRAS_FILE = 'experiment-epochs.json';

type Extras = Pick<EpochRecord, 'epoch' | 'trainAccuracy' | 'memorised' | 'cleanFit' | 'corruptAboveAllClean' | 'classSigma'>;

const finite = (v: number): number | null => (Number.isFinite(v) ? v : null);

/** The run config of one arm and seed. */
export async function armConfig(
  exp: ClassifierExperiment,
  arm: ArmSpec,
  seed: number,
  options: Pick<RunExperimentOptions, 'quick' | 'overrides'>,
): Promise<ClassifierRunConfig> {
  const file = path.resolve(PACKAGE_ROOT, exp.configFile);
  let c = await readConfig(file);
  if (options.quick) c = applyOverrides(c, exp.quick);
  c = applyOverrides(c, { ...options.overrides, curriculum: arm.curriculum, seed });
  if (arm.cleanOnly) {
    if (!c.noise || c.noise.rate <= 0) throw new Error(`${file}: arm '${arm.name}' trains on the clean entries but the config has no label noise`);
    c.noise = { ...c.noise, cleanOnly: true };
  }
  return validateConfig(c, file);
}

/** Trains one arm and seed to the end (or until stopped), adding the per-epoch figures. Returns false when stopped. */
async function trainArmSeed(exp: ClassifierExperiment, arm: ArmSpec, seed: number, dir: string, options: RunExperimentOptions): Promise<boolean> {
  const config = await armConfig(exp, arm, seed, options);
  const extrasFile = path.join(dir, EXTRAS_FILE);
  const done = await readJsonOr<Extras[]>(extrasFile, []);
  if (done.length >= config.train.epochs && done.at(-1)?.epoch === config.train.epochs) return true;
  const { log } = options;
  log(`${exp.name}: arm ${arm.name}, seed ${seed} -> ${dir}`);
  const run = await buildRun(config, log);
  const trainerOptions = trainerConfig(config);
  const trainer = trainerFor(run, config, {
    outDir: dir,
    log,
    progress: options.progress ?? false,
    recordConfig: { ...config, experiment: exp.name, arm: arm.name },
  });
  try {
    const extras = new Map(done.map((e) => [e.epoch, e]));
    const record = async (): Promise<void> => {
      for (const e of [...extras.keys()]) if (e > trainer.epoch) extras.delete(e);
      if (trainer.epoch > 0 && !extras.has(trainer.epoch)) {
        const { predicted } = await classificationSampleScores(run.model, run.train, trainerOptions.evalBatchSize);
        const fit = labelFit(predicted, run.train.labels, run.noise?.corrupted ?? null);
        const noisy = run.noise !== null && run.noise.corruptedCount > 0;
        extras.set(trainer.epoch, {
          epoch: trainer.epoch,
          trainAccuracy: fit.trainAccuracy,
          memorised: noisy ? finite(fit.memorised) : null,
          cleanFit: noisy ? finite(fit.cleanFit) : null,
          corruptAboveAllClean: noisy && arm.curriculum !== 'none' ? finite(corruptedAboveAllClean(trainer.sigmaStar(), run.noise!.corrupted)) : null,
          classSigma: run.dp.mode === 'class' || run.dp.mode === 'joint' ? Array.from(run.dp.classSigma()) : null,
        });
      }
      const list = [...extras.values()].sort((a, b) => a.epoch - b.epoch);
      await writeFileAtomic(extrasFile, JSON.stringify(list) + '\n');
    };
    // Load the checkpoint (or start the records), then fill in the figures of an epoch finished before a stop.
    await trainer.run({ resume: true, stopAfterEpoch: 0 });
    await record();
    while (trainer.epoch < config.train.epochs) {
      const r = await trainer.run({ resume: true, stopAfterEpoch: trainer.epoch + 1, ...(options.shouldStop ? { shouldStop: options.shouldStop } : {}) });
      if (r.interrupted) return false;
      await record();
    }
    return true;
  } finally {
    trainer.dispose();
    run.dispose();
  }
}

const num = (m: MetricsEntry | undefined, k: string): number | null => {
  const v = m?.[k];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
};

/** Reads one run directory's records and the runner's per-epoch figures; null when it has none yet. */
async function readSeed(dir: string, seed: number): Promise<SeedResult | null> {
  const extras = await readJsonOr<Extras[]>(path.join(dir, EXTRAS_FILE), []);
  if (extras.length === 0) return null;
  const records = await readRun(dir, { truncatedTail: 'skip' });
  const byEpoch = new Map<number, MetricsEntry>();
  const val = new Map<number, MetricsEntry>();
  for (const m of records.metrics) {
    if (m.kind === 'epoch') byEpoch.set(m.epoch, m);
    if (m.kind === 'val' && m['top1'] !== undefined) val.set(m.epoch, m);
  }
  const epochs: EpochRecord[] = [];
  for (const x of extras) {
    const m = byEpoch.get(x.epoch);
    if (!m) continue;
    epochs.push({
      epoch: x.epoch,
      testTop1: num(val.get(x.epoch), 'top1'),
      trainLoss: num(m, 'trainLoss') ?? NaN,
      trainTop1Running: num(m, 'trainTop1') ?? NaN,
      trainAccuracy: x.trainAccuracy,
      memorised: x.memorised,
      cleanFit: x.cleanFit,
      sigmaMean: num(m, 'sigmaMean') ?? NaN,
      sigmaStd: num(m, 'sigmaStd') ?? NaN,
      sigmaCleanMean: num(m, 'cleanSigmaMean'),
      sigmaCleanStd: num(m, 'cleanSigmaStd'),
      sigmaCorruptMean: num(m, 'noisySigmaMean'),
      sigmaCorruptStd: num(m, 'noisySigmaStd'),
      corruptShareOfTop: num(m, 'noisyTopFraction'),
      corruptRecallInTop: num(m, 'noisyTopRecall'),
      corruptAboveAllClean: x.corruptAboveAllClean,
      classSigma: x.classSigma,
    });
  }
  const config = records.manifest.config as { noise?: { cleanOnly?: boolean; rate?: number }; train?: { epochs?: number } };
  const tracked = records.manifest.tracked;
  const lastSigma = records.sigma.at(-1);
  return {
    seed,
    dir,
    plannedEpochs: config.train?.epochs ?? NaN,
    trainCount: lastSigma?.groups['all']?.count ?? tracked.length,
    corruptedCount: config.noise && !config.noise.cleanOnly && (config.noise.rate ?? 0) > 0 ? (lastSigma?.groups['noisy']?.count ?? null) : null,
    epochs,
  };
}

const STAT_KEYS: (keyof EpochRecord)[] = [
  'testTop1', 'trainLoss', 'trainTop1Running', 'trainAccuracy', 'memorised', 'cleanFit', 'sigmaMean', 'sigmaStd',
  'sigmaCleanMean', 'sigmaCleanStd', 'sigmaCorruptMean', 'sigmaCorruptStd', 'corruptShareOfTop', 'corruptRecallInTop',
  'corruptAboveAllClean',
];

/** Mean ± std over seeds of a figure at each epoch (epochs that every seed has). */
export function perEpoch(arm: ArmResult, key: keyof EpochRecord): { epoch: number; stat: Stat }[] {
  return statPerEpoch(arm.seeds, (e) => e[key]);
}

/** Collects every run directory of the experiment into results (arms without records are left out). */
export async function collectResults(exp: ClassifierExperiment, options: Pick<RunExperimentOptions, 'out' | 'quick' | 'seeds' | 'overrides'>): Promise<ExperimentResults> {
  const arms: ArmResult[] = [];
  let epochs = 0;
  for (const arm of exp.arms) {
    const { runs, unfinishedSeeds } = await readFinishedSeeds(path.join(options.out, arm.name), options.seeds, readSeed);
    if (runs.length === 0) continue;
    const final: Record<string, Stat> = {};
    for (const key of STAT_KEYS) {
      const st = stat(runs.map((r) => r.epochs.at(-1)?.[key]).filter((v): v is number => typeof v === 'number'));
      if (st) final[key] = st;
    }
    const finalEpoch = stat(runs.map((r) => r.epochs.at(-1)?.epoch ?? NaN));
    if (finalEpoch) final['epoch'] = finalEpoch;
    const best = stat(runs.map((r) => Math.max(...r.epochs.map((e) => e.testTop1 ?? -Infinity))).filter((v) => v > -Infinity));
    epochs = Math.max(epochs, ...runs.map((r) => r.epochs.at(-1)?.epoch ?? 0));
    arms.push({
      name: arm.name,
      label: arm.label,
      color: arm.color,
      curriculum: arm.curriculum,
      cleanOnly: arm.cleanOnly ?? false,
      seeds: runs,
      unfinishedSeeds,
      final,
      bestTestTop1: best,
    });
  }
  return experimentResults(exp, options, epochs, arms);
}

/**
 * Runs every arm and seed that is not finished yet. Returns false when stopped (a rerun continues). Refuses an output
 * folder written with other settings (quick, seeds' sizes, overrides), so that runs of different sizes never mix.
 */
export async function runExperiment(exp: ClassifierExperiment, options: RunExperimentOptions): Promise<boolean> {
  return runPendingArmSeeds(exp, options, (arm, seed) => trainArmSeed(exp, arm, seed, path.join(options.out, arm.name, `seed-${seed}`), options));
}
