/**
 * Convolutions of inputs with few channels (an image's 3, fewer than the tap GEMMs take) as one GEMM over patches:
 * the forward pass out [M, Co] = P [M, K] · W [K, Co] and the filter gradient dW [K, Co] = Pᵀ · dy, with M the output
 * positions, K = fh·fw·Ci and P the im2col patches, written chunk by chunk into a workspace. Each patch row is fh runs
 * of fw·Ci contiguous floats of x, copied by a small wasm loop specialised for the run length.
 *
 * Why: with Ci = 3 the per-tap GEMMs sum over 3 channels per step and XNNPACK's direct convolution runs far below the
 * GEMM's speed per multiply-add; over patches the GEMM sums over K = 27 (3x3) or 48 (4x4) per step. The patches cost
 * fh·fw times x in memory traffic, small next to the product for such layers.
 */
import * as tf from '@tensorflow/tfjs';
import { GEMM_ENTRY_INTS, gemmKernels } from './gemm.js';
import { evenRanges, poolParts, runParts } from './kernel-pool.js';
import { tapConvChoice } from './conv-taps.js';
import { END, F32_LOAD, F32_STORE, I32_ADD, I32_SUB, LOOP, brIf, get, heapOffset, i32c, load, set, shapeModule, store, tee, type Func } from './simd-kernels.js';
import { heapF32, heapI32, release, convInfo, type BackendWasm, type ConvAttrs, type KernelArgs, type TensorInfo } from './wasm-kernel-utils.js';

/** Settings (tests turn the path off to compare with the other formulations). */
export const patchConvChoice = {
  enabled: true,
  /** Largest patch (fh·fw·Ci floats) taken: beyond it the layer has enough channels for the other paths. */
  maxPatch: 64,
  /** Workspace for the patches of one chunk of output rows. */
  chunkBytes: 8 << 20,
};

/** Positions per run of the filter gradient's products (a run of dy with Co = 32: 128 KB). */
const RUN_POSITIONS = 1024;

/** The geometry when the patch GEMMs apply (float32, NHWC, no dilation, Ci below the tap GEMMs' minimum), else null. */
function patchInfo(xShape: number[], filterShape: number[], attrs: ConvAttrs, dtypes: string[]): tf.backend_util.Conv2DInfo | null {
  if (!patchConvChoice.enabled || dtypes.some((d) => d !== 'float32')) return null;
  if (attrs.dataFormat !== undefined && attrs.dataFormat !== 'NHWC') return null;
  if (xShape.length !== 4 || filterShape.length !== 4) return null;
  const info = convInfo(xShape, filterShape, attrs);
  const { inChannels: ci, outChannels: co, filterHeight: fh, filterWidth: fw } = info;
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1 || ci >= tapConvChoice.minChannels || co % 4 !== 0) return null;
  if (fh * fw * ci > patchConvChoice.maxPatch) return null;
  // An empty output, or a filter larger than the padded input (an error): the built-in path's cases.
  if (info.outHeight <= 0 || info.outWidth <= 0) return null;
  const largest = Math.max(info.batchSize * info.inHeight * info.inWidth * ci, info.batchSize * info.outHeight * info.outWidth * co);
  if (largest === 0 || largest * 4 >= 2 ** 31) return null;
  return info;
}

interface RunCopier {
  /** runs(src, dst, count, srcStride, dstStride): `count` (≥ 1) runs of the module's run length, strides in bytes. */
  runs(src: number, dst: number, count: number, srcStride: number, dstStride: number): void;
}

/** The copy loop for runs of `floats` floats: whole v128 moves, then single floats. */
function runCopier(backend: BackendWasm, floats: number): RunCopier | null {
  return shapeModule<RunCopier>(backend, `patch runs ${floats}`, (): Func[] => {
    const [src, dst, count, srcStride, dstStride] = [0, 1, 2, 3, 4];
    const moves: number[] = [];
    for (let i = 0; i + 4 <= floats; i += 4) moves.push(...get(dst), ...get(src), ...load(4 * i), ...store(4 * i));
    for (let i = floats - (floats % 4); i < floats; i++) moves.push(...get(dst), ...get(src), ...F32_LOAD(4 * i), ...F32_STORE(4 * i));
    const body = [
      ...LOOP,
      ...moves,
      ...get(src), ...get(srcStride), ...I32_ADD, ...set(src),
      ...get(dst), ...get(dstStride), ...I32_ADD, ...set(dst),
      ...get(count), ...i32c(1), ...I32_SUB, ...tee(count), ...brIf(0),
      ...END,
    ];
    return [{ name: 'runs', params: 5, locals: [], body }];
  });
}

