/**
 * Tile for wasm by block copies in wasm memory: each innermost run of x is copied once, then every tiled block is
 * replicated with doubling memmoves (copyWithin); one vector repeated along leading axes as SIMD row stores. The
 * built-in computes each output element's source index, which made every batch-norm broadcast slow.
 */
import { heapCopier, heapIndex, type HeapCopy } from './heap-copy.js';
import { runRows } from './kernel-pool.js';
import { heapOffset, simdKernels } from './simd-kernels.js';
import type { KernelArgs, TensorInfo } from './wasm-kernel-utils.js';

type Heap = Float32Array | Int32Array | Uint8Array;

/**
 * A copy within `view` by its own element indices: through the heap copier for 4-byte dtypes (fast on the threaded
 * build's shared heap too), else copyWithin.
 */
function viewCopier(args: KernelArgs, view: Heap): HeapCopy {
  if (view instanceof Uint8Array) return (dst, src, count) => view.copyWithin(dst, src, src + count);
  const copy = heapCopier(args.backend, view);
  const base = heapIndex(view);
  return (dst, src, count) => copy(base + dst, base + src, count);
}

/** Fills dst[dstOff, dstOff+len*times) with `times` copies of dst[dstOff, dstOff+len). */
function replicate(copy: HeapCopy, dstOff: number, len: number, times: number): void {
  let filled = len;
  const total = len * times;
  while (filled < total) {
    const n = Math.min(filled, total - filled);
    copy(dstOff + filled, dstOff, n);
    filled += n;
  }
}

export function tile(args: KernelArgs): TensorInfo {
  const { backend } = args;
  const x = args.inputs['x']!;
  const reps = (args.attrs as { reps: number[] }).reps;
  const rank = x.shape.length;
  if (reps.length !== rank) throw new Error(`wasm Tile: reps [${reps}] must have one entry per dimension of [${x.shape}]`);
  if (x.dtype === 'string' || x.dtype === 'complex64') throw new Error(`wasm Tile: unsupported dtype ${x.dtype}`);
  const outShape = x.shape.map((d, i) => d * reps[i]!);
  const out = backend.makeOutput(outShape, x.dtype);
  const size = outShape.reduce((a, b) => a * b, 1);
  if (size === 0) return out;
  if (rank === 0) {
    backend.typedArrayFromHeap(out).set(backend.typedArrayFromHeap(x));
    return out;
  }
  // One vector repeated along the leading axes (the gradient of a per-channel mean): rows of SIMD stores, split
  // between the kernel pool's threads.
  const c = x.shape[rank - 1]!;
  const kernels = x.dtype !== 'bool' && c % 4 === 0 && reps[rank - 1] === 1 && x.shape.every((d, i) => i === rank - 1 || d === 1) ? simdKernels(backend) : null;
  if (kernels !== null) {
    runRows(backend, kernels, 'broadcastRows', [heapOffset(backend, x), size / c, c, heapOffset(backend, out)], 1, [[3, c * 4]]);
    return out;
  }
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  const copyInOut = viewCopier(args, dst);
  // inStride[d]: elements of x below dim d; outBlock[d]: elements of out below dim d.
  const inStride = new Array<number>(rank).fill(1);
  const outBlock = new Array<number>(rank).fill(1);
  for (let d = rank - 2; d >= 0; d--) {
    inStride[d] = inStride[d + 1]! * x.shape[d + 1]!;
    outBlock[d] = outBlock[d + 1]! * outShape[d + 1]!;
  }
  const fill = (d: number, srcOff: number, dstOff: number): void => {
    const n = x.shape[d]!;
    if (d === rank - 1) {
      dst.set(src.subarray(srcOff, srcOff + n), dstOff);
    } else {
      for (let i = 0; i < n; i++) fill(d + 1, srcOff + i * inStride[d]!, dstOff + i * outBlock[d]!);
    }
    replicate(copyInOut, dstOff, n * outBlock[d]!, reps[d]!);
  };
  fill(0, 0, 0);
  return out;
}
