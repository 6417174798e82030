/**
 * The SSD training loop with per-box data parameters: warmup + step schedule, a non-finite-loss guard, periodic
 * validation through an injected KITTI evaluator, run records (metrics, σ statistics by occlusion and difficulty,
 * tracked boxes), atomic full-state checkpoints and exact resume.
 *
 * Exactness of --resume: a checkpoint holds the model (weights and batch-norm statistics), the optimiser's slots and
 * step count, the data parameters with their momentum and step, and the loader position (epoch, batch index). Every
 * random choice after initialisation (epoch order, augmentation) is a function of (seed, epoch, position), so the
 * resumed run computes exactly the steps the uninterrupted run would have.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { DataParameters } from '../../src/data-parameters/data-parameters.js';
import { DETECTION_INSTANCE_DEFAULTS, DETECTOR_DATA_DEFAULTS, DETECTOR_TRAIN_DEFAULTS, trainingAugmentation, type DetectorConfig } from '../config.js';
import { loadCheckpoint, saveCheckpoint, type CheckpointArray } from '../../src/util/checkpoint.js';
import { ProgressBar } from '../../src/util/progress.js';
import { RunRecorder, sigmaGroups, summariseSigma, type TrackedInstance } from '../../src/records/run-records.js';
import type { KittiObject } from '../../datasets/kitti/label-file.js';
import { KITTI_2D_ONLY } from '../../datasets/kitti/label-file.js';
import { buildSSD } from '../model/build.js';
import { saveSSD } from '../model/io.js';
import type { SSD } from '../model/ssd.js';
import type { Detection } from '../postprocess.js';
import { toImageDetection } from '../inference.js';
import type { DetectionBatch, DetectionLoader } from '../../datasets/pipeline/loader.js';
import type { ImageDecoder } from '../../datasets/pipeline/types.js';
import { detectorLoader, trainingBatch, type Batch, type DetectionRecord } from './batches.js';
import { ModelOptimizer } from '../../src/nn/optimizer.js';
import { learningRate } from '../../src/nn/lr-schedule.js';
import { DivergenceWatch, NonFiniteLossError, TrainingInputError, checkResumeConfig, prepareRunDir } from '../../src/training/harness.js';
import { trainedBoxesOf, writeDetectionReview } from './box-scores.js';

export { NonFiniteLossError } from '../../src/training/harness.js';

export type { DetectorConfig, DetectorCurriculum } from '../config.js';

export type ApTable = Record<string, Record<'easy' | 'moderate' | 'hard', { ap11: number; ap40: number; gt: number }>>;
/** KITTI evaluation of in-memory ground truth and detections (the kitti-eval function). */
export type KittiEvaluator = (input: {
  groundTruth: ReadonlyMap<string, readonly KittiObject[]>;
  detections: ReadonlyMap<string, readonly KittiObject[]>;
  classes?: readonly ('car' | 'pedestrian' | 'cyclist')[];
}) => Partial<ApTable>;

export interface TrainRunOptions {
  config: DetectorConfig;
  out: string;
  train: DetectionRecord[];
  val: DetectionRecord[];
  /** Size of the instance table (dataset-wide ids). */
  numInstances: number;
  resume?: boolean;
  /** Injected image decoder (tests); default sharp. */
  decode?: ImageDecoder;
  evaluate?: KittiEvaluator;
  log?: (line: string) => void;
  /** Stop (with a checkpoint) after this many steps in total: for tests and benchmarks. */
  stopAtStep?: number;
  /** Asked before every step: true stops the run there, with a checkpoint (e.g. after Ctrl-C). */
  shouldStop?: () => boolean;
  /** Progress-bar stream; null for none. */
  progress?: NodeJS.WritableStream | null;
}

export interface TrainRunResult {
  steps: number;
  epochs: number;
  finalAp: Partial<ApTable> | null;
  /** AP of the untrained model (valAtStart), null otherwise. */
  initialAp: Partial<ApTable> | null;
  model: SSD;
  dp: DataParameters | null;
  stoppedEarly: boolean;
  /** label-review.csv (every training box, most suspect first), written when training completed; null otherwise. */
  reviewFile: string | null;
}

export interface StepResult {
  loss: number;
  cls: number;
  loc: number;
  numPositive: number;
  finite: boolean;
}

