/**
 * Strided convolutions (stride > 1, no dilation) and both their gradients on wasm as sums of one GEMM per filter tap
 * and output row, reading x, dy and writing the result in place: no im2col patches and no col2im buffer.
 *
 * Forward: out[b, oh, ow, :] = Σ_(kh, kw) x[b, oh*sh + kh - top, ow*sw + kw - left, :] · W[kh, kw] ([Ci, Co]). For one
 * image row b, oh and tap (kh, kw), the x rows that tap reads for ow = 0, 1, ... are sw*Ci floats apart, so the
 * product over the output row is one gemm.ts GEMM with A = x in place (row stride sw*Ci), B = W[kh, kw] and C = the
 * output row, accumulating. Input gradient: the same walk with the roles swapped, dx rows (row stride sw*Ci) +=
 * dy row · W[kh, kw]ᵀ. Filter gradient: dW[kh, kw] += (x rows)ᵀ · dy row, A read transposed in place (gemm.ts' aStep).
 * Taps that fall into the padding are cut from the run of output columns (m, or k for the filter gradient).
 *
 * Why: XNNPACK's direct convolution ran the stride-2 64 -> 128 layer of the reference network ~2x slower than
 * gemm.ts per multiply-add, and the GEMM + col2im input gradient writes and re-reads fh*fw*Ci floats per output
 * position. Each output element is a sum over taps of gemm.ts sums over channels, in the same order on any number of
 * threads: the pool's parts take image rows (forward), whole images (input gradient: neighbouring rows add into the
 * same dx rows) or ranges of taps (filter gradient).
 */
import * as tf from '@tensorflow/tfjs';
import { GEMM_ENTRY_INTS, gemmKernels } from './gemm.js';
import { evenRanges, poolParts, runParts } from './kernel-pool.js';
import { heapOffset } from './simd-kernels.js';
import { heapF32, heapI32, release, convInfo, type BackendWasm, type ConvAttrs, type KernelArgs, type TensorInfo } from './wasm-kernel-utils.js';

/** Settings (tests turn the path off to compare with the other formulations). */
export const tapConvChoice = {
  enabled: true,
  /**
   * Fewest channels summed per GEMM step (input channels forward and for the filter gradient's rows, output channels
   * for the input gradient): with an RGB input's 3 the other formulations are as fast or faster.
   */
  minChannels: 8,
};

/** The geometry when the tap GEMMs apply (stride > 1, no dilation, NHWC, float32, byte offsets within i32), else null. */
function tapInfo(
  xShape: number[],
  filterShape: number[],
  attrs: ConvAttrs,
  dtypes: string[],
): tf.backend_util.Conv2DInfo | null {
  if (!tapConvChoice.enabled || dtypes.some((d) => d !== 'float32')) return null;
  if (attrs.dataFormat !== undefined && attrs.dataFormat !== 'NHWC') return null;
  if (xShape.length !== 4 || filterShape.length !== 4) return null;
  const info = convInfo(xShape, filterShape, attrs);
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) return null;
  if (info.strideHeight === 1 && info.strideWidth === 1) return null;
  if (info.outHeight <= 0 || info.outWidth <= 0) return null; // empty, or a filter larger than the padded input
  const largest = Math.max(info.batchSize * info.inHeight * info.inWidth * info.inChannels, info.batchSize * info.outHeight * info.outWidth * info.outChannels);
  if (largest === 0 || largest * 4 >= 2 ** 31) return null;
  return info;
}

/**
 * The GEMM entries (a, b, c, run) of every image row and tap, in image-row order and split for the pool's parts into
 * ranges of whole images ('images': parts that write overlapping rows of one image must not run at once), of image
 * rows ('rows': each row written by one part), or ('taps') tap-major into ranges of taps. `pointers(b, oh, kh, kw, ih,
 * owLo)` gives a, b and c of the run of output columns [owLo, owHi), and `run` is its length.
 */
