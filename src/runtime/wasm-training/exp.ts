/**
 * Exp on wasm as a SIMD polynomial (simd-kernels.ts): the built-in calls the scalar libm expf per element, and a
 * detector's softmax cross-entropy runs it over every anchor's logits, three times a step. Within 2
 * ulp of the correctly rounded value; non-float32 inputs go to the built-in.
 */
import * as tf from '@tensorflow/tfjs';
import { runRows } from './kernel-pool.js';
import { heapOffset, simdKernels } from './simd-kernels.js';
import { heapF32, type KernelArgs, type TensorInfo } from './wasm-kernel-utils.js';

export function expSimd(args: KernelArgs): TensorInfo | null {
  const { backend } = args;
  const x = args.inputs['x'];
  if (x === undefined || x.dtype !== 'float32') return null;
  const kernels = simdKernels(backend);
  if (kernels === null) return null;
  const out = backend.makeOutput(x.shape, 'float32');
  const n = tf.util.sizeFromShape(x.shape);
  const groups = n >> 2;
  if (groups > 0) runRows(backend, kernels, 'exp', [heapOffset(backend, x), groups, heapOffset(backend, out)], 1, [[0, 16], [2, 16]]);
  if (groups * 4 < n) {
    const X = heapF32(backend, x);
    const OUT = heapF32(backend, out);
    for (let i = groups * 4; i < n; i++) OUT[i] = Math.exp(X[i]!);
  }
  return out;
}
