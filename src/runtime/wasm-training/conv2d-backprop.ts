/**
 * Gradients of the 2-D convolution on wasm:
 * - filter gradient: GEMMs of the transposed im2col patches of x with dy, one per chunk of output rows, summed
 *   (conv2DBackpropFilterMatMul) or, when a chunk's patches would be too big, ONE forward conv: input channels become
 *   the batch, the batch becomes the channels, dy becomes the filter, and the stride becomes a dilation (1.5-2x the
 *   forward conv's cost);
 * - input gradient: at stride > 1 ONE GEMM of dy with W^T and a col2im scatter-add (conv2DBackpropInputMatMul); else
 *   (or when the patches would be too big) split by stride phase. Every output phase (rh, rw) is a stride-1
 *   correlation of dy with a sub-filter of the flipped filter; all phases are computed at once as extra output
 *   channels and interleaved by DepthToSpace. No multiply-by-zero work, unlike zero insertion (4x the work at stride 2).
 */
import * as tf from '@tensorflow/tfjs';
import {
  conv2dExplicit,
  heapF32,
  heapI32,
  release,
  runWasmKernel,
  reshape,
  transpose,
  slice,
  type BackendWasm,
  type KernelArgs,
  type TensorInfo,
  type ConvAttrs,
  convInfo,
} from './wasm-kernel-utils.js';
import { col2imWasm } from './col2im.js';
import { patchConv2DBackpropFilter } from './conv-patches.js';
import { tapConv2DBackpropFilter, tapConv2DBackpropInput } from './conv-taps.js';
import { GEMM_ENTRY_INTS, gemmKernels } from './gemm.js';
import { heapCopier, heapIndex, type HeapCopy } from './heap-copy.js';
import { evenRanges, poolParts, runParts, runRows } from './kernel-pool.js';
import { writePhasePlanes } from './phase-planes.js';
import { heapOffset } from './simd-kernels.js';

function requireNHWC(attrs: ConvAttrs, kernel: string): void {
  if (attrs.dataFormat !== undefined && attrs.dataFormat !== 'NHWC') {
    throw new Error(`wasm ${kernel}: only dataFormat 'NHWC' is supported, got '${attrs.dataFormat}'`);
  }
}

/**
 * Which formulations run, and the kernels' scratch memory, bounded whatever the input size. The filter gradient's
 * im2col GEMM builds its patches one chunk of about `filterChunkPositions` output positions (whole output rows) at a
 * time, fh*fw*Ci x chunk floats, fewer rows where that would exceed `maxPatchElements` floats (64 MB); where even one
 * row would, the conv formulation, which needs little extra memory, runs instead. The strided input gradient's GEMM
 * needs fh*fw*Ci x N*Ho*Wo floats at once, under the same limit, else the phase-split conv runs. Tests set the limit
 * to 0 to exercise the conv formulations, and the chunk size to a few positions to exercise many chunks.
 */
export const convGradientChoice = {
  /** The filter gradient by gemm.ts over the planes in place (conv2DBackpropFilterTaps) where it applies. */
  tapGemms: true,
  /** dy floats per chunk of conv2DBackpropFilterTaps (its positions: this / Co). */
  tapChunkFloats: 65536,
  /** The most bytes of dy on the planes' grid that conv2DBackpropFilterTaps copies at once. */
  workspaceBytes: 64 * 1024 * 1024,
  maxPatchElements: 16 * 1024 * 1024,
  filterChunkPositions: 2048,
};

/**
 * Output rows (n, oh) per chunk of the filter gradient's GEMM: whole rows of `rowWidth` positions, about
 * `filterChunkPositions` positions, at most `maxPatchElements` patch floats (k per position) where a row fits; 0 where
 * not even one row does.
 */
function filterChunkRows(rowWidth: number, k: number): number {
  const fit = Math.floor(convGradientChoice.maxPatchElements / (k * rowWidth));
  return Math.min(fit, Math.max(1, Math.round(convGradientChoice.filterChunkPositions / rowWidth)));
}

