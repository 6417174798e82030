/** data-params: the public API. */
export { initBackend, parseBackendName, BACKEND_NAMES } from './runtime/backend.js';
export type { BackendName, BackendChoice, ConcreteBackend } from './runtime/backend.js';
export { Rng } from './util/rng.js';
export type { RngState } from './util/rng.js';
export { saveCheckpoint, loadCheckpoint } from './util/checkpoint.js';
export type { Checkpoint, CheckpointArray } from './util/checkpoint.js';
export * from './data-parameters/index.js';
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
// Label review: which labels are likely wrong (σ, with the loss and confident-learning rankings beside it).
export {
  rankSuspects,
  scoresFromLogits,
  sigmaOfSamples,
  orderByScore,
  ranksOf,
  precisionAtK,
  recallAtK,
  rocAuc,
  rankingQuality,
  formatCsv,
  parseCsv,
  classificationReviewCsv,
  LABEL_REVIEW_FILE,
  CLASSIFICATION_REVIEW_COLUMNS,
} from './review/label-review.js';
export type { SampleScores, Suspect, SuspectRanking, RankSuspectsInput, RankingQuality, CsvValue } from './review/label-review.js';
// Classification: readers, label noise, models, trainer.
export { DatasetFormatError } from '../datasets/idx/dataset-format-error.js';
export { parseIdx, readIdxFile, encodeIdxUint8 } from '../datasets/idx/idx-file.js';
export type { IdxArray, IdxData } from '../datasets/idx/idx-file.js';
export { loadMnistLike, FASHION_MNIST_CLASSES, DEBIAN_FASHION_MNIST_DIR } from '../datasets/idx/mnist-like.js';
export type { GreyImageSet } from '../datasets/idx/mnist-like.js';
export { parseCifarBatch, encodeCifarBatch, loadCifar } from '../datasets/cifar/cifar-binary.js';
export type { CifarVariant, ColorImageSet } from '../datasets/cifar/cifar-binary.js';
export { parseSynsetMapping, readSynsetMapping, synsetMapFromNames } from '../datasets/imagenet/synsets.js';
export type { SynsetMap } from '../datasets/imagenet/synsets.js';
export {
  loadImageNetTrain,
  loadImageNetVal,
  imagenetSynsets,
  readImageFolder,
  parseVocClassLabel,
  parseLocValSolution,
  parseLabelList,
} from '../datasets/imagenet/imagenet.js';
export type { ImageFileSet, ImageNetOptions, ValidationLabels } from '../datasets/imagenet/imagenet.js';
export { FileList, readFileLists, loadWebVisionList, webVisionImagePath } from '../datasets/webvision/file-list.js';
export type { WebVisionOptions, WebVisionSource } from '../datasets/webvision/file-list.js';
export { corruptLabels, corruptedFractionInTop, noisyRanking, parseNoiseModel, NOISE_MODELS } from '../datasets/noisy-labels/noisy-labels.js';
export type { NoiseModel, NoisyLabels } from '../datasets/noisy-labels/noisy-labels.js';
export { Classifier, BasicBlock, WideBlock, resnet, resnet18, wideResNet, smallCnn } from '../classification/models/models.js';
export type { ClassifierModel, ResNetOptions, WideResNetOptions, SmallCnnOptions } from '../classification/models/models.js';
export { InMemoryImageData, FileImageData, randomResizedCropBox, stratifiedSubset } from '../classification/input/image-data.js';
export type { ClassificationData, PadCropFlip, RandomResizedCrop } from '../classification/input/image-data.js';
export { topKCorrect, expectedCalibrationError, fitTemperature, nllAt } from '../classification/training/metrics.js';
export { ClassifierTrainer, DEFAULT_TRAINER_CONFIG } from '../classification/training/trainer.js';
export { classificationSampleScores, reviewClassificationSet, writeClassificationReview } from '../classification/training/sample-scores.js';
export type { ClassificationSampleScores } from '../classification/training/sample-scores.js';
export type { TrainerConfig, TrainerParts, EpochSummary, TrainResult, CalibrationResult } from '../classification/training/trainer.js';
export { readConfig, validateConfig, applyOverrides, buildRun, dataParameterSettings, trainerConfig } from '../classification/config.js';
export type { ClassifierRunConfig, ConfigOverrides } from '../classification/config.js';
export { KittiDataset, KittiInputError, KITTI_CLASSES, KITTI_NEIGHBOUR_CLASSES } from '../datasets/kitti/dataset.js';
export type { KittiBox, KittiRecord, KittiOpenOptions, KittiSplit } from '../datasets/kitti/dataset.js';
export { parseKittiObjects, formatKittiObject, formatKittiDetection, kittiDifficulty, KittiFormatError } from '../datasets/kitti/label-file.js';
export type { KittiObject, KittiDifficulty } from '../datasets/kitti/label-file.js';
export { writeKittiResults } from '../datasets/kitti/result-writer.js';
export type { KittiDetection } from '../datasets/kitti/result-writer.js';
export { generateSyntheticKitti, ensureSyntheticKitti, SYNTHETIC_KITTI_DEFAULT_SIZE } from '../datasets/synthetic-kitti/generate.js';
export type { SyntheticKittiOptions, SyntheticKittiSummary, SyntheticKittiManifest } from '../datasets/synthetic-kitti/generate.js';
export { CORRUPTION_KINDS, CORRUPTION_RECORD_FILE, CORRUPTION_RECORD_COLUMNS } from '../datasets/synthetic-kitti/corrupt-boxes.js';
export type { CorruptionKind, Corruption } from '../datasets/synthetic-kitti/corrupt-boxes.js';
export { DetectionLoader, kittiDetectionItems, prepareSample, SSD_AUGMENTATION } from '../datasets/pipeline/loader.js';
export type { DetectionBatch, DetectionItem, DetectionLoaderOptions, LoaderState, AugmentOptions } from '../datasets/pipeline/loader.js';
export type { DetectionTarget, RawImage, Affine } from '../datasets/pipeline/types.js';
export { boxesToSource, planGeometry, cropTarget, flipBoxes } from '../datasets/pipeline/geometry.js';
export type { GeometricAugmentOptions } from '../datasets/pipeline/geometry.js';
export type { PhotometricOptions, NormaliseOptions } from '../datasets/pipeline/render.js';
export { decodeImage, ImageDecodeError } from '../datasets/pipeline/decode.js';
export { visualizeCurriculum, renderCurriculum, pickSnapshots } from './visualize/curriculum-report.js';
export type { VisualizeOptions, VisualizeResult, Figure, FigureSection } from './visualize/curriculum-report.js';
export { linePlot, niceTicks, niceScale } from './visualize/line-plot.js';
export type { LinePlotSpec, PlotSeries, ReferenceLine } from './visualize/line-plot.js';
export { boxStripSvg, layoutStrip, strokeWidth } from './visualize/box-curriculum.js';
export type { StripSpec, StripBox, StripSnapshot, StripImage, StripLayout } from './visualize/box-curriculum.js';
export { svgToPng } from './visualize/svg.js';
// Shared model-building primitives (both trainers)
export { ParamStore, heNormal, normalInit, uniformInit, constantInit } from './nn/param-store.js';
export type { Init } from './nn/param-store.js';
export { Conv2d, dilatedConv, BatchNorm, L2Norm, Linear, Relu, MaxPool, GlobalAvgPool, Flatten, Sequential } from './nn/layers.js';
export type { Layer, Conv2dOptions, BatchNormOptions } from './nn/layers.js';
export { ModelOptimizer } from './nn/optimizer.js';
export type { OptimizerName, OptimizerOptions, OptimizerState } from './nn/optimizer.js';
export { learningRate, scheduledLr } from './nn/lr-schedule.js';
export type { StepSchedule } from './nn/lr-schedule.js';
// Detection (SSD with per-box data parameters)
export { AnchorGenerator, featureMapSizes } from '../detection/anchors/anchor-generator.js';
export type { AnchorGeneratorOptions, Anchors, InputSize, FeatureMapSize } from '../detection/anchors/anchor-generator.js';
export { BoxCoder } from '../detection/box-coder.js';
export { Matcher, NEGATIVE, IGNORED } from '../detection/matcher.js';
export { MultiBoxLoss } from '../detection/loss.js';
export type { MultiBoxLossOptions, LossParts } from '../detection/loss.js';
export { Postprocessor } from '../detection/postprocess.js';
export type { Detection, PostprocessOptions } from '../detection/postprocess.js';
export { buildTargets } from '../detection/targets.js';
export type { ImageTargets, BatchTargets } from '../detection/targets.js';
export { SSD } from '../detection/model/ssd.js';
export type { SSDParts, Predictions } from '../detection/model/ssd.js';
export { LightBackbone } from '../detection/model/backbones/light.js';
export { Vgg16ReducedBackbone } from '../detection/model/backbones/vgg16-reduced.js';
export type { Backbone } from '../detection/model/backbones/backbone.js';
export { buildSSD } from '../detection/model/build.js';
export type { SSDSpec, BackboneSpec } from '../detection/model/build.js';
export { saveSSD, loadSSD } from '../detection/model/io.js';
export { sharpImageReader } from '../detection/train/data.js';
export type { DetectionRecord, DetectionBox, ImageReader, Batch } from '../detection/train/data.js';
export { trainDetector, trainStep, NonFiniteLossError } from '../detection/train/trainer.js';
export type { TrainRunOptions, TrainRunResult } from '../detection/train/trainer.js';
export { readDetectorConfig, validateDetectorConfig, DETECTOR_TRAIN_DEFAULTS, DETECTION_INSTANCE_DEFAULTS } from '../detection/config.js';
export type { DetectorConfig, DetectorCurriculum } from '../detection/config.js';
export { detectionBoxScores, rankBoxes, detectionReviewCsv, writeDetectionReview, trainedBoxesOf, DETECTION_REVIEW_COLUMNS } from '../detection/train/box-scores.js';
export type { BoxScores, ReviewedBox } from '../detection/train/box-scores.js';
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
export {
  registerWasmTrainingKernels,
  wasmThreadsState,
  wasmThreadsChoice,
  requestedWasmThreads,
  WasmThreadsError,
} from './runtime/wasm-training/index.js';
export type { WasmThreadsState, WasmThreadsChoice } from './runtime/wasm-training/index.js';
