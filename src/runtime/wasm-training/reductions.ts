/**
 * Sum and Mean over leading axes (e.g. [0, 1, 2] of NHWC: per-channel batch statistics and their gradients, bias
 * gradients) in one streaming pass with float64 accumulators. The built-ins transpose the whole tensor first so that
 * the reduced axes are innermost. Other reductions go to the built-in (returns null).
 */
import * as tf from '@tensorflow/tfjs';
import { heapF32, type KernelArgs, type TensorInfo } from './wasm-kernel-utils.js';

function leadingReduce(args: KernelArgs, mean: boolean): TensorInfo | null {
  const { backend } = args;
  const x = args.inputs['x']!;
  if (x.dtype !== 'float32') return null;
  const attrs = args.attrs as { axis: number | number[]; keepDims?: boolean };
  const axes = tf.util.parseAxisParam(attrs.axis, x.shape).sort((a, b) => a - b);
  if (!axes.every((a, i) => a === i)) return null;
  const k = axes.length;
  const kept = x.shape.slice(k);
  const inner = kept.reduce((a, b) => a * b, 1);
  const rows = x.shape.slice(0, k).reduce((a, b) => a * b, 1);
  const outShape = attrs.keepDims === true ? [...new Array<number>(k).fill(1), ...kept] : kept;
  const out = backend.makeOutput(outShape, 'float32');
  const X = heapF32(backend, x);
  const O = heapF32(backend, out);
  const acc = new Float64Array(inner);
  if (inner === 1) {
    let s = 0;
    for (let i = 0; i < rows; i++) s += X[i]!;
    acc[0] = s;
  } else {
    for (let r = 0, base = 0; r < rows; r++, base += inner) {
      for (let c = 0; c < inner; c++) acc[c] += X[base + c]!;
    }
  }
  if (mean) {
    for (let c = 0; c < inner; c++) acc[c] = acc[c]! / rows;
  }
  O.set(acc);
  return out;
}

export function sumLeading(args: KernelArgs): TensorInfo | null {
  return leadingReduce(args, false);
}

export function meanLeading(args: KernelArgs): TensorInfo | null {
  return leadingReduce(args, true);
}