/** The inputs, attributes and geometry of a Conv2DBackpropFilter call. */
function filterGradientCall(args: KernelArgs): {
  backend: BackendWasm;
  x: TensorInfo;
  dy: TensorInfo;
  attrs: ConvAttrs & { filterShape: [number, number, number, number] };
  info: tf.backend_util.Conv2DInfo;
} {
  const x = args.inputs['x']!;
  const attrs = args.attrs as unknown as ConvAttrs & { filterShape: [number, number, number, number] };
  requireNHWC(attrs, 'Conv2DBackpropFilter');
  return { backend: args.backend, x, dy: args.inputs['dy']!, attrs, info: convInfo(x.shape, attrs.filterShape, attrs) };
}

/** dW of a 2-D convolution; see the file comment and `convGradientChoice`. */
export function conv2DBackpropFilter(args: KernelArgs): TensorInfo {
  const strided = tapConv2DBackpropFilter(args) ?? patchConv2DBackpropFilter(args);
  if (strided !== null) return strided;
  if (convGradientChoice.tapGemms) {
    const dW = conv2DBackpropFilterTaps(args);
    if (dW !== null) return dW;
  }
  const { x, info } = filterGradientCall(args);
  const rowWidth = Math.ceil((info.inWidth + info.padInfo.left + info.padInfo.right) / info.strideWidth); // the planes' width
  if (x.dtype === 'float32' && filterChunkRows(rowWidth, info.filterHeight * info.filterWidth * info.inChannels) > 0) {
    return conv2DBackpropFilterMatMul(args);
  }
  return conv2DBackpropFilterConv(args);
}

/**
 * dW read from x's stride-phase planes in place, one product per filter tap (no patch copies): with p the positions of
 * the planes' [N, Hq, Wq] grid (`phasePlanes`) and dy zero-padded to that grid (positions outside [Ho, Wo] add 0),
 *   dW[kh, kw] [Ci, Co] = Σ_p plane(c, kh % sh, kw % sw)[p + floor(kh / sh) * Wq + floor(kw / sw)] · dyGrid[p, co].
 * Each product is a gemm.ts GEMM whose A is a view of the planes (row stride: one channel's planes). The sum over p
 * runs in chunks of positions, all taps per chunk, so the chunk of dy stays in cache while the taps read it. The
 * kernel pool's threads take rows of dW (input channels), or taps when there are fewer than 4 channels per thread;
 * each dW element is the same sum in the same order either way. Null where it does not apply (float32 only, Co a
 * multiple of 4, wasm SIMD).
 */
