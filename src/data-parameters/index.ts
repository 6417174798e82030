/** The data-parameters API as both the Node and the browser entries export it (no Node built-ins). */
export {
  DataParameters,
  CURRICULUM_MODES,
  DEFAULT_CLAMP,
  softmaxCrossEntropy,
  omitGradients,
} from './data-parameters.js';
export type {
  CurriculumMode,
  DataParametersOptions,
  DataParametersState,
  DataParameterStats,
  KindOptions,
  SigmaBounds,
  SigmaStats,
  IndexInput,
} from './data-parameters.js';
