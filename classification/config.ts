/**
 * Run configurations (configs/*.json) and how they become a model, data parameters and data. A config names the
 * dataset, the model, the training schedule, the curriculum with its data-parameter settings (per-curriculum
 * overrides, e.g. the joint curriculum's instance init 0.001 on ImageNet) and optional label noise. The command line
 * overrides a few fields (see cli/train-classifier.ts).
 */
import { CURRICULUM_MODES, DataParameters } from '../src/data-parameters/data-parameters.js';
import type { CurriculumMode, KindOptions, SigmaBounds } from '../src/data-parameters/data-parameters.js';
import type { Logger } from '../src/util/log.js';
import { array, boolean, checkConfig, nullable, number, object, optional, readJsonConfig, string, tagged, type Check } from '../src/util/config-schema.js';
import { kindOptionsCheck, sigmaBoundsCheck } from '../src/data-parameters/config-checks.js';
import { loadMnistLike, DEBIAN_FASHION_MNIST_DIR, FASHION_MNIST_CLASSES } from '../datasets/idx/mnist-like.js';
import { loadCifar } from '../datasets/cifar/cifar-binary.js';
import { imagenetSynsets, loadImageNetTrain, loadImageNetVal } from '../datasets/imagenet/imagenet.js';
import type { ValidationLabels } from '../datasets/imagenet/imagenet.js';
import { loadWebVisionList, webVisionImagePath } from '../datasets/webvision/file-list.js';
import type { WebVisionSource } from '../datasets/webvision/file-list.js';
import { corruptLabels, NOISE_MODELS, parseNoiseModel } from '../datasets/noisy-labels/noisy-labels.js';
import type { NoiseModel, NoisyLabels } from '../datasets/noisy-labels/noisy-labels.js';
import { ClassifierModel, resnet, smallCnn, wideResNet } from './models/models.js';
import {
  ClassificationData,
  FileImageData,
  IMAGENET_TRAIN_AUGMENT,
  InMemoryImageData,
  stratifiedSubset,
} from './input/image-data.js';
import type { TrainerConfig, TrainerParts } from './training/trainer.js';
import { ClassifierTrainer, DEFAULT_TRAINER_CONFIG } from './training/trainer.js';

export type DatasetKind = 'imagenet' | 'webvision' | 'cifar10' | 'cifar100' | 'fashion-mnist' | 'mnist';
const DATASET_KINDS: readonly DatasetKind[] = ['imagenet', 'webvision', 'cifar10', 'cifar100', 'fashion-mnist', 'mnist'];
export type ModelKind = 'resnet18' | 'wrn' | 'small-cnn';
const MODEL_KINDS: readonly ModelKind[] = ['resnet18', 'wrn', 'small-cnn'];

export interface DataParameterSettings {
  class?: Partial<KindOptions>;
  instance?: Partial<KindOptions>;
  clamp?: SigmaBounds | null;
}

export interface ClassifierRunConfig {
  description?: string;
  dataset: {
    kind: DatasetKind;
    root: string;
    /** Train on a stratified, seeded subset of this many training entries. */
    trainSubset?: number | null;
    /** Evaluate on the first this-many validation entries (a stratified subset). */
    valSubset?: number | null;
    /** ImageNet: synset file and validation-label source (see datasets/imagenet). */
    synsetFile?: string;
    validation?: ValidationLabels;
    /** WebVision: training sources (default both). */
    sources?: WebVisionSource[];
    /** ImageNet / WebVision: crop size. */
    imageSize?: number;
  };
  model: { name: ModelKind; depth?: number; widen?: number; widths?: number[]; hidden?: number; blocks?: number[]; width?: number };
  /** The trainer's settings as written in a config file (the optional ones default as in DEFAULT_TRAINER_CONFIG). */
  train: Pick<TrainerConfig, 'epochs' | 'batchSize' | 'lr' | 'momentum' | 'weightDecay' | 'schedule'> &
    Partial<Pick<TrainerConfig, 'logEvery' | 'evalBatchSize' | 'trackCount'>> & { augment: boolean };
  curriculum: CurriculumMode;
  dataParameters: DataParameterSettings;
  /** Settings merged over `dataParameters` for one curriculum (e.g. joint on ImageNet). */
  dataParametersByCurriculum?: Partial<Record<CurriculumMode, DataParameterSettings>>;
  /** Label noise; `cleanOnly` trains on the entries whose label the noise left correct (the oracle of a noisy-label
   * experiment: the same subset and draw, the corrupted entries dropped). */
  noise?: { rate: number; model: NoiseModel; seed?: number; cleanOnly?: boolean };
  seed: number;
  calibrate?: boolean;
}

