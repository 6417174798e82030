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
export { visualizeCurriculum, renderCurriculum, pickSnapshots } from './visualize/curriculum-report.js';
export type { VisualizeOptions, VisualizeResult, Figure, FigureSection } from './visualize/curriculum-report.js';
export { linePlot, niceTicks, niceScale } from './visualize/line-plot.js';
export type { LinePlotSpec, PlotSeries, ReferenceLine } from './visualize/line-plot.js';
export { boxStripSvg, layoutStrip, strokeWidth } from './visualize/box-curriculum.js';
export type { StripSpec, StripBox, StripSnapshot, StripImage, StripLayout } from './visualize/box-curriculum.js';
export { svgToPng } from './visualize/svg.js';