export function conv2DBackpropFilterTaps(args: KernelArgs): TensorInfo | null {
  const { backend, x, dy, attrs, info } = filterGradientCall(args);
  const { batchSize: n, outHeight: ho, outWidth: wo, outChannels: co, inChannels: ci } = info;
  const [fh, fw] = [info.filterHeight, info.filterWidth];
  if (x.dtype !== 'float32' || dy.dtype !== 'float32' || co % 4 !== 0 || n * ho * wo * ci * co === 0) return null;
  // Channels padded to a multiple of 4 (zero planes): the GEMM's rows then come in whole blocks of 4 (3 -> 4 for an
  // RGB input: its dW rows 1 at a time ran several times slower per multiply-add).
  const cp = 4 * Math.ceil(ci / 4);
  const planes = phasePlanes(backend, x, info, cp);
  const [, sh, sw, , hq, wq] = planes.shape as [number, number, number, number, number, number];
  const grid = n * hq * wq;
  const lda = sh * sw * grid;
  if (lda * 4 * 4 >= 2 ** 32) {
    release(backend, planes);
    return null;
  }
  const gemm = gemmKernels(backend, { lda, ldb: co, ldc: co, n: co, columnMajor: true });
  if (gemm === null) {
    release(backend, planes);
    return null;
  }
  const end = ((n - 1) * hq + ho - 1) * wq + wo; // every position from here on is padding
  const chunk = Math.max(1, Math.floor(convGradientChoice.tapChunkFloats / co));
  const chunks = Math.ceil(end / chunk);
  // dy on the planes' grid: padded whole by PadV2, or, where that copy would exceed the workspace cap, one block of
  // chunks at a time into a buffer of the cap's size. Either way each dW element gets the same sums in the same order.
  const blockChunks = Math.max(1, Math.floor(convGradientChoice.workspaceBytes / (chunk * co * 4)));
  const blocked = chunks > blockChunks;
  const dyGrid = blocked
    ? backend.makeOutput([blockChunks * chunk, co], 'float32')
    : runWasmKernel(backend, 'PadV2', { x: dy }, { paddings: [[0, 0], [0, hq - ho], [0, wq - wo], [0, 0]], constantValue: 0 });
  const taps = fh * fw;
  const parts = poolParts(backend);
  const byRows = cp >= 4 * parts;
  const tapParts = byRows ? 1 : Math.min(parts, taps);
  const dW = backend.makeOutput(attrs.filterShape, 'float32');
  const dWPadded = cp === ci ? dW : backend.makeOutput([fh, fw, cp, co], 'float32');
  const list = backend.makeOutput([Math.min(chunks, blockChunks) * taps * GEMM_ENTRY_INTS], 'int32');
  const [planesBase, dyBase, dWBase, listBase] = [planes, dyGrid, dWPadded, list].map((t) => heapOffset(backend, t)) as [number, number, number, number];
  heapF32(backend, dWPadded).fill(0);
  for (let firstChunk = 0; firstChunk < chunks; firstChunk += blockChunks) {
    const lastChunk = Math.min(chunks, firstChunk + blockChunks);
    const p0Block = firstChunk * chunk;
    if (blocked) fillGridBlock(backend, dy, dyGrid, { n, ho, wo, hq, wq, co }, p0Block, Math.min(end, lastChunk * chunk));
    // Entries grouped by the part that runs them (by taps: a range of taps each), chunk-major.
    const L = heapI32(backend, list);
    const partStart: number[] = [];
    let e = 0;
    for (const [firstTap, tapCount] of evenRanges(taps, tapParts)) {
      partStart.push(e);
      for (let c = firstChunk; c < lastChunk; c++) {
        const p0 = c * chunk;
        for (let t = firstTap; t < firstTap + tapCount; t++) {
          const [kh, kw] = [Math.floor(t / fw), t % fw];
          const phase = (kh % sh) * sw + (kw % sw);
          L[e++] = planesBase + (phase * grid + p0 + Math.floor(kh / sh) * wq + Math.floor(kw / sw)) * 4;
          L[e++] = dyBase + (p0 - (blocked ? p0Block : 0)) * co * 4;
          L[e++] = dWBase + t * cp * co * 4;
          L[e++] = Math.min(chunk, end - p0);
        }
      }
    }
    partStart.push(e);
    const calls: number[][] = [];
    if (byRows) {
      // Row ranges in whole groups of 4 (the GEMM's blocks).
      for (const [firstGroup, groups] of evenRanges(cp / 4, parts)) {
        const r0 = 4 * firstGroup;
        calls.push([listBase, e / GEMM_ENTRY_INTS, 4 * groups, r0 * lda * 4, r0 * co * 4, 1]);
      }
    } else {
      for (let p = 0; p < tapParts; p++) {
        calls.push([listBase + partStart[p]! * 4, (partStart[p + 1]! - partStart[p]!) / GEMM_ENTRY_INTS, cp, 0, 0, 1]);
      }
    }
    runParts(backend, gemm, 'gemms', calls);
  }
  release(backend, planes, dyGrid, list);
  if (dWPadded !== dW) {
    // The first ci rows of each tap's [cp, co] block.
    const [P, D] = [heapF32(backend, dWPadded), heapF32(backend, dW)];
    for (let t = 0; t < taps; t++) D.set(P.subarray(t * cp * co, (t * cp + ci) * co), t * ci * co);
    release(backend, dWPadded);
  }
  return dW;
}

/**
 * Positions [from, to) of dy on the planes' [N, Hq, Wq] grid into `block` (position `from` at its row 0): dy's rows
 * where the grid row and column fall inside [Ho, Wo], zeros elsewhere.
 */
