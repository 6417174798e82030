/** data-params: the public API. */
export { initBackend, parseBackendName, BACKEND_NAMES } from './runtime/backend.js';
export type { BackendName, BackendChoice, ConcreteBackend } from './runtime/backend.js';
export { Rng } from './util/rng.js';
export type { RngState } from './util/rng.js';
export { saveCheckpoint, loadCheckpoint } from './util/checkpoint.js';
export type { Checkpoint, CheckpointArray } from './util/checkpoint.js';
export {
  DataParameters,
  CURRICULUM_MODES,
  DEFAULT_CLAMP,
  softmaxCrossEntropy,
  omitGradients,
} from './data-parameters/data-parameters.js';
export type {
  CurriculumMode,
  DataParametersOptions,
  DataParametersState,
  DataParameterStats,
  KindOptions,
  SigmaBounds,
  SigmaStats,
  IndexInput,
} from './data-parameters/data-parameters.js';
export {
  RunRecorder,
  readRun,
  summariseSigma,
  sigmaGroups,
  noisyTopFraction,
  RunRecordError,
  MANIFEST_FILE,
  SIGMA_FILE,
  METRICS_FILE,
} from './records/run-records.js';
export type {
  RunTask,
  Difficulty,
  TrackedInstance,
  RunManifest,
  SigmaSummary,
  SigmaEntry,
  MetricsKind,
  MetricsEntry,
  RunRecords,
  ReadRunOptions,
  GroupableInstance,
} from './records/run-records.js';
export { KittiDataset, KittiInputError, KITTI_CLASSES, KITTI_NEIGHBOUR_CLASSES } from '../datasets/kitti/dataset.js';
export type { KittiBox, KittiRecord, KittiOpenOptions, KittiSplit } from '../datasets/kitti/dataset.js';
export { parseKittiObjects, formatKittiObject, formatKittiDetection, kittiDifficulty, KittiFormatError } from '../datasets/kitti/label-file.js';
export type { KittiObject, KittiDifficulty } from '../datasets/kitti/label-file.js';
export { writeKittiResults } from '../datasets/kitti/result-writer.js';
export type { KittiDetection } from '../datasets/kitti/result-writer.js';
export { generateSyntheticKitti, ensureSyntheticKitti, SYNTHETIC_KITTI_DEFAULT_SIZE } from '../datasets/synthetic-kitti/generate.js';
export type { SyntheticKittiOptions, SyntheticKittiSummary, SyntheticKittiManifest } from '../datasets/synthetic-kitti/generate.js';
export { DetectionLoader, kittiDetectionItems, prepareSample, SSD_AUGMENTATION } from '../datasets/pipeline/loader.js';
export type { DetectionBatch, DetectionItem, DetectionLoaderOptions, LoaderState, AugmentOptions } from '../datasets/pipeline/loader.js';
export type { DetectionTarget, RawImage, Affine } from '../datasets/pipeline/types.js';
export { boxesToSource, planGeometry, cropTarget, flipBoxes } from '../datasets/pipeline/geometry.js';
export type { GeometricAugmentOptions } from '../datasets/pipeline/geometry.js';
export type { PhotometricOptions, NormaliseOptions } from '../datasets/pipeline/render.js';
export { decodeImage, ImageDecodeError } from '../datasets/pipeline/decode.js';
