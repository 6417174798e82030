/**
 * Training kernels for the WebAssembly backend: gradients that tfjs-backend-wasm 4.22 lacks (Conv2DBackpropFilter,
 * the depthwise backprops, UnsortedSegmentSum), computes wrongly (MaxPoolGrad on non-positive windows,
 * ResizeBilinearGrad with half-pixel centres, the convolutions' 'same' padding where a stride exceeds the filter) or slowly
 * (Conv2DBackpropInput, Tile, Identity/Cast copies, Slice, row-copying Transpose, Space/BatchToSpaceND). Registered once, before the wasm backend is selected; built-ins are unregistered first, and the
 * fast paths fall back to the built-in for the cases they do not cover.
 */
import * as tf from '@tensorflow/tfjs';
import { fusedBatchNormPerChannel } from './batch-norm.js';
import { registerBatchNormGradient } from './batch-norm-grad.js';
import { batchNormTrainingKernels } from './batch-norm-training.js';
import { binaryBroadcastFastPaths } from './binary-broadcast.js';
import { conv2DBackpropFilter, conv2DBackpropInput } from './conv2d-backprop.js';
import { tapConv2D } from './conv-taps.js';
import { patchConv2D } from './conv-patches.js';
import { registerElementwiseGradients } from './elementwise-gradients.js';
import { depthwiseConv2dNativeBackpropFilter, depthwiseConv2dNativeBackpropInput } from './depthwise-backprop.js';
import { expSimd } from './exp.js';
import { installHeapGuard } from './heap-guard.js';
import { reluPooled, squarePooled } from './pooled-elementwise.js';
import { castSameDtype, identity } from './identity-cast.js';
import { padLastAxis, sliceLastAxis } from './last-axis-rows.js';
import { maxPoolGrad } from './max-pool-grad.js';
import { sliceViews, splitViews } from './slice.js';
import { batchToSpaceND, spaceToBatchND } from './space-batch.js';
import { registerReductionGradients } from './reduction-gradients.js';
import { meanLeadingAxes, sumLeadingAxes } from './reductions.js';
import { resizeBilinearGrad } from './resize-bilinear-grad.js';
import { samePaddingKernels, withCorrectPadding } from './same-padding.js';
import { installThreadedWasmFactory } from './threads.js';
import { tile } from './tile.js';
import { transpose } from './transpose.js';
import { unsortedSegmentSum } from './unsorted-segment-sum.js';
import { winogradConv2D, winogradConv2DBackpropFilter } from './winograd.js';
import type { KernelArgs, TensorInfo } from './wasm-kernel-utils.js';

let registered: string[] | null = null;

function register(name: string, kernel: (args: KernelArgs) => TensorInfo | TensorInfo[]): void {
  if (tf.getKernel(name, 'wasm') !== undefined) tf.unregisterKernel(name, 'wasm');
  tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc: kernel as unknown as tf.KernelFunc });
}

/** Replaces a built-in by a fast path that returns null when it does not apply; the built-in handles the rest. */
function registerFastPath(name: string, fast: (args: KernelArgs) => TensorInfo | TensorInfo[] | null): void {
  const builtIn = tf.getKernel(name, 'wasm');
  if (builtIn === undefined) throw new Error(`wasm training kernels: built-in wasm kernel '${name}' is missing`);
  tf.unregisterKernel(name, 'wasm');
  const config: tf.KernelConfig = {
    ...builtIn,
    kernelFunc: ((args: KernelArgs) => fast(args) ?? builtIn.kernelFunc(args)) as unknown as tf.KernelFunc,
  };
  tf.registerKernel(config);
}

/** Replaces a built-in by `wrap(built-in)` (see same-padding.ts). */
function registerBuiltInFix(name: string, wrap: (builtIn: (args: KernelArgs) => TensorInfo | TensorInfo[]) => (args: KernelArgs) => TensorInfo | TensorInfo[]): void {
  const builtIn = tf.getKernel(name, 'wasm');
  if (builtIn === undefined) throw new Error(`wasm training kernels: built-in wasm kernel '${name}' is missing`);
  tf.unregisterKernel(name, 'wasm');
  const kernelFunc = wrap(builtIn.kernelFunc);
  tf.registerKernel({ ...builtIn, kernelFunc: kernelFunc as unknown as tf.KernelFunc });
}