function fillGridBlock(
  backend: BackendWasm,
  dy: TensorInfo,
  block: TensorInfo,
  g: { n: number; ho: number; wo: number; hq: number; wq: number; co: number },
  from: number,
  to: number,
): void {
  const [DY, B] = [heapF32(backend, dy), heapF32(backend, block)];
  const copy = heapCopier(backend, B);
  const [dyIndex, blockIndex] = [heapIndex(DY), heapIndex(B)];
  for (let p = from; p < to; ) {
    const row = Math.floor(p / g.wq); // (image, grid row)
    const j = p - row * g.wq;
    const stop = Math.min(to, (row + 1) * g.wq);
    const [image, i] = [Math.floor(row / g.hq), row % g.hq];
    const inside = i < g.ho ? Math.max(0, Math.min(stop - p, g.wo - j)) : 0; // positions with dy values
    const dst = (p - from) * g.co;
    if (inside > 0) copy(blockIndex + dst, dyIndex + ((image * g.ho + i) * g.wo + j) * g.co, inside * g.co);
    B.fill(0, dst + inside * g.co, (stop - from) * g.co);
    p = stop;
  }
}

/** dW = conv(x^T, dy^T) with the stride as dilation; see the file comment. */
export function conv2DBackpropFilterConv(args: KernelArgs): TensorInfo {
  const { backend, x, dy, info } = filterGradientCall(args);
  const [fh, fw] = [info.filterHeight, info.filterWidth];
  const [sh, sw] = [info.strideHeight, info.strideWidth];
  const [h, w] = [info.inHeight, info.inWidth];
  const [ho, wo] = [info.outHeight, info.outWidth];
  const xT = transpose(backend, x, [3, 1, 2, 0]); // [Ci, H, W, N]
  const dyT = transpose(backend, dy, [1, 2, 0, 3]); // [Ho, Wo, N, Co]
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const out = conv2dExplicit(
    backend,
    xT,
    dyT,
    { top, left, bottom: fh + (ho - 1) * sh - h - top, right: fw + (wo - 1) * sw - w - left },
    [1, 1],
    [sh, sw],
  ); // [Ci, fh, fw, Co]
  release(backend, xT, dyT);
  const dW = transpose(backend, out, [1, 2, 0, 3]);
  release(backend, out);
  return dW;
}

/**
 * dW as a sum of matrix products over chunks of output positions: dW [fh*fw*Ci, Co] = sum over chunks of
 * patches(x)^T [fh*fw*Ci, chunk] . dy [chunk, Co]. Blocking the reduction (N*Ho*Wo, 98,304 on the reference network's
 * first layers) keeps the GEMM's packed dy chunk and the patch rows it walks in cache: XNNPACK's fully-connected op
 * does not block it and streams the whole packed dy from memory once per few patch rows.
 * The patches come from x split into zero-padded stride-phase planes (`phasePlanes`), where every tap is a stride-1
 * access; every output row gets as many positions as a plane has columns (the extra ones with dy = 0), so a patch
 * row of a chunk is one contiguous run of a plane per image: one copy instead of one per output row or element.
 * Each chunk's product is added to the first one's.
 */
