/** data-params: the public API. */
export { initBackend, parseBackendName, BACKEND_NAMES } from './runtime/backend.js';
export type { BackendName, BackendChoice, ConcreteBackend } from './runtime/backend.js';
export { Rng } from './util/rng.js';
export type { RngState } from './util/rng.js';
export { saveCheckpoint, loadCheckpoint } from './util/checkpoint.js';
export type { Checkpoint, CheckpointArray } from './util/checkpoint.js';
export { KittiDataset, KittiInputError, KITTI_CLASSES, KITTI_NEIGHBOUR_CLASSES } from '../datasets/kitti/dataset.js';
export type { KittiBox, KittiRecord, KittiOpenOptions, KittiSplit } from '../datasets/kitti/dataset.js';
export { parseKittiObjects, formatKittiObject, formatKittiDetection, kittiDifficulty, KittiFormatError } from '../datasets/kitti/label-file.js';
export type { KittiObject, KittiDifficulty } from '../datasets/kitti/label-file.js';
export { writeKittiResults } from '../datasets/kitti/result-writer.js';
export type { KittiDetection } from '../datasets/kitti/result-writer.js';
export { generateSyntheticKitti } from '../datasets/synthetic-kitti/generate.js';
export type { SyntheticKittiOptions, SyntheticKittiSummary } from '../datasets/synthetic-kitti/generate.js';
