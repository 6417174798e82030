/**
 * Slice and PadV2 that change only the last axis (e.g. [N, 8] -> [N, 4] and back: the class and box columns of a
 * detector's output, and their gradient) as SIMD row copies (simd-kernels.ts). The Slice fast path (slice.ts) makes
 * one typed-array copy per row, slow for many short rows; the built-in pad loops per element. 4-byte dtypes and
 * kept widths that are a multiple of 4 only; everything else returns null for the next kernel.
 */
import * as tf from '@tensorflow/tfjs';
import { heapOffset, simdKernels } from './simd-kernels.js';
import { sliceParams, type KernelArgs, type TensorInfo } from './wasm-kernel-utils.js';

const fourBytes = (dtype: string): boolean => dtype === 'float32' || dtype === 'int32';

export function sliceLastAxis(args: KernelArgs): TensorInfo | null {
  const { backend } = args;
  const x = args.inputs['x']!;
  const rank = x.shape.length;
  if (!fourBytes(x.dtype) || rank < 2) return null;
  const { begin, size } = sliceParams(x, args.attrs);
  const c = x.shape[rank - 1]!;
  const width = size[rank - 1]!;
  if (width < 4 || width % 4 !== 0 || width === c || !size.every((d, i) => i === rank - 1 || (d === x.shape[i] && begin[i] === 0))) return null;
  const kernels = simdKernels(backend);
  if (kernels === null) return null;
  const out = backend.makeOutput(size, x.dtype);
  const rows = tf.util.sizeFromShape(size) / width;
  if (rows > 0) kernels.copyRows(heapOffset(backend, x) + begin[rank - 1]! * 4, heapOffset(backend, out), rows, width, c * 4, width * 4);
  return out;
}

export function padLastAxis(args: KernelArgs): TensorInfo | null {
  const { backend } = args;
  const x = args.inputs['x']!;
  const { paddings, constantValue } = args.attrs as unknown as { paddings: [number, number][]; constantValue: number };
  const rank = x.shape.length;
  if (!fourBytes(x.dtype) || rank < 2 || paddings.length !== rank) return null;
  const c = x.shape[rank - 1]!;
  if (c < 4 || c % 4 !== 0 || !paddings.every(([a, b], i) => i === rank - 1 || (a === 0 && b === 0))) return null;
  const kernels = simdKernels(backend);
  if (kernels === null) return null;
  const [before, after] = paddings[rank - 1]!;
  const outC = before + c + after;
  const outShape = [...x.shape.slice(0, -1), outC];
  const out = backend.makeOutput(outShape, x.dtype);
  const rows = tf.util.sizeFromShape(x.shape) / c;
  if (rows === 0) return out;
  (backend.typedArrayFromHeap(out) as Float32Array | Int32Array).fill(constantValue);
  kernels.copyRows(heapOffset(backend, x), heapOffset(backend, out) + before * 4, rows, c, c * 4, outC * 4);
  return out;
}
