/**
 * UnsortedSegmentSum for wasm (the gradient of tf.gather, e.g. of a per-sample σ lookup): rows of x are summed into
 * their segment; ids outside [0, numSegments) are dropped, as in TensorFlow.
 */
import type { KernelArgs, TensorInfo } from './wasm-kernel-utils.js';
import { heapI32 } from './wasm-kernel-utils.js';

export function unsortedSegmentSum(args: KernelArgs): TensorInfo {
  const { backend } = args;
  const x = args.inputs['x']!;
  const segmentIds = args.inputs['segmentIds']!;
  const numSegments = (args.attrs as { numSegments: number }).numSegments;
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new Error(`wasm UnsortedSegmentSum: unsupported dtype ${x.dtype}`);
  }
  const idRank = segmentIds.shape.length;
  for (let i = 0; i < idRank; i++) {
    if (segmentIds.shape[i] !== x.shape[i]) {
      throw new Error(
        `wasm UnsortedSegmentSum: segmentIds shape [${segmentIds.shape}] must be a prefix of x shape [${x.shape}]`,
      );
    }
  }
  const innerShape = x.shape.slice(idRank);
  const inner = innerShape.reduce((a, b) => a * b, 1);
  const out = backend.makeOutput([numSegments, ...innerShape], x.dtype);
  const ids = heapI32(backend, segmentIds);
  const X = backend.typedArrayFromHeap(x);
  const O = backend.typedArrayFromHeap(out);
  O.fill(0);
  for (let i = 0; i < ids.length; i++) {
    const seg = ids[i]!;
    if (seg < 0 || seg >= numSegments) continue;
    const src = i * inner;
    const dst = seg * inner;
    for (let k = 0; k < inner; k++) O[dst + k] = O[dst + k]! + X[src + k]!;
  }
  return out;
}
