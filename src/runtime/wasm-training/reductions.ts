/**
 * Sum and Mean over leading or middle axes (e.g. [0, 1, 2] of NHWC: batch-norm statistics, the gradients of
 * per-channel broadcasts, global average pooling) in one pass with float64 accumulators (simd-kernels.ts). The
 * built-ins transpose the whole tensor first so that the reduced axes come last, then sum in float32: several times
 * slower and less accurate. Other cases (trailing axes, which the built-ins reduce in place; axes that are
 * not one contiguous block; fewer than 4 or a non-multiple of 4 kept inner elements; many small blocks; non-float32)
 * return null.
 */
import * as tf from '@tensorflow/tfjs';
import { heapBuffer, heapOffset, scratch, simdKernels } from './simd-kernels.js';
import { blockedColumnSums } from './kernel-pool.js';
import { heapF32, release, type KernelArgs, type TensorInfo } from './wasm-kernel-utils.js';

/** [outer, rows, inner]: x viewed so that the reduced axes are the middle dimension, or null if they are not contiguous. */
export function reductionLayout(shape: number[], axis: number | number[]): [number, number, number] | null {
  const axes = [...new Set(tf.util.parseAxisParam(axis, shape))].sort((a, b) => a - b);
  if (axes.length === 0) return null;
  const first = axes[0]!;
  const last = axes[axes.length - 1]!;
  if (last - first + 1 !== axes.length) return null;
  const prod = (from: number, to: number): number => shape.slice(from, to).reduce((a, b) => a * b, 1);
  return [prod(0, first), prod(first, last + 1), prod(last + 1, shape.length)];
}

function reduce(args: KernelArgs, mean: boolean): TensorInfo | null {
  const { backend } = args;
  const x = args.inputs['x']!;
  const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
  if (x.dtype !== 'float32') return null;
  const layout = reductionLayout(x.shape, axis);
  if (layout === null) return null;
  const [outer, rows, inner] = layout;
  if (inner < 4 || inner % 4 !== 0 || outer * rows === 0) return null;
  // Many tiny blocks (e.g. axis 1 of [100000, 2, 4]): the per-block call overhead would outweigh the transpose.
  if (outer > 1 && rows * inner < 256) return null;
  const kernels = simdKernels(backend);
  if (kernels === null) return null;
  const axes = tf.util.parseAxisParam(axis, x.shape);
  const outShape = keepDims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
  const out = backend.makeOutput(outShape, 'float32');
  if (outer === 1) {
    // One block of rows (e.g. a batch-norm statistic): large ones in fixed row blocks on the kernel pool.
    const xBase = heapOffset(backend, x);
    const [sums] = blockedColumnSums(backend, kernels, 'columnSums', rows, inner * 4, 1, inner, (first, count, [acc]) => [
      xBase + first * inner * 4, count, inner, acc!,
    ]);
    const dst = heapF32(backend, out);
    if (mean) for (let j = 0; j < inner; j++) dst[j] = sums![j]! / rows;
    else dst.set(sums!);
    return out;
  }
  const accumulators = scratch(backend, 8 * inner);
  const acc = accumulators.offset;
  const xBase = heapOffset(backend, x);
  const outBase = heapOffset(backend, out);
  const buffer = heapBuffer(backend);
  const sums = new Float64Array(buffer, acc, inner);
  const dst = new Float32Array(buffer, outBase, outer * inner);
  for (let o = 0; o < outer; o++) {
    sums.fill(0);
    kernels.columnSums(xBase + o * rows * inner * 4, rows, inner, acc);
    const at = o * inner;
    if (mean) for (let j = 0; j < inner; j++) dst[at + j] = sums[j]! / rows;
    else dst.set(sums, at);
  }
  release(backend, accumulators.info);
  return out;
}

export const sumLeadingAxes = (args: KernelArgs): TensorInfo | null => reduce(args, false);
export const meanLeadingAxes = (args: KernelArgs): TensorInfo | null => reduce(args, true);