/** One optimisation step (model, then data parameters). Leaves no tensors behind. */
export function trainStep(model: SSD, opt: ModelOptimizer, dp: DataParameters | null, batch: Batch, lr: number): StepResult {
  const { width: W, height: H } = model.inputSize;
  const B = batch.images.length;
  const targets = model.targets(batch.images);
  const x = tf.tensor4d(batch.x, [B, H, W, 3]);
  let cls = NaN, loc = NaN, numPositive = 0;
  const { value, grads } = tf.variableGrads(() => {
    // σ of the batch's boxes, in target order (one instance id per box).
    const sigma = dp ? dp.instanceSigma(batch.instanceIds) : null;
    const parts = model.computeLoss(x, targets, sigma);
    cls = parts.cls.dataSync()[0]!;
    loc = parts.loc.dataSync()[0]!;
    numPositive = parts.numPositive;
    tf.dispose([parts.cls, parts.loc]);
    return dp ? tf.add(parts.total, dp.weightDecayLoss({ instanceIds: batch.instanceIds })) : parts.total;
  }, [...model.params.trainableList, ...(dp ? dp.variables : [])]);
  const loss = value.dataSync()[0]!;
  x.dispose();
  // A finite loss can still overflow in the backward pass: check the gradients too, before anything is updated.
  const gradNormSq = tf.tidy(() => tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g)))).dataSync()[0]!);
  if (!Number.isFinite(loss) || !Number.isFinite(gradNormSq)) {
    model.backbone.discardStatistics();
    tf.dispose([value, grads]);
    return { loss, cls, loc, numPositive, finite: false };
  }
  opt.apply(model.params.trainable, grads, lr);
  if (dp) dp.applyGradients(grads);
  model.backbone.commitStatistics();
  tf.dispose([value, grads]);
  return { loss, cls, loc, numPositive, finite: true };
}

/** Detections of a set of images (an evaluation loader: every image once, unaugmented), as KITTI result objects in
 * original pixels. */
export async function detectAll(model: SSD, loader: DetectionLoader, classNames: string[]): Promise<Map<string, KittiObject[]>> {
  const out = new Map<string, KittiObject[]>();
  const { width: W, height: H } = model.inputSize;
  for (let i = 0; i < loader.batchesPerEpoch; i++) {
    const batch = await loader.prepareBatch(0, i);
    const x = tf.tensor4d(batch.images, [batch.batchSize, H, W, 3]);
    const dets = model.detect(x);
    x.dispose();
    batch.imageIds.forEach((id, b) => {
      const size = batch.sourceSizes[b]!;
      out.set(id, dets[b]!.map((d) => toKittiObject(d, size, classNames)));
    });
  }
  return out;
}

/** KITTI's spelling of a class name: 'car' -> 'Car'. */
export function kittiType(className: string): string {
  return className.charAt(0).toUpperCase() + className.slice(1);
}

export function toKittiObject(d: Detection, size: { width: number; height: number }, classNames: string[]): KittiObject {
  const { className, box } = toImageDetection(d, size, classNames);
  return {
    type: kittiType(className),
    truncated: -1,
    occluded: -1,
    alpha: KITTI_2D_ONLY.alpha,
    bbox: box,
    dimensions: [...KITTI_2D_ONLY.dimensions],
    location: [...KITTI_2D_ONLY.location],
    rotationY: KITTI_2D_ONLY.rotationY,
    score: d.score,
  };
}

interface CheckpointMeta {
  version: 1;
  step: number;
  epoch: number;
  batchIndex: number;
  optimizerSteps: number;
  dpStep: number | null;
  config: DetectorConfig;
  /** Running sums of the epoch so far, so that a mid-epoch resume records the same epoch loss. */
  epochLoss?: number;
  epochSteps?: number;
  /** The latest validation's AP (reported again when a finished run is resumed). */
  finalAp?: Partial<ApTable> | null;
  /** The epoch ended but its validation failed (e.g. an unreadable image): a resume validates first. */
  pendingValidation?: boolean;
}

/** Options a resume may change (the rest must equal the checkpoint's). */
export const RESUME_SAFE_OPTIONS = ['train.epochs', 'out'] as const;

export const CHECKPOINT_FILE = 'checkpoint.dpckpt';