/**
 * Registers the wasm training kernels (idempotent) and returns their names. Also arranges for the wasm backend, when
 * it starts, to use the threaded-SIMD build with one thread per core unless DATA_PARAMS_WASM_THREADS says otherwise
 * or the cores are already busy (threads.ts),
 * and replaces the Sum and Mean gradients on wasm by ones without a full-size `ones` tensor, and FusedBatchNorm's by
 * one kernel (batch-norm-grad.ts).
 */
export function registerWasmTrainingKernels(): string[] {
  if (registered !== null) return registered;
  installThreadedWasmFactory();
  registerReductionGradients();
  registerBatchNormGradient();
  registerElementwiseGradients();
  const kernels: [string, (args: KernelArgs) => TensorInfo | TensorInfo[]][] = [
    ['Conv2DBackpropFilter', conv2DBackpropFilter],
    ['Conv2DBackpropInput', conv2DBackpropInput],
    ['DepthwiseConv2dNativeBackpropInput', depthwiseConv2dNativeBackpropInput],
    ['DepthwiseConv2dNativeBackpropFilter', depthwiseConv2dNativeBackpropFilter],
    ['MaxPoolGrad', maxPoolGrad],
    ['UnsortedSegmentSum', unsortedSegmentSum],
    ['ResizeBilinearGrad', resizeBilinearGrad],
    ['Tile', tile],
    ['Identity', identity],
    ['SpaceToBatchND', spaceToBatchND],
    ['BatchToSpaceND', batchToSpaceND],
    ...batchNormTrainingKernels,
  ];
  const fastPaths: [string, (args: KernelArgs) => TensorInfo | TensorInfo[] | null][] = [
    ['Cast', castSameDtype],
    ['Slice', sliceViews],
    ['Transpose', transpose],
    ['Sum', sumLeadingAxes],
    ['Mean', meanLeadingAxes],
    ['FusedBatchNorm', fusedBatchNormPerChannel],
    ...binaryBroadcastFastPaths,
    ['Exp', expSimd],
    ['Square', squarePooled],
    ['Relu', reluPooled],
    ['Slice', sliceLastAxis], // tried before sliceViews (registered above), which it falls back to
    ['PadV2', padLastAxis],
    ['SplitV', splitViews],
    ['Conv2D', winogradConv2D],
    ['Conv2D', tapConv2D], // tried before Winograd (stride 1 only), which it falls back to
    ['Conv2D', patchConv2D], // inputs with fewer channels than the tap GEMMs take
    ['Conv2DBackpropFilter', winogradConv2DBackpropFilter], // (wraps conv2d-backprop.ts's kernel, registered above)
  ];
  for (const [name, kernel] of kernels) register(name, kernel);
  // Before the fast paths, which fall back to these.
  for (const [name, depthwise] of samePaddingKernels) registerBuiltInFix(name, (builtIn) => withCorrectPadding(name, builtIn, depthwise));
  for (const [name, fast] of fastPaths) registerFastPath(name, fast);
  installHeapGuard();
  const names = [...kernels, ...samePaddingKernels, ...fastPaths].map(([name]) => name);
  registered = [...new Set(names)]; // (Slice, Conv2D, Conv2DBackpropFilter more than once)
  return registered;
}

export { batchNormTraining, fusedBatchNormApplies } from './batch-norm-op.js';
export type { BatchNormTrainingOptions, BatchNormTrainingResult } from './batch-norm-op.js';
export { WasmHeapExhaustedError } from './heap-guard.js';
export type { KernelCall } from './heap-guard.js';
export { wasmThreadsState, wasmThreadsChoice, requestedWasmThreads, WasmThreadsError } from './threads.js';
export type { WasmThreadsState, WasmThreadsChoice } from './threads.js';
