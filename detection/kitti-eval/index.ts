/** The official KITTI 2D object metric (devkit rules), in memory and on label/result directories. */
export { KITTI_EVAL_CLASSES, KITTI_CLASS_PARAMS, isKittiEvalClass, parseKittiEvalClasses } from './classes.js';
export type { KittiEvalClass, KittiClassParams } from './classes.js';
export {
  evaluateKitti,
  evaluateKittiDetailed,
  selectThresholds,
  monotonePrecision,
  averagePrecision11,
  averagePrecisionR40,
  N_SAMPLE_PTS,
} from './evaluate.js';
export type { KittiApEntry, KittiApDetail, KittiClassResult, KittiEvalResult, KittiEvalInput } from './evaluate.js';
export { readKittiDirs, readKittiDirsAsync, readIdsFile, evaluateKittiDirs, PARALLEL_MIN_IMAGES } from './read-dirs.js';
export type { KittiDirsOptions, KittiDirsData } from './read-dirs.js';
export { formatKittiJson, formatKittiTable } from './format.js';
