/**
 * data-params: the shared core (backend selection, data parameters, checkpoints, run records and their pictures, label
 * review, model-building blocks). Each area has its own entry: data-params/detection, data-params/classification,
 * data-params/datasets; the wasm training kernels are data-params/wasm-training, the browser entry data-params/browser.
 */
export { initBackend, parseBackendName, BACKEND_NAMES } from './runtime/backend.js';
export type { BackendName, BackendChoice, ConcreteBackend } from './runtime/backend.js';
export { Rng } from './util/rng.js';
export type { RngState } from './util/rng.js';
export { saveCheckpoint, loadCheckpoint } from './util/checkpoint.js';
export type { Checkpoint, CheckpointArray } from './util/checkpoint.js';
export * from './data-parameters/index.js';
// The training harness's errors, which both trainers throw.
export { NonFiniteLossError, TrainingInputError, ResumeMismatchError, RunDirError } from './training/harness.js';
export type { ConfigChange } from './training/harness.js';
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