function tapEntries(
  backend: BackendWasm,
  info: tf.backend_util.Conv2DInfo,
  pointers: (b: number, oh: number, kh: number, kw: number, ih: number, owLo: number) => [number, number, number],
  split: 'images' | 'rows' | 'taps',
): { list: TensorInfo; parts: [number, number][] } {
  const { batchSize: n, inHeight: h, inWidth: w, outHeight: ho, outWidth: wo, strideHeight: sh, strideWidth: sw } = info;
  const [fh, fw, top, left] = [info.filterHeight, info.filterWidth, info.padInfo.top, info.padInfo.left];
  // Per kw, the output columns whose input column ow*sw + kw - left lies inside x.
  const columns = Array.from({ length: fw }, (_, kw) => {
    const lo = Math.max(0, Math.ceil((left - kw) / sw));
    const hi = Math.min(wo, Math.floor((w - 1 + left - kw) / sw) + 1);
    return [lo, hi] as const;
  });
  let count = 0;
  for (let oh = 0; oh < ho; oh++) {
    for (let kh = 0; kh < fh; kh++) {
      const ih = oh * sh + kh - top;
      if (ih < 0 || ih >= h) continue;
      for (const [lo, hi] of columns) if (hi > lo) count++;
    }
  }
  const list = backend.makeOutput([Math.max(1, n * count * GEMM_ENTRY_INTS)], 'int32');
  const L = heapI32(backend, list);
  let e = 0;
  const entry = (b: number, oh: number, kh: number, kw: number): void => {
    const ih = oh * sh + kh - top;
    const [lo, hi] = columns[kw]!;
    if (ih < 0 || ih >= h || hi <= lo) return;
    const [pa, pb, pc] = pointers(b, oh, kh, kw, ih, lo);
    L[e++] = pa;
    L[e++] = pb;
    L[e++] = pc;
    L[e++] = hi - lo;
  };
  const listBase = heapOffset(backend, list);
  if (split === 'taps') {
    const tapParts = Math.max(1, Math.min(poolParts(backend), fh * fw));
    const parts: [number, number][] = [];
    for (const [firstTap, taps] of evenRanges(fh * fw, tapParts)) {
      const start = e;
      for (let t = firstTap; t < firstTap + taps; t++) {
        for (let b = 0; b < n; b++) for (let oh = 0; oh < ho; oh++) entry(b, oh, Math.floor(t / fw), t % fw);
      }
      parts.push([listBase + start * 4, (e - start) / GEMM_ENTRY_INTS]);
    }
    return { list, parts };
  }
  const rowStart: number[] = []; // the first entry of each image row (b, oh), then the end
  for (let b = 0; b < n; b++) {
    for (let oh = 0; oh < ho; oh++) {
      rowStart.push(e / GEMM_ENTRY_INTS);
      for (let kh = 0; kh < fh; kh++) for (let kw = 0; kw < fw; kw++) entry(b, oh, kh, kw);
    }
  }
  rowStart.push(e / GEMM_ENTRY_INTS);
  const [units, rowsPerUnit] = split === 'rows' ? [n * ho, 1] : [n, ho];
  const parts = evenRanges(units, Math.max(1, Math.min(poolParts(backend), units))).map(([first, length]) => {
    const [from, to] = [rowStart[first * rowsPerUnit]!, rowStart[(first + length) * rowsPerUnit]!];
    return [listBase + from * GEMM_ENTRY_INTS * 4, to - from] as [number, number];
  });
  return { list, parts };
}

/** A strided Conv2D as tap GEMMs, or null where it does not apply (see `tapInfo`; Co a multiple of 4). */
export function tapConv2D(args: KernelArgs): TensorInfo | null {
  const { backend } = args;
  const x = args.inputs['x']!;
  const filter = args.inputs['filter']!;
  const attrs = args.attrs as unknown as ConvAttrs;
  const info = tapInfo(x.shape, filter.shape, attrs, [x.dtype, filter.dtype]);
  if (info === null) return null;
  const { inHeight: h, inWidth: w, inChannels: ci, outHeight: ho, outWidth: wo, outChannels: co, strideWidth: sw } = info;
  if (co % 4 !== 0 || ci < tapConvChoice.minChannels) return null;
  const gemm = gemmKernels(backend, { lda: sw * ci, ldb: co, ldc: co, n: co });
  if (gemm === null) return null;
  const out = backend.makeOutput([info.batchSize, ho, wo, co], 'float32');
  const [xBase, wBase, outBase] = [x, filter, out].map((t) => heapOffset(backend, t)) as [number, number, number];
  const left = info.padInfo.left;
  const fw = info.filterWidth;
  // Rows of the output are independent: split by image rows, so that one image also runs on every thread.
  const { list, parts } = tapEntries(
    backend,
    info,
    (b, oh, kh, kw, ih, owLo) => [
      xBase + ((b * h + ih) * w + owLo * sw + kw - left) * ci * 4,
      wBase + (kh * fw + kw) * ci * co * 4,
      outBase + ((b * ho + oh) * wo + owLo) * co * 4,
    ],
    'rows',
  );
  heapF32(backend, out).fill(0);
  runParts(backend, gemm, 'gemmsRows', parts.map(([start, count]) => [start, count, ci, 1]));
  release(backend, list);
  return out;
}