/** The training and validation loaders of a config: training with the config's augmentation preset, shuffled;
 * validation (at most `data.valLimit` images) unaugmented, in order; null when there is nothing to validate. */
export function detectorLoaders(
  config: DetectorConfig,
  data: { train: readonly DetectionRecord[]; val: readonly DetectionRecord[]; decode?: ImageDecoder },
): { train: DetectionLoader; val: DetectionLoader | null; valRecords: readonly DetectionRecord[] } {
  const io = {
    inputSize: config.model.inputSize,
    batchSize: config.train.batchSize,
    cache: config.data.cacheImages ?? DETECTOR_DATA_DEFAULTS.cacheImages,
    ...(data.decode ? { decode: data.decode } : {}),
  };
  const valRecords = config.data.valLimit ? data.val.slice(0, config.data.valLimit) : data.val;
  return {
    train: detectorLoader(data.train, {
      ...io,
      seed: config.train.seed,
      augment: trainingAugmentation(config),
      ...(config.data.workers ? { workers: config.data.workers } : {}),
    }),
    val: valRecords.length > 0 ? detectorLoader(valRecords, { ...io, seed: 0, augment: null }) : null,
    valRecords,
  };
}

/** Where a run stands: what a checkpoint holds besides the arrays. */
interface RunPosition {
  step: number;
  epoch: number;
  batchIndex: number;
  /** Running sums of the epoch so far. */
  epochLoss: number;
  epochSteps: number;
  finalAp: Partial<ApTable> | null;
  pendingValidation: boolean;
}

/** Everything a run is made of, built from the options (a resume then restores the state from the checkpoint). */
interface DetectorRun {
  o: TrainRunOptions;
  config: DetectorConfig;
  log: (line: string) => void;
  ckptFile: string;
  model: SSD;
  opt: ModelOptimizer;
  dp: DataParameters | null;
  loader: DetectionLoader;
  valLoader: DetectionLoader | null;
  valRecords: readonly DetectionRecord[];
  stepsPerEpoch: number;
  schedule: Parameters<typeof learningRate>[1];
  rec: RunRecorder;
  /** Instance ids of the training set's boxes, and their σ statistics groups (occlusion, difficulty). */
  instanceIds: Int32Array;
  groups: Record<string, number[]>;
  /** The boxes whose σ the records follow (all boxes of the first 6 images). */
  tracked: TrackedInstance[];
  pos: RunPosition;
}

/** Builds the model, optimiser, data parameters, loaders, schedule and σ bookkeeping of a run (no training state). */
async function buildRun(o: TrainRunOptions): Promise<DetectorRun> {
  const { config } = o;
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const t = config.train;
  const spec = config.model;
  await prepareRunDir(o.out, { log });
  const model = buildSSD(spec, t.seed);
  const opt = new ModelOptimizer(t.optimizer);
  const dp =
    config.curriculum.mode === 'instance'
      ? new DataParameters({
          numClasses: spec.classNames.length + 1,
          numInstances: o.numInstances,
          mode: 'instance',
          instance: { ...DETECTION_INSTANCE_DEFAULTS, ...config.curriculum.instance },
          clamp: config.curriculum.clamp,
        })
      : null;
  const loaders = detectorLoaders(config, { train: o.train, val: o.val, ...(o.decode ? { decode: o.decode } : {}) });
  const stepsPerEpoch = loaders.train.batchesPerEpoch;
  const boxes = trainedBoxesOf(o.train);
  const trackedImages = [...o.train].sort((a, b) => (a.imageId < b.imageId ? -1 : 1)).slice(0, 6);
  return {
    o,
    config,
    log,
    ckptFile: path.join(o.out, CHECKPOINT_FILE),
    model,
    opt,
    dp,
    loader: loaders.train,
    valLoader: loaders.val,
    valRecords: loaders.valRecords,
    stepsPerEpoch,
    schedule: {
      lr: t.lr,
      warmupSteps: t.warmupSteps ?? DETECTOR_TRAIN_DEFAULTS.warmupSteps,
      warmupFactor: t.warmupFactor,
      milestones: (t.milestones ?? []).map((e) => Math.round(e * stepsPerEpoch)),
      gamma: t.gamma,
    },
    rec: new RunRecorder(o.out),
    instanceIds: Int32Array.from(boxes.map((b) => b.box.instanceId)),
    groups: sigmaGroups(boxes.map((b) => ({ occlusion: b.box.occlusion, difficulty: b.box.difficulty }))),
    tracked: trainedBoxesOf(trackedImages).map(({ record, box }) => ({
      id: box.instanceId,
      image: path.resolve(record.imagePath),
      box: box.bbox,
      occlusion: box.occlusion,
      truncation: box.truncation,
      difficulty: box.difficulty,
      classIndex: box.classIndex,
      className: spec.classNames[box.classIndex],
    })),
    pos: { step: 0, epoch: 0, batchIndex: 0, epochLoss: 0, epochSteps: 0, finalAp: null, pendingValidation: false },
  };
}

