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

/** Trains (or resumes) a detector. */
export async function trainDetector(o: TrainRunOptions): Promise<TrainRunResult> {
  const { config } = o;
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const t = config.train;
  const spec = config.model;
  await prepareRunDir(o.out, { log });
  const ckptFile = path.join(o.out, CHECKPOINT_FILE);

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
  const io = { inputSize: spec.inputSize, batchSize: t.batchSize, cache: config.data.cacheImages ?? DETECTOR_DATA_DEFAULTS.cacheImages, ...(o.decode ? { decode: o.decode } : {}) };
  const loader = detectorLoader(o.train, { ...io, seed: t.seed, augment: trainingAugmentation(config) });
  const valRecords = config.data.valLimit ? o.val.slice(0, config.data.valLimit) : o.val;
  const valLoader = valRecords.length > 0 ? detectorLoader(valRecords, { ...io, seed: 0, augment: null }) : null;
  const stepsPerEpoch = loader.batchesPerEpoch;
  const checkpointEvery = t.checkpointEvery ?? DETECTOR_TRAIN_DEFAULTS.checkpointEvery;
  const totalSteps = t.epochs * stepsPerEpoch;
  const schedule = {
    lr: t.lr,
    warmupSteps: t.warmupSteps ?? DETECTOR_TRAIN_DEFAULTS.warmupSteps,
    warmupFactor: t.warmupFactor,
    milestones: (t.milestones ?? []).map((e) => Math.round(e * stepsPerEpoch)),
    gamma: t.gamma,
  };

  // Instances of the training set (for σ statistics) and the tracked boxes (all boxes of the first 6 images).
  const boxes = trainedBoxesOf(o.train);
  const instanceIds = Int32Array.from(boxes.map((b) => b.box.instanceId));
  const groups = sigmaGroups(boxes.map((b) => ({ occlusion: b.box.occlusion, difficulty: b.box.difficulty })));
  const trackedImages = [...o.train].sort((a, b) => (a.imageId < b.imageId ? -1 : 1)).slice(0, 6);
  const tracked: TrackedInstance[] = trainedBoxesOf(trackedImages).map(({ record, box }) => ({
    id: box.instanceId,
    image: path.resolve(record.imagePath),
    box: box.bbox,
    occlusion: box.occlusion,
    truncation: box.truncation,
    difficulty: box.difficulty,
    classIndex: box.classIndex,
    className: spec.classNames[box.classIndex],
  }));
  const sigmaOf = (ids: Int32Array): Float32Array => (dp ? dp.instanceSigmaValues(ids) : new Float32Array(ids.length).fill(1));

  const rec = new RunRecorder(o.out);
  let step = 0, epoch = 0, batchIndex = 0;
  let epochLoss = 0, epochSteps = 0;
  let finalAp: Partial<ApTable> | null = null;
  let pendingValidation = false;
  // As the classifier does: a run killed before its first checkpoint starts again from scratch on --resume.
  const resume = o.resume === true && existsSync(ckptFile);
  if (o.resume && !resume) log(`no checkpoint at ${ckptFile}: starting from scratch`);
  if (resume) {
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
    ({ step, epoch, batchIndex } = m);
    epochLoss = m.epochLoss ?? 0;
    epochSteps = m.epochSteps ?? 0;
    finalAp = m.finalAp ?? null;
    pendingValidation = m.pendingValidation === true;
    await rec.truncateAfter(step);
    if (changed.length > 0) {
      await rec.noteResume({ step, at: new Date().toISOString(), changed });
      log(`resume changes ${changed.map((c) => `${c.key} ${JSON.stringify(c.checkpoint)} -> ${JSON.stringify(c.now)}`).join(', ')} (noted in run.json)`);
    }
    log(
      epoch >= t.epochs && !pendingValidation
        ? `resumed from ${ckptFile} at step ${step}: all ${t.epochs} epochs are done; reporting the final results`
        : `resumed from ${ckptFile} at step ${step} (epoch ${epoch + 1} of ${t.epochs}, batch ${batchIndex})`,
    );
  } else {
    await fs.rm(rec.sigmaFile, { force: true });
    await fs.rm(rec.metricsFile, { force: true });
    await rec.writeManifest({
      task: 'detection',
      createdAt: new Date().toISOString(),
      config: config as unknown as Record<string, unknown>,
      classNames: spec.classNames,
      tracked,
    });
    await rec.appendSigma({ epoch: 0, step: 0, tracked: Array.from(sigmaOf(Int32Array.from(tracked.map((x) => Number(x.id))))), groups: summariseSigma(sigmaOf(instanceIds), groups) });
  }

  const saveState = async (): Promise<void> => {
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
    const meta: CheckpointMeta = { version: 1, step, epoch, batchIndex, optimizerSteps: os.steps, dpStep, config, epochLoss, epochSteps, finalAp };
    if (pendingValidation) meta.pendingValidation = true;
    await saveCheckpoint(ckptFile, { meta, arrays });
  };

  const validate = async (): Promise<Partial<ApTable> | null> => {
    if (!valLoader || !o.evaluate) return null;
    const dets = await detectAll(model, valLoader, spec.classNames);
    const gt = new Map<string, KittiObject[]>();
    for (const r of valRecords) gt.set(r.imageId, r.objects.map((b) => b.object));
    const classes = spec.classNames.filter((c): c is 'car' | 'pedestrian' | 'cyclist' => ['car', 'pedestrian', 'cyclist'].includes(c));
    const res = o.evaluate({ groundTruth: gt, detections: dets, classes });
    const entry: Record<string, number> = {};
    for (const [cls, r] of Object.entries(res)) {
      for (const d of ['easy', 'moderate', 'hard'] as const) {
        entry[`ap_${cls}_${d}_r40`] = r![d].ap40;
        entry[`ap_${cls}_${d}_11`] = r![d].ap11;
      }
    }
    await rec.appendMetrics({ kind: 'val', step, epoch: epoch + (batchIndex > 0 ? 1 : 0), ...entry });
    return res;
  };

  const bar = o.progress === null ? null : new ProgressBar({ total: totalSteps, label: config.curriculum.mode === 'instance' ? 'train σ' : 'train', stream: o.progress ?? process.stderr });
  let initialAp: Partial<ApTable> | null = null;
  if ((t.valAtStart ?? DETECTOR_TRAIN_DEFAULTS.valAtStart) && !resume) {
    initialAp = await validate();
    const car = initialAp?.['car'];
    if (car) log(`untrained: car AP|R40 easy ${car.easy.ap40.toFixed(2)} moderate ${car.moderate.ap40.toFixed(2)} hard ${car.hard.ap40.toFixed(2)}`);
  }
  /** Validation at an epoch's end; when it fails (an unreadable image), the finished epoch is kept in a checkpoint
   * that validates first on resume. */
  const validateEpoch = async (): Promise<void> => {
    let ap: Partial<ApTable> | null;
    try {
      ap = await validate();
    } catch (err) {
      pendingValidation = true;
      await saveState();
      throw new TrainingInputError(err, step, ckptFile);
    }
    pendingValidation = false;
    if (ap) {
      finalAp = ap;
      const car = ap['car'];
      if (car) log(`epoch ${epoch}: car AP|R40 easy ${car.easy.ap40.toFixed(2)} moderate ${car.moderate.ap40.toFixed(2)} hard ${car.hard.ap40.toFixed(2)}`);
    }
  };

  let stoppedEarly = false;
  let reviewFile: string | null = null;
  let next: Promise<DetectionBatch> | null = null;
  let droppedBoxes = 0;
  let windowStart = Date.now(), windowImages = 0;
  const watch = new DivergenceWatch(log);
  try {
    if (pendingValidation) {
      await validateEpoch();
      await saveState();
    }
    while (epoch < t.epochs) {
      if ((o.stopAtStep !== undefined && step >= o.stopAtStep) || o.shouldStop?.()) {
        stoppedEarly = true;
        break;
      }
      let batch: Batch;
      try {
        const b = await (next ?? loader.prepareBatch(epoch, batchIndex));
        droppedBoxes += b.droppedBoxes;
        batch = trainingBatch(b);
      } catch (err) {
        next = null;
        await saveState();
        throw new TrainingInputError(err, step, ckptFile);
      }
      // Prefetch the following batch (image decoding runs on libuv threads while this step computes). Its failure is
      // handled when it is awaited, not as an unhandled rejection in between.
      const nb = batchIndex + 1 < stepsPerEpoch ? [epoch, batchIndex + 1] : [epoch + 1, 0];
      next = nb[0]! < t.epochs ? loader.prepareBatch(nb[0]!, nb[1]!) : null;
      next?.catch(() => undefined);
      const lr = learningRate(step, schedule);
      const r = trainStep(model, opt, dp, batch, lr);
      if (!r.finite) {
        await saveState();
        throw new NonFiniteLossError(step, ckptFile);
      }
      watch.step(r.loss);
      step++;
      batchIndex++;
      windowImages += batch.images.length;
      epochLoss += r.loss;
      epochSteps++;
      const logEvery = t.logEvery ?? DETECTOR_TRAIN_DEFAULTS.logEvery;
      const secs = (Date.now() - windowStart) / 1000;
      const ips = secs > 0 ? windowImages / secs : 0;
      bar?.update(step, { loss: r.loss, cls: r.cls, loc: r.loc, lr, 'img/s': ips });
      if (step % logEvery === 0) {
        const entry: Record<string, number> = { loss: r.loss, cls: r.cls, loc: r.loc, lr, imagesPerSecond: ips, positives: r.numPositive };
        if (dp) entry['sigmaBatchMean'] = mean(dp.instanceSigmaValues(batch.instanceIds));
        await rec.appendMetrics({ kind: 'train', step, epoch: epoch + 1, ...entry });
        windowStart = Date.now();
        windowImages = 0;
      }
      if (batchIndex === stepsPerEpoch) {
        epoch++;
        batchIndex = 0;
        const sig = summariseSigma(sigmaOf(instanceIds), groups);
        await rec.appendSigma({ epoch, step, tracked: Array.from(sigmaOf(Int32Array.from(tracked.map((x) => Number(x.id))))), groups: sig });
        const ep: Record<string, number> = { loss: epochLoss / Math.max(1, epochSteps) };
        for (const [g, s] of Object.entries(sig)) if (s.count > 0) ep[`sigma_${g.replace(':', '_')}`] = s.mean;
        await rec.appendMetrics({ kind: 'epoch', step, epoch, ...ep });
        watch.epochEnd(epoch, ep['loss']!, dp, instanceIds);
        if (droppedBoxes > 0) log(`epoch ${epoch}: ${droppedBoxes} target boxes without area in the input were dropped`);
        droppedBoxes = 0;
        epochLoss = 0;
        epochSteps = 0;
        const valEvery = t.valEvery ?? DETECTOR_TRAIN_DEFAULTS.valEvery;
        if (epoch === t.epochs || (valEvery > 0 && epoch % valEvery === 0)) await validateEpoch();
        await saveState();
      } else if (checkpointEvery > 0 && step % checkpointEvery === 0) {
        await saveState();
      }
    }
    if (next) await next.catch(() => undefined);
    if (stoppedEarly) await saveState();
    bar?.done();
    if (!stoppedEarly) {
      await saveSSD(model, spec, path.join(o.out, 'model'), { steps: step, curriculum: config.curriculum.mode });
      // The model is saved: an image that cannot be read now costs the review, not the run.
      try {
        const review = await writeDetectionReview(o.out, { model, dp, records: o.train, classNames: spec.classNames, batchSize: t.batchSize, ...(o.decode ? { decode: o.decode } : {}) });
        reviewFile = review.file;
        log(`label review (${review.scores.boxes.length} training boxes, ${dp ? 'by σ' : 'by loss: no σ in this run'}): ${reviewFile}`);
      } catch (err) {
        log(`label review not written: ${(err as Error).message}`);
      }
    }
  } finally {
    opt.dispose();
    await loader.close();
    await valLoader?.close();
  }
  return { steps: step, epochs: epoch, finalAp, initialAp, model, dp, stoppedEarly, reviewFile };
}

function mean(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]!;
  return v.length ? s / v.length : NaN;
}
