/**
 * Copies within the wasm heap, by 4-byte element index (byteOffset / 4 of a heap view).
 *
 * Why: on the threaded build the heap is a SharedArrayBuffer, where V8's copyWithin / set copy several times slower
 * than on an unshared buffer (figures in docs/wasm-training.md), which made row copies (im2col
 * patches, transposes, slices, tiles) cost as much as the GEMMs they feed at 2 threads. There a wasm bulk memory.copy
 * (simd-kernels.ts' copyRows) copies at the unshared speed or faster. Elsewhere, or without wasm
 * SIMD, copyWithin. Ranges must not overlap.
 */
import { poolParts, runRanges } from './kernel-pool.js';
import { simdKernels } from './simd-kernels.js';
import type { BackendWasm } from './wasm-kernel-utils.js';

/** Copies `count` 4-byte elements of the heap from element index `src` to `dst`. */
export type HeapCopy = (dst: number, src: number, count: number) => void;

/** A copier for the heap that `view` lies in; take it after the last allocation (growth replaces the buffer). */
export function heapCopier(backend: BackendWasm, view: Float32Array | Int32Array): HeapCopy {
  const heap = new Int32Array(view.buffer);
  const kernels = view.buffer instanceof SharedArrayBuffer ? simdKernels(backend) : null;
  if (kernels === null) return (dst, src, count) => heap.copyWithin(dst, src, src + count);
  const parts = poolParts(backend);
  return (dst, src, count) => {
    if (parts === 1 || count < SPLIT_ELEMENTS) {
      kernels.copyRows(src * 4, dst * 4, 1, count, 0, 0);
      return;
    }
    // Long copies (a Tile's last doublings: 6 MB at 8x64x192x32) in one piece per kernel pool thread.
    runRanges(backend, kernels, 'copyRows', count, (first, length) => [(src + first) * 4, (dst + first) * 4, 1, length, 0, 0]);
  };
}

/** From this many elements (1 MiB) a copy is split between the kernel pool's threads. */
const SPLIT_ELEMENTS = 1 << 18;

/** Element index of a heap view's first element. */
export function heapIndex(view: Float32Array | Int32Array): number {
  return view.byteOffset >>> 2; // unsigned: heaps grow past 2 GiB
}