function sigmaOf(run: DetectorRun, ids: Int32Array): Float32Array {
  return run.dp ? run.dp.instanceSigmaValues(ids) : new Float32Array(ids.length).fill(1);
}

/** The σ record of the current step: the tracked boxes' σ and the statistics of every group. */
async function recordSigma(run: DetectorRun): Promise<ReturnType<typeof summariseSigma>> {
  const groups = summariseSigma(sigmaOf(run, run.instanceIds), run.groups);
  await run.rec.appendSigma({ epoch: run.pos.epoch, step: run.pos.step, tracked: Array.from(sigmaOf(run, Int32Array.from(run.tracked.map((x) => Number(x.id))))), groups });
  return groups;
}

/** A new run: fresh records (manifest, σ at step 0). */
async function startRecords(run: DetectorRun): Promise<void> {
  const { rec, config } = run;
  await fs.rm(rec.sigmaFile, { force: true });
  await fs.rm(rec.metricsFile, { force: true });
  await rec.writeManifest({
    task: 'detection',
    createdAt: new Date().toISOString(),
    config: config as unknown as Record<string, unknown>,
    classNames: config.model.classNames,
    tracked: run.tracked,
  });
  await recordSigma(run);
}

/** Restores model, optimiser, σ and position from the checkpoint, and cuts the records back to its step. */
async function restoreCheckpoint(run: DetectorRun): Promise<void> {
  const { ckptFile, model, opt, dp, config, rec, log } = run;
  const ck = await loadCheckpoint<CheckpointMeta>(ckptFile).catch((err: Error) => {
    throw new Error(`--resume: cannot load ${ckptFile} (${err.message})`);
  });
  const m = ck.meta;
  const changed = checkResumeConfig(ckptFile, m.config, config, RESUME_SAFE_OPTIONS);
  const arrays = ck.arrays;
  const modelValues: Record<string, CheckpointArray> = {};
  const slots: Record<string, CheckpointArray> = {};
  for (const [k, v] of Object.entries(arrays)) {
    if (k.startsWith('model/')) modelValues[k.slice(6)] = v;
    else if (k.startsWith('opt/')) slots[k.slice(4)] = v;
  }
  model.params.restore(modelValues, ckptFile);
  opt.setState({ steps: m.optimizerSteps, slots }, model.params.trainable);
  if (dp) {
    if (!arrays['dp/instanceLogSigma']) throw new Error(`${ckptFile}: no data parameters in the checkpoint (trained with --curriculum none?)`);
    dp.setState({
      classLogSigma: null,
      classMomentum: null,
      instanceLogSigma: arrays['dp/instanceLogSigma'] as Float32Array,
      instanceMomentum: (arrays['dp/instanceMomentum'] as Float32Array | undefined) ?? null,
      step: m.dpStep ?? 0,
    });
  }
  run.pos = {
    step: m.step,
    epoch: m.epoch,
    batchIndex: m.batchIndex,
    epochLoss: m.epochLoss ?? 0,
    epochSteps: m.epochSteps ?? 0,
    finalAp: m.finalAp ?? null,
    pendingValidation: m.pendingValidation === true,
  };
  const { step, epoch, batchIndex, pendingValidation } = run.pos;
  const epochs = config.train.epochs;
  await rec.truncateAfter(step);
  if (changed.length > 0) {
    await rec.noteResume({ step, at: new Date().toISOString(), changed });
    log(`resume changes ${changed.map((c) => `${c.key} ${JSON.stringify(c.checkpoint)} -> ${JSON.stringify(c.now)}`).join(', ')} (noted in run.json)`);
  }
  log(
    epoch >= epochs && !pendingValidation
      ? `resumed from ${ckptFile} at step ${step}: all ${epochs} epochs are done; reporting the final results`
      : `resumed from ${ckptFile} at step ${step} (epoch ${epoch + 1} of ${epochs}, batch ${batchIndex})`,
  );
}

