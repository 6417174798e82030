/**
 * Transpose for wasm when the innermost dimension stays innermost (after merging dimensions that stay adjacent):
 * whole rows are copied between views of wasm memory. The built-in walks every element with generic index arithmetic
 * (several times slower than row copies, on the dy of every filter gradient).
 * Other permutations go to the built-in (returns null): a JavaScript gather measured no faster.
 */
import { heapCopier, heapIndex, type HeapCopy } from './heap-copy.js';
import type { KernelArgs, TensorInfo } from './wasm-kernel-utils.js';

type Heap = Float32Array | Int32Array | Uint8Array;

/** Merges runs of input dimensions that the permutation keeps adjacent and in order. */
function collapse(shape: number[], perm: number[]): { shape: number[]; perm: number[] } {
  // Drop size-1 dimensions: they do not move data.
  const keep = perm.filter((p) => shape[p] !== 1);
  if (keep.length === 0) return { shape: [1], perm: [0] };
  const groups: number[][] = [];
  for (const p of keep) {
    const last = groups[groups.length - 1];
    if (last !== undefined && last[last.length - 1]! === p - 1) last.push(p);
    else if (last !== undefined && keepGap(shape, last[last.length - 1]!, p)) last.push(p);
    else groups.push([p]);
  }
  // New input dims are the groups in input order; the permutation lists them in output order.
  const order = groups.map((g, i) => ({ first: g[0]!, i })).sort((a, b) => a.first - b.first);
  const newIndex = new Map(order.map((o, k) => [o.i, k]));
  const newShape = order.map((o) => groups[o.i]!.reduce((a, d) => a * shape[d]!, 1));
  return { shape: newShape, perm: groups.map((_, i) => newIndex.get(i)!) };
}

/** True when every input dimension strictly between a and b has size 1 (so a and b are adjacent in memory). */
function keepGap(shape: number[], a: number, b: number): boolean {
  if (b <= a) return false;
  for (let d = a + 1; d < b; d++) if (shape[d] !== 1) return false;
  return true;
}

/**
 * The input's innermost dimension stays innermost: copy whole rows, walking the outer output dimensions. `copy`
 * (4-byte dtypes) copies long rows within the heap (fast on the threaded build's shared heap too).
 */
function copyRows(X: Heap, O: Heap, oShape: number[], oStride: number[], inner: number, copy: HeapCopy | null): void {
  const rank = oShape.length;
  const idx = new Array<number>(rank - 1).fill(0);
  const outer = O.length / inner;
  let src = 0;
  const [xBase, oBase] = copy === null ? [0, 0] : [heapIndex(X as Int32Array), heapIndex(O as Int32Array)];
  for (let o = 0, dst = 0; o < outer; o++, dst += inner) {
    if (inner < 32) for (let k = 0; k < inner; k++) O[dst + k] = X[src + k]!;
    else if (copy !== null) copy(oBase + dst, xBase + src, inner);
    else O.set(X.subarray(src, src + inner), dst);
    for (let d = rank - 2; d >= 0; d--) {
      src += oStride[d]!;
      if (++idx[d]! < oShape[d]!) break;
      src -= oStride[d]! * oShape[d]!;
      idx[d] = 0;
    }
  }
}

export function transpose(args: KernelArgs): TensorInfo | null {
  const { backend } = args;
  const x = args.inputs['x']!;
  if (x.dtype === 'string' || x.dtype === 'complex64') return null;
  const perm = (args.attrs as { perm: number[] }).perm;
  const c = collapse(x.shape, perm);
  const rank = c.shape.length;
  // Only row-copying transposes are faster here; the built-in gathers elements as fast as JavaScript can.
  if (rank > 1 && c.perm[rank - 1] !== rank - 1) return null;
  const outShape = perm.map((p) => x.shape[p]!);
  const out = backend.makeOutput(outShape, x.dtype);
  const X = backend.typedArrayFromHeap(x);
  const O = backend.typedArrayFromHeap(out);
  if (X.length === 0) return out;
  if (rank === 1) {
    O.set(X);
    return out;
  }
  const inStrides = new Array<number>(rank).fill(1);
  for (let d = rank - 2; d >= 0; d--) inStrides[d] = inStrides[d + 1]! * c.shape[d + 1]!;
  const oShape = c.perm.map((p) => c.shape[p]!);
  const oStride = c.perm.map((p) => inStrides[p]!); // input stride of each output dimension
  const copy = X instanceof Uint8Array ? null : heapCopier(backend, X);
  copyRows(X, O, oShape, oStride, oShape[rank - 1]!, copy);
  return out;
}