export interface ConfigOverrides {
  data?: string;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  curriculum?: string;
  noiseRate?: number;
  noiseModel?: string;
  seed?: number;
  trainSubset?: number;
  valSubset?: number;
  calibrate?: boolean;
}

export async function readConfig(file: string): Promise<ClassifierRunConfig> {
  return validateConfig(await readJsonConfig(file), file);
}

const count = number({ integer: true, min: 0 });
const positiveInt = number({ integer: true, min: 1 });
const nonNegative = number({ min: 0 });
const dataParameterSettingsCheck = object({
  class: optional(kindOptionsCheck),
  instance: optional(kindOptionsCheck),
  clamp: optional(nullable(sigmaBoundsCheck)),
});

const classifierCheck: Check = object({
  description: optional(string()),
  dataset: object({
    kind: string(DATASET_KINDS),
    root: string(),
    trainSubset: optional(nullable(count)),
    valSubset: optional(nullable(count)),
    synsetFile: optional(string()),
    validation: optional(
      tagged('kind', { xml: { dir: string() }, 'loc-csv': { file: string() }, list: { file: string() }, folders: {} }),
    ),
    sources: optional(array(string(['google', 'flickr']), { minLength: 1 })),
    imageSize: optional(positiveInt),
  }),
  model: object({
    name: string(MODEL_KINDS),
    depth: optional(positiveInt),
    widen: optional(positiveInt),
    widths: optional(array(positiveInt, { minLength: 1 })),
    hidden: optional(positiveInt),
    blocks: optional(array(positiveInt, { minLength: 1 })),
    width: optional(positiveInt),
  }),
  train: object({
    epochs: count,
    batchSize: positiveInt,
    lr: nonNegative,
    momentum: nonNegative,
    weightDecay: nonNegative,
    schedule: object({ milestones: optional(array(nonNegative)), every: optional(count), gamma: nonNegative }),
    logEvery: optional(positiveInt),
    evalBatchSize: optional(positiveInt),
    trackCount: optional(count),
    augment: boolean(),
  }),
  curriculum: string(CURRICULUM_MODES),
  dataParameters: dataParameterSettingsCheck,
  dataParametersByCurriculum: optional(object(Object.fromEntries(CURRICULUM_MODES.map((m) => [m, optional(dataParameterSettingsCheck)])))),
  noise: optional(
    object({ rate: number({ min: 0, max: 1 }), model: string(NOISE_MODELS), seed: optional(number({ integer: true })), cleanOnly: optional(boolean()) }),
  ),
  seed: number({ integer: true }),
  calibrate: optional(boolean()),
});

/** Checks a parsed classifier config: every key known, every value of the right type and range. */
export function validateConfig(raw: unknown, file = 'config'): ClassifierRunConfig {
  return checkConfig<ClassifierRunConfig>(raw, classifierCheck, file);
}