/** Writes the checkpoint (atomically): model, optimiser slots, σ and their momentum, position. */
async function saveRunCheckpoint(run: DetectorRun): Promise<void> {
  const { model, opt, dp, pos } = run;
  const arrays: Record<string, CheckpointArray> = {};
  for (const [k, v] of Object.entries(model.params.snapshot())) arrays[`model/${k}`] = v;
  const os = opt.getState();
  for (const [k, v] of Object.entries(os.slots)) arrays[`opt/${k}`] = v;
  let dpStep: number | null = null;
  if (dp) {
    const s = dp.getState();
    if (s.instanceLogSigma) arrays['dp/instanceLogSigma'] = s.instanceLogSigma;
    if (s.instanceMomentum) arrays['dp/instanceMomentum'] = s.instanceMomentum;
    dpStep = s.step;
  }
  const meta: CheckpointMeta = {
    version: 1,
    step: pos.step,
    epoch: pos.epoch,
    batchIndex: pos.batchIndex,
    optimizerSteps: os.steps,
    dpStep,
    config: run.config,
    epochLoss: pos.epochLoss,
    epochSteps: pos.epochSteps,
    finalAp: pos.finalAp,
  };
  if (pos.pendingValidation) meta.pendingValidation = true;
  await saveCheckpoint(run.ckptFile, { meta, arrays });
}

/** KITTI AP of the validation images (null without validation images or evaluator), recorded in the metrics. */
async function validate(run: DetectorRun): Promise<Partial<ApTable> | null> {
  const { valLoader, o, model, config, pos } = run;
  if (!valLoader || !o.evaluate) return null;
  const dets = await detectAll(model, valLoader, config.model.classNames);
  const gt = new Map<string, KittiObject[]>();
  for (const r of run.valRecords) gt.set(r.imageId, r.objects.map((b) => b.object));
  const classes = config.model.classNames.filter((c): c is 'car' | 'pedestrian' | 'cyclist' => ['car', 'pedestrian', 'cyclist'].includes(c));
  const res = o.evaluate({ groundTruth: gt, detections: dets, classes });
  const entry: Record<string, number> = {};
  for (const [cls, r] of Object.entries(res)) {
    for (const d of ['easy', 'moderate', 'hard'] as const) {
      entry[`ap_${cls}_${d}_r40`] = r![d].ap40;
      entry[`ap_${cls}_${d}_11`] = r![d].ap11;
    }
  }
  await run.rec.appendMetrics({ kind: 'val', step: pos.step, epoch: pos.epoch + (pos.batchIndex > 0 ? 1 : 0), ...entry });
  return res;
}

function logCarAp(run: DetectorRun, what: string, ap: Partial<ApTable> | null): void {
  const car = ap?.['car'];
  if (car) run.log(`${what}: car AP|R40 easy ${car.easy.ap40.toFixed(2)} moderate ${car.moderate.ap40.toFixed(2)} hard ${car.hard.ap40.toFixed(2)}`);
}

/** Validation at an epoch's end; when it fails (an unreadable image), the finished epoch is kept in a checkpoint
 * that validates first on resume. */
async function validateEpoch(run: DetectorRun): Promise<void> {
  let ap: Partial<ApTable> | null;
  try {
    ap = await validate(run);
  } catch (err) {
    run.pos.pendingValidation = true;
    await saveRunCheckpoint(run);
    throw new TrainingInputError(err, run.pos.step, run.ckptFile);
  }
  run.pos.pendingValidation = false;
  if (ap) {
    run.pos.finalAp = ap;
    logCarAp(run, `epoch ${run.pos.epoch}`, ap);
  }
}

/** Batch k + 1 is read (image decoding runs on libuv threads) while step k computes. */
class BatchPrefetch {
  private next: { epoch: number; index: number; batch: Promise<DetectionBatch> } | null = null;

  constructor(private readonly run: DetectorRun) {}

