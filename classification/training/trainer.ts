/**
 * The classifier trainer: a model and its SGD, data parameters (any curriculum) with their own optimisers, a training
 * set whose entry i is data parameter i, an optional validation set, and optional label-noise bookkeeping.
 *
 * Per step: forward, loss = mean CE(logits / σ*) + σ weight decay, backward, model step (momentum SGD, weight decay,
 * scheduled lr), then the data parameters' own steps and clamp (DataParameters.applyGradients), in the reference's
 * order. Per epoch: train loss / top-1, validation top-1 / top-5 without σ, σ statistics (and, with label noise,
 * σ of clean vs corrupted samples and the corrupted fraction among the highest σ), run records, and a full-state
 * checkpoint written atomically so that `resume` continues bit-exactly.
 */
import * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { DataParameters, omitGradients } from '../../src/data-parameters/data-parameters.js';
import { RunRecorder, summariseSigma } from '../../src/records/run-records.js';
import type { SigmaEntry, TrackedInstance } from '../../src/records/run-records.js';
import { Rng } from '../../src/util/rng.js';
import type { RngState } from '../../src/util/rng.js';
import { loadCheckpoint, saveCheckpoint } from '../../src/util/checkpoint.js';
import type { CheckpointArray } from '../../src/util/checkpoint.js';
import { ProgressBar } from '../../src/util/progress.js';
import type { Logger } from '../../src/util/log.js';
import type { NoisyLabels } from '../../datasets/noisy-labels/noisy-labels.js';
import { corruptedFractionInTop, noisyRanking } from '../../datasets/noisy-labels/noisy-labels.js';
import type { ClassifierModel } from '../models/models.js';
import type { ClassificationData } from '../input/image-data.js';
import { ModelOptimizer } from '../../src/nn/optimizer.js';
import { scheduledLr, type StepSchedule } from '../../src/nn/lr-schedule.js';
import { DivergenceWatch, NonFiniteLossError, TrainingInputError, checkResumeConfig, prepareRunDir } from '../../src/training/harness.js';
import type { ConfigChange } from '../../src/training/harness.js';
import { expectedCalibrationError, fitTemperature, maskedMeanStd, nllAt, topKCorrect } from './metrics.js';
import { writeClassificationReview } from './sample-scores.js';

export interface TrainerConfig {
  epochs: number;
  batchSize: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  schedule: StepSchedule;
  seed: number;
  /** Steps between 'train' lines in metrics.jsonl. */
  logEvery: number;
  evalBatchSize: number;
  /** Training entries whose σ is snapshotted per epoch in the run records. */
  trackCount: number;
  /** Fit a temperature on half of the validation set after training and report ECE before / after on the other. */
  calibrate: boolean;
}

export const DEFAULT_TRAINER_CONFIG: TrainerConfig = {
  epochs: 1,
  batchSize: 128,
  lr: 0.1,
  momentum: 0.9,
  weightDecay: 5e-4,
  schedule: { gamma: 0.1 },
  seed: 0,
  logEvery: 50,
  evalBatchSize: 256,
  trackCount: 200,
  calibrate: false,
};

export interface TrainerParts {
  model: ClassifierModel;
  dp: DataParameters;
  train: ClassificationData;
  val: ClassificationData | null;
  noise: NoisyLabels | null;
  /** Run records and checkpoints go here (null: nothing written). */
  outDir: string | null;
  log: Logger;
  /** Show a progress bar (on stderr). */
  progress: boolean;
  /** Stored in run.json. */
  recordConfig: Record<string, unknown>;
}

export interface EpochSummary {
  epoch: number;
  step: number;
  lr: number;
  trainLoss: number;
  trainTop1: number;
  valTop1: number | null;
  valTop5: number | null;
  valLoss: number | null;
  imagesPerSecond: number;
  seconds: number;
  sigmaMean: number;
  sigmaStd: number;
  /** With label noise: σ* of clean and corrupted entries and the corrupted fraction among the top ⌊N·rate⌋ by σ*. */
  cleanSigmaMean?: number;
  cleanSigmaStd?: number;
  noisySigmaMean?: number;
  noisySigmaStd?: number;
  noisyTopFraction?: number;
  /** The fraction of corrupted entries that are among the top ⌊N·rate⌋ by σ*. */
  noisyTopRecall?: number;
}

