/** data-params: the public API. */
export { initBackend, parseBackendName, BACKEND_NAMES } from './runtime/backend.js';
export type { BackendName, BackendChoice, ConcreteBackend } from './runtime/backend.js';
export { Rng } from './util/rng.js';
export type { RngState } from './util/rng.js';
export { saveCheckpoint, loadCheckpoint } from './util/checkpoint.js';
export type { Checkpoint, CheckpointArray } from './util/checkpoint.js';
export {
  evaluateKitti,
  evaluateKittiDetailed,
  evaluateKittiDirs,
  readKittiDirs,
  formatKittiJson,
  formatKittiTable,
  KITTI_EVAL_CLASSES,
  parseKittiEvalClasses,
} from '../detection/kitti-eval/index.js';
export type { KittiApEntry, KittiApDetail, KittiEvalResult, KittiEvalInput, KittiEvalClass, KittiDirsOptions } from '../detection/kitti-eval/index.js';
