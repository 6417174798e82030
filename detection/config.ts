/**
 * Detector run configurations (configs/synthetic-kitti.json, configs/kitti-car-ssd.json): the type, the defaults of
 * its optional training settings, and the validation every config file goes through (unknown keys and wrong values
 * are errors naming the file and the key). The command line overrides a few fields (cli/train-detector.ts).
 */
import type { KindOptions, SigmaBounds } from '../src/data-parameters/data-parameters.js';
import { kindOptionsCheck, sigmaBoundsCheck } from '../src/data-parameters/config-checks.js';
import type { OptimizerOptions } from '../src/nn/optimizer.js';
import {
  array,
  boolean,
  checkConfig,
  either,
  nullable,
  number,
  object,
  optional,
  readJsonConfig,
  string,
  tagged,
  type Check,
} from '../src/util/config-schema.js';
import type { KittiSplit } from '../datasets/kitti/dataset.js';
import type { SSDSpec } from './model/build.js';
import { SSD_AUGMENTATION, simpleAugmentation, type AugmentOptions, type SimpleAugmentOptions } from '../datasets/pipeline/loader.js';

export type DetectorCurriculum = 'none' | 'instance';

export interface DetectorConfig {
  description?: string;
  model: SSDSpec;
  data: {
    /** KITTI-layout root (for the CLI). */
    root: string;
    split: KittiSplit;
    valSplit: KittiSplit;
    /** Validate on at most this many images (0 = all). */
    valLimit?: number;
    /** Keep decoded images in memory (small sets; default false). */
    cacheImages?: boolean;
    /** Training augmentation preset of the input pipeline: 'simple' (flip, brightness, contrast: `train.augment`) or
     * 'ssd' (photometric + channel swap, expand, min-IoU crop, flip). Default 'simple'. */
    pipeline?: 'simple' | 'ssd';
    /** Worker threads that decode and augment training images off the main thread ('ssd' pipeline; default 0). */
    workers?: number;
    /** When `root` has no data: generate a synthetic KITTI set there with these settings (the embedded default). */
    synthetic?: { images: number; seed: number; width?: number; height?: number };
  };
  train: {
    epochs: number;
    batchSize: number;
    seed: number;
    optimizer: OptimizerOptions;
    lr: number;
    warmupSteps?: number;
    warmupFactor?: number;
    /** Epochs at which the lr is multiplied by gamma. */
    milestones?: number[];
    gamma?: number;
    /** The 'simple' preset's settings, merged over DETECTOR_TRAIN_DEFAULTS.augment. */
    augment?: Partial<SimpleAugmentOptions>;
    logEvery?: number;
    /** Validate every this many epochs (0: only at the end). */
    valEvery?: number;
    /** Also checkpoint every this many steps (0: only at epoch ends). */
    checkpointEvery?: number;
    /** Also validate the untrained model before the first step (the reference an AP gain is measured against). */
    valAtStart?: boolean;
  };
  curriculum: {
    mode: DetectorCurriculum;
    /** Merged over DETECTION_INSTANCE_DEFAULTS. */
    instance?: Partial<KindOptions>;
    /** σ bounds; absent: DataParameters' DEFAULT_CLAMP; null: none. */
    clamp?: SigmaBounds | null;
  };
  /** Output directory (run records, checkpoint, model/). */
  out?: string;
}

/** Per-box σ settings of the paper for detection: init 1, lr 0.1, momentum 0, weight decay 0. */
export const DETECTION_INSTANCE_DEFAULTS: KindOptions = { init: 1, lr: 0.1, momentum: 0, weightDecay: 0 };

/** What the trainer uses for an optional training setting a config leaves out. */
export const DETECTOR_TRAIN_DEFAULTS = {
  warmupSteps: 0,
  augment: { flip: true, brightness: 32, contrast: 0.5 },
  logEvery: 10,
  valEvery: 1,
  checkpointEvery: 0,
  valAtStart: false,
} as const satisfies Partial<DetectorConfig['train']>;

/** What the trainer uses for an optional data setting a config leaves out. */
export const DETECTOR_DATA_DEFAULTS = {
  pipeline: 'simple',
  cacheImages: false,
} as const satisfies Partial<DetectorConfig['data']>;

