/**
 * The built-in wasm convolutions (Conv2D, FusedConv2D, DepthwiseConv2dNative, FusedDepthwiseConv2D) pass 'same'
 * padding to XNNPACK as its TensorFlow-SAME flag, and their output is wrong wherever TensorFlow's total 'same' padding
 * of a dimension, (out - 1) * stride + dilated filter - in, is negative, i.e. TensorFlow pads nothing because the last
 * window already ends inside the input. That needs a stride larger than the filter: a 2x2 filter with stride 3 on 9
 * rows, or a 1x1 stride-2 conv on an even size (XNNPACK happens to get 1x1 filters right). Those cases get the same
 * padding spelled out explicitly (zeros on that dimension), which the built-ins handle correctly and which gives the
 * same output shape; every other case reaches the built-in unchanged.
 */
import * as tf from '@tensorflow/tfjs';
import { convInfo, type ConvAttrs, type KernelArgs, type TensorInfo } from './wasm-kernel-utils.js';

type ConvKernel = (args: KernelArgs) => TensorInfo | TensorInfo[];

/**
 * `builtIn` with 'same' padding written out as explicit padding where XNNPACK's 'same' would go wrong (a negative
 * total padding in either dimension); the cases XNNPACK gets right reach it unchanged. An output with a negative
 * size (the dilated filter larger than the padded input) is an error here: the built-in trapped on an out-of-bounds
 * access, after which every wasm kernel threw; an empty output is returned empty, as on cpu.
 */
export function withCorrectPadding(name: string, builtIn: ConvKernel, depthwise: boolean): ConvKernel {
  return (args) => {
    const attrs = args.attrs as unknown as ConvAttrs | undefined;
    const x = args.inputs['x'];
    const filter = args.inputs['filter'];
    if (attrs === undefined || x === undefined || filter === undefined) return builtIn(args);
    if (attrs.dataFormat !== undefined && attrs.dataFormat !== 'NHWC') return builtIn(args);
    if (x.shape.length !== 4 || filter.shape.length !== 4) return builtIn(args);
    const info = convInfo(x.shape, filter.shape, attrs, depthwise);
    if (info.outHeight < 0 || info.outWidth < 0) {
      throw new Error(
        `${name}: the filter ${info.effectiveFilterHeight}x${info.effectiveFilterWidth} (with dilation) does not fit ` +
          `the padded input ${info.inHeight}x${info.inWidth} (pad ${JSON.stringify(attrs.pad)}): output shape [${info.outShape.join(', ')}]`,
      );
    }
    if (info.outShape.some((d) => d === 0)) return args.backend.makeOutput(info.outShape, 'float32');
    if (info.padInfo.type !== 'SAME') return builtIn(args);
    const slackHeight = info.inHeight - ((info.outHeight - 1) * info.strideHeight + info.effectiveFilterHeight);
    const slackWidth = info.inWidth - ((info.outWidth - 1) * info.strideWidth + info.effectiveFilterWidth);
    if (slackHeight <= 0 && slackWidth <= 0) return builtIn(args);
    const { top, bottom, left, right } = info.padInfo;
    const pad: tf.backend_util.ExplicitPadding = [[0, 0], [top, bottom], [left, right], [0, 0]];
    return builtIn({ ...args, attrs: { ...args.attrs, pad } });
  };
}

/** The built-in kernels that take XNNPACK's 'same' flag, and whether each is depthwise. */
export const samePaddingKernels: [string, boolean][] = [
  ['Conv2D', false],
  ['FusedConv2D', false],
  ['DepthwiseConv2dNative', true],
  ['FusedDepthwiseConv2D', true],
];
