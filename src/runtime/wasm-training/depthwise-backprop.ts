/**
 * Gradients of the depthwise convolution on wasm, as direct loops over the wasm heap (any stride, dilation, padding
 * and channel multiplier). Depthwise layers do ~fh*fw MACs per output element, so one pass with the channel loop
 * innermost (contiguous in NHWC) costs about as much as a few element-wise ops.
 */
import * as tf from '@tensorflow/tfjs';
import { convInfo, heapF32, type ConvAttrs, type KernelArgs, type TensorInfo } from './wasm-kernel-utils.js';

/**
 * Visits every (batch, output pixel, tap) whose input pixel lies inside the image, with the flat offsets of the
 * input pixel (times channels), the dy pixel (times out channels) and the tap (times channels*multiplier).
 */
function forEachTap(info: tf.backend_util.Conv2DInfo, visit: (xOff: number, dyOff: number, tapOff: number) => void): void {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth } = info;
  for (let b = 0; b < batchSize; b++) {
    for (let i = 0; i < outHeight; i++) {
      const r0 = i * info.strideHeight - info.padInfo.top;
      for (let j = 0; j < outWidth; j++) {
        const c0 = j * info.strideWidth - info.padInfo.left;
        const dyOff = ((b * outHeight + i) * outWidth + j) * outChannels;
        for (let a = 0; a < filterHeight; a++) {
          const r = r0 + a * info.dilationHeight;
          if (r < 0 || r >= inHeight) continue;
          for (let k = 0; k < filterWidth; k++) {
            const c = c0 + k * info.dilationWidth;
            if (c < 0 || c >= inWidth) continue;
            visit(((b * inHeight + r) * inWidth + c) * inChannels, dyOff, (a * filterWidth + k) * outChannels);
          }
        }
      }
    }
  }
}

export function depthwiseConv2dNativeBackpropInput(args: KernelArgs): TensorInfo {
  const { backend } = args;
  const dy = args.inputs['dy']!;
  const filter = args.inputs['filter']!;
  const attrs = args.attrs as unknown as ConvAttrs & { inputShape: [number, number, number, number] };
  const info = convInfo(attrs.inputShape, filter.shape, attrs, true);
  const channels = info.inChannels;
  const mult = info.outChannels / channels;
  const dx = backend.makeOutput(attrs.inputShape, 'float32');
  const DY = heapF32(backend, dy);
  const W = heapF32(backend, filter);
  const DX = heapF32(backend, dx);
  DX.fill(0);
  if (mult === 1) {
    forEachTap(info, (xOff, dyOff, tapOff) => {
      for (let ch = 0; ch < channels; ch++) DX[xOff + ch] = DX[xOff + ch]! + DY[dyOff + ch]! * W[tapOff + ch]!;
    });
  } else {
    forEachTap(info, (xOff, dyOff, tapOff) => {
      for (let ch = 0; ch < channels; ch++) {
        let acc = 0;
        for (let m = 0; m < mult; m++) acc += DY[dyOff + ch * mult + m]! * W[tapOff + ch * mult + m]!;
        DX[xOff + ch] = DX[xOff + ch]! + acc;
      }
    });
  }
  return dx;
}

export function depthwiseConv2dNativeBackpropFilter(args: KernelArgs): TensorInfo {
  const { backend } = args;
  const x = args.inputs['x']!;
  const dy = args.inputs['dy']!;
  const attrs = args.attrs as unknown as ConvAttrs & { filterShape: [number, number, number, number] };
  const info = convInfo(x.shape, attrs.filterShape, attrs, true);
  const channels = info.inChannels;
  const mult = info.outChannels / channels;
  const dW = backend.makeOutput(attrs.filterShape, 'float32');
  const X = heapF32(backend, x);
  const DY = heapF32(backend, dy);
  const DW = heapF32(backend, dW);
  // Accumulate in float64: the sum runs over every pixel of the batch.
  const acc = new Float64Array(DW.length);
  if (mult === 1) {
    forEachTap(info, (xOff, dyOff, tapOff) => {
      for (let ch = 0; ch < channels; ch++) acc[tapOff + ch] = acc[tapOff + ch]! + X[xOff + ch]! * DY[dyOff + ch]!;
    });
  } else {
    forEachTap(info, (xOff, dyOff, tapOff) => {
      for (let ch = 0; ch < channels; ch++) {
        const xv = X[xOff + ch]!;
        for (let m = 0; m < mult; m++) {
          const o = ch * mult + m;
          acc[tapOff + o] = acc[tapOff + o]! + xv * DY[dyOff + o]!;
        }
      }
    });
  }
  DW.set(acc);
  return dW;
}