export function conv2DBackpropFilterMatMul(args: KernelArgs): TensorInfo {
  const { backend, x, dy, attrs, info } = filterGradientCall(args);
  const { batchSize: n, outHeight: ho, outWidth: wo, outChannels: co } = info;
  const k = info.filterHeight * info.filterWidth * info.inChannels;
  const planes = phasePlanes(backend, x, info);
  const rowWidth = planes.shape[5]!; // positions per output row in the GEMM
  const rowsPerChunk = Math.max(1, filterChunkRows(rowWidth, k));
  let sum: TensorInfo | null = null;
  for (let row0 = 0; row0 < n * ho; row0 += rowsPerChunk) {
    const rows = Math.min(rowsPerChunk, n * ho - row0);
    const patchesT = backend.makeOutput([k, rows * rowWidth], 'float32');
    // A fresh copy of the dy rows: the built-in BatchMatMul caches its packed b by tensor id, whatever the shape.
    const b = backend.makeOutput([rows * rowWidth, co], 'float32');
    const [X, P, B, DY] = [planes, patchesT, b, dy].map((t) => heapF32(backend, t)) as [Float32Array, Float32Array, Float32Array, Float32Array];
    const copy = heapCopier(backend, X); // after this chunk's allocations, which may grow the heap
    im2colFromPlanes(X, planes.shape, P, info, row0, rows, copy);
    const heapB = heapIndex(B);
    const heapDY = heapIndex(DY);
    for (let r = 0; r < rows; r++) {
      const dst = r * rowWidth * co;
      copy(heapB + dst, heapDY + (row0 + r) * wo * co, wo * co);
      B.fill(0, dst + wo * co, dst + rowWidth * co);
    }
    const product = runWasmKernel(backend, 'BatchMatMul', { a: patchesT, b }, { transposeA: false, transposeB: false });
    release(backend, patchesT, b);
    if (sum === null) {
      sum = product;
    } else {
      const S = heapF32(backend, sum);
      const Q = heapF32(backend, product);
      for (let i = 0; i < S.length; i++) S[i]! += Q[i]!;
      release(backend, product);
    }
  }
  release(backend, planes);
  const dW = reshape(backend, sum!, attrs.filterShape);
  release(backend, sum!);
  return dW;
}

/**
 * x as zero-padded stride-phase planes [C, sh, sw, N, Hq, Wq] (C = `channels`, Ci by default; zero planes beyond Ci):
 * plane (c, rh, rw, n) at (i, j) holds the padded x at
 * (n, i*sh + rh, j*sw + rw, c). Tap (kh, kw) of output (oh, ow) then reads plane (kh % sh, kw % sw) at
 * (oh + floor(kh / sh), ow + floor(kw / sw)); within a channel and phase, the images follow each other, so position
 * (n, i, j) of the [N, Hq, Wq] grid is one index for all images. One wasm pass (phase-planes.ts); without it, a
 * transpose, a pad and (stride > 1) a phase split in JavaScript.
 */
function phasePlanes(backend: BackendWasm, x: TensorInfo, info: tf.backend_util.Conv2DInfo, channels = info.inChannels): TensorInfo {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels, strideHeight: sh, strideWidth: sw } = info;
  const c = channels; // at least inChannels: the planes of the channels beyond x are zeros
  const { top, bottom, left, right } = info.padInfo;
  const hq = Math.ceil((h + top + bottom) / sh);
  const wq = Math.ceil((w + left + right) / sw);
  if (x.dtype === 'float32') {
    const planes = backend.makeOutput([c, sh, sw, n, hq, wq], 'float32');
    const geometry = { n, h, w, ci: inChannels, c, sh, sw, hq, wq, top, left };
    if (writePhasePlanes(backend, geometry, heapOffset(backend, x), heapOffset(backend, planes))) return planes;
    release(backend, planes);
  }
  // Without the wasm module: a transpose, a pad and (stride > 1) the phase split in JavaScript.
  const xC = transpose(backend, x, [3, 0, 1, 2]); // [Ci, N, H, W]
  const padded = runWasmKernel(backend, 'PadV2', { x: xC }, {
    paddings: [[0, c - inChannels], [0, 0], [top, hq * sh - h - top], [left, wq * sw - w - left]],
    constantValue: 0,
  });
  release(backend, xC);
  if (sh === 1 && sw === 1) return reshapeConsuming(backend, padded, [c, 1, 1, n, hq, wq]);
  const planes = backend.makeOutput([c, sh, sw, n, hq, wq], 'float32');
  const X = heapF32(backend, padded);
  const Q = heapF32(backend, planes);
  const paddedWidth = wq * sw;
  let dst = 0;
  for (let ch = 0; ch < c; ch++) {
    for (let rh = 0; rh < sh; rh++) {
      for (let rw = 0; rw < sw; rw++) {
        for (let b = 0; b < n; b++) {
          for (let i = 0; i < hq; i++) {
            let src = ((ch * n + b) * hq * sh + i * sh + rh) * paddedWidth + rw;
            for (let j = 0; j < wq; j++, src += sw) Q[dst++] = X[src]!;
          }
        }
      }
    }
  }
  release(backend, padded);
  return planes;
}

