/**
 * data-params/wasm-training: training kernels for @tensorflow/tfjs-backend-wasm 4.22 (gradients it lacks or computes
 * wrongly, faster paths for the ops a training step runs, threads in Node), usable with plain tfjs and nothing else
 * of this package. Call registerWasmTrainingKernels() once, then tf.setBackend('wasm'). See
 * src/runtime/wasm-training/README.md.
 */
export {
  registerWasmTrainingKernels,
  wasmThreadsState,
  wasmThreadsChoice,
  requestedWasmThreads,
  WasmThreadsError,
  batchNormTraining,
  fusedBatchNormApplies,
} from './runtime/wasm-training/index.js';
export type { WasmThreadsState, WasmThreadsChoice, BatchNormTrainingOptions, BatchNormTrainingResult } from './runtime/wasm-training/index.js';
export { describeWasmBuild } from './runtime/wasm-training/threads.js';
export { setKernelPoolEnabled } from './runtime/wasm-training/kernel-pool.js';