/**
 * P [rows·Wo, kp] for output rows [row0, row0 + rows) of the N·Ho rows: patch element (kh, kw, c) of output (b, oh,
 * ow) is x[b, oh·sh + kh − top, ow·sw + kw − left, c], 0 in the padding; columns from K to kp are left as they are.
 */
function writePatches(backend: BackendWasm, info: tf.backend_util.Conv2DInfo, copier: RunCopier, x: TensorInfo, p: TensorInfo, row0: number, rows: number): void {
  const kp = paddedPatch(info);
  const { inHeight: h, inWidth: w, inChannels: ci, outHeight: ho, outWidth: wo, strideHeight: sh, strideWidth: sw } = info;
  const [fh, fw] = [info.filterHeight, info.filterWidth];
  const { top, left } = info.padInfo;
  const run = fw * ci;
  // Output columns whose window row lies inside x: [owLo, owHi).
  const owLo = Math.min(wo, Math.ceil(left / sw));
  const owHi = Math.max(owLo, Math.min(wo, Math.floor((w - fw + left) / sw) + 1));
  const [xBase, pBase] = [heapOffset(backend, x), heapOffset(backend, p)];
  const X = heapF32(backend, x);
  const P = heapF32(backend, p);
  for (let r = 0; r < rows; r++) {
    const b = Math.floor((row0 + r) / ho);
    const oh = (row0 + r) % ho;
    for (let kh = 0; kh < fh; kh++) {
      const ih = oh * sh + kh - top;
      const at = (ow: number): number => (r * wo + ow) * kp + kh * run; // element index in P
      if (ih < 0 || ih >= h) {
        for (let ow = 0; ow < wo; ow++) P.fill(0, at(ow), at(ow) + run);
        continue;
      }
      const rowStart = (b * h + ih) * w; // x's pixel index of (b, ih, 0)
      if (owHi > owLo) copier.runs(xBase + (rowStart + owLo * sw - left) * ci * 4, pBase + at(owLo) * 4, owHi - owLo, sw * ci * 4, kp * 4);
      for (let ow = 0; ow < wo; ow++) {
        if (ow === owLo) ow = owHi;
        if (ow >= wo) break;
        for (let kw = 0; kw < fw; kw++) {
          const iw = ow * sw + kw - left;
          const dst = at(ow) + kw * ci;
          if (iw < 0 || iw >= w) P.fill(0, dst, dst + ci);
          else P.set(X.subarray((rowStart + iw) * ci, (rowStart + iw + 1) * ci), dst);
        }
      }
    }
  }
}

/**
 * A patch row's length in P: fh·fw·Ci rounded up to a multiple of 4, so that the filter gradient's rows come in whole
 * blocks of 4 (gemm.ts runs the rest one at a time, each re-reading dy); the extra columns hold zeros.
 */
function paddedPatch(info: tf.backend_util.Conv2DInfo): number {
  return 4 * Math.ceil((info.filterHeight * info.filterWidth * info.inChannels) / 4);
}

/** Output rows (of N·Ho) per chunk of patches. */
function chunkRows(info: tf.backend_util.Conv2DInfo): number {
  return Math.max(1, Math.floor(patchConvChoice.chunkBytes / (info.outWidth * paddedPatch(info) * 4)));
}

/** The workspace of patches for chunks of `rows` output rows, its padding columns zeroed once. */
function patchWorkspace(backend: BackendWasm, info: tf.backend_util.Conv2DInfo, rows: number): TensorInfo {
  const kp = paddedPatch(info);
  const patches = backend.makeOutput([rows * info.outWidth, kp], 'float32');
  if (kp > info.filterHeight * info.filterWidth * info.inChannels) heapF32(backend, patches).fill(0);
  return patches;
}