export interface CalibrationResult {
  temperature: number;
  eceBefore: number;
  eceAfter: number;
  nllBefore: number;
  nllAfter: number;
  fitCount: number;
  reportCount: number;
}

export interface TrainResult {
  epochs: EpochSummary[];
  calibration: CalibrationResult | null;
  /** True when `shouldStop` ended the run inside an epoch (a mid-epoch checkpoint was written). */
  interrupted: boolean;
  /** The summary of the run's last completed epoch: this call's, or the checkpoint's when a finished run is resumed. */
  final: EpochSummary | null;
  /** label-review.csv, written when training completed in a run directory; null otherwise. */
  reviewFile: string | null;
}

/** Where an interrupted epoch stopped: enough to redo exactly the rest of it. */
interface MidEpochState {
  /** The epoch's order of entries. */
  order: Int32Array;
  /** Steps of the epoch already done. */
  stepInEpoch: number;
  /** The Rng's state before the next batch's augmentation was drawn. */
  rng: RngState;
  lossSum: number;
  correct: number;
  seen: number;
  seconds: number;
}

/** @2 keeps the model optimiser's slots as `opt/<param>#<slot>` with its step count; @1 had `sgd/<param>` (one SGD slot). */
interface CheckpointMeta {
  format: 'data-params/classifier-checkpoint@2' | 'data-params/classifier-checkpoint@1';
  optimizerSteps?: number;
  model: string;
  mode: string;
  numInstances: number;
  epoch: number;
  step: number;
  rng: RngState;
  dpStep: number;
  /** Present when the checkpoint was taken inside an epoch; its order is the array `epoch/order`. */
  midEpoch?: Omit<MidEpochState, 'order' | 'rng'>;
  /** The run's options (TrainerParts.recordConfig), compared with the command line's on resume. */
  config?: Record<string, unknown>;
  /** The last completed epoch's summary (reported again when a finished run is resumed). */
  summary?: EpochSummary | null;
}

export const CHECKPOINT_FILE = 'checkpoint.bin';
/** Options a resume may change (the rest of recordConfig must equal the checkpoint's). */
export const RESUME_SAFE_OPTIONS = ['train.epochs', 'calibrate', 'configFile'] as const;

export class ClassifierTrainer {
  readonly optimizer: ModelOptimizer;
  readonly rng: Rng;
  epoch = 0;
  step = 0;
  private readonly recorder: RunRecorder | null;
  private readonly tracked: Int32Array;
  private readonly variables: tf.Variable[];
  private midEpoch: MidEpochState | null = null;
  private lastSummary: EpochSummary | null = null;
  private readonly watch: DivergenceWatch;

  constructor(
    readonly parts: TrainerParts,
    readonly config: TrainerConfig,
  ) {
    const { model, dp, train } = parts;
    if (dp.numInstances !== train.count && dp.mode !== 'none' && dp.mode !== 'class') {
      throw new Error(`data parameters have ${dp.numInstances} instances but the training set has ${train.count} entries`);
    }
    if (train.numClasses !== model.numClasses) {
      throw new Error(`model has ${model.numClasses} classes, training data ${train.numClasses}`);
    }
    this.optimizer = new ModelOptimizer({ name: 'sgd', momentum: config.momentum, weightDecay: config.weightDecay });
    this.rng = new Rng(config.seed);
    this.recorder = parts.outDir ? new RunRecorder(parts.outDir) : null;
    this.variables = [...model.store.trainableList, ...dp.variables];
    // Tracked entries: a seeded sample of at most trackCount, in increasing order.
    const pick = new Rng(config.seed + 7919).permutation(train.count).subarray(0, Math.min(config.trackCount, train.count));
    this.tracked = Int32Array.from(pick).sort();
    this.watch = new DivergenceWatch(parts.log);
  }

