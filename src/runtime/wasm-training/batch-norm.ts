/**
 * FusedBatchNorm (tf.batchNorm) on wasm with per-channel statistics as one SIMD pass:
 * y = (x - mean) * k + offset, k = scale / sqrt(variance + eps) per channel (simd-kernels.ts). The built-in
 * evaluates the full formula per element with index arithmetic, several times slower. Other cases
 * (statistics that are not one value per channel of the last axis, fewer than 4 or a non-multiple of 4 channels,
 * non-float32) return null for the built-in.
 */
import * as tf from '@tensorflow/tfjs';
import { runRows } from './kernel-pool.js';
import { heapBuffer, heapOffset, scratch, simdKernels, type SimdKernels } from './simd-kernels.js';
import { heapF32, release, type BackendWasm, type KernelArgs, type TensorInfo } from './wasm-kernel-utils.js';

export function fusedBatchNormPerChannel(args: KernelArgs): TensorInfo | null {
  const { backend } = args;
  const { x, mean, variance } = args.inputs as Record<string, TensorInfo | undefined>;
  const { offset, scale } = args.inputs as Record<string, TensorInfo | undefined>;
  const eps = (args.attrs as unknown as { varianceEpsilon: number }).varianceEpsilon;
  if (x === undefined || mean === undefined || variance === undefined || x.shape.length === 0) return null;
  const c = x.shape[x.shape.length - 1]!;
  const perChannel = (t: TensorInfo | undefined): boolean =>
    t === undefined || (t.dtype === 'float32' && tf.util.sizeFromShape(t.shape) === c && t.shape[t.shape.length - 1] === c);
  if (x.dtype !== 'float32' || c < 4 || c % 4 !== 0 || ![mean, variance, offset, scale].every(perChannel)) return null;
  const kernels = simdKernels(backend);
  if (kernels === null) return null;
  const out = backend.makeOutput(x.shape, 'float32');
  normalizeChannels(backend, kernels, x, out, { mean, variance, scale, offset }, eps, false);
  return out;
}

/**
 * out = relu?((x − mean) · scale / sqrt(variance + ε) + offset) per channel of x's last axis (c a multiple of 4), one
 * SIMD pass split between the kernel pool's threads; scale 1 and offset 0 where absent.
 */
export function normalizeChannels(
  backend: BackendWasm,
  kernels: SimdKernels,
  x: TensorInfo,
  out: TensorInfo,
  stats: { mean: TensorInfo; variance: TensorInfo; scale?: TensorInfo | undefined; offset?: TensorInfo | undefined },
  eps: number,
  relu: boolean,
): void {
  const c = x.shape[x.shape.length - 1]!;
  const rows = tf.util.sizeFromShape(x.shape) / c;
  if (rows === 0) return;
  const work = scratch(backend, 8 * c); // [k f32 | zero offset f32]
  const buffer = heapBuffer(backend);
  const k = new Float32Array(buffer, work.offset, c);
  const V = heapF32(backend, stats.variance);
  const S = stats.scale === undefined ? null : heapF32(backend, stats.scale);
  for (let j = 0; j < c; j++) k[j] = (S === null ? 1 : S[j]!) / Math.sqrt(V[j]! + eps);
  const offsetAt = stats.offset === undefined ? work.offset + 4 * c : heapOffset(backend, stats.offset);
  if (stats.offset === undefined) new Float32Array(buffer, work.offset + 4 * c, c).fill(0);
  const call = [heapOffset(backend, x), rows, c, heapOffset(backend, stats.mean), work.offset, offsetAt, heapOffset(backend, out)];
  runRows(backend, kernels, relu ? 'normalizeRelu' : 'normalize', call, 1, [[0, 4 * c], [6, 4 * c]]);
  release(backend, work.info);
}