/** `reshape`, releasing its input. */
function reshapeConsuming(backend: BackendWasm, x: TensorInfo, shape: number[]): TensorInfo {
  const out = reshape(backend, x, shape);
  release(backend, x);
  return out;
}

/**
 * P[(kh, kw, c), (r, j)] = plane (c, kh % sh, kw % sw, n) at (oh + floor(kh / sh), j + floor(kw / sw)) for the output
 * rows r = (n, oh) from row0 on and the plane's columns j (`phasePlanes`). For j >= Wo the value is whatever follows
 * in the planes (finite unless x is not; zero past their end): dy is 0 there. One copy per patch row and image.
 */
function im2colFromPlanes(
  X: Float32Array,
  planesShape: number[],
  P: Float32Array,
  info: tf.backend_util.Conv2DInfo,
  row0: number,
  rows: number,
  copy: HeapCopy,
): void {
  const [c, sh, sw, n, hq, wq] = planesShape as [number, number, number, number, number, number];
  const ho = info.outHeight;
  const heap = new Float32Array(X.buffer);
  const xBase = heapIndex(X);
  const xEnd = xBase + X.length;
  let dst = heapIndex(P);
  for (let kh = 0; kh < info.filterHeight; kh++) {
    for (let kw = 0; kw < info.filterWidth; kw++) {
      const [rh, qh, rw, qw] = [kh % sh, Math.floor(kh / sh), kw % sw, Math.floor(kw / sw)];
      for (let ch = 0; ch < c; ch++) {
        for (let r = row0; r < row0 + rows; ) {
          const b = Math.floor(r / ho);
          const oh = r - b * ho;
          const count = Math.min(row0 + rows - r, ho - oh);
          const src = xBase + (((((ch * sh + rh) * sw + rw) * n + b) * hq + oh + qh) * wq + qw);
          const length = count * wq;
          const copied = Math.min(length, xEnd - src);
          copy(dst, src, copied);
          if (copied < length) heap.fill(0, dst + copied, dst + length);
          dst += length;
          r += count;
        }
      }
    }
  }
}

/** Per spatial dimension: where the phase-split correlation starts, how much it pads and where the result sits. */
interface PhaseGeometry {
  taps: number; // sub-filter size ceil(f / s)
  rows: number; // phase outputs computed per phase
  padBefore: number; // may be negative: crop dy instead
  padAfter: number;
  offset: number; // first wanted row in the interleaved result
}

function phaseGeometry(filter: number, stride: number, padBefore: number, inSize: number, dySize: number): PhaseGeometry {
  const taps = Math.ceil(filter / stride);
  const qa = Math.floor(padBefore / stride);
  const qb = Math.floor((padBefore + inSize - 1) / stride);
  const rows = qb - qa + 1;
  const before = taps - 1 - qa;
  return { taps, rows, padBefore: before, padAfter: rows + taps - 1 - dySize - before, offset: padBefore - qa * stride };
}

/**
 * The filter of the phase-split input gradient: [Kh, Kw, Co, sh*sw*Ci] with
 * big[kh, kw, co, (rh*sw + rw)*Ci + ci] = W[rh + (Kh-1-kh)*sh, rw + (Kw-1-kw)*sw, ci, co] (zero outside W).
 */
