/**
 * col2im for the strided input gradient (conv2d-backprop.ts): dx[n, oh*sh + kh - top, ow*sw + kw - left, c] +=
 * P[(n, oh, ow), (kh, kw, c)] over the patches inside x, as wasm SIMD (channels a multiple of 4), split by image
 * between the kernel pool's threads. Every dx element gets its additions in the same order as the JavaScript loop it
 * replaced (which ran on one thread), so the results are the same. Specialised per shape.
 */
import * as tf from '@tensorflow/tfjs';
import {
  BLOCK, END, F32X4_ADD, I32, I32_ADD, I32_AND, I32_EQZ, I32_GE_S, I32_LT_S, I32_LT_U, I32_MUL, I32_SUB, IF, LOOP, MEMORY_FILL,
  brIf, forLoop, get, i32c, load, set, shapeModule, store, tee, type Func,
} from './simd-kernels.js';
import { runRanges } from './kernel-pool.js';
import type { BackendWasm } from './wasm-kernel-utils.js';

const loop = (counter: number, limit: number, body: number[]): number[] => forLoop(counter, i32c(limit), body);

/** col2im(p, dx, firstImage, images): zeroes and fills dx's images [firstImage, firstImage + images). */
function col2imFunc(info: tf.backend_util.Conv2DInfo): Func {
  const { inHeight: h, inWidth: w, inChannels: c, outHeight: ho, outWidth: wo } = info;
  const [fh, fw, sh, sw] = [info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth];
  const [top, left] = [info.padInfo.top, info.padInfo.left];
  const [p, dx, firstImage, images] = [0, 1, 2, 3];
  const [b, oh, ow, kh, kw, ih, iw, src, dst, g, addr] = [4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
  const imageBytes = h * w * c * 4;
  const patchBytes = fh * fw * c * 4;
  const channels = loop(g, c / 4, [
    ...get(dst), ...get(g), ...i32c(16), ...I32_MUL, ...I32_ADD, ...tee(addr),
    ...get(addr), ...load(0),
    ...get(src), ...get(g), ...i32c(16), ...I32_MUL, ...I32_ADD, ...load(0),
    ...F32X4_ADD, ...store(0),
  ]);
  const tap = [
    // iw = ow * sw + kw - left
    ...get(ow), ...i32c(sw), ...I32_MUL, ...get(kw), ...I32_ADD, ...i32c(left), ...I32_SUB, ...tee(iw),
    ...i32c(0), ...I32_GE_S, ...get(iw), ...i32c(w), ...I32_LT_S, ...I32_AND,
    ...IF,
    // dst = dx + ((b * h + ih) * w + iw) * c * 4; src = p + (((b * ho + oh) * wo + ow) * fh * fw + kh * fw + kw) * c * 4
    ...get(dx), ...get(b), ...i32c(h), ...I32_MUL, ...get(kh), ...get(oh), ...i32c(sh), ...I32_MUL, ...I32_ADD,
    ...i32c(top), ...I32_SUB, ...I32_ADD, ...i32c(w), ...I32_MUL, ...get(iw), ...I32_ADD, ...i32c(c * 4), ...I32_MUL, ...I32_ADD,
    ...set(dst),
    ...get(p), ...get(b), ...i32c(ho), ...I32_MUL, ...get(oh), ...I32_ADD, ...i32c(wo), ...I32_MUL, ...get(ow), ...I32_ADD,
    ...i32c(patchBytes), ...I32_MUL, ...I32_ADD,
    ...get(kh), ...i32c(fw * c * 4), ...I32_MUL, ...I32_ADD, ...get(kw), ...i32c(c * 4), ...I32_MUL, ...I32_ADD, ...set(src),
    ...channels,
    ...END,
  ];
  const row = loop(kh, fh, [
    // ih = oh * sh + kh - top, inside x?
    ...get(oh), ...i32c(sh), ...I32_MUL, ...get(kh), ...I32_ADD, ...i32c(top), ...I32_SUB, ...tee(ih),
    ...i32c(0), ...I32_GE_S, ...get(ih), ...i32c(h), ...I32_LT_S, ...I32_AND,
    ...IF, ...loop(kw, fw, tap), ...END,
  ]);
  const body = [
    ...BLOCK,
    ...get(images), ...I32_EQZ, ...brIf(0),
    ...get(dx), ...get(firstImage), ...i32c(imageBytes), ...I32_MUL, ...I32_ADD, ...i32c(0),
    ...get(images), ...i32c(imageBytes), ...I32_MUL, ...MEMORY_FILL,
    ...get(firstImage), ...set(b),
    ...LOOP,
    ...loop(oh, ho, loop(ow, wo, row)),
    ...get(b), ...i32c(1), ...I32_ADD, ...tee(b),
    ...get(firstImage), ...get(images), ...I32_ADD, ...I32_LT_U, ...brIf(0),
    ...END,
    ...END,
  ];
  return { name: 'col2im', params: 4, locals: [[11, I32]], body };
}

interface Col2imKernels {
  col2im(p: number, dx: number, firstImage: number, images: number): void;
}

/**
 * dx (byte offset) from the patch gradients P (byte offset) in wasm; false where it does not apply (channels not a
 * multiple of 4, offsets beyond i32, no wasm SIMD): the caller runs its JavaScript loop.
 */
export function col2imWasm(backend: BackendWasm, info: tf.backend_util.Conv2DInfo, p: number, dx: number): boolean {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: ho, outWidth: wo } = info;
  if (c % 4 !== 0 || c === 0 || n * ho * wo * info.filterHeight * info.filterWidth * c * 4 >= 2 ** 31 || n * h * w * c * 4 >= 2 ** 31) return false;
  const key = JSON.stringify([n, h, w, c, ho, wo, info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left]);
  const kernels = shapeModule<Col2imKernels>(backend, `col2im ${key}`, () => [col2imFunc(info)]);
  if (kernels === null) return false;
  runRanges(backend, kernels, 'col2im', n, (first, images) => [p, dx, first, images]);
  return true;
}
