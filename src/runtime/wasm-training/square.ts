/**
 * Square of large float32 tensors (the variance in tf.moments, at every batch norm) split between the kernel pool's
 * threads: the built-in runs on one thread. One float32 product per element, as the built-in; without a pool, for
 * small tensors or other dtypes, the built-in.
 */
import * as tf from '@tensorflow/tfjs';
import { kernelPool, runRows } from './kernel-pool.js';
import { heapOffset, simdKernels } from './simd-kernels.js';
import type { KernelArgs, TensorInfo } from './wasm-kernel-utils.js';

export function squarePooled(args: KernelArgs): TensorInfo | null {
  const { backend } = args;
  const x = args.inputs['x'];
  if (x === undefined || x.dtype !== 'float32') return null;
  const n = tf.util.sizeFromShape(x.shape);
  if (n % 4 !== 0 || n * 8 < 1 << 19 || kernelPool(backend) === null) return null;
  const kernels = simdKernels(backend);
  if (kernels === null) return null;
  const out = backend.makeOutput(x.shape, 'float32');
  runRows(backend, kernels, 'square', [heapOffset(backend, x), n / 4, heapOffset(backend, out)], 1, [[0, 16], [2, 16]]);
  return out;
}
