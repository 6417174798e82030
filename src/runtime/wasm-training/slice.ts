/**
 * Slice of any rank by copying contiguous runs between views of wasm memory. The built-in first copies the WHOLE
 * input out of wasm memory (readSync) and then loops per element, and for rank > 4 uses the generic cpu loop.
 */
import * as tf from '@tensorflow/tfjs';
import { heapCopier, heapIndex } from './heap-copy.js';
import { sliceParams, type KernelArgs, type TensorInfo } from './wasm-kernel-utils.js';

export function sliceViews(args: KernelArgs): TensorInfo | null {
  const { backend } = args;
  const x = args.inputs['x']!;
  if (x.dtype === 'string' || x.dtype === 'complex64') return null;
  const { begin, size } = sliceParams(x, args.attrs);
  const out = backend.makeOutput(size, x.dtype);
  const total = size.reduce((a, b) => a * b, 1);
  if (total === 0) return out;
  const X = backend.typedArrayFromHeap(x);
  const O = backend.typedArrayFromHeap(out);
  const rank = x.shape.length;
  if (rank === 0) {
    O[0] = X[0]!;
    return out;
  }
  // Merge trailing dimensions that are taken whole into one contiguous run.
  let run = size[rank - 1]!;
  let d = rank - 1;
  while (d > 0 && size[d] === x.shape[d] && begin[d] === 0) {
    d--;
    run *= size[d]!;
  }
  // Dimensions [0, d) are iterated; dimension d and below form runs of `run` elements.
  const strides = tf.util.computeStrides(x.shape);
  const strideOf = (i: number): number => (i < rank - 1 ? strides[i]! : 1);
  let start = 0;
  for (let i = 0; i < rank; i++) start += begin[i]! * strideOf(i);
  const idx = new Array<number>(d).fill(0);
  const outer = size.slice(0, d).reduce((a, b) => a * b, 1);
  // Long runs of 4-byte elements: copied within the heap (fast on the threaded build's shared heap too).
  const copy = X instanceof Uint8Array ? null : heapCopier(backend, X);
  const [xBase, oBase] = copy === null ? [0, 0] : [heapIndex(X as Int32Array), heapIndex(O as Int32Array)];
  for (let o = 0, dst = 0; o < outer; o++, dst += run) {
    let src = start;
    for (let i = 0; i < d; i++) src += idx[i]! * strideOf(i);
    if (run < 32) {
      for (let k = 0; k < run; k++) O[dst + k] = X[src + k]!;
    } else if (copy !== null) {
      copy(oBase + dst, xBase + src, run);
    } else {
      O.set(X.subarray(src, src + run), dst);
    }
    for (let i = d - 1; i >= 0; i--) {
      if (++idx[i]! < size[i]!) break;
      idx[i] = 0;
    }
  }
  return out;
}

/**
 * SplitV (the gradient of concat, e.g. of a detector's heads) as one `sliceViews` per part: the built-in calls its own
 * Slice, which copies the whole input out of wasm memory for every part.
 */
export function splitViews(args: KernelArgs): TensorInfo[] | null {
  const x = args.inputs['x']!;
  if (x.dtype === 'string' || x.dtype === 'complex64') return null;
  const { numOrSizeSplits, axis } = args.attrs as { numOrSizeSplits: number | number[]; axis: number | number[] };
  const splitAxis = tf.util.parseAxisParam(axis, x.shape)[0]!;
  const sizes = tf.backend_util.prepareSplitSize(x, numOrSizeSplits, splitAxis);
  const begin = new Array<number>(x.shape.length).fill(0);
  return sizes.map((part) => {
    const size = [...x.shape];
    size[splitAxis] = part;
    const out = sliceViews({ ...args, attrs: { begin: [...begin], size } })!;
    begin[splitAxis]! += part;
    return out;
  });
}