  get stepsPerEpoch(): number {
    return Math.ceil(this.parts.train.count / this.config.batchSize);
  }

  get checkpointFile(): string | null {
    return this.parts.outDir ? path.join(this.parts.outDir, CHECKPOINT_FILE) : null;
  }

  /** Trains from the current state (epoch 0, or the loaded checkpoint's) up to `config.epochs`. */
  async run(options: { resume?: boolean; stopAfterEpoch?: number; shouldStop?: () => boolean } = {}): Promise<TrainResult> {
    const { log } = this.parts;
    let resumed = false;
    if (this.parts.outDir) await prepareRunDir(this.parts.outDir, { log });
    if (options.resume) {
      const file = this.checkpointFile;
      if (!file) throw new Error('--resume needs an output directory');
      const changed = await this.loadCheckpoint(file);
      resumed = changed !== null;
      if (!resumed) log(`no checkpoint at ${file}: starting from scratch`);
      else if (this.epoch >= this.config.epochs && !this.midEpoch) log(`resumed from ${file} at step ${this.step}: all ${this.config.epochs} epochs are done; reporting the final results`);
      else log(`resumed from ${file} at epoch ${this.epoch}, step ${this.step}`);
      if (changed && changed.length > 0) {
        await this.recorder?.noteResume({ step: this.step, at: new Date().toISOString(), changed });
        log(`resume changes ${changed.map((c) => `${c.key} ${JSON.stringify(c.checkpoint)} -> ${JSON.stringify(c.now)}`).join(', ')} (noted in run.json)`);
      }
    }
    const trainedBefore = this.step;
    if (this.recorder) {
      if (resumed) await this.recorder.truncateAfter(this.step);
      else {
        await fs.rm(this.recorder.sigmaFile, { force: true });
        await fs.rm(this.recorder.metricsFile, { force: true });
        await this.recorder.writeManifest({
          task: 'classification',
          createdAt: new Date().toISOString(),
          config: this.parts.recordConfig,
          classNames: this.parts.train.classNames,
          tracked: this.trackedInstances(),
        });
        await this.recorder.appendSigma(this.sigmaEntry(this.sigmaStar()));
      }
    }
    const epochs: EpochSummary[] = [];
    const last = Math.min(this.config.epochs, options.stopAfterEpoch ?? Infinity);
    let interrupted = false;
    while (this.epoch < last) {
      if (options.shouldStop?.() && !this.midEpoch) {
        interrupted = true; // between epochs: the last epoch's checkpoint is already written
        break;
      }
      const summary = await this.trainEpoch(options.shouldStop);
      if (this.checkpointFile) await this.saveCheckpoint(this.checkpointFile);
      if (summary === null) {
        interrupted = true;
        break;
      }
      epochs.push(summary);
    }
    let calibration: CalibrationResult | null = null;
    if (this.config.calibrate && this.parts.val && this.epoch >= this.config.epochs) {
      calibration = await this.calibrate(this.parts.val);
      log(
        `calibration: T ${calibration.temperature.toFixed(3)} fitted on ${calibration.fitCount} held-out images; ` +
          `ECE ${(100 * calibration.eceBefore).toFixed(2)}% -> ${(100 * calibration.eceAfter).toFixed(2)}%, ` +
          `NLL ${calibration.nllBefore.toFixed(4)} -> ${calibration.nllAfter.toFixed(4)} on ${calibration.reportCount}`,
      );
      // A resume that trained nothing reports the calibration again without recording it twice.
      if (this.step > trainedBefore || !resumed) await this.recorder?.appendMetrics({
        kind: 'val',
        step: this.step,
        epoch: this.epoch,
        temperature: calibration.temperature,
        eceBefore: calibration.eceBefore,
        eceAfter: calibration.eceAfter,
        nllBefore: calibration.nllBefore,
        nllAfter: calibration.nllAfter,
      });
    }
    let reviewFile: string | null = null;
    if (this.parts.outDir && !interrupted && this.epoch >= this.config.epochs) {
      const { dp, model, train, noise } = this.parts;
      // Training is complete and checkpointed: an image that cannot be read now costs the review, not the run.
      try {
        reviewFile = (await writeClassificationReview(this.parts.outDir, { model, dp, train, corrupted: noise?.corrupted ?? null }, this.config.evalBatchSize)).file;
        log(`label review (${train.count} training samples, ${dp.mode === 'none' ? 'by loss: no σ in this run' : 'by σ'}): ${reviewFile}`);
      } catch (err) {
        log(`label review not written: ${(err as Error).message}`);
      }
    }
    return { epochs, calibration, interrupted, final: this.lastSummary, reviewFile };
  }