  /** Batch `index` of `epoch`, and the following one set reading. */
  async take(epoch: number, index: number): Promise<DetectionBatch> {
    const { loader, stepsPerEpoch } = this.run;
    const ahead = this.next;
    this.next = null;
    const batch = await (ahead && ahead.epoch === epoch && ahead.index === index ? ahead.batch : loader.prepareBatch(epoch, index));
    const [e, i] = index + 1 < stepsPerEpoch ? [epoch, index + 1] : [epoch + 1, 0];
    if (e < this.run.config.train.epochs) {
      // Its failure is handled when it is taken, not as an unhandled rejection in between.
      const next = loader.prepareBatch(e, i);
      next.catch(() => undefined);
      this.next = { epoch: e, index: i, batch: next };
    }
    return batch;
  }

  /** Waits for a read still under way (so that nothing reads after the run ends). */
  async settle(): Promise<void> {
    await this.next?.batch.catch(() => undefined);
    this.next = null;
  }
}

/** Speed of the last logging window. */
interface ThroughputWindow {
  start: number;
  images: number;
  /** Time the loop waited for its batch (dataWait: its share of the window; 0 when the loader keeps up). */
  waitMs: number;
}

/** One optimisation step on the next batch, its progress and metrics; a non-finite step stops the run with a checkpoint. */
async function runStep(run: DetectorRun, prefetch: BatchPrefetch, watch: DivergenceWatch, window: ThroughputWindow, bar: ProgressBar | null): Promise<number> {
  const { pos, config, model, opt, dp } = run;
  let batch: Batch;
  let dropped: number;
  try {
    const waitStart = Date.now();
    const b = await prefetch.take(pos.epoch, pos.batchIndex);
    window.waitMs += Date.now() - waitStart;
    dropped = b.droppedBoxes;
    batch = trainingBatch(b);
  } catch (err) {
    await saveRunCheckpoint(run);
    throw new TrainingInputError(err, pos.step, run.ckptFile);
  }
  const lr = learningRate(pos.step, run.schedule);
  const r = trainStep(model, opt, dp, batch, lr);
  if (!r.finite) {
    await saveRunCheckpoint(run);
    throw new NonFiniteLossError(pos.step, run.ckptFile);
  }
  watch.step(r.loss);
  pos.step++;
  pos.batchIndex++;
  window.images += batch.images.length;
  pos.epochLoss += r.loss;
  pos.epochSteps++;
  const logEvery = config.train.logEvery ?? DETECTOR_TRAIN_DEFAULTS.logEvery;
  const secs = (Date.now() - window.start) / 1000;
  const ips = secs > 0 ? window.images / secs : 0;
  bar?.update(pos.step, { loss: r.loss, cls: r.cls, loc: r.loc, lr, 'img/s': ips });
  if (pos.step % logEvery === 0) {
    const entry: Record<string, number> = { loss: r.loss, cls: r.cls, loc: r.loc, lr, imagesPerSecond: ips, dataWait: secs > 0 ? window.waitMs / 1000 / secs : 0, positives: r.numPositive };
    if (dp) entry['sigmaBatchMean'] = mean(dp.instanceSigmaValues(batch.instanceIds));
    await run.rec.appendMetrics({ kind: 'train', step: pos.step, epoch: pos.epoch + 1, ...entry });
    window.start = Date.now();
    window.images = 0;
    window.waitMs = 0;
  }
  return dropped;
}

/** An epoch's end: σ and epoch records, the divergence check, validation when due, a checkpoint. */
async function endEpoch(run: DetectorRun, watch: DivergenceWatch, droppedBoxes: number): Promise<void> {
  const { pos, config } = run;
  pos.epoch++;
  pos.batchIndex = 0;
  const sig = await recordSigma(run);
  const ep: Record<string, number> = { loss: pos.epochLoss / Math.max(1, pos.epochSteps) };
  for (const [g, s] of Object.entries(sig)) if (s.count > 0) ep[`sigma_${g.replace(':', '_')}`] = s.mean;
  await run.rec.appendMetrics({ kind: 'epoch', step: pos.step, epoch: pos.epoch, ...ep });
  watch.epochEnd(pos.epoch, ep['loss']!, run.dp, run.instanceIds);
  if (droppedBoxes > 0) run.log(`epoch ${pos.epoch}: ${droppedBoxes} target boxes without area in the input were dropped`);
  pos.epochLoss = 0;
  pos.epochSteps = 0;
  const valEvery = config.train.valEvery ?? DETECTOR_TRAIN_DEFAULTS.valEvery;
  if (pos.epoch === config.train.epochs || (valEvery > 0 && pos.epoch % valEvery === 0)) await validateEpoch(run);
  await saveRunCheckpoint(run);
}

