/**
 * x [N, H, W, Ci] (NHWC) as zero-padded stride-phase planes [C, sh, sw, N, Hq, Wq] (C >= Ci: zero planes beyond Ci) in
 * one wasm pass, split by image between the kernel pool's threads: the layout of conv2d-backprop.ts' filter gradients.
 * It replaces a transpose, a pad and (stride > 1) a JavaScript phase split, all on one thread. Each destination element is written once, from x or as a zero; the module is specialised per shape.
 */
import {
  BLOCK, ELSE, END, F32_CONST_0, F32_LOAD, F32_STORE, F32X4_EXTRACT, I32, I32_ADD, I32_AND, I32_EQZ, I32_GE_S, I32_LT_S, I32_LT_U,
  I32_MUL, I32_SUB, IF, LOOP, V128, brIf, forLoop as loop, get, i32c, load, set, shapeModule, tee, type Func,
} from './simd-kernels.js';
import { runRanges } from './kernel-pool.js';
import type { BackendWasm } from './wasm-kernel-utils.js';

export interface PlanesGeometry {
  n: number;
  h: number;
  w: number;
  ci: number;
  c: number; // planes (>= ci)
  sh: number;
  sw: number;
  hq: number;
  wq: number;
  top: number;
  left: number;
}


/** toPlanes(x, planes, firstImage, images): the planes of images [firstImage, firstImage + images). */
function toPlanesFunc(g: PlanesGeometry): Func {
  const [x, planes, firstImage, images] = [0, 1, 2, 3];
  const [b, rh, i, rw, j, ih, iw, src, dst, inside, grp, v] = [4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
  const planeBytes = g.sh * g.sw * g.n * g.hq * g.wq * 4; // from one channel's planes to the next
  const full = Math.floor(g.ci / 4); // channel groups of 4 read as one v128
  const storeAt = (c: number, value: number[]): number[] => [...get(dst), ...value, ...F32_STORE(c * planeBytes)];
  // Inside x: the full groups (a loop when there are many), the channels left one by one, zeros for the extra planes.
  const groupBody = (offsetChannels: number[]): number[] => [
    ...get(src), ...offsetChannels, ...I32_ADD, ...load(0), ...set(v),
    ...[0, 1, 2, 3].flatMap((lane) => [
      ...get(dst), ...offsetChannels, ...i32c(planeBytes / 4), ...I32_MUL, ...I32_ADD,
      ...get(v), ...F32X4_EXTRACT(lane), ...F32_STORE(lane * planeBytes),
    ]),
  ];
  const fromX = [
    ...(full > 4
      ? loop(grp, i32c(full), groupBody([...get(grp), ...i32c(16), ...I32_MUL]))
      : Array.from({ length: full }, (_, k) => groupBody(i32c(16 * k))).flat()),
    ...Array.from({ length: g.ci - 4 * full }, (_, k) => storeAt(4 * full + k, [...get(src), ...F32_LOAD((4 * full + k) * 4)])).flat(),
    ...Array.from({ length: g.c - g.ci }, (_, k) => storeAt(g.ci + k, F32_CONST_0)).flat(),
  ];
  const zeros = Array.from({ length: g.c }, (_, k) => storeAt(k, F32_CONST_0)).flat();
  const pixel = [
    // iw = j * sw + rw - left; inside = row inside and 0 <= iw < w
    ...get(j), ...i32c(g.sw), ...I32_MUL, ...get(rw), ...I32_ADD, ...i32c(g.left), ...I32_SUB, ...tee(iw),
    ...i32c(0), ...I32_GE_S, ...get(iw), ...i32c(g.w), ...I32_LT_S, ...I32_AND, ...get(inside), ...I32_AND,
    ...IF,
    ...get(x), ...get(b), ...i32c(g.h), ...I32_MUL, ...get(ih), ...I32_ADD, ...i32c(g.w), ...I32_MUL, ...get(iw), ...I32_ADD,
    ...i32c(g.ci * 4), ...I32_MUL, ...I32_ADD, ...set(src),
    ...fromX,
    ...ELSE,
    ...zeros,
    ...END,
    ...get(dst), ...i32c(4), ...I32_ADD, ...set(dst),
  ];
  const row = [
    // dst = planes + (((rh * sw + rw) * n + b) * hq + i) * wq * 4
    ...get(planes),
    ...get(rh), ...i32c(g.sw), ...I32_MUL, ...get(rw), ...I32_ADD, ...i32c(g.n), ...I32_MUL, ...get(b), ...I32_ADD,
    ...i32c(g.hq), ...I32_MUL, ...get(i), ...I32_ADD, ...i32c(g.wq * 4), ...I32_MUL, ...I32_ADD, ...set(dst),
    ...loop(j, i32c(g.wq), pixel),
  ];
  const body = [
    ...BLOCK,
    ...get(images), ...I32_EQZ, ...brIf(0),
    ...get(firstImage), ...set(b),
    ...LOOP,
    ...loop(rh, i32c(g.sh), loop(i, i32c(g.hq), [
      // ih = i * sh + rh - top; inside (the row) = 0 <= ih < h
      ...get(i), ...i32c(g.sh), ...I32_MUL, ...get(rh), ...I32_ADD, ...i32c(g.top), ...I32_SUB, ...tee(ih),
      ...i32c(0), ...I32_GE_S, ...get(ih), ...i32c(g.h), ...I32_LT_S, ...I32_AND, ...set(inside),
      ...loop(rw, i32c(g.sw), row),
    ])),
    ...get(b), ...i32c(1), ...I32_ADD, ...tee(b),
    ...get(firstImage), ...get(images), ...I32_ADD, ...I32_LT_U, ...brIf(0),
    ...END,
    ...END,
  ];
  return { name: 'toPlanes', params: 4, locals: [[11, I32], [1, V128]], body };
}

interface PlanesKernels {
  toPlanes(x: number, planes: number, firstImage: number, images: number): void;
}


/**
 * Writes the planes of x (at byte offset `x`) to `planes` (byte offset, C * sh * sw * N * Hq * Wq floats); false where
 * the module cannot run (no wasm SIMD) or an offset would not fit an i32 (the caller falls back).
 */
export function writePhasePlanes(backend: BackendWasm, g: PlanesGeometry, x: number, planes: number): boolean {
  if (g.c * g.sh * g.sw * g.n * g.hq * g.wq * 4 >= 2 ** 31 || g.n * g.h * g.w * g.ci * 4 >= 2 ** 31) return false;
  const kernels = shapeModule<PlanesKernels>(backend, `planes ${JSON.stringify(g)}`, () => [toPlanesFunc(g)]);
  if (kernels === null) return false;
  runRanges(backend, kernels, 'toPlanes', g.n, (first, images) => [x, planes, first, images]);
  return true;
}