function phaseFilter(backend: BackendWasm, filter: TensorInfo, sh: number, sw: number, kh: number, kw: number): TensorInfo {
  const [fh, fw, ci, co] = filter.shape as [number, number, number, number];
  const outC = sh * sw * ci;
  const big = backend.makeOutput([kh, kw, co, outC], 'float32');
  const W = heapF32(backend, filter);
  const B = heapF32(backend, big);
  B.fill(0);
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      for (let rh = 0; rh < sh; rh++) {
        const fa = rh + (kh - 1 - a) * sh;
        if (fa >= fh) continue;
        for (let rw = 0; rw < sw; rw++) {
          const fb = rw + (kw - 1 - b) * sw;
          if (fb >= fw) continue;
          const phaseBase = (rh * sw + rw) * ci;
          for (let c = 0; c < ci; c++) {
            const src = ((fa * fw + fb) * ci + c) * co;
            let dst = ((a * kw + b) * co) * outC + phaseBase + c;
            for (let o = 0; o < co; o++, dst += outC) B[dst] = W[src + o]!;
          }
        }
      }
    }
  }
  return big;
}

/**
 * dX of a strided conv as ONE GEMM and a scatter-add: dPatches [N*Ho*Wo, fh*fw*Ci] = dy [N*Ho*Wo, Co] . W^T, then
 * col2im adds every patch back into dx (in JavaScript, fh*fw adds per input element at most). At stride 2 the
 * phase-split conv computes ceil(f/s)^2 * s^2 = 16 taps where 9 are real and pays DepthToSpace and a slice (several
 * times slower on the reference network's 64 -> 128 stride-2 layer); at stride 1 the conv is faster (no col2im).
 */
export function conv2DBackpropInputMatMul(args: KernelArgs): TensorInfo {
  const { backend } = args;
  const dy = args.inputs['dy']!;
  const filter = args.inputs['filter']!;
  const attrs = args.attrs as unknown as ConvAttrs & { inputShape: [number, number, number, number] };
  requireNHWC(attrs, 'Conv2DBackpropInput');
  const info = convInfo(attrs.inputShape, filter.shape, attrs);
  const rows = info.batchSize * info.outHeight * info.outWidth;
  const k = info.filterHeight * info.filterWidth * info.inChannels;
  // W^T [Co, k] copied here (small): the built-in BatchMatMul is a slow loop with transposeB, and it caches its packed
  // b by tensor id whatever the shape, so b must be a fresh tensor anyway.
  const co = info.outChannels;
  const w = backend.makeOutput([co, k], 'float32');
  const W = heapF32(backend, filter);
  const WT = heapF32(backend, w);
  for (let r = 0; r < k; r++) for (let o = 0; o < co; o++) WT[o * k + r] = W[r * co + o]!;
  let dPatches: TensorInfo;
  const gemm = k % 4 === 0 ? gemmKernels(backend, { lda: co, ldb: k, ldc: k, n: k }) : null;
  if (gemm !== null) {
    // gemm.ts, the rows of dy split between the kernel pool's threads.
    dPatches = backend.makeOutput([rows, k], 'float32');
    const call = [heapOffset(backend, dy), heapOffset(backend, w), heapOffset(backend, dPatches), rows, co, 0];
    runRows(backend, gemm, 'gemm', call, 3, [[0, co * 4], [2, k * 4]]);
  } else {
    const a = reshape(backend, dy, [rows, co]);
    dPatches = runWasmKernel(backend, 'BatchMatMul', { a, b: w }, { transposeA: false, transposeB: false });
    release(backend, a);
  }
  release(backend, w);
  const dx = backend.makeOutput(attrs.inputShape, 'float32');
  if (!col2imWasm(backend, info, heapOffset(backend, dPatches), heapOffset(backend, dx))) col2im(heapF32(backend, dPatches), heapF32(backend, dx), info);
  release(backend, dPatches);
  return dx;
}

/** dx[n, oh*sh + kh - top, ow*sw + kw - left, c] += P[(n, oh, ow), (kh, kw, c)] over the patches inside x. */
function col2im(P: Float32Array, D: Float32Array, info: tf.backend_util.Conv2DInfo): void {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: ho, outWidth: wo } = info;
  const [fh, fw, sh, sw] = [info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth];
  const [top, left] = [info.padInfo.top, info.padInfo.left];
  D.fill(0);
  let src = 0;
  for (let b = 0; b < n; b++) {
    for (let oh = 0; oh < ho; oh++) {
      for (let ow = 0; ow < wo; ow++) {
        for (let kh = 0; kh < fh; kh++) {
          const ih = oh * sh + kh - top;
          if (ih < 0 || ih >= h) {
            src += fw * c;
            continue;
          }
          for (let kw = 0; kw < fw; kw++, src += c) {
            const iw = ow * sw + kw - left;
            if (iw < 0 || iw >= w) continue;
            const dst = ((b * h + ih) * w + iw) * c;
            for (let i = 0; i < c; i++) D[dst + i]! += P[src + i]!;
          }
        }
      }
    }
  }
}