/** Trains from the current position to the last epoch; false when stopped early (stopAtStep, shouldStop). */
async function trainEpochs(run: DetectorRun, bar: ProgressBar | null): Promise<boolean> {
  const { pos, o, config } = run;
  const t = config.train;
  const checkpointEvery = t.checkpointEvery ?? DETECTOR_TRAIN_DEFAULTS.checkpointEvery;
  const prefetch = new BatchPrefetch(run);
  const watch = new DivergenceWatch(run.log);
  const window: ThroughputWindow = { start: Date.now(), images: 0, waitMs: 0 };
  let droppedBoxes = 0;
  try {
    while (pos.epoch < t.epochs) {
      if ((o.stopAtStep !== undefined && pos.step >= o.stopAtStep) || o.shouldStop?.()) return false;
      droppedBoxes += await runStep(run, prefetch, watch, window, bar);
      if (pos.batchIndex === run.stepsPerEpoch) {
        await endEpoch(run, watch, droppedBoxes);
        droppedBoxes = 0;
      } else if (checkpointEvery > 0 && pos.step % checkpointEvery === 0) {
        await saveRunCheckpoint(run);
      }
    }
    return true;
  } finally {
    await prefetch.settle();
  }
}

/** A completed run: the model saved in the tfjs format, then the label review. */
async function finishRun(run: DetectorRun): Promise<string | null> {
  const { o, config, model, dp, log } = run;
  await saveSSD(model, config.model, path.join(o.out, 'model'), { steps: run.pos.step, curriculum: config.curriculum.mode });
  // The model is saved: an image that cannot be read now costs the review, not the run.
  try {
    const review = await writeDetectionReview(o.out, {
      model,
      dp,
      records: o.train,
      classNames: config.model.classNames,
      batchSize: config.train.batchSize,
      ...(o.decode ? { decode: o.decode } : {}),
    });
    log(`label review (${review.scores.boxes.length} training boxes, ${dp ? 'by σ' : 'by loss: no σ in this run'}): ${review.file}`);
    return review.file;
  } catch (err) {
    log(`label review not written: ${(err as Error).message}`);
    return null;
  }
}

/** Trains (or resumes) a detector. */
export async function trainDetector(o: TrainRunOptions): Promise<TrainRunResult> {
  const run = await buildRun(o);
  const { config, log, ckptFile } = run;
  const t = config.train;
  // As the classifier does: a run killed before its first checkpoint starts again from scratch on --resume.
  const resume = o.resume === true && existsSync(ckptFile);
  if (o.resume && !resume) log(`no checkpoint at ${ckptFile}: starting from scratch`);
  if (resume) await restoreCheckpoint(run);
  else await startRecords(run);

  const bar = o.progress === null ? null : new ProgressBar({ total: t.epochs * run.stepsPerEpoch, label: config.curriculum.mode === 'instance' ? 'train σ' : 'train', stream: o.progress ?? process.stderr });
  let initialAp: Partial<ApTable> | null = null;
  if ((t.valAtStart ?? DETECTOR_TRAIN_DEFAULTS.valAtStart) && !resume) {
    initialAp = await validate(run);
    logCarAp(run, 'untrained', initialAp);
  }
  let stoppedEarly = false;
  let reviewFile: string | null = null;
  try {
    if (run.pos.pendingValidation) {
      await validateEpoch(run);
      await saveRunCheckpoint(run);
    }
    stoppedEarly = !(await trainEpochs(run, bar));
    if (stoppedEarly) await saveRunCheckpoint(run);
    bar?.done();
    if (!stoppedEarly) reviewFile = await finishRun(run);
  } finally {
    run.opt.dispose();
    await run.loader.close();
    await run.valLoader?.close();
  }
  const { step, epoch, finalAp } = run.pos;
  return { steps: step, epochs: epoch, finalAp, initialAp, model: run.model, dp: run.dp, stoppedEarly, reviewFile };
}

function mean(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]!;
  return v.length ? s / v.length : NaN;
}