/** Conv2D of a few-channel input as a GEMM over patches, or null where it does not apply (see `patchInfo`). */
export function patchConv2D(args: KernelArgs): TensorInfo | null {
  const { backend } = args;
  const x = args.inputs['x']!;
  const filter = args.inputs['filter']!;
  const info = patchInfo(x.shape, filter.shape, args.attrs as unknown as ConvAttrs, [x.dtype, filter.dtype]);
  if (info === null) return null;
  const { batchSize: n, outHeight: ho, outWidth: wo, outChannels: co } = info;
  const k = info.filterHeight * info.filterWidth * info.inChannels;
  const kp = paddedPatch(info);
  const gemm = gemmKernels(backend, { lda: kp, ldb: co, ldc: co, n: co });
  const copier = runCopier(backend, info.filterWidth * info.inChannels);
  if (gemm === null || copier === null) return null;
  const out = backend.makeOutput([n, ho, wo, co], 'float32');
  const perChunk = Math.min(n * ho, chunkRows(info));
  const patches = patchWorkspace(backend, info, perChunk);
  const [pBase, wBase, outBase] = [heapOffset(backend, patches), heapOffset(backend, filter), heapOffset(backend, out)];
  for (let row0 = 0; row0 < n * ho; row0 += perChunk) {
    const rows = Math.min(perChunk, n * ho - row0);
    writePatches(backend, info, copier, x, patches, row0, rows);
    // The chunk's positions split between the pool's threads; each output element is one sum over K either way.
    const parts = evenRanges(rows * wo, poolParts(backend)).filter(([, m]) => m > 0);
    runParts(backend, gemm, 'gemm', parts.map(([first, m]) => [pBase + first * kp * 4, wBase, outBase + (row0 * wo + first) * co * 4, m, k, 0]));
  }
  release(backend, patches);
  return out;
}

/** Conv2DBackpropFilter of a few-channel input as Pᵀ · dy over chunks of patches, or null where it does not apply. */
export function patchConv2DBackpropFilter(args: KernelArgs): TensorInfo | null {
  const { backend } = args;
  const x = args.inputs['x']!;
  const dy = args.inputs['dy']!;
  const attrs = args.attrs as unknown as ConvAttrs & { filterShape: [number, number, number, number] };
  const info = patchInfo(x.shape, attrs.filterShape, attrs, [x.dtype, dy.dtype]);
  if (info === null) return null;
  const { batchSize: n, outHeight: ho, outWidth: wo, outChannels: co } = info;
  const k = info.filterHeight * info.filterWidth * info.inChannels;
  // A = Pᵀ read in place: its row i (a patch element) steps by K floats from one position to the next.
  const kp = paddedPatch(info);
  const gemm = gemmKernels(backend, { lda: 1, aStep: kp, ldb: co, ldc: co, n: co });
  const copier = runCopier(backend, info.filterWidth * info.inChannels);
  if (gemm === null || copier === null) return null;
  const dW = backend.makeOutput(attrs.filterShape, 'float32');
  // The products' rows are the padded patch's: into a [kp, Co] workspace where kp > k, whose first k rows are dW.
  const dWp = kp > k ? backend.makeOutput([kp, co], 'float32') : dW;
  const perChunk = Math.min(n * ho, chunkRows(info));
  const patches = patchWorkspace(backend, info, perChunk);
  // Each chunk's positions in runs of RUN_POSITIONS, every row block of dW over one run before the next, so that the
  // run of dy (and of the patches) is read from cache by all of them: one gemm.ts `gemms` list entry per run.
  const runsPerChunk = Math.ceil((perChunk * wo) / RUN_POSITIONS);
  const list = backend.makeOutput([runsPerChunk * GEMM_ENTRY_INTS], 'int32');
  const [pBase, dyBase, dwBase, listBase] = [heapOffset(backend, patches), heapOffset(backend, dy), heapOffset(backend, dWp), heapOffset(backend, list)];
  heapF32(backend, dWp).fill(0);
  // dW's rows in blocks of 4 between the pool's threads (each element one sum over positions, in order).
  const blocks = evenRanges(kp / 4, Math.min(poolParts(backend), kp / 4)).filter(([, count]) => count > 0);
  for (let row0 = 0; row0 < n * ho; row0 += perChunk) {
    const rows = Math.min(perChunk, n * ho - row0);
    writePatches(backend, info, copier, x, patches, row0, rows);
    const positions = rows * wo;
    const L = heapI32(backend, list);
    let entries = 0;
    for (let p0 = 0; p0 < positions; p0 += RUN_POSITIONS, entries++) {
      L.set([pBase + p0 * kp * 4, dyBase + (row0 * wo + p0) * co * 4, dwBase, Math.min(RUN_POSITIONS, positions - p0)], entries * GEMM_ENTRY_INTS);
    }
    runParts(backend, gemm, 'gemms', blocks.map(([first, count]) => {
      return [listBase, entries, 4 * count, 4 * first * 4, 4 * first * co * 4, 1];
    }));
  }
  release(backend, list);
  if (dWp !== dW) {
    heapF32(backend, dW).set(heapF32(backend, dWp).subarray(0, k * co));
    release(backend, dWp);
  }
  release(backend, patches);
  return dW;
}
