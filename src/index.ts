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