/** The training augmentation a config asks for, as the input pipeline's options (validation has none). */
export function trainingAugmentation(config: DetectorConfig): AugmentOptions {
  const pipeline = config.data.pipeline ?? DETECTOR_DATA_DEFAULTS.pipeline;
  if (pipeline === 'ssd') return SSD_AUGMENTATION;
  return simpleAugmentation({ ...DETECTOR_TRAIN_DEFAULTS.augment, ...config.train.augment });
}

const positive = number({ above: 0 });
const positiveInt = number({ integer: true, min: 1 });
const count = number({ integer: true, min: 0 });
const fraction = number({ min: 0, max: 1 });
const SPLITS = ['train', 'val', 'trainval', 'all'] as const satisfies readonly KittiSplit[];

const modelCheck: Check = object({
  backbone: tagged('type', {
    light: { widths: optional(array(positiveInt, { length: 3 })), extraChannels: optional(positiveInt), featureMaps: optional(positiveInt), repeats: optional(array(count, { length: 2 })), patchStem: optional(boolean()) },
    'vgg16-reduced': { widthDivisor: optional(positiveInt), extraStages: optional(count), fc6Dilation: optional(positiveInt) },
  }),
  inputSize: object({ width: positiveInt, height: positiveInt }),
  classNames: array(string(), { minLength: 1 }),
  anchors: object({
    minScale: positive,
    maxScale: positive,
    aspectRatios: either(
      'an array of ratios > 0, or one such array per feature map',
      array(positive, { minLength: 1 }),
      array(array(positive, { minLength: 1 }), { minLength: 1 }),
    ),
    extraScale: optional(boolean()),
    clip: optional(boolean()),
  }),
  boxCoder: optional(object({ centerVariance: optional(positive), sizeVariance: optional(positive), maxLogSize: optional(positive) })),
  matcher: optional(object({ iouThreshold: optional(fraction), ignoreOverlap: optional(fraction) })),
  loss: optional(
    object({
      negPosRatio: optional(number({ min: 0 })),
      minNegatives: optional(count),
      locWeight: optional(number({ min: 0 })),
      negativeSigma: optional(string(['detached', 'through'])),
      boxSigmaGradient: optional(string(['sum', 'mean'])),
    }),
  ),
  postprocess: optional(
    object({ scoreThreshold: optional(fraction), nmsIoU: optional(fraction), topKPerClass: optional(positiveInt), maxDetections: optional(positiveInt) }),
  ),
});

const detectorCheck: Check = object({
  description: optional(string()),
  model: modelCheck,
  data: object({
    root: string(),
    split: string(SPLITS),
    valSplit: string(SPLITS),
    valLimit: optional(count),
    cacheImages: optional(boolean()),
    pipeline: optional(string(['simple', 'ssd'])),
    workers: optional(count),
    synthetic: optional(object({ images: positiveInt, seed: number({ integer: true }), width: optional(positiveInt), height: optional(positiveInt) })),
  }),
  train: object({
    epochs: positiveInt,
    batchSize: positiveInt,
    seed: number({ integer: true }),
    optimizer: object({
      name: string(['sgd', 'adam']),
      momentum: optional(number({ min: 0 })),
      weightDecay: optional(number({ min: 0 })),
      beta1: optional(fraction),
      beta2: optional(fraction),
      epsilon: optional(positive),
    }),
    lr: positive,
    warmupSteps: optional(count),
    warmupFactor: optional(positive),
    milestones: optional(array(number({ min: 0 }))),
    gamma: optional(positive),
    augment: optional(object({ flip: optional(boolean()), brightness: optional(number({ min: 0, max: 255 })), contrast: optional(fraction) })),
    logEvery: optional(positiveInt),
    valEvery: optional(count),
    checkpointEvery: optional(count),
    valAtStart: optional(boolean()),
  }),
  curriculum: object({
    mode: string(['none', 'instance']),
    instance: optional(kindOptionsCheck),
    clamp: optional(nullable(sigmaBoundsCheck)),
  }),
  out: optional(string()),
});

/** Checks a parsed detector config: every key known, every value of the right type and range. */
export function validateDetectorConfig(raw: unknown, file = 'config'): DetectorConfig {
  const config = checkConfig<DetectorConfig>(raw, detectorCheck, file);
  if ((config.data.workers ?? 0) > 0 && config.data.cacheImages === true) {
    throw new Error(`${file}: data.workers decode in worker threads and cannot be combined with data.cacheImages (set one of them off)`);
  }
  return config;
}

export async function readDetectorConfig(file: string): Promise<DetectorConfig> {
  return validateDetectorConfig(await readJsonConfig(file), file);
}
