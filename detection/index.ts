/** data-params/detection: SSD with per-box data parameters (model, loss, training, configs, label review, KITTI evaluation). */
export { AnchorGenerator, featureMapSizes } from './anchors/anchor-generator.js';
export type { AnchorGeneratorOptions, Anchors, InputSize, FeatureMapSize } from './anchors/anchor-generator.js';
export { BoxCoder } from './box-coder.js';
export { Matcher, NEGATIVE, IGNORED } from './matcher.js';
export { MultiBoxLoss } from './loss.js';
export type { MultiBoxLossOptions, LossParts } from './loss.js';
export { Postprocessor } from './postprocess.js';
export type { Detection, PostprocessOptions } from './postprocess.js';
export { buildTargets } from './targets.js';
export type { ImageTargets, BatchTargets } from './targets.js';
export { SSD } from './model/ssd.js';
export type { SSDParts, Predictions } from './model/ssd.js';
export { LightBackbone } from './model/backbones/light.js';
export { Vgg16ReducedBackbone } from './model/backbones/vgg16-reduced.js';
export type { Backbone } from './model/backbones/backbone.js';
export { buildSSD } from './model/build.js';
export type { SSDSpec, BackboneSpec } from './model/build.js';
export { saveSSD, loadSSD } from './model/io.js';
export { detectorLoader, trainingBatch } from './train/batches.js';
export type { DetectionRecord, DetectionBox, DetectorLoaderOptions, Batch } from './train/batches.js';
export { trainDetector, trainStep } from './train/trainer.js';
export type { TrainRunOptions, TrainRunResult } from './train/trainer.js';
export { readDetectorConfig, validateDetectorConfig, trainingAugmentation, DETECTOR_DATA_DEFAULTS, DETECTOR_TRAIN_DEFAULTS, DETECTION_INSTANCE_DEFAULTS } from './config.js';
export type { DetectorConfig, DetectorCurriculum } from './config.js';
export { detectionBoxScores, rankBoxes, detectionReviewCsv, writeDetectionReview, trainedBoxesOf, DETECTION_REVIEW_COLUMNS } from './train/box-scores.js';
export type { BoxScores, ReviewedBox } from './train/box-scores.js';
export {
  evaluateKitti,
  evaluateKittiDetailed,
  evaluateKittiDirs,
  readKittiDirs,
  formatKittiJson,
  formatKittiTable,
  KITTI_EVAL_CLASSES,
  parseKittiEvalClasses,
} from './kitti-eval/index.js';
export type { KittiApEntry, KittiApDetail, KittiEvalResult, KittiEvalInput, KittiEvalClass, KittiDirsOptions } from './kitti-eval/index.js';