  /** One optimisation step on the given entries; returns the loss and the number of correct top-1 predictions, or
   * null when the loss or a gradient was not finite (no update applied, running statistics as before). */
  trainStep(x: Float32Array, ids: Int32Array, lr: number): { loss: number; correct: number } | null {
    const { model, dp, train } = this.parts;
    const n = ids.length;
    const [h, w, c] = train.inputShape;
    const labels = new Int32Array(n);
    for (let i = 0; i < n; i++) labels[i] = train.labels[ids[i]!]!;
    const xt = tf.tensor4d(x, [n, h, w, c]);
    // The forward pass moves the batch-norm running statistics: keep them, to undo a step that turns out non-finite.
    const buffers = [...model.store.buffers.values()];
    const before = buffers.map((b) => b.clone());
    let predicted: tf.Tensor | null = null;
    const { value, grads } = tf.variableGrads(() => {
      const logits = model.logits(xt, true);
      predicted = tf.keep(tf.argMax(logits, 1));
      return dp.loss(logits, labels, dp.mode === 'instance' || dp.mode === 'joint' ? ids : undefined);
    }, this.variables);
    const loss = value.dataSync()[0]!;
    const pred = (predicted as tf.Tensor | null)?.dataSync() ?? new Int32Array(0);
    tf.dispose([xt, predicted as tf.Tensor | null].filter((t): t is tf.Tensor => t !== null));
    // A finite loss can still overflow in the backward pass: check the gradients too, before anything is updated.
    const gradNormSq = Number.isFinite(loss) ? tf.tidy(() => tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g)))).dataSync()[0]!) : NaN;
    if (!Number.isFinite(gradNormSq)) {
      buffers.forEach((b, i) => b.assign(before[i]!));
      tf.dispose([value, grads, before]);
      return null;
    }
    tf.dispose(before);
    this.optimizer.apply(model.store.trainable, omitGradients(grads, dp.variableNames), lr);
    dp.applyGradients(grads);
    tf.dispose([value, grads]);
    let correct = 0;
    for (let i = 0; i < n; i++) if (pred[i] === labels[i]) correct++;
    return { loss, correct };
  }

  /**
   * One epoch, or the rest of an interrupted one. Returns null when `shouldStop` asked to stop between two steps: the
   * position is then kept (and saved by saveCheckpoint) so that the epoch continues exactly where it stopped.
   */
  async trainEpoch(shouldStop: () => boolean = () => false): Promise<EpochSummary | null> {
    const { train, log } = this.parts;
    const { batchSize } = this.config;
    const lr = scheduledLr(this.config.lr, this.config.schedule, this.epoch);
    const resume = this.midEpoch;
    this.midEpoch = null;
    if (resume) this.rng.setState(resume.rng);
    const order = resume ? resume.order : this.rng.permutation(train.count);
    const steps = this.stepsPerEpoch;
    const first = resume?.stepInEpoch ?? 0;
    const bar = this.parts.progress ? new ProgressBar({ total: steps, label: `epoch ${this.epoch + 1}/${this.config.epochs}` }) : null;
    const t0 = Date.now() - (resume?.seconds ?? 0) * 1000;
    let lossSum = resume?.lossSum ?? 0;
    let seen = resume?.seen ?? 0;
    let correct = resume?.correct ?? 0;
    let windowStart = Date.now();
    let windowImages = 0;
    const idsOf = (s: number): Int32Array => order.subarray(s * batchSize, Math.min(train.count, (s + 1) * batchSize));
    // Augmentation draws its random numbers when a batch is requested, one batch ahead: keep the state before the
    // next batch's draws, which is where a resumed epoch must start.
    let rngBeforeNext = this.rng.getState();
    // A batch that fails to load is reported when awaited, not as an unhandled rejection while a step computes.
    const load = (s: number): Promise<Float32Array> => {
      const p = train.loadBatch(idsOf(s), this.rng);
      p.catch(() => undefined);
      return p;
    };
    let pending = load(first);
    /** Keeps the position before step s of the epoch (saved with the next checkpoint). */
    const keepPosition = (s: number, rng: RngState): void => {
      this.midEpoch = { order, stepInEpoch: s, rng, lossSum, correct, seen, seconds: (Date.now() - t0) / 1000 };
    };
    /** Stops before step s with a checkpoint of the state so far, then throws `error`. */
    const stopWith = async (s: number, rng: RngState, error: Error): Promise<never> => {
      bar?.done();
      keepPosition(s, rng);
      if (this.checkpointFile) await this.saveCheckpoint(this.checkpointFile);
      throw error;
    };
    for (let s = first; s < steps; s++) {
      if (s > first && shouldStop()) {
        await pending.catch(() => undefined);
        bar?.done();
        keepPosition(s, rngBeforeNext);
        log(`stopped in epoch ${this.epoch + 1} after step ${this.step} (${s} of ${steps} steps of the epoch)`);
        return null;
      }
      const ids = idsOf(s);
      const rngBeforeThis = rngBeforeNext;
      let x: Float32Array;
      try {
        x = await pending;
      } catch (err) {
        return stopWith(s, rngBeforeThis, new TrainingInputError(err, this.step, this.checkpointFile));
      }
      if (s + 1 < steps) {
        rngBeforeNext = this.rng.getState();
        pending = load(s + 1);
      }
      const r = this.trainStep(x, ids, lr);
      if (r === null) {
        await pending.catch(() => undefined);
        return stopWith(s, rngBeforeThis, new NonFiniteLossError(this.step, this.checkpointFile));
      }
      this.step++;
      this.watch.step(r.loss);
      lossSum += r.loss * ids.length;
      correct += r.correct;
      seen += ids.length;
      windowImages += ids.length;
      const elapsed = (Date.now() - windowStart) / 1000;
      const ips = elapsed > 0 ? windowImages / elapsed : 0;
      bar?.update(s + 1, { loss: r.loss, lr, 'img/s': Math.round(ips * 10) / 10 });
      if (this.recorder && this.step % this.config.logEvery === 0) {
        await this.recorder.appendMetrics({ kind: 'train', step: this.step, epoch: this.epoch + 1, loss: r.loss, lr, imagesPerSecond: ips });
        windowStart = Date.now();
        windowImages = 0;
      }
    }
    bar?.done();
    const seconds = (Date.now() - t0) / 1000;
    this.epoch++;
    const val = this.parts.val ? await this.evaluate(this.parts.val) : null;
    const sigma = this.sigmaStar();
    const all = maskedMeanStd(sigma, new Uint8Array(sigma.length), 0);
    const summary: EpochSummary = {
      epoch: this.epoch,
      step: this.step,
      lr,
      trainLoss: seen > 0 ? lossSum / seen : NaN,
      trainTop1: seen > 0 ? correct / seen : NaN,
      valTop1: val?.top1 ?? null,
      valTop5: val?.top5 ?? null,
      valLoss: val?.loss ?? null,
      imagesPerSecond: seen / seconds,
      seconds,
      sigmaMean: all.mean,
      sigmaStd: all.std,
    };
    const noise = this.parts.noise;
    if (noise) {
      const clean = maskedMeanStd(sigma, noise.corrupted, 0);
      const noisy = maskedMeanStd(sigma, noise.corrupted, 1);
      summary.cleanSigmaMean = clean.mean;
      summary.cleanSigmaStd = clean.std;
      summary.noisySigmaMean = noisy.mean;
      summary.noisySigmaStd = noisy.std;
      const ranking = noisyRanking(sigma, noise.corrupted, noise.rate);
      summary.noisyTopFraction = ranking.precision;
      summary.noisyTopRecall = ranking.recall;
    }
    log(describeEpoch(summary, this.config.epochs));
    this.watch.epochEnd(this.epoch, summary.trainLoss, this.parts.dp);
    if (this.parts.dp.mode === 'class' || this.parts.dp.mode === 'joint') log(describeClassSigma(this.parts.dp.classSigma(), train.classNames));
    if (this.recorder) {
      if (val) await this.recorder.appendMetrics({ kind: 'val', step: this.step, epoch: this.epoch, top1: val.top1, top5: val.top5, loss: val.loss });
      const numbers: Record<string, number> = {};
      for (const [k, v] of Object.entries(summary)) if (typeof v === 'number') numbers[k] = v;
      delete numbers['epoch'];
      delete numbers['step'];
      await this.recorder.appendMetrics({ kind: 'epoch', step: this.step, epoch: this.epoch, ...numbers });
      await this.recorder.appendSigma(this.sigmaEntry(sigma));
    }
    this.lastSummary = summary;
    return summary;
  }

  /** Top-1 / top-5 accuracy and mean CE of the model alone (σ is never used at inference). */
  async evaluate(data: ClassificationData, keepLogits = false): Promise<{ top1: number; top5: number; loss: number; logits: Float32Array | null }> {
    const { model } = this.parts;
    const k = data.numClasses;
    const [h, w, c] = data.inputShape;
    const all = keepLogits ? new Float32Array(data.count * k) : null;
    let top1 = 0;
    let top5 = 0;
    let lossSum = 0;
    for (let start = 0; start < data.count; start += this.config.evalBatchSize) {
      const n = Math.min(this.config.evalBatchSize, data.count - start);
      const ids = Int32Array.from({ length: n }, (_, i) => start + i);
      const x = await data.loadBatch(ids, null);
      const logits = tf.tidy(() => model.logits(tf.tensor4d(x, [n, h, w, c]), false));
      const values = logits.dataSync() as Float32Array;
      logits.dispose();
      const labels = data.labels.subarray(start, start + n);
      top1 += topKCorrect(values, labels, k, 1);
      top5 += topKCorrect(values, labels, k, Math.min(5, k));
      lossSum += nllAt(values, labels, k, 1) * n;
      all?.set(values, start * k);
    }
    return { top1: top1 / data.count, top5: top5 / data.count, loss: lossSum / data.count, logits: all };
  }

  /** Temperature scaling: fit T on the even validation entries, report ECE / NLL before and after on the odd ones. */
  async calibrate(data: ClassificationData): Promise<CalibrationResult> {
    const k = data.numClasses;
    const { logits } = await this.evaluate(data, true);
    const split = (parity: number): { logits: Float32Array; labels: Int32Array } => {
      const idx = Array.from({ length: data.count }, (_, i) => i).filter((i) => i % 2 === parity);
      const l = new Float32Array(idx.length * k);
      idx.forEach((i, j) => l.set(logits!.subarray(i * k, (i + 1) * k), j * k));
      return { logits: l, labels: Int32Array.from(idx, (i) => data.labels[i]!) };
    };
    const fit = split(0);
    const report = split(1);
    const temperature = fitTemperature(fit.logits, fit.labels, k);
    return {
      temperature,
      eceBefore: expectedCalibrationError(report.logits, report.labels, k, 1),
      eceAfter: expectedCalibrationError(report.logits, report.labels, k, temperature),
      nllBefore: nllAt(report.logits, report.labels, k, 1),
      nllAfter: nllAt(report.logits, report.labels, k, temperature),
      fitCount: fit.labels.length,
      reportCount: report.labels.length,
    };
  }

  /** σ* of every training entry as the loss uses it: class σ[label], instance σ, their sum, or 1. */
  sigmaStar(): Float32Array {
    const { dp, train } = this.parts;
    const out = new Float32Array(train.count);
    if (dp.mode === 'none') return out.fill(1);
    const cls = dp.mode === 'class' || dp.mode === 'joint' ? dp.classSigma() : null;
    const inst = dp.mode === 'instance' || dp.mode === 'joint' ? dp.instanceSigmaValues() : null;
    for (let i = 0; i < train.count; i++) out[i] = (cls ? cls[train.labels[i]!]! : 0) + (inst ? inst[i]! : 0);
    return out;
  }

  private trackedInstances(): TrackedInstance[] {
    const { train, noise } = this.parts;
    return Array.from(this.tracked, (i) => {
      const t: TrackedInstance = { id: i, classIndex: train.labels[i]!, className: train.classNames[train.labels[i]!] ?? String(train.labels[i]) };
      if (train.imagePath) t.image = train.imagePath(i);
      if (noise) t.noisy = noise.corrupted[i] === 1;
      return t;
    });
  }

  private sigmaEntry(sigma: Float32Array): SigmaEntry {
    const { dp, noise } = this.parts;
    const all = Int32Array.from({ length: sigma.length }, (_, i) => i);
    const groups: Record<string, ArrayLike<number>> = { all };
    if (noise) {
      groups['clean'] = all.filter((i) => noise.corrupted[i] === 0);
      groups['noisy'] = all.filter((i) => noise.corrupted[i] === 1);
    }
    const entry: SigmaEntry = {
      epoch: this.epoch,
      step: this.step,
      tracked: Array.from(this.tracked, (i) => sigma[i]!),
      groups: summariseSigma(sigma, groups),
    };
    if (dp.mode === 'class' || dp.mode === 'joint') entry.classSigma = Array.from(dp.classSigma());
    if (noise && noise.rate > 0) {
      entry.noisyTopFraction = corruptedFractionInTop(sigma, noise.corrupted, noise.rate);
      entry.noisyTopRatio = noise.rate;
    }
    return entry;
  }

  async saveCheckpoint(file: string): Promise<void> {
    const { model, dp } = this.parts;
    const arrays: Record<string, CheckpointArray> = {};
    for (const [k, v] of Object.entries(model.store.snapshot())) arrays[`model/${k}`] = v;
    const os = this.optimizer.getState();
    for (const [k, v] of Object.entries(os.slots)) arrays[`opt/${k}`] = v;
    const s = dp.getState();
    if (s.classLogSigma) arrays['dp/classLogSigma'] = s.classLogSigma;
    if (s.instanceLogSigma) arrays['dp/instanceLogSigma'] = s.instanceLogSigma;
    if (s.classMomentum) arrays['dp/classMomentum'] = s.classMomentum;
    if (s.instanceMomentum) arrays['dp/instanceMomentum'] = s.instanceMomentum;
    const meta: CheckpointMeta = {
      format: 'data-params/classifier-checkpoint@2',
      optimizerSteps: os.steps,
      model: model.name,
      mode: dp.mode,
      numInstances: dp.numInstances,
      epoch: this.epoch,
      step: this.step,
      rng: this.midEpoch?.rng ?? this.rng.getState(),
      dpStep: s.step,
      config: this.parts.recordConfig,
      summary: this.lastSummary,
    };
    if (this.midEpoch) {
      const { order, rng: _rng, ...position } = this.midEpoch;
      meta.midEpoch = position;
      arrays['epoch/order'] = order;
    }
    await saveCheckpoint(file, { meta, arrays });
  }

  /**
   * Restores the full state; null when there is no checkpoint file, otherwise the options changed since the checkpoint
   * (those in RESUME_SAFE_OPTIONS; any other change throws a ResumeMismatchError listing them).
   */
  async loadCheckpoint(file: string): Promise<ConfigChange[] | null> {
    try {
      await fs.access(file);
    } catch {
      return null;
    }
    const ckpt = await loadCheckpoint<CheckpointMeta>(file);
    const { meta, arrays } = ckpt;
    const { model, dp } = this.parts;
    const v1 = meta.format === 'data-params/classifier-checkpoint@1';
    if (!v1 && meta.format !== 'data-params/classifier-checkpoint@2') throw new Error(`${file}: not a classifier checkpoint`);
    if (meta.model !== model.name || meta.mode !== dp.mode || meta.numInstances !== dp.numInstances) {
      throw new Error(
        `${file}: checkpoint is for ${meta.model} / curriculum ${meta.mode} / ${meta.numInstances} instances, ` +
          `this run is ${model.name} / ${dp.mode} / ${dp.numInstances}`,
      );
    }
    // Checkpoints written before the options were stored cannot be compared.
    const changed = meta.config ? checkResumeConfig(file, meta.config, this.parts.recordConfig, RESUME_SAFE_OPTIONS) : [];
    const pick = (prefix: string): Record<string, Float32Array> => {
      const out: Record<string, Float32Array> = {};
      for (const [k, v] of Object.entries(arrays)) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = v as Float32Array;
      return out;
    };
    model.store.restore(pick('model/'), file);
    const slots = v1 ? Object.fromEntries(Object.entries(pick('sgd/')).map(([k, a]) => [`${k}#0`, a])) : pick('opt/');
    this.optimizer.setState({ steps: meta.optimizerSteps ?? 0, slots }, model.store.trainable);
    const f = (name: string): Float32Array | null => (arrays[name] as Float32Array | undefined) ?? null;
    dp.setState({
      classLogSigma: f('dp/classLogSigma'),
      instanceLogSigma: f('dp/instanceLogSigma'),
      classMomentum: f('dp/classMomentum'),
      instanceMomentum: f('dp/instanceMomentum'),
      step: meta.dpStep,
    });
    this.rng.setState(meta.rng);
    this.epoch = meta.epoch;
    this.step = meta.step;
    const order = arrays['epoch/order'];
    if (meta.midEpoch) {
      if (!(order instanceof Int32Array)) throw new Error(`${file}: mid-epoch checkpoint without the epoch's order`);
      this.midEpoch = { ...meta.midEpoch, order, rng: meta.rng };
    } else {
      this.midEpoch = null;
    }
    this.lastSummary = meta.summary ?? null;
    return changed;
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}

