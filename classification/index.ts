/** data-params/classification: image classifiers trained with per-class and per-instance data parameters. */
export { Classifier, BasicBlock, WideBlock, resnet, resnet18, wideResNet, smallCnn } from './models/models.js';
export type { ClassifierModel, ResNetOptions, WideResNetOptions, SmallCnnOptions } from './models/models.js';
export { InMemoryImageData, FileImageData, randomResizedCropBox, stratifiedSubset } from './input/image-data.js';
export type { ClassificationData, PadCropFlip, RandomResizedCrop } from './input/image-data.js';
export { topKCorrect, expectedCalibrationError, fitTemperature, nllAt } from './training/metrics.js';
export { ClassifierTrainer, DEFAULT_TRAINER_CONFIG } from './training/trainer.js';
export type { TrainerConfig, TrainerParts, EpochSummary, TrainResult, CalibrationResult } from './training/trainer.js';
export { classificationSampleScores, reviewClassificationSet, writeClassificationReview } from './training/sample-scores.js';
export type { ClassificationSampleScores } from './training/sample-scores.js';
export { readConfig, validateConfig, applyOverrides, buildRun, dataParameterSettings, trainerConfig } from './config.js';
export type { ClassifierRunConfig, ConfigOverrides } from './config.js';