export function applyOverrides(config: ClassifierRunConfig, o: ConfigOverrides): ClassifierRunConfig {
  const c: ClassifierRunConfig = structuredClone(config);
  if (o.data !== undefined) c.dataset.root = o.data;
  if (o.epochs !== undefined) c.train.epochs = o.epochs;
  if (o.batchSize !== undefined) c.train.batchSize = o.batchSize;
  if (o.lr !== undefined) c.train.lr = o.lr;
  if (o.curriculum !== undefined) c.curriculum = o.curriculum as CurriculumMode;
  if (o.noiseRate !== undefined || o.noiseModel !== undefined) {
    c.noise = {
      ...c.noise,
      rate: o.noiseRate ?? c.noise?.rate ?? 0,
      model: o.noiseModel !== undefined ? parseNoiseModel(o.noiseModel) : (c.noise?.model ?? 'uniform'),
      seed: c.noise?.seed ?? 0,
    };
  }
  if (o.seed !== undefined) c.seed = o.seed;
  if (o.trainSubset !== undefined) c.dataset.trainSubset = o.trainSubset;
  if (o.valSubset !== undefined) c.dataset.valSubset = o.valSubset;
  if (o.calibrate !== undefined) c.calibrate = o.calibrate;
  return validateConfig(c, 'config after command-line overrides');
}

/** The data-parameter options of the config's curriculum (base settings with its per-curriculum overrides). */
export function dataParameterSettings(config: ClassifierRunConfig): DataParameterSettings {
  const base = config.dataParameters;
  const over = config.dataParametersByCurriculum?.[config.curriculum] ?? {};
  const out: DataParameterSettings = {
    class: { ...base.class, ...over.class },
    instance: { ...base.instance, ...over.instance },
  };
  const clamp = over.clamp !== undefined ? over.clamp : base.clamp;
  if (clamp !== undefined) out.clamp = clamp;
  return out;
}

export function trainerConfig(config: ClassifierRunConfig): TrainerConfig {
  const t = config.train;
  return {
    ...DEFAULT_TRAINER_CONFIG,
    epochs: t.epochs,
    batchSize: t.batchSize,
    lr: t.lr,
    momentum: t.momentum,
    weightDecay: t.weightDecay,
    schedule: t.schedule,
    seed: config.seed,
    logEvery: t.logEvery ?? DEFAULT_TRAINER_CONFIG.logEvery,
    evalBatchSize: t.evalBatchSize ?? DEFAULT_TRAINER_CONFIG.evalBatchSize,
    trackCount: t.trackCount ?? DEFAULT_TRAINER_CONFIG.trackCount,
    calibrate: config.calibrate ?? false,
  };
}

export interface BuiltRun {
  model: ClassifierModel;
  dp: DataParameters;
  train: ClassificationData;
  val: ClassificationData | null;
  noise: NoisyLabels | null;
  dispose(): void;
}

/** The trainer of a built run (its model, data parameters and data) with the config's training settings, recorded
 * where and as `records` says. */
export function trainerFor(
  run: BuiltRun,
  config: ClassifierRunConfig,
  records: Pick<TrainerParts, 'outDir' | 'log' | 'progress' | 'recordConfig'>,
): ClassifierTrainer {
  const { model, dp, train, val, noise } = run;
  return new ClassifierTrainer({ model, dp, train, val, noise, ...records }, trainerConfig(config));
}

const MNIST_NORMALISE = { 'fashion-mnist': { mean: [0.286], std: [0.353] }, mnist: { mean: [0.1307], std: [0.3081] } };
const CIFAR_NORMALISE = {
  cifar10: { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] },
  cifar100: { mean: [0.5071, 0.4865, 0.4409], std: [0.2673, 0.2564, 0.2762] },
};

function identity(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i);
}

function applyNoise(config: ClassifierRunConfig, labels: Int32Array, numClasses: number): NoisyLabels | null {
  const n = config.noise;
  if (!n || n.rate <= 0) return null;
  return corruptLabels(labels, numClasses, { rate: n.rate, seed: n.seed ?? config.seed, model: n.model });
}