/**
 * dX of a 2-D convolution: at stride > 1 the tap GEMMs (conv-taps.ts) or else the GEMM and col2im; otherwise the
 * phase-split conv (`convGradientChoice`).
 */
export function conv2DBackpropInput(args: KernelArgs): TensorInfo {
  const strides = (args.attrs as unknown as ConvAttrs).strides;
  const strided = typeof strides === 'number' ? strides > 1 : strides[0] > 1 || strides[1] > 1;
  const filterShape = args.inputs['filter']!.shape;
  const [n, ho, wo] = args.inputs['dy']!.shape as [number, number, number, number];
  const patchElements = filterShape[0]! * filterShape[1]! * filterShape[2]! * n * ho * wo;
  if (strided) {
    const dx = tapConv2DBackpropInput(args);
    if (dx !== null) return dx;
  }
  if (strided && args.inputs['dy']!.dtype === 'float32' && patchElements <= convGradientChoice.maxPatchElements) {
    return conv2DBackpropInputMatMul(args);
  }
  return conv2DBackpropInputConv(args);
}

/** The phase-split conv formulation; see the file comment. */
export function conv2DBackpropInputConv(args: KernelArgs): TensorInfo {
  const { backend } = args;
  const dy = args.inputs['dy']!;
  const filter = args.inputs['filter']!;
  const attrs = args.attrs as unknown as ConvAttrs & { inputShape: [number, number, number, number] };
  requireNHWC(attrs, 'Conv2DBackpropInput');
  const info = convInfo(attrs.inputShape, filter.shape, attrs);
  const [sh, sw] = [info.strideHeight, info.strideWidth];
  const [n, h, w, ci] = attrs.inputShape;
  const gh = phaseGeometry(info.filterHeight, sh, info.padInfo.top, h, info.outHeight);
  const gw = phaseGeometry(info.filterWidth, sw, info.padInfo.left, w, info.outWidth);
  const big = phaseFilter(backend, filter, sh, sw, gh.taps, gw.taps);
  const phases = conv2dExplicit(
    backend,
    dy,
    big,
    { top: gh.padBefore, bottom: gh.padAfter, left: gw.padBefore, right: gw.padAfter },
    [1, 1],
    [1, 1],
  );
  release(backend, big);
  const full = interleavePhases(backend, phases, sh, sw, ci);
  const dx = slice(backend, full, [0, gh.offset, gw.offset, 0], [n, h, w, ci]);
  release(backend, full);
  return dx;
}

/** [N, Q, Q', sh*sw*C] with phase-major channels -> [N, Q*sh, Q'*sw, C]. Consumes `phases`. */
function interleavePhases(backend: BackendWasm, phases: TensorInfo, sh: number, sw: number, c: number): TensorInfo {
  if (sh === 1 && sw === 1) return phases;
  let out: TensorInfo;
  if (sh === sw) {
    out = runWasmKernel(backend, 'DepthToSpace', { x: phases }, { blockSize: sh, dataFormat: 'NHWC' });
  } else {
    // Unequal strides are rare: a 6-D transpose is slow but correct.
    const [n, q, q2] = phases.shape as [number, number, number, number];
    const six = reshape(backend, phases, [n, q, q2, sh, sw, c]);
    const moved = transpose(backend, six, [0, 1, 3, 2, 4, 5]);
    out = reshape(backend, moved, [n, q * sh, q2 * sw, c]);
    release(backend, six, moved);
  }
  release(backend, phases);
  return out;
}
