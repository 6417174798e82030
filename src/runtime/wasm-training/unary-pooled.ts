/**
 * Square and Relu of large float32 tensors (the variance in tf.moments and the activation, at every batch norm)
 * split between the kernel pool's threads: the built-ins run on one thread. The same values as the built-ins (one
 * float32 product; Relu as simd-kernels.ts' relu explains); without a pool, for small tensors or other dtypes, the
 * built-ins.
 */
import * as tf from '@tensorflow/tfjs';
import { kernelPool, runRows } from './kernel-pool.js';
import { heapOffset, simdKernels } from './simd-kernels.js';
import type { KernelArgs, TensorInfo } from './wasm-kernel-utils.js';

function unaryPooled(name: 'square' | 'relu'): (args: KernelArgs) => TensorInfo | null {
  return (args) => {
    const { backend } = args;
    const x = args.inputs['x'];
    if (x === undefined || x.dtype !== 'float32') return null;
    const n = tf.util.sizeFromShape(x.shape);
    if (n % 4 !== 0 || n * 8 < 1 << 19 || kernelPool(backend) === null) return null;
    const kernels = simdKernels(backend);
    if (kernels === null) return null;
    const out = backend.makeOutput(x.shape, 'float32');
    runRows(backend, kernels, name, [heapOffset(backend, x), n / 4, heapOffset(backend, out)], 1, [[0, 16], [2, 16]]);
    return out;
  };
}

export const squarePooled = unaryPooled('square');
export const reluPooled = unaryPooled('relu');
