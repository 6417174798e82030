/**
 * Element-wise kernels of large float32 tensors split between the kernel pool's threads, where the built-ins run on
 * one thread: Square and Relu (the variance in tf.moments and the activation, at every batch norm) here, and the
 * equal-shape Add/Sub/Multiply of binary-broadcast.ts. The same values as the built-ins (one float32 operation per
 * element; Relu as simd-kernels.ts' relu explains); without a pool, for small tensors or other dtypes, the built-ins.
 */
import * as tf from '@tensorflow/tfjs';
import { kernelPool, runRows } from './kernel-pool.js';
import { heapOffset, simdKernels } from './simd-kernels.js';
import type { BackendWasm, KernelArgs, TensorInfo } from './wasm-kernel-utils.js';

/**
 * out = f(inputs...) element by element (simd-kernels.ts' `name`, called as (inputs..., groups of 4, out)) over float32
 * tensors of `shape`, split between the kernel pool's threads; null, for the built-in, without a pool, below 512 KB
 * read and written, or for sizes that are not a multiple of 4.
 */
export function pooledElementwise(backend: BackendWasm, name: string, inputs: TensorInfo[], shape: number[]): TensorInfo | null {
  const n = tf.util.sizeFromShape(shape);
  if (inputs.some((t) => t.dtype !== 'float32') || n % 4 !== 0 || n * 4 * (inputs.length + 1) < 1 << 19) return null;
  const kernels = kernelPool(backend) === null ? null : simdKernels(backend);
  if (kernels === null) return null;
  const out = backend.makeOutput(shape, 'float32');
  const call = [...inputs.map((t) => heapOffset(backend, t)), n / 4, heapOffset(backend, out)];
  const moving = [...inputs.map((_, i) => i), inputs.length + 1].map((i) => [i, 16] as [number, number]);
  runRows(backend, kernels, name, call, inputs.length, moving);
  return out;
}

function unaryPooled(name: 'square' | 'relu'): (args: KernelArgs) => TensorInfo | null {
  return (args) => {
    const x = args.inputs['x'];
    return x === undefined ? null : pooledElementwise(args.backend, name, [x], x.shape);
  };
}

export const squarePooled = unaryPooled('square');
export const reluPooled = unaryPooled('relu');
