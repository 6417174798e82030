/**
 * Training kernels for the WebAssembly backend: gradients that tfjs-backend-wasm 4.22 lacks (Conv2DBackpropFilter,
 * the depthwise backprops, UnsortedSegmentSum), computes wrongly (MaxPoolGrad on non-positive windows,
 * ResizeBilinearGrad with half-pixel centres) or slowly
 * (Conv2DBackpropInput, Tile). Registered once, before the wasm backend is selected; built-ins are unregistered first.
 */
import * as tf from '@tensorflow/tfjs';
import { conv2DBackpropFilter, conv2DBackpropInput } from './conv2d-backprop.js';
import { depthwiseConv2dNativeBackpropFilter, depthwiseConv2dNativeBackpropInput } from './depthwise-backprop.js';
import { maxPoolGrad } from './max-pool-grad.js';
import { resizeBilinearGrad } from './resize-bilinear-grad.js';
import { tile } from './tile.js';
import { unsortedSegmentSum } from './unsorted-segment-sum.js';
import type { KernelArgs, TensorInfo } from './wasm-kernel-utils.js';

let registered: string[] | null = null;

function register(name: string, kernel: (args: KernelArgs) => TensorInfo): void {
  if (tf.getKernel(name, 'wasm') !== undefined) tf.unregisterKernel(name, 'wasm');
  tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc: kernel as unknown as tf.KernelFunc });
}

/** Registers the wasm training kernels (idempotent) and returns their names. */
export function registerWasmTrainingKernels(): string[] {
  if (registered !== null) return registered;
  const kernels: [string, (args: KernelArgs) => TensorInfo][] = [
    ['Conv2DBackpropFilter', conv2DBackpropFilter],
    ['Conv2DBackpropInput', conv2DBackpropInput],
    ['DepthwiseConv2dNativeBackpropInput', depthwiseConv2dNativeBackpropInput],
    ['DepthwiseConv2dNativeBackpropFilter', depthwiseConv2dNativeBackpropFilter],
    ['MaxPoolGrad', maxPoolGrad],
    ['UnsortedSegmentSum', unsortedSegmentSum],
    ['ResizeBilinearGrad', resizeBilinearGrad],
    ['Tile', tile],
  ];
  for (const [name, kernel] of kernels) register(name, kernel);
  registered = kernels.map(([name]) => name);
  return registered;
}