/** A strided Conv2DBackpropInput as tap GEMMs, or null where it does not apply (see `tapInfo`; Ci a multiple of 4). */
export function tapConv2DBackpropInput(args: KernelArgs): TensorInfo | null {
  const { backend } = args;
  const dy = args.inputs['dy']!;
  const filter = args.inputs['filter']!;
  const attrs = args.attrs as unknown as ConvAttrs & { inputShape: [number, number, number, number] };
  const info = tapInfo(attrs.inputShape, filter.shape, attrs, [dy.dtype, filter.dtype]);
  if (info === null) return null;
  const { inHeight: h, inWidth: w, inChannels: ci, outHeight: ho, outWidth: wo, outChannels: co, strideWidth: sw } = info;
  if (ci % 4 !== 0 || co < tapConvChoice.minChannels) return null;
  const gemm = gemmKernels(backend, { lda: co, ldb: ci, ldc: sw * ci, n: ci });
  if (gemm === null) return null;
  const [fh, fw] = [info.filterHeight, info.filterWidth];
  // W[kh, kw]ᵀ per tap: [fh*fw, Co, Ci].
  const wT = backend.makeOutput([fh * fw, co, ci], 'float32');
  const dx = backend.makeOutput(attrs.inputShape, 'float32');
  const [dyBase, wTBase, dxBase] = [dy, wT, dx].map((t) => heapOffset(backend, t)) as [number, number, number];
  const left = info.padInfo.left;
  // Neighbouring output rows add into the same dx rows: split by images.
  const { list, parts } = tapEntries(
    backend,
    info,
    (b, oh, kh, kw, ih, owLo) => [
      dyBase + ((b * ho + oh) * wo + owLo) * co * 4,
      wTBase + (kh * fw + kw) * co * ci * 4,
      dxBase + ((b * h + ih) * w + owLo * sw + kw - left) * ci * 4,
    ],
    'images',
  );
  const [W, WT] = [heapF32(backend, filter), heapF32(backend, wT)];
  for (let t = 0; t < fh * fw; t++) {
    const base = t * ci * co;
    for (let c = 0; c < ci; c++) for (let o = 0; o < co; o++) WT[base + o * ci + c] = W[base + c * co + o]!;
  }
  heapF32(backend, dx).fill(0);
  runParts(backend, gemm, 'gemmsRows', parts.map(([start, count]) => [start, count, co, 1]));
  release(backend, list, wT);
  return dx;
}

/**
 * A strided Conv2DBackpropFilter as tap GEMMs, or null where it does not apply (see `tapInfo`; Co a multiple of 4).
 * dW[kh, kw] [Ci, Co] = Σ over image rows of (the x rows tap (kh, kw) reads)ᵀ · dy row: A = x in place, rows (input
 * channels) 1 float apart and k (output columns) sw*Ci apart. The pool's parts take ranges of taps, so that each dW
 * element is the same sum in the same order on any number of threads.
 */
export function tapConv2DBackpropFilter(args: KernelArgs): TensorInfo | null {
  const { backend } = args;
  const x = args.inputs['x']!;
  const dy = args.inputs['dy']!;
  const attrs = args.attrs as unknown as ConvAttrs & { filterShape: [number, number, number, number] };
  const info = tapInfo(x.shape, attrs.filterShape, attrs, [x.dtype, dy.dtype]);
  if (info === null) return null;
  const { inHeight: h, inWidth: w, inChannels: ci, outHeight: ho, outWidth: wo, outChannels: co, strideWidth: sw } = info;
  if (co % 4 !== 0 || ci < tapConvChoice.minChannels) return null;
  const gemm = gemmKernels(backend, { lda: 1, aStep: sw * ci, ldb: co, ldc: co, n: co });
  if (gemm === null) return null;
  const dW = backend.makeOutput(attrs.filterShape, 'float32');
  const [xBase, dyBase, dWBase] = [x, dy, dW].map((t) => heapOffset(backend, t)) as [number, number, number];
  const left = info.padInfo.left;
  const fw = info.filterWidth;
  const { list, parts } = tapEntries(
    backend,
    info,
    (b, oh, kh, kw, ih, owLo) => [
      xBase + ((b * h + ih) * w + owLo * sw + kw - left) * ci * 4,
      dyBase + ((b * ho + oh) * wo + owLo) * co * 4,
      dWBase + (kh * fw + kw) * ci * co * 4,
    ],
    'taps',
  );
  heapF32(backend, dW).fill(0);
  // gemms: entries (a, b, c, k) with m = Ci rows.
  runParts(backend, gemm, 'gemms', parts.map(([start, count]) => [start, count, ci, 0, 0, 1]));
  release(backend, list);
  return dW;
}
