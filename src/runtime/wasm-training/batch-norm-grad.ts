/**
 * The gradient of FusedBatchNorm on wasm as ONE kernel with two passes over x and dy. tfjs-core writes it as ~12
 * full-size broadcast ops (sub, mul, tile, ...) and four Sum reductions, each transposing its input first, which made it
 * one of the costliest parts of a step. Same formulas as tfjs-core (mean and variance are separate inputs; the
 * gradient through tf.moments arrives through Mean's gradient as before), so the values match cpu. Other cases (per-
 * element mean, non-float32, other backends) keep tfjs-core's gradient.
 */
import * as tf from '@tensorflow/tfjs';
import { blockedColumnSums, runRows } from './kernel-pool.js';
import { heapBuffer, heapOffset, scratch, simdKernels } from './simd-kernels.js';
import { heapF32, release, type KernelArgs, type TensorInfo } from './wasm-kernel-utils.js';

export const BATCH_NORM_GRAD_KERNEL = 'DataParamsWasmBatchNormGrad';

/** Outputs [dx, dMean, dVariance, dScale, dOffset] for per-channel (rank-1, last-axis) statistics. */
export function batchNormGrad(args: KernelArgs): TensorInfo[] {
  const { backend } = args;
  const { x, dy, mean, variance, scale } = args.inputs;
  const c = mean?.shape[0];
  if (x === undefined || dy === undefined || mean === undefined || variance === undefined || c === undefined) {
    throw new Error(`${BATCH_NORM_GRAD_KERNEL}: needs x, dy, and rank-1 mean and variance`);
  }
  const eps = (args.attrs as unknown as { varianceEpsilon: number }).varianceEpsilon;
  const n = tf.util.sizeFromShape(x.shape);
  const stat = (): TensorInfo => backend.makeOutput([c], 'float32');
  const dx = backend.makeOutput(x.shape, 'float32');
  const [dMean, dVariance, dScale, dOffset] = [stat(), stat(), stat(), stat()];
  const outs = [dx, dMean, dVariance, dScale, dOffset];
  const kernels = c >= 4 && c % 4 === 0 ? simdKernels(backend) : null;
  // Per channel: sum(dy) and sum(dy * (x - mean)) (the SIMD pass: float32 over blocks of rows, then float64), then
  // dx = dy * k with k = rsqrt(var + eps) * scale.
  const sumDy = new Float64Array(c);
  const sumDyXc = new Float64Array(c);
  const k = new Float32Array(c);
  const finish = (): void => {
    const V = heapF32(backend, variance);
    const S = scale === undefined ? null : heapF32(backend, scale);
    const [DM, DV, DS, DO] = [heapF32(backend, dMean), heapF32(backend, dVariance), heapF32(backend, dScale), heapF32(backend, dOffset)];
    for (let j = 0; j < c; j++) {
      const rs = 1 / Math.sqrt(V[j]! + eps);
      const s = S === null ? 1 : S[j]!;
      k[j] = rs * s;
      DM[j] = -rs * s * sumDy[j]!;
      DV[j] = -0.5 * rs * rs * rs * s * sumDyXc[j]!;
      DS[j] = rs * sumDyXc[j]!;
      DO[j] = sumDy[j]!;
    }
  };
  if (kernels !== null) {
    const [xBase, dyBase, meanBase] = [heapOffset(backend, x), heapOffset(backend, dy), heapOffset(backend, mean)];
    // The third accumulator array of each block: the kernel's float32 partial sums (2c floats), zeroed like the others.
    const [blockDy, blockDyXc] = blockedColumnSums(backend, kernels, 'batchNormGradSums', n / c, 8 * c, 3, c, (first, count, [a, b, partial]) => [
      xBase + first * c * 4, dyBase + first * c * 4, count, c, meanBase, a!, b!, partial!,
    ]);
    sumDy.set(blockDy!);
    sumDyXc.set(blockDyXc!);
    finish();
    // dx = (dy - 0) * k + 0: normalize with a zero mean and offset.
    const work = scratch(backend, 8 * c); // [k f32 | zeros f32]
    const [kAt, zerosAt] = [work.offset, work.offset + 4 * c];
    const buffer = heapBuffer(backend);
    new Float32Array(buffer, kAt, c).set(k);
    new Float32Array(buffer, zerosAt, c).fill(0);
    const args = [dyBase, n / c, c, zerosAt, kAt, zerosAt, heapOffset(backend, dx)];
    runRows(backend, kernels, 'normalize', args, 1, [[0, 4 * c], [6, 4 * c]]);
    release(backend, work.info);
    return outs;
  }
  const X = heapF32(backend, x);
  const DY = heapF32(backend, dy);
  const M = heapF32(backend, mean);
  for (let i = 0; i < n; i += c) {
    for (let j = 0; j < c; j++) {
      const g = DY[i + j]!;
      sumDy[j]! += g;
      sumDyXc[j]! += g * Math.fround(X[i + j]! - M[j]!);
    }
  }
  finish();
  const DX = heapF32(backend, dx);
  for (let i = 0; i < n; i += c) for (let j = 0; j < c; j++) DX[i + j] = DY[i + j]! * k[j]!;
  return outs;
}

/** Wraps tfjs-core's FusedBatchNorm gradient: the one-kernel version on wasm for per-channel statistics. */
export function registerBatchNormGradient(): void {
  if (tf.getKernel(BATCH_NORM_GRAD_KERNEL, 'wasm') === undefined) {
    tf.registerKernel({ kernelName: BATCH_NORM_GRAD_KERNEL, backendName: 'wasm', kernelFunc: batchNormGrad as unknown as tf.KernelFunc });
  }
  const original = tf.getGradient('FusedBatchNorm');
  if (original === undefined) throw new Error('wasm training kernels: tfjs-core has no gradient for FusedBatchNorm');
  tf.registerGradient({
    ...original,
    gradFunc: (dy, saved, attrs) => {
      const [x, mean, variance, scale] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor | undefined];
      const c = x.shape[x.rank - 1];
      const perChannel = (t: tf.Tensor | undefined | null): boolean => t == null || (t.rank === 1 && t.shape[0] === c);
      const applies = tf.getBackend() === 'wasm' && !Array.isArray(dy) && dy.dtype === 'float32' && x.dtype === 'float32' &&
        perChannel(mean) && perChannel(variance) && perChannel(scale) && mean != null && variance != null;
      if (!applies) return original.gradFunc(dy, saved, attrs);
      const inputs: tf.NamedTensorMap = { x, dy: dy, mean, variance, ...(scale == null ? {} : { scale }) };
      // Computed eagerly (inside the backward pass's tidy), so outputs the tape does not ask for are released with it.
      const outs = tf.engine().runKernel<tf.Tensor[]>(BATCH_NORM_GRAD_KERNEL, inputs, attrs);
      const [dx, dMean, dVariance, dScale, dOffset] = outs as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
      return { x: () => dx, mean: () => dMean, variance: () => dVariance, scale: () => dScale, offset: () => dOffset };
    },
  });
}
