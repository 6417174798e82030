/**
 * MaxPoolGrad for wasm. The built-in starts its running max at the smallest positive float instead of -infinity, so a
 * window whose values are all <= 0 sends its gradient to the wrong element. This one scans each window in row-major
 * order starting from -infinity (first maximum wins, like the cpu backend) and scatters dy to the arg-max. It is a
 * memory-bound pass over the input, done in place on the wasm heap. Non-overlapping windows (stride = window, no
 * padding or dilation, e.g. 2x2 stride 2) with channels a multiple of 4 run as SIMD (simd-kernels.ts, same rule).
 */
import * as tf from '@tensorflow/tfjs';
import { runRows } from './kernel-pool.js';
import { heapOffset, simdKernels } from './simd-kernels.js';
import { heapF32, type KernelArgs, type TensorInfo } from './wasm-kernel-utils.js';

interface PoolAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

export function maxPoolGrad(args: KernelArgs): TensorInfo {
  const { backend } = args;
  const dy = args.inputs['dy']!;
  const input = args.inputs['input']!;
  const attrs = args.attrs as unknown as PoolAttrs;
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const { batchSize, inHeight, inWidth, inChannels: c, outHeight, outWidth, strideHeight, strideWidth } = info;
  const fh = info.effectiveFilterHeight;
  const fw = info.effectiveFilterWidth;
  const dh = info.dilationHeight;
  const dw = info.dilationWidth;
  const dx = backend.makeOutput(input.shape, 'float32');
  // Whole windows inside the input only: with 'same' padding on an odd size the last window overhangs the input's
  // end, which the tiles would read and write past (the general loop below takes those).
  const tiled = strideHeight === fh && strideWidth === fw && dh === 1 && dw === 1 && info.padInfo.top === 0 &&
    info.padInfo.left === 0 && outHeight * fh <= inHeight && outWidth * fw <= inWidth && c >= 4 && c % 4 === 0 &&
    outHeight * outWidth > 0 && input.dtype === 'float32';
  const kernels = tiled ? simdKernels(backend) : null;
  if (kernels !== null) {
    // Rows and columns past the last whole window ('valid') get no gradient.
    if (outHeight * fh < inHeight || outWidth * fw < inWidth) heapF32(backend, dx).fill(0);
    const rowBytes = inWidth * c * 4;
    const [x0, dy0, dx0] = [heapOffset(backend, input), heapOffset(backend, dy), heapOffset(backend, dx)];
    const windowRowBytes = outWidth * c * 4;
    if (outHeight * fh === inHeight) {
      // Window rows follow each other across images: all of them in one call, split between the pool's threads.
      const call = [x0, dy0, dx0, outWidth, c, fh, fw, rowBytes, batchSize * outHeight];
      runRows(backend, kernels, 'maxPoolGradRows', call, 8, [[0, fh * rowBytes], [1, windowRowBytes], [2, fh * rowBytes]]);
      return dx;
    }
    for (let b = 0; b < batchSize; b++) {
      const inImage = b * inHeight * rowBytes;
      kernels.maxPoolGradRows(x0 + inImage, dy0 + b * outHeight * windowRowBytes, dx0 + inImage, outWidth, c, fh, fw, rowBytes, outHeight);
    }
    return dx;
  }
  const X = heapF32(backend, input);
  const DY = heapF32(backend, dy);
  const DX = heapF32(backend, dx);
  DX.fill(0);
  const best = new Float32Array(c);
  const arg = new Int32Array(c);
  for (let b = 0; b < batchSize; b++) {
    const xBatch = b * inHeight * inWidth * c;
    for (let yr = 0; yr < outHeight; yr++) {
      const r0 = yr * strideHeight - info.padInfo.top;
      for (let yc = 0; yc < outWidth; yc++) {
        const c0 = yc * strideWidth - info.padInfo.left;
        best.fill(-Infinity);
        arg.fill(-1);
        for (let wr = 0; wr < fh; wr += dh) {
          const xr = r0 + wr;
          if (xr < 0 || xr >= inHeight) continue;
          for (let wc = 0; wc < fw; wc += dw) {
            const xc = c0 + wc;
            if (xc < 0 || xc >= inWidth) continue;
            const base = xBatch + (xr * inWidth + xc) * c;
            for (let ch = 0; ch < c; ch++) {
              const v = X[base + ch]!;
              if (v > best[ch]!) {
                best[ch] = v;
                arg[ch] = base + ch;
              }
            }
          }
        }
        const dyBase = ((b * outHeight + yr) * outWidth + yc) * c;
        for (let ch = 0; ch < c; ch++) {
          const at = arg[ch]!;
          if (at >= 0) DX[at] = DX[at]! + DY[dyBase + ch]!;
        }
      }
    }
  }
  return dx;
}