/** The training entries of a subset after label noise: source index and label of each, and the noise bookkeeping
 * (null without noise, and with `noise.cleanOnly`, where only the entries left correct are kept). */
function trainingEntries(
  config: ClassifierRunConfig,
  subset: Int32Array,
  subLabels: Int32Array,
  numClasses: number,
): { imageIndex: Int32Array; labels: Int32Array; noise: NoisyLabels | null } {
  const noise = applyNoise(config, subLabels, numClasses);
  if (!noise) return { imageIndex: subset, labels: subLabels, noise: null };
  const imageIndex = Int32Array.from(noise.imageIndex, (j) => subset[j]!);
  if (!config.noise?.cleanOnly) return { imageIndex, labels: noise.labels, noise };
  const keep = Array.from(noise.corrupted.keys()).filter((i) => noise.corrupted[i] === 0);
  return { imageIndex: Int32Array.from(keep, (i) => imageIndex[i]!), labels: Int32Array.from(keep, (i) => noise.labels[i]!), noise: null };
}

/** Loads the data, applies subset and label noise, builds the model and the data parameters. */
export async function buildRun(config: ClassifierRunConfig, log: Logger): Promise<BuiltRun> {
  const d = config.dataset;
  const root = d.root === '' && (d.kind === 'fashion-mnist' || d.kind === 'mnist') ? DEBIAN_FASHION_MNIST_DIR : d.root;
  let train: ClassificationData;
  let val: ClassificationData | null;
  let noise: NoisyLabels | null;
  let numClasses: number;
  let inputShape: [number, number, number];
  const subsetOf = (labels: Int32Array, k: number, count: number | null | undefined, seed: number): Int32Array =>
    count ? stratifiedSubset(labels, k, count, seed) : identity(labels.length);

  if (d.kind === 'fashion-mnist' || d.kind === 'mnist' || d.kind === 'cifar10' || d.kind === 'cifar100') {
    const mem = d.kind === 'fashion-mnist' || d.kind === 'mnist';
    const trainSet = mem ? await loadMnistLike(root, 'train') : await loadCifar(root, d.kind as 'cifar10', 'train');
    const testSet = mem ? await loadMnistLike(root, 'test') : await loadCifar(root, d.kind as 'cifar10', 'test');
    numClasses = trainSet.numClasses;
    const channels: number = 'channels' in trainSet ? (trainSet.channels as number) : 1;
    const classNames: string[] =
      'classNames' in trainSet ? (trainSet.classNames as string[]) : d.kind === 'fashion-mnist' ? [...FASHION_MNIST_CLASSES] : Array.from({ length: 10 }, (_, i) => String(i));
    const normalise = mem ? MNIST_NORMALISE[d.kind as 'mnist'] : CIFAR_NORMALISE[d.kind as 'cifar10'];
    const source = { pixels: trainSet.pixels, height: trainSet.height, width: trainSet.width, channels };
    const subset = subsetOf(trainSet.labels, numClasses, d.trainSubset, config.seed + 101);
    const subLabels = Int32Array.from(subset, (i) => trainSet.labels[i]!);
    const entries = trainingEntries(config, subset, subLabels, numClasses);
    noise = entries.noise;
    const augment = config.train.augment ? { pad: mem ? 2 : 4, flip: true } : null;
    train = new InMemoryImageData(source, entries.imageIndex, entries.labels, numClasses, classNames, normalise, augment);
    const vsub = subsetOf(testSet.labels, numClasses, d.valSubset, config.seed + 202);
    val = new InMemoryImageData(
      { pixels: testSet.pixels, height: testSet.height, width: testSet.width, channels },
      vsub,
      Int32Array.from(vsub, (i) => testSet.labels[i]!),
      numClasses,
      classNames,
      normalise,
      null,
    );
    inputShape = [trainSet.height, trainSet.width, channels];
  } else {
    const size = d.imageSize ?? 224;
    let trainFiles: { count: number; path(i: number): string };
    let trainLabels: Int32Array;
    let valFiles: { count: number; path(i: number): string };
    let valLabels: Int32Array;
    let classNames: string[];
    if (d.kind === 'imagenet') {
      const opts = { root, ...(d.synsetFile ? { synsetFile: d.synsetFile } : {}), ...(d.validation ? { validation: d.validation } : {}) };
      const synsets = await imagenetSynsets(opts);
      const tr = await loadImageNetTrain(opts, synsets);
      const va = await loadImageNetVal(opts, synsets);
      trainFiles = { count: tr.files.length, path: (i) => tr.files[i]! };
      valFiles = { count: va.files.length, path: (i) => va.files[i]! };
      trainLabels = tr.labels;
      valLabels = va.labels;
      classNames = synsets.wnids;
    } else {
      const opts = { root, ...(d.sources ? { sources: d.sources } : {}) };
      const tr = await loadWebVisionList(opts, 'train');
      const va = await loadWebVisionList(opts, 'val');
      trainFiles = { count: tr.count, path: (i) => webVisionImagePath(opts, tr, i) };
      valFiles = { count: va.count, path: (i) => webVisionImagePath(opts, va, i) };
      trainLabels = tr.labels;
      valLabels = va.labels;
      classNames = Array.from({ length: 1000 }, (_, i) => String(i));
    }
    numClasses = classNames.length;
    const subset = subsetOf(trainLabels, numClasses, d.trainSubset, config.seed + 101);
    const subLabels = Int32Array.from(subset, (i) => trainLabels[i]!);
    const entries = trainingEntries(config, subset, subLabels, numClasses);
    noise = entries.noise;
    const imageIndex = entries.imageIndex;
    train = new FileImageData(
      { count: imageIndex.length, path: (i) => trainFiles.path(imageIndex[i]!) },
      entries.labels,
      numClasses,
      classNames,
      size,
      config.train.augment ? IMAGENET_TRAIN_AUGMENT : null,
    );
    const vsub = subsetOf(valLabels, numClasses, d.valSubset, config.seed + 202);
    val = new FileImageData(
      { count: vsub.length, path: (i) => valFiles.path(vsub[i]!) },
      Int32Array.from(vsub, (i) => valLabels[i]!),
      numClasses,
      classNames,
      size,
      null,
    );
    inputShape = [size, size, 3];
  }
  const m = config.model;
  const model =
    m.name === 'resnet18'
      ? resnet({ numClasses, inputShape, seed: config.seed, ...(m.blocks ? { blocks: m.blocks } : {}), ...(m.width ? { width: m.width } : {}) })
      : m.name === 'wrn'
        ? wideResNet({ numClasses, inputShape, seed: config.seed, depth: m.depth ?? 28, widen: m.widen ?? 10 })
        : smallCnn({ numClasses, inputShape, seed: config.seed, ...(m.widths ? { widths: m.widths } : {}), ...(m.hidden ? { hidden: m.hidden } : {}) });
  const s = dataParameterSettings(config);
  const dp = new DataParameters({
    numClasses,
    numInstances: train.count,
    mode: config.curriculum,
    ...(s.class ? { class: s.class } : {}),
    ...(s.instance ? { instance: s.instance } : {}),
    ...(s.clamp !== undefined ? { clamp: s.clamp } : {}),
  });
  log(
    `data: ${d.kind} at ${root}: ${train.count} training entries${noise ? ` (${noise.corruptedCount} corrupted, ${noise.model} noise ${noise.rate})` : config.noise?.cleanOnly ? ' (clean entries only)' : ''}, ` +
      `${val?.count ?? 0} validation; model ${model.name} (${model.store.parameterCount} parameters); curriculum ${config.curriculum}`,
  );
  return {
    model,
    dp,
    train,
    val,
    noise,
    dispose: () => {
      dp.dispose();
      model.store.dispose();
    },
  };
}