const pct = (v: number | null | undefined): string => (v === null || v === undefined || Number.isNaN(v) ? '-' : `${(100 * v).toFixed(2)}%`);

export function describeEpoch(s: EpochSummary, total: number): string {
  let line =
    `epoch ${s.epoch}/${total}: train loss ${s.trainLoss.toFixed(4)} top-1 ${pct(s.trainTop1)}` +
    ` | val top-1 ${pct(s.valTop1)} top-5 ${pct(s.valTop5)}` +
    ` | σ* mean ${s.sigmaMean.toFixed(3)} std ${s.sigmaStd.toFixed(3)}`;
  if (s.noisyTopFraction !== undefined) {
    line +=
      ` | σ clean ${s.cleanSigmaMean!.toFixed(3)}±${s.cleanSigmaStd!.toFixed(3)} corrupt ${s.noisySigmaMean!.toFixed(3)}±${s.noisySigmaStd!.toFixed(3)}` +
      ` | top by σ: ${pct(s.noisyTopFraction)} corrupt, holding ${pct(s.noisyTopRecall)} of the corrupt`;
  }
  line += ` | ${s.imagesPerSecond.toFixed(1)} img/s, ${s.seconds.toFixed(1)} s`;
  return line;
}

/** The classes with the highest and lowest σ (all of them when there are at most 8). */
export function describeClassSigma(sigma: Float32Array, names: string[]): string {
  const order = Array.from(sigma.keys()).sort((a, b) => sigma[b]! - sigma[a]! || a - b);
  const show = order.length <= 8 ? order : [...order.slice(0, 4), ...order.slice(-4)];
  const parts = show.map((i) => `${names[i] ?? i} ${sigma[i]!.toFixed(3)}`);
  return `class σ (${order.length <= 8 ? 'all' : '4 highest, 4 lowest'}): ${parts.join(', ')}`;
}
