/**
 * SpaceToBatchND and BatchToSpaceND (the way to a dilated conv with gradients, e.g. an SSD's fc6) through the kernel
 * registry, so that their transpose and slice run on the fast paths here: the built-ins call the wasm package's own
 * element-by-element transpose and its copy-everything-first slice directly.
 */
import * as tf from '@tensorflow/tfjs';
import { release, reshape, runWasmKernel, slice, transpose, type KernelArgs, type TensorInfo } from './wasm-kernel-utils.js';

export function batchToSpaceND(args: KernelArgs): TensorInfo {
  const { backend } = args;
  const x = args.inputs['x']!;
  const { blockShape, crops } = args.attrs as { blockShape: number[]; crops: number[][] };
  const prod = blockShape.reduce((a, b) => a * b, 1);
  const reshaped = tf.backend_util.getReshaped(x.shape, blockShape, prod);
  const permuted = tf.backend_util.getPermuted(reshaped.length, blockShape.length);
  const reshapedPermuted = tf.backend_util.getReshapedPermuted(x.shape, blockShape, prod);
  const begin = tf.backend_util.getSliceBeginCoords(crops, blockShape.length);
  const size = tf.backend_util.getSliceSize(reshapedPermuted, crops, blockShape.length);
  const a = reshape(backend, x, reshaped);
  const b = transpose(backend, a, permuted);
  const c = reshape(backend, b, reshapedPermuted);
  const out = slice(backend, c, begin, size);
  release(backend, a, b, c);
  return out;
}

export function spaceToBatchND(args: KernelArgs): TensorInfo {
  const { backend } = args;
  const x = args.inputs['x']!;
  const { blockShape, paddings } = args.attrs as { blockShape: number[]; paddings: number[][] };
  const prod = blockShape.reduce((a, b) => a * b, 1);
  const complete: number[][] = [[0, 0], ...paddings];
  for (let i = 1 + blockShape.length; i < x.shape.length; i++) complete.push([0, 0]);
  const padded = complete.every(([lo, hi]) => lo === 0 && hi === 0)
    ? reshape(backend, x, x.shape)
    : runWasmKernel(backend, 'PadV2', { x }, { paddings: complete, constantValue: 0 });
  const shape = tf.backend_util.getReshaped(padded.shape, blockShape, prod, false);
  const perm = tf.backend_util.getPermuted(shape.length, blockShape.length, false);
  const flat = tf.backend_util.getReshapedPermuted(padded.shape, blockShape, prod, false);
  const a = reshape(backend, padded, shape);
  const b = transpose(backend, a, perm);
  const out = reshape(backend, b, flat);
  release(backend, padded, a, b);
  return out;
}
