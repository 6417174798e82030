/**
 * The wasm kernels of batchNormTraining (batch-norm-op.ts): the statistics in one pass over x, the normalisation (and
 * ReLU) in one pass, and the gradient in two passes over x, dy (and y).
 */
import * as tf from '@tensorflow/tfjs';
import { BATCH_NORM_TRAINING_GRAD_KERNEL, BATCH_NORM_TRAINING_KERNEL, BATCH_STATISTICS_KERNEL, type TrainingAttrs } from './batch-norm-op.js';
import { normalizeChannels } from './batch-norm.js';
import { blockedColumnSums, runRows } from './kernel-pool.js';
import { heapBuffer, heapOffset, scratch, simdKernels, type SimdKernels } from './simd-kernels.js';
import { heapF32, release, type BackendWasm, type KernelArgs, type TensorInfo } from './wasm-kernel-utils.js';

function kernelsFor(backend: BackendWasm, channels: number): SimdKernels {
  const kernels = channels >= 4 && channels % 4 === 0 ? simdKernels(backend) : null;
  if (kernels === null) throw new Error(`wasm batch norm: needs wasm SIMD and a multiple of 4 channels (got ${channels})`);
  return kernels;
}

/** Outputs [mean, variance] over every axis but the last of x (biased variance). */
export function batchStatistics(args: KernelArgs): TensorInfo[] {
  const { backend } = args;
  const { x } = args.inputs as { x: TensorInfo };
  const c = x.shape[x.shape.length - 1]!;
  const kernels = kernelsFor(backend, c);
  const rows = tf.util.sizeFromShape(x.shape) / c;
  const mean = backend.makeOutput([c], 'float32');
  const variance = backend.makeOutput([c], 'float32');
  if (rows === 0) {
    heapF32(backend, mean).fill(NaN);
    heapF32(backend, variance).fill(NaN);
    return [mean, variance];
  }
  // Sums of x − K and (x − K)² with K a row of x (float32 over blocks of rows, then float64): centred, so that the
  // variance keeps its precision when the mean is far larger than the spread.
  const xBase = heapOffset(backend, x);
  const [shifted, shiftedSquares] = blockedColumnSums(backend, kernels, 'shiftedMoments', rows, 4 * c, 3, c, (first, count, [a, b, partial]) => [
    xBase + first * c * 4, count, c, xBase, a!, b!, partial!,
  ]) as [Float64Array, Float64Array];
  const [X, M, V] = [heapF32(backend, x), heapF32(backend, mean), heapF32(backend, variance)];
  for (let j = 0; j < c; j++) {
    const d = shifted[j]! / rows;
    M[j] = X[j]! + d;
    V[j] = Math.max(0, shiftedSquares[j]! / rows - d * d);
  }
  return [mean, variance];
}

/** y = relu?((x − mean) · gamma / sqrt(variance + ε) + beta), one pass. */
export function batchNormTrainingForward(args: KernelArgs): TensorInfo {
  const { backend } = args;
  const { x, mean, variance, gamma, beta } = args.inputs as Record<'x' | 'mean' | 'variance' | 'gamma' | 'beta', TensorInfo>;
  const { epsilon, relu } = args.attrs as unknown as TrainingAttrs;
  const c = x.shape[x.shape.length - 1]!;
  const kernels = kernelsFor(backend, c);
  const out = backend.makeOutput(x.shape, 'float32');
  normalizeChannels(backend, kernels, x, out, { mean, variance, scale: gamma, offset: beta }, epsilon, relu);
  return out;
}

/**
 * Outputs [dx, dGamma, dBeta]. With g = dy (masked to y > 0 for the ReLU), per channel S₁ = Σg, S₂ = Σg·(x − mean)
 * (float32 over blocks of rows, then float64), s = 1 / sqrt(variance + ε): dBeta = S₁, dGamma = s·S₂, and
 * dx = gamma·s·(g − S₁/n − (x − mean)·s²·S₂/n), the batch statistics' own gradients included.
 */
export function batchNormTrainingGrad(args: KernelArgs): TensorInfo[] {
  const { backend } = args;
  const { x, y, dy, mean, variance, gamma } = args.inputs as Record<'x' | 'y' | 'dy' | 'mean' | 'variance' | 'gamma', TensorInfo>;
  const { epsilon, relu } = args.attrs as unknown as TrainingAttrs;
  const c = x.shape[x.shape.length - 1]!;
  const kernels = kernelsFor(backend, c);
  const rows = tf.util.sizeFromShape(x.shape) / c;
  const dx = backend.makeOutput(x.shape, 'float32');
  const dGamma = backend.makeOutput([c], 'float32');
  const dBeta = backend.makeOutput([c], 'float32');
  if (rows === 0) {
    heapF32(backend, dGamma).fill(0);
    heapF32(backend, dBeta).fill(0);
    return [dx, dGamma, dBeta];
  }
  const [xBase, yBase, dyBase, meanBase] = [heapOffset(backend, x), heapOffset(backend, y), heapOffset(backend, dy), heapOffset(backend, mean)];
  const [S1, S2] = (
    relu
      ? blockedColumnSums(backend, kernels, 'batchNormReluGradSums', rows, 12 * c, 3, c, (first, count, [a, b, partial]) => [
          xBase + first * c * 4, dyBase + first * c * 4, yBase + first * c * 4, count, c, meanBase, a!, b!, partial!,
        ])
      : blockedColumnSums(backend, kernels, 'batchNormGradSums', rows, 8 * c, 3, c, (first, count, [a, b, partial]) => [
          xBase + first * c * 4, dyBase + first * c * 4, count, c, meanBase, a!, b!, partial!,
        ])
  ) as [Float64Array, Float64Array];
  const work = scratch(backend, 12 * c); // [a | b | d] per channel
  const [aAt, bAt, dAt] = [work.offset, work.offset + 4 * c, work.offset + 8 * c];
  const buffer = heapBuffer(backend);
  const [A, B, D] = [new Float32Array(buffer, aAt, c), new Float32Array(buffer, bAt, c), new Float32Array(buffer, dAt, c)];
  const [V, G, DG, DB] = [heapF32(backend, variance), heapF32(backend, gamma), heapF32(backend, dGamma), heapF32(backend, dBeta)];
  for (let j = 0; j < c; j++) {
    const s = 1 / Math.sqrt(V[j]! + epsilon);
    const a = G[j]! * s;
    DB[j] = S1[j]!;
    DG[j] = s * S2[j]!;
    A[j] = a;
    B[j] = (-a * s * s * S2[j]!) / rows;
    D[j] = (-a * S1[j]!) / rows;
  }
  const call = [xBase, dyBase, yBase, rows, c, meanBase, aAt, bAt, dAt, heapOffset(backend, dx)];
  runRows(backend, kernels, relu ? 'batchNormReluBackward' : 'batchNormBackward', call, 3, [[0, 4 * c], [1, 4 * c], [2, 4 * c], [9, 4 * c]]);
  release(backend, work.info);
  return [dx, dGamma, dBeta];
}

export const batchNormTrainingKernels: [string, (args: KernelArgs) => TensorInfo | TensorInfo[]][] = [
  [BATCH_STATISTICS_KERNEL, batchStatistics],
  [BATCH_NORM_TRAINING_KERNEL, batchNormTrainingForward],
  [BATCH_NORM_TRAINING_GRAD_KERNEL, batchNormTrainingGrad],
];

