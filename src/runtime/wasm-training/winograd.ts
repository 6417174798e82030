/**
 * Winograd F(4x4, 3x3) for the stride-1 3x3 convolutions on wasm (forward Conv2D, and through it the stride-1 input
 * gradient, which conv2d-backprop.ts runs as one forward Conv2D of dy with the flipped filter).
 *
 * Why: XNNPACK's direct convolution is near the limit of 128-bit wasm SIMD, so only fewer multiplications help.
 * Winograd computes each 4x4 output tile from a 6x6 input tile with 36 instead of 144 multiplications per
 * (input, output) channel pair: Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A (Lavin & Gray, points 0, ±1, ±2, ∞). Per call:
 *   1. U = G g Gᵀ of the filter: 36 matrices [Cin, Cout];
 *   2. V = Bᵀ d B of every 6x6 tile of the zero-padded input (tiles overlap by 2; the zeros are not copied): 36
 *      matrices [tiles, Cin];
 *   3. M = V·U: 36 GEMMs by gemm.ts, shared out between the kernel pool's threads (kernel-pool.ts); its results
 *      equal XNNPACK's BatchMatMul's bit for bit here, and it runs faster (it does not pack an operand);
 *   4. Y = Aᵀ M A into the output, cropping partial tiles.
 * The transforms run as WebAssembly SIMD over 4 channels at a time, in modules specialised per shape (channel
 * counts and row strides become immediate offsets); with threads on, the images are split between the kernel pool's
 * threads (kernel-pool.ts), each tile computed exactly as on one thread.
 *
 * Accuracy: the transforms amplify float32 rounding (coefficients up to 8 and 1/24); on random data the error stays
 * ~1e-6 of the output scale (test/wasm-winograd.test.ts bounds it against the cpu backend).
 */
import * as tf from '@tensorflow/tfjs';
import {
  BLOCK, ELSE, END, F32_STORE, F32X4_ADD, F32X4_EXTRACT, F32X4_MUL, F32X4_SUB, I32, I32_ADD, I32_AND, I32_EQ, I32_EQZ,
  I32_GT_S, I32_LE_S, I32_LOAD, I32_LT_S, I32_LT_U, I32_MUL, I32_SUB, IF, LOOP, V128, brIf, f32x4Const, forLoop as countedLoop,
  get, heapOffset, i32c, load, set, shapeModule, store, tee,
} from './simd-kernels.js';
import type { Func } from './simd-kernels.js';
import { GEMM_ENTRY_INTS, gemmKernels, type GemmKernels } from './gemm.js';
import { evenRanges, poolParts, runParts, runRanges } from './kernel-pool.js';
import { heapF32, heapI32, release } from './wasm-kernel-utils.js';
import type { BackendWasm, KernelArgs, TensorInfo } from './wasm-kernel-utils.js';

// ---- the transforms in WebAssembly ----

const mulc = (k: number): number[] => [...f32x4Const(k), ...F32X4_MUL];

/**
 * Each value's code run once into its own local: the 1-D transforms read most inputs two or three times, and inputs
 * given as loads (with bounds tests on the border) would otherwise be loaded that often.
 */
function once(values: number[][], locals: number[]): { code: number[]; refs: number[][] } {
  return { code: values.flatMap((v, i) => [...v, ...set(locals[i]!)]), refs: locals.slice(0, values.length).map((l) => get(l)) };
}

/** The locals every transform's loops use; the parameters images, tilesH and tilesW are 2, 3 and 4 in all of them. */
interface TileLoopLocals {
  b: number;
  ty: number;
  tx: number;
  p: number; // channel group counter
  q: number; // the data pointer (x, y or dy), set by the tile's setup
  m: number; // the matrices' row (or column) offset, from tileOff
  tileOff: number;
}

/**
 * The loops of a transform: for each image b, tile row ty and tile column tx, `tileSetup` (which sets q), then for
 * each group of 4 channels `perGroup`, after which q moves by 16 bytes and m by `mStep`; the tile's offset into the
 * matrices (m's start) moves by `tileStep` from one tile to the next.
 */
function tileLoops(l: TileLoopLocals, channelBytes: number, tileSetup: number[], perGroup: number[], mStep: number, tileStep: number): number[] {
  const [images, tilesH, tilesW] = [2, 3, 4];
  const perTile = [
    ...tileSetup,
    ...get(l.tileOff), ...set(l.m),
    ...countedLoop(l.p, i32c(channelBytes / 16), [
      ...perGroup,
      ...get(l.q), ...i32c(16), ...I32_ADD, ...set(l.q),
      ...get(l.m), ...i32c(mStep), ...I32_ADD, ...set(l.m),
    ]),
    ...get(l.tileOff), ...i32c(tileStep), ...I32_ADD, ...set(l.tileOff),
  ];
  return [
    ...i32c(0), ...set(l.tileOff),
    ...countedLoop(l.b, get(images), countedLoop(l.ty, get(tilesH), countedLoop(l.tx, get(tilesW), perTile))),
  ];
}

/**
 * Bᵀ applied to the 6 values d (code pushing each): emits sink(k, expr) for outputs k = 0..5, using 4 scratch v128
 * locals. Bᵀ rows: [4 0 -5 0 1 0], [0 -4 -4 1 1 0], [0 4 -4 -1 1 0], [0 -2 -1 2 1 0], [0 2 -1 -2 1 0], [0 4 0 -5 0 1].
 */
function inputTransform1d(d: number[][], tmp: number[], sink: (k: number, expr: number[]) => number[]): number[] {
  const [a, b, c, e] = tmp as [number, number, number, number];
  const [d0, d1, d2, d3, d4, d5] = d as [number[], number[], number[], number[], number[], number[]];
  return [
    ...d4, ...d2, ...mulc(4), ...F32X4_SUB, ...set(a), // a = d4 - 4 d2
    ...d3, ...d1, ...mulc(4), ...F32X4_SUB, ...set(b), // b = d3 - 4 d1
    ...d4, ...d2, ...F32X4_SUB, ...set(c), // c = d4 - d2
    ...d3, ...d1, ...F32X4_SUB, ...mulc(2), ...set(e), // e = 2 (d3 - d1)
    ...sink(0, [...d0, ...mulc(4), ...d2, ...mulc(5), ...F32X4_SUB, ...d4, ...F32X4_ADD]),
    ...sink(1, [...get(a), ...get(b), ...F32X4_ADD]),
    ...sink(2, [...get(a), ...get(b), ...F32X4_SUB]),
    ...sink(3, [...get(c), ...get(e), ...F32X4_ADD]),
    ...sink(4, [...get(c), ...get(e), ...F32X4_SUB]),
    ...sink(5, [...d1, ...mulc(4), ...d3, ...mulc(5), ...F32X4_SUB, ...d5, ...F32X4_ADD]),
  ];
}

/** Aᵀ applied to 6 values m: rows [1 1 1 1 1 0], [0 1 -1 2 -2 0], [0 1 1 4 4 0], [0 1 -1 8 -8 1]. */
function outputTransform1d(m: number[][], tmp: number[], sink: (k: number, expr: number[]) => number[]): number[] {
  const [a, b, c, e] = tmp as [number, number, number, number];
  const [m0, m1, m2, m3, m4, m5] = m as [number[], number[], number[], number[], number[], number[]];
  return [
    ...m1, ...m2, ...F32X4_ADD, ...set(a),
    ...m1, ...m2, ...F32X4_SUB, ...set(b),
    ...m3, ...m4, ...F32X4_ADD, ...set(c),
    ...m3, ...m4, ...F32X4_SUB, ...set(e),
    ...sink(0, [...m0, ...get(a), ...F32X4_ADD, ...get(c), ...F32X4_ADD]),
    ...sink(1, [...get(b), ...get(e), ...mulc(2), ...F32X4_ADD]),
    ...sink(2, [...get(a), ...get(c), ...mulc(4), ...F32X4_ADD]),
    ...sink(3, [...get(b), ...get(e), ...mulc(8), ...F32X4_ADD, ...m5, ...F32X4_ADD]),
  ];
}

interface InputGeometry {
  channelBytes: number; // c * 4
  rowBytes: number; // width * c * 4
  imageBytes: number; // height * rowBytes
  height: number;
  width: number;
  top: number; // zero rows above the input
  left: number; // zero columns left of it
}

const SELECT = [0x1b];
const IF_V128 = [0x04, V128];

/**
 * inputTransform(x, table, images, tilesH, tilesW): for every 6x6 tile (stride 4) of the input x zero-padded by
 * top/left (and by zeros below and right, as far as the tiles reach) and every 4 channels, V = Bᵀ d B; element
 * (r, s) of tile t goes to the matrix at table[6r + s] (an i32 byte pointer), row t. Tiles inside the input load
 * directly; tiles over its border load only their rows [rowLo, rowHi) and columns [colLo, colHi), zeros elsewhere.
 */
function inputTransformFunc(g: InputGeometry): Func {
  const [x, table] = [0, 1]; // then images, tilesH, tilesW (tileLoops)
  const [b, ty, tx, p, q, vo, tileOff, rowLo, rowHi, colLo, colHi, inside, k] = [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17];
  const t0 = 18; // 36 v128: Bᵀ d
  const tmp = [54, 55, 56, 57];
  const column = [58, 59, 60, 61, 62, 63]; // one column of d
  const columnsWith = (loadAt: (i: number, j: number) => number[]): number[] => {
    const code: number[] = [];
    for (let j = 0; j < 6; j++) {
      const d = once([0, 1, 2, 3, 4, 5].map((i) => loadAt(i, j)), column);
      code.push(...d.code, ...inputTransform1d(d.refs, tmp, (r, expr) => [...expr, ...set(t0 + r * 6 + j)]));
    }
    return code;
  };
  const inner = columnsWith((i, j) => [...get(q), ...load(i * g.rowBytes + j * g.channelBytes)]);
  // On the border q may point before x (wrapped i32 arithmetic): add the offset in i32, never as a memarg offset.
  const border = columnsWith((i, j) => [
    ...get(rowLo), ...i32c(i), ...I32_LE_S, ...get(rowHi), ...i32c(i), ...I32_GT_S, ...I32_AND,
    ...get(colLo), ...i32c(j), ...I32_LE_S, ...I32_AND, ...get(colHi), ...i32c(j), ...I32_GT_S, ...I32_AND,
    ...IF_V128, ...get(q), ...i32c(i * g.rowBytes + j * g.channelBytes), ...I32_ADD, ...load(0),
    ...ELSE, ...f32x4Const(0), ...END,
  ]);
  const rows: number[] = [];
  for (let r = 0; r < 6; r++) {
    const t = [0, 1, 2, 3, 4, 5].map((j) => get(t0 + r * 6 + j));
    rows.push(...inputTransform1d(t, tmp, (s, expr) => [...get(table), ...I32_LOAD(4 * (r * 6 + s)), ...get(vo), ...I32_ADD, ...expr, ...store(0)]));
  }
  /** lo = max(0, start), hi = min(6, size + start) where start = zeros - 4 * tile index. */
  const bounds = (tile: number, zeros: number, size: number, lo: number, hi: number): number[] => [
    ...i32c(zeros), ...get(tile), ...i32c(4), ...I32_MUL, ...I32_SUB, ...set(k),
    ...get(k), ...i32c(0), ...get(k), ...i32c(0), ...I32_GT_S, ...SELECT, ...set(lo),
    ...get(k), ...i32c(size), ...I32_ADD, ...set(k),
    ...get(k), ...i32c(6), ...get(k), ...i32c(6), ...I32_LT_S, ...SELECT, ...set(hi),
  ];
  const tileSetup = [
    ...get(x), ...get(b), ...i32c(g.imageBytes), ...I32_MUL, ...I32_ADD,
    ...get(ty), ...i32c(4), ...I32_MUL, ...i32c(g.top), ...I32_SUB, ...i32c(g.rowBytes), ...I32_MUL, ...I32_ADD,
    ...get(tx), ...i32c(4), ...I32_MUL, ...i32c(g.left), ...I32_SUB, ...i32c(g.channelBytes), ...I32_MUL, ...I32_ADD,
    ...set(q),
    ...bounds(ty, g.top, g.height, rowLo, rowHi),
    ...bounds(tx, g.left, g.width, colLo, colHi),
    ...get(rowLo), ...I32_EQZ, ...get(rowHi), ...i32c(6), ...I32_EQ, ...I32_AND,
    ...get(colLo), ...I32_EQZ, ...I32_AND, ...get(colHi), ...i32c(6), ...I32_EQ, ...I32_AND, ...set(inside),
  ];
  const perGroup = [...get(inside), ...IF, ...inner, ...ELSE, ...border, ...END, ...rows];
  const body = tileLoops({ b, ty, tx, p, q, m: vo, tileOff }, g.channelBytes, tileSetup, perGroup, 16, g.channelBytes);
  return { name: 'inputTransform', params: 5, locals: [[13, I32], [46, V128]], body };
}

interface OutputGeometry {
  channelBytes: number; // cout * 4
  rowBytes: number; // outW * cout * 4
  imageBytes: number; // outH * rowBytes
  outH: number;
  outW: number;
}

/**
 * outputTransform(table, y, images, tilesH, tilesW): for every tile t and 4 channels, Y = Aᵀ M A with M's element
 * (r, s) read from row t of the matrix at table[6r + s]; the 4x4 result is written to y, cropped at the edges.
 */
function outputTransformFunc(g: OutputGeometry): Func {
  const [table, y] = [0, 1]; // then images, tilesH, tilesW (tileLoops)
  const [b, ty, tx, p, q, mo, tileOff, rowsLeft, colsLeft] = [5, 6, 7, 8, 9, 10, 11, 12, 13];
  const s0 = 14; // 24 v128: Aᵀ M
  const tmp = [38, 39, 40, 41];
  const loaded = [42, 43, 44, 45, 46, 47]; // one column of M
  const column: number[] = [];
  for (let j = 0; j < 6; j++) {
    const m = once([0, 1, 2, 3, 4, 5].map((i) => [...get(table), ...I32_LOAD(4 * (i * 6 + j)), ...get(mo), ...I32_ADD, ...load(0)]), loaded);
    column.push(...m.code, ...outputTransform1d(m.refs, tmp, (r, expr) => [...expr, ...set(s0 + r * 6 + j)]));
  }
  const rows: number[] = [];
  for (let r = 0; r < 4; r++) {
    const s = [0, 1, 2, 3, 4, 5].map((j) => get(s0 + r * 6 + j));
    const storeAt = (j: number, expr: number[]): number[] => {
      const st = [...get(q), ...expr, ...store(r * g.rowBytes + j * g.channelBytes)];
      return j === 0 ? st : [...get(colsLeft), ...i32c(j), ...I32_GT_S, ...IF, ...st, ...END];
    };
    const row = outputTransform1d(s, tmp, storeAt);
    rows.push(...(r === 0 ? row : [...get(rowsLeft), ...i32c(r), ...I32_GT_S, ...IF, ...row, ...END]));
  }
  const tileSetup = [
    ...get(y), ...get(b), ...i32c(g.imageBytes), ...I32_MUL, ...I32_ADD,
    ...get(ty), ...i32c(4 * g.rowBytes), ...I32_MUL, ...I32_ADD,
    ...get(tx), ...i32c(4 * g.channelBytes), ...I32_MUL, ...I32_ADD,
    ...set(q),
    ...i32c(g.outH), ...get(ty), ...i32c(4), ...I32_MUL, ...I32_SUB, ...set(rowsLeft),
    ...i32c(g.outW), ...get(tx), ...i32c(4), ...I32_MUL, ...I32_SUB, ...set(colsLeft),
  ];
  const body = tileLoops({ b, ty, tx, p, q, m: mo, tileOff }, g.channelBytes, tileSetup, [...column, ...rows], 16, g.channelBytes);
  return { name: 'outputTransform', params: 5, locals: [[9, I32], [34, V128]], body };
}

/**
 * G applied to 3 values g: rows [1/4 0 0], [-1/6 -1/6 -1/6], [-1/6 1/6 -1/6], [1/24 1/12 1/6], [1/24 -1/12 1/6],
 * [0 0 1].
 */
function filterTransform1d(g: number[][], tmp: number[], sink: (k: number, expr: number[]) => number[]): number[] {
  const [a, b, c] = tmp as [number, number, number];
  const [g0, g1, g2] = g as [number[], number[], number[]];
  return [
    ...g0, ...g2, ...F32X4_ADD, ...set(a), // a = g0 + g2
    ...g0, ...mulc(1 / 24), ...g2, ...mulc(1 / 6), ...F32X4_ADD, ...set(b), // b = g0/24 + g2/6
    ...g1, ...mulc(1 / 12), ...set(c), // c = g1/12
    ...sink(0, [...g0, ...mulc(1 / 4)]),
    ...sink(1, [...get(a), ...g1, ...F32X4_ADD, ...mulc(-1 / 6)]),
    ...sink(2, [...get(a), ...g1, ...F32X4_SUB, ...mulc(-1 / 6)]),
    ...sink(3, [...get(b), ...get(c), ...F32X4_ADD]),
    ...sink(4, [...get(b), ...get(c), ...F32X4_SUB]),
    ...sink(5, g2),
  ];
}

/**
 * filterTransform(f, table): U = G g Gᵀ for every 4 (in, out) channel pairs of a [3, 3, cin, cout] filter (each tap
 * a contiguous block of `pairBytes`); element (r, s) goes to the matrix at table[6r + s].
 */
function filterTransformFunc(pairBytes: number): Func {
  const [f, table] = [0, 1];
  const [n, p] = [2, 3]; // group counter, byte offset 16 n
  const t0 = 4; // 18 v128: G g
  const tmp = [22, 23, 24];
  const columns: number[] = [];
  for (let v = 0; v < 3; v++) {
    const g = [0, 1, 2].map((u) => [...get(f), ...get(p), ...I32_ADD, ...load((u * 3 + v) * pairBytes)]);
    columns.push(...filterTransform1d(g, tmp, (r, expr) => [...expr, ...set(t0 + r * 3 + v)]));
  }
  const rows: number[] = [];
  for (let r = 0; r < 6; r++) {
    const g = [0, 1, 2].map((v) => get(t0 + r * 3 + v));
    rows.push(...filterTransform1d(g, tmp, (s, expr) => [...get(table), ...I32_LOAD(4 * (r * 6 + s)), ...get(p), ...I32_ADD, ...expr, ...store(0)]));
  }
  const body = [
    ...i32c(0), ...set(p),
    ...countedLoop(n, i32c(pairBytes / 16), [...columns, ...rows, ...get(p), ...i32c(16), ...I32_ADD, ...set(p)]),
  ];
  return { name: 'filterTransform', params: 2, locals: [[2, I32], [21, V128]], body };
}

interface TransformKernels {
  filterTransform?(f: number, table: number): void;
  inputTransform?(x: number, table: number, images: number, tilesH: number, tilesW: number): void;
  outputTransform?(table: number, y: number, images: number, tilesH: number, tilesW: number): void;
  dyTransform?(dy: number, table: number, images: number, tilesH: number, tilesW: number): void;
  gradientTransform?(table: number, dw: number, coFirst: number, coCount: number): void;
}

function transformKernel(backend: BackendWasm, key: string, func: () => Func): TransformKernels | null {
  return shapeModule<TransformKernels>(backend, `winograd ${key}`, () => [func()]);
}

/** The geometry of a conv's input x for the input transform (forward and filter gradient alike). */
function inputGeometry(info: tf.backend_util.Conv2DInfo): InputGeometry {
  const { inHeight, inWidth, inChannels, padInfo } = info;
  return {
    channelBytes: inChannels * 4, rowBytes: inWidth * inChannels * 4, imageBytes: inHeight * inWidth * inChannels * 4,
    height: inHeight, width: inWidth, top: padInfo.top, left: padInfo.left,
  };
}

function inputTransformKernel(backend: BackendWasm, g: InputGeometry): TransformKernels | null {
  return transformKernel(backend, `in ${g.channelBytes} ${g.height} ${g.width} ${g.top} ${g.left}`, () => inputTransformFunc(g));
}

/** Where a transform reads or writes per image: its data pointer moves by dataStep, each table entry by tableStep. */
interface ImageSteps {
  data: number;
  dataStep: number;
  table: number[]; // the 36 matrices' heap offsets
  tableStep: number;
}

/**
 * Runs a transform (signature (data, table, images, tilesH, tilesW), or (table, data, ...) when `tableFirst`) over
 * the images, split into one range per kernel pool participant; each part gets its own table moved to its first
 * image.
 */
function transformImages(
  backend: BackendWasm,
  kernels: TransformKernels,
  name: 'inputTransform' | 'outputTransform' | 'dyTransform',
  steps: ImageSteps,
  images: number,
  tilesH: number,
  tilesW: number,
  tableFirst = false,
): void {
  const ranges = evenRanges(images, Math.min(poolParts(backend), images));
  const tables = backend.makeOutput([ranges.length * 36], 'int32');
  const base = heapOffset(backend, tables);
  const view = heapI32(backend, tables);
  const calls = ranges.map(([first, count], p) => {
    view.set(steps.table.map((offset) => offset + first * steps.tableStep), p * 36);
    const [data, table] = [steps.data + first * steps.dataStep, base + p * 36 * 4];
    return [...(tableFirst ? [table, data] : [data, table]), count, tilesH, tilesW];
  });
  runParts(backend, kernels, name, calls);
  release(backend, tables);
}

/**
 * The GEMMs C = A · B of `entries` ([a, b, c, k] heap pointers and depth), each m rows, by gemm.ts, the entries split
 * between the kernel pool's threads (each product whole on one thread: the same sums either way). With `kSlices`
 * ([first, count] ranges of k, B rows `ldb` floats apart, A's k `aStep` floats apart), each product runs as those slices of k, each accumulated
 * into C, which must then hold what the sum starts from (zero): a slice of A and B stays in cache while every row and
 * column block of C reads it (the filter gradient's products reduce over all tiles, 786 KB of B at 8x64x192x32). The
 * sums keep their order.
 */
function products(
  backend: BackendWasm,
  gemm: GemmKernels,
  entries: [number, number, number, number][],
  m: number,
  kSlices: { ranges: [number, number][]; ldb: number; aStep: number } | null = null,
): void {
  const ranges = evenRanges(entries.length, Math.min(poolParts(backend), entries.length));
  const sliceRanges = kSlices?.ranges ?? [[0, 0] as [number, number]];
  const total = entries.length * sliceRanges.length;
  const list = backend.makeOutput([total * GEMM_ENTRY_INTS], 'int32');
  const listBase = heapOffset(backend, list);
  // Entries in order, each as its slices of k; plain loops, since this runs once per chunk of tiles.
  const view = heapI32(backend, list);
  let at = 0;
  for (const [a, b, c, k] of entries) {
    for (const [first, count] of sliceRanges) {
      view[at++] = kSlices === null ? a : a + first * kSlices.aStep * 4;
      view[at++] = kSlices === null ? b : b + first * kSlices.ldb * 4;
      view[at++] = c;
      view[at++] = kSlices === null ? k : count;
    }
  }
  const calls = ranges.map(([first, count]) => [
    listBase + first * sliceRanges.length * GEMM_ENTRY_INTS * 4, count * sliceRanges.length, m, 0, 0, kSlices === null ? 0 : 1,
  ]);
  runParts(backend, gemm, 'gemms', calls);
  release(backend, list);
}

// ---- bounded workspaces ----

/**
 * `count` matrices of [rows, columns] floats in one tensor, each starting one row (rounded up to 64 bytes) further
 * past a multiple of 4 KiB than the one before. The transforms read or write row t of all 36 matrices in turn; with
 * the matrices a multiple of 4 KiB apart (equal parts of one buffer, or separate allocations of such sizes) those
 * rows share a few L1 sets, and the conflict misses cost the transforms and the products more than their arithmetic.
 */
function skewedMatrices(backend: BackendWasm, count: number, rows: number, columns: number): { tensor: TensorInfo; offsets: number[] } {
  const stride = Math.ceil((rows * columns * 4) / 4096) * 4096 + Math.ceil((columns * 4) / 64) * 64;
  const tensor = backend.makeOutput([(count * stride) / 4], 'float32');
  const base = heapOffset(backend, tensor);
  return { tensor, offsets: Array.from({ length: count }, (_, k) => base + k * stride) };
}

/**
 * A call's transformed matrices take 36 x tiles x (input + output channels) floats: 552 MB for a 64 -> 64 layer at
 * 1248x384. Above `capBytes` the tiles are taken in chunks (whole images, or whole tile rows of one image), so that a
 * conv's workspace stays under the cap whatever the input size. A tile is transformed and multiplied the same way in
 * a chunk as in one pass, and the filter gradient's sums over tiles run in the same slices (whole tile rows, see
 * `filterGradientSlices`), so chunked results equal one pass's bit for bit. Tests lower the cap to force chunks.
 */
export const winogradWorkspace = { capBytes: 64 * 1024 * 1024 };

/** Tiles [row, row + rows) of each of the images [image, image + images): all rows when images > 1. */
export interface TileChunk {
  image: number;
  images: number;
  row: number;
  rows: number;
}

/**
 * The chunks of an [images, tilesH, tilesW] grid of tiles of `tileBytes` workspace each: one when it fits the cap, else
 * groups of whole images, else groups of `rowMultiple` tile rows (at least one group, so the cap can be exceeded
 * only by a single group of tile rows).
 */
export function tileChunks(images: number, tilesH: number, tilesW: number, tileBytes: number, rowMultiple = 1): TileChunk[] {
  const perChunk = Math.max(1, Math.floor(winogradWorkspace.capBytes / tileBytes));
  const perImage = tilesH * tilesW;
  if (images * perImage <= perChunk) return [{ image: 0, images, row: 0, rows: tilesH }];
  if (perImage <= perChunk) {
    const group = Math.floor(perChunk / perImage);
    return evenRanges(images, Math.ceil(images / group)).map(([image, count]) => ({ image, images: count, row: 0, rows: tilesH }));
  }
  const groups = Math.max(1, Math.floor(perChunk / (tilesW * rowMultiple)));
  const rows = groups * rowMultiple;
  const chunks: TileChunk[] = [];
  for (let image = 0; image < images; image++) {
    for (let row = 0; row < tilesH; row += rows) chunks.push({ image, images: 1, row, rows: Math.min(rows, tilesH - row) });
  }
  return chunks;
}

const chunkTiles = (chunk: TileChunk, tilesW: number): number => chunk.images * chunk.rows * tilesW;

/**
 * The input rows a chunk's tiles read, as a geometry of their own (its zero rows above and its height) and the byte
 * offset of its first row in x.
 */
function chunkInput(g: InputGeometry, chunk: TileChunk, tilesH: number): { geometry: InputGeometry; offset: number } {
  if (chunk.row === 0 && chunk.rows === tilesH) return { geometry: g, offset: chunk.image * g.imageBytes };
  const start = 4 * chunk.row - g.top; // the chunk's first tile row starts here (negative: in the zero padding)
  const first = Math.max(0, start);
  const height = Math.max(0, Math.min(g.height, 4 * (chunk.row + chunk.rows) + 2 - g.top) - first);
  return {
    geometry: { ...g, height, imageBytes: height * g.rowBytes, top: first - start },
    offset: chunk.image * g.imageBytes + first * g.rowBytes,
  };
}

/** The output (or dy) rows of a chunk, as a geometry of their own, and the byte offset of its first row. */
function chunkOutput<G extends OutputGeometry>(g: G, chunk: TileChunk, tilesH: number): { geometry: G; offset: number } {
  if (chunk.row === 0 && chunk.rows === tilesH) return { geometry: g, offset: chunk.image * g.imageBytes };
  const outH = Math.min(4 * chunk.rows, g.outH - 4 * chunk.row);
  return { geometry: { ...g, outH, imageBytes: outH * g.rowBytes }, offset: chunk.image * g.imageBytes + 4 * chunk.row * g.rowBytes };
}

// ---- the filter transform ----

/** U = G g Gᵀ of a [3, 3, cin, cout] filter: 36 fresh [cin, cout] tensors (table: a [36] int32 scratch tensor). */
function filterTransform(backend: BackendWasm, kernels: TransformKernels, filter: TensorInfo, table: TensorInfo, cin: number, cout: number): TensorInfo[] {
  const us = Array.from({ length: 36 }, () => backend.makeOutput([cin, cout], 'float32'));
  heapI32(backend, table).set(us.map((u) => heapOffset(backend, u)));
  kernels.filterTransform!(heapOffset(backend, filter), heapOffset(backend, table));
  return us;
}

// ---- the kernel ----

/**
 * Where Winograd measured faster than the built-in (kernel time only, alternating runs; the figures are in
 * docs/wasm-training.md), with >= 32 input and output channels (with 16 the transforms cost as much as they save once
 * threads are on):
 * - 1 thread: from ~2048 output pixels (batch * outH * outW; each of the 36 GEMMs packs a cin x cout matrix, so
 *   the fixed cost grows with the filter as the saving does);
 * - threads on (only the GEMMs run on the pool; the transforms run on one thread; each GEMM
 *   call has pool overhead): from 100M multiply-adds.
 * One rule for every thread count, the threaded one: Winograd rounds differently from the direct convolution, and
 * XNNPACK's results do not depend on the thread count, so this keeps a run's numbers independent of how many
 * threads it got (which depends on the machine's load at start-up): a run resumed on a busier machine continues
 * exactly, and the same command gives the same numbers. At 1 thread, layers of 2048+ pixels but under 100M
 * multiply-adds give up Winograd's gain.
 */
function winogradPays(multiplyAdds: number, cin: number, cout: number): boolean {
  return cin >= 32 && cout >= 32 && multiplyAdds >= 100e6;
}

export type WinogradUse = 'where-faster' | 'always' | 'never';
let use: WinogradUse = 'where-faster';

/**
 * For tests and timings: Winograd for every shape it can handle however small ('always'), never, or where it
 * measured faster (the default). Returns the previous setting.
 */
export function setWinogradUse(mode: WinogradUse): WinogradUse {
  const old = use;
  use = mode;
  return old;
}

/**
 * Whether a conv (forward, or the filter gradient of the same geometry) takes the Winograd path: stride 1 without
 * dilation, channel counts multiples of 4, nothing empty (the modules' loops run at least once), no negative padding,
 * and, unless `use` is 'always', where it pays. The filter gradient follows the same rule: it measured faster than
 * conv2d-backprop.ts' tap GEMMs on the reference network's layers (both on gemm.ts and the kernel pool; figures in
 * docs/wasm-training.md).
 */
function winogradTakes(info: tf.backend_util.Conv2DInfo): boolean {
  const { batchSize, inChannels, outHeight, outWidth, outChannels, padInfo } = info;
  if (info.strideHeight !== 1 || info.strideWidth !== 1 || info.dilationHeight !== 1 || info.dilationWidth !== 1) return false;
  if (inChannels % 4 !== 0 || outChannels % 4 !== 0 || inChannels === 0 || outChannels === 0) return false;
  if (batchSize <= 0 || outHeight <= 0 || outWidth <= 0) return false;
  if (padInfo.top < 0 || padInfo.left < 0 || padInfo.bottom < 0 || padInfo.right < 0) return false;
  return use === 'always' || winogradPays(batchSize * outHeight * outWidth * 9 * inChannels * outChannels, inChannels, outChannels);
}

interface Conv2DAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dilations: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** Conv2D by Winograd F(4x4, 3x3) where it applies and pays (see above); null hands the call to the built-in. */
export function winogradConv2D(args: KernelArgs): TensorInfo | null {
  if (use === 'never') return null;
  const { backend } = args;
  const x = args.inputs['x']!;
  const filter = args.inputs['filter']!;
  const attrs = args.attrs as unknown as Conv2DAttrs;
  if (x.dtype !== 'float32' || filter.dtype !== 'float32' || attrs.dataFormat === 'NCHW') return null;
  if (x.shape.length !== 4 || filter.shape[0] !== 3 || filter.shape[1] !== 3) return null;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  if (!winogradTakes(info)) return null;
  const { batchSize, inChannels, outHeight, outWidth, outChannels } = info;
  const tilesH = Math.ceil(outHeight / 4);
  const tilesW = Math.ceil(outWidth / 4);
  const paddedH = 4 * tilesH + 2;
  const paddedW = 4 * tilesW + 2;
  const tiles = batchSize * tilesH * tilesW;
  // Every byte offset must fit an i32 (the modules compute them in i32 arithmetic).
  const largest = Math.max(batchSize * paddedH * paddedW * inChannels, tiles * Math.max(inChannels, outChannels), batchSize * outHeight * outWidth * outChannels);
  if (largest * 4 >= 2 ** 31) return null;

  const inGeometry = inputGeometry(info);
  const outGeometry: OutputGeometry = {
    channelBytes: outChannels * 4, rowBytes: outWidth * outChannels * 4, imageBytes: outHeight * outWidth * outChannels * 4, outH: outHeight, outW: outWidth,
  };
  // V_k [tiles, cin] and M_k [tiles, cout] per chunk of tiles (winogradWorkspace).
  const chunks = tileChunks(batchSize, tilesH, tilesW, 36 * (inChannels + outChannels) * 4).map((chunk) => {
    const { geometry: ig, offset: inOffset } = chunkInput(inGeometry, chunk, tilesH);
    const { geometry: og, offset: outOffset } = chunkOutput(outGeometry, chunk, tilesH);
    const output = transformKernel(backend, `out ${outChannels} ${og.outH} ${outWidth}`, () => outputTransformFunc(og));
    return { chunk, input: inputTransformKernel(backend, ig), inOffset, output, outOffset };
  });
  const filterKernels = transformKernel(backend, `filter ${inChannels * outChannels}`, () => filterTransformFunc(inChannels * outChannels * 4));
  const gemm = gemmKernels(backend, { lda: inChannels, ldb: outChannels, ldc: outChannels, n: outChannels });
  if (chunks.some((c) => c.input?.inputTransform === undefined || c.output?.outputTransform === undefined) || filterKernels?.filterTransform === undefined || gemm === null) return null;

  // 1. Filter, once.
  const table = backend.makeOutput([36], 'int32'); // the 36 matrices' heap offsets, for the transforms
  const us = filterTransform(backend, filterKernels, filter, table, inChannels, outChannels);
  const most = Math.max(...chunks.map(({ chunk }) => chunkTiles(chunk, tilesW)));
  const { tensor: vs, offsets: vOffsets } = skewedMatrices(backend, 36, most, inChannels);
  const { tensor: ms, offsets: mOffsets } = skewedMatrices(backend, 36, most, outChannels);
  const out = backend.makeOutput([batchSize, outHeight, outWidth, outChannels], 'float32');
  const [xBase, outBase] = [heapOffset(backend, x), heapOffset(backend, out)];
  const uOffsets = us.map((u) => heapOffset(backend, u));
  for (const { chunk, input, inOffset, output, outOffset } of chunks) {
    const n = chunkTiles(chunk, tilesW);
    const tilesPerImage = chunk.rows * tilesW;
    // 2. Input (zeros outside it are supplied by the transform, no padded copy).
    const inSteps = { data: xBase + inOffset, dataStep: inGeometry.imageBytes, tableStep: tilesPerImage * inChannels * 4 };
    transformImages(backend, input!, 'inputTransform', { ...inSteps, table: vOffsets }, chunk.images, chunk.rows, tilesW);
    // 3. The 36 products M_k = V_k · U_k, each [n, cout].
    products(backend, gemm, vOffsets.map((v, k) => [v, uOffsets[k]!, mOffsets[k]!, inChannels]), n);
    // 4. Output.
    const outSteps = { data: outBase + outOffset, dataStep: outGeometry.imageBytes, tableStep: tilesPerImage * outChannels * 4 };
    transformImages(backend, output!, 'outputTransform', { ...outSteps, table: mOffsets }, chunk.images, chunk.rows, tilesW, true);
  }
  release(backend, vs, ...us, table, ms);
  return out;
}

// ---- the filter gradient ----
//
// dW = Σ_tiles Gᵀ [(A e Aᵀ) ⊙ (Bᵀ d B)] G for the 4x4 tiles e of dy and the 6x6 tiles d of the padded input (the
// transpose of the forward algorithm). For each of the 36 positions k the sum over tiles is one GEMM with K = tiles:
// Sᵀ_k [cout, cin] = Eᵀ_k [cout, tiles] · V_k [tiles, cin]. The dy transform writes E_k [tiles, cout] with whole-vector
// stores, as the input transform writes V_k, and gemm.ts reads its transpose in place (aStep): a channel-major Eᵀ_k
// took single-lane stores 4 tiles apart, which cost more than the rest of the transform, and packing E_k in panels
// of 4 channels spread each tile's stores over 36 * cout / 4 far-apart rows and was as slow.


/** A applied to 4 values e: rows [1 0 0 0], [1 1 1 1], [1 -1 1 -1], [1 2 4 8], [1 -2 4 -8], [0 0 0 1]. */
function dyTransform1d(e: number[][], tmp: number[], sink: (k: number, expr: number[]) => number[]): number[] {
  const [a, b, c, d] = tmp as [number, number, number, number];
  const [e0, e1, e2, e3] = e as [number[], number[], number[], number[]];
  return [
    ...e0, ...e2, ...F32X4_ADD, ...set(a),
    ...e1, ...e3, ...F32X4_ADD, ...set(b),
    ...e0, ...e2, ...mulc(4), ...F32X4_ADD, ...set(c),
    ...e1, ...mulc(2), ...e3, ...mulc(8), ...F32X4_ADD, ...set(d),
    ...sink(0, e0),
    ...sink(1, [...get(a), ...get(b), ...F32X4_ADD]),
    ...sink(2, [...get(a), ...get(b), ...F32X4_SUB]),
    ...sink(3, [...get(c), ...get(d), ...F32X4_ADD]),
    ...sink(4, [...get(c), ...get(d), ...F32X4_SUB]),
    ...sink(5, e3),
  ];
}

interface DyGeometry {
  channelBytes: number; // cout * 4
  rowBytes: number; // outW * cout * 4
  imageBytes: number; // outH * rowBytes
  outH: number;
  outW: number;
}

/**
 * dyTransform(dy, table, images, tilesH, tilesW): E = A e Aᵀ of every 4x4 tile e of dy (zeros past its edges) and
 * every 4 channels; element (r, s) of tile t goes to the matrix at table[6r + s], row t.
 */
function dyTransformFunc(g: DyGeometry): Func {
  const [dy, table] = [0, 1]; // then images, tilesH, tilesW (tileLoops)
  const [b, ty, tx, p, q, eo, tileOff, rowHi, colHi, inside] = [5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
  const t0 = 15; // 24 v128: A e (6 rows x 4 columns)
  const tmp = [39, 40, 41, 42];
  const column = [43, 44, 45, 46]; // one column of e
  const columnsWith = (loadAt: (i: number, j: number) => number[]): number[] => {
    const code: number[] = [];
    for (let j = 0; j < 4; j++) {
      const e = once([0, 1, 2, 3].map((i) => loadAt(i, j)), column);
      code.push(...e.code, ...dyTransform1d(e.refs, tmp, (r, expr) => [...expr, ...set(t0 + r * 4 + j)]));
    }
    return code;
  };
  const inner = columnsWith((i, j) => [...get(q), ...load(i * g.rowBytes + j * g.channelBytes)]);
  const border = columnsWith((i, j) => [
    ...get(rowHi), ...i32c(i), ...I32_GT_S, ...get(colHi), ...i32c(j), ...I32_GT_S, ...I32_AND,
    ...IF_V128, ...get(q), ...load(i * g.rowBytes + j * g.channelBytes), ...ELSE, ...f32x4Const(0), ...END,
  ]);
  const rows: number[] = [];
  for (let r = 0; r < 6; r++) {
    const t = [0, 1, 2, 3].map((j) => get(t0 + r * 4 + j));
    rows.push(...dyTransform1d(t, tmp, (s, expr) => [...get(table), ...I32_LOAD(4 * (r * 6 + s)), ...get(eo), ...I32_ADD, ...expr, ...store(0)]));
  }
  const limit = (tile: number, size: number, hi: number): number[] => [
    ...i32c(size), ...get(tile), ...i32c(4), ...I32_MUL, ...I32_SUB, ...set(hi),
  ];
  const tileSetup = [
    ...get(dy), ...get(b), ...i32c(g.imageBytes), ...I32_MUL, ...I32_ADD,
    ...get(ty), ...i32c(4 * g.rowBytes), ...I32_MUL, ...I32_ADD,
    ...get(tx), ...i32c(4 * g.channelBytes), ...I32_MUL, ...I32_ADD,
    ...set(q),
    ...limit(ty, g.outH, rowHi),
    ...limit(tx, g.outW, colHi),
    ...get(rowHi), ...i32c(3), ...I32_GT_S, ...get(colHi), ...i32c(3), ...I32_GT_S, ...I32_AND, ...set(inside),
  ];
  const perGroup = [...get(inside), ...IF, ...inner, ...ELSE, ...border, ...END, ...rows];
  const body = tileLoops({ b, ty, tx, p, q, m: eo, tileOff }, g.channelBytes, tileSetup, perGroup, 16, g.channelBytes);
  return { name: 'dyTransform', params: 5, locals: [[10, I32], [32, V128]], body };
}

/**
 * Gᵀ applied to 6 values m (code pushing each): emits sink(u, expr) for u = 0..2, using 4 scratch v128 locals. G rows:
 * [1/4 0 0], [-1/6 -1/6 -1/6], [-1/6 1/6 -1/6], [1/24 1/12 1/6], [1/24 -1/12 1/6], [0 0 1].
 */
function gradientTransform1d(m: number[][], tmp: number[], sink: (u: number, expr: number[]) => number[]): number[] {
  const [a, b, c, d] = tmp as [number, number, number, number];
  const [m0, m1, m2, m3, m4, m5] = m as [number[], number[], number[], number[], number[], number[]];
  return [
    ...m1, ...m2, ...F32X4_ADD, ...set(a), // a = m1 + m2
    ...m2, ...m1, ...F32X4_SUB, ...set(b), // b = m2 - m1
    ...m3, ...m4, ...F32X4_ADD, ...set(c), // c = m3 + m4
    ...m3, ...m4, ...F32X4_SUB, ...set(d), // d = m3 - m4
    ...sink(0, [...m0, ...mulc(1 / 4), ...get(a), ...mulc(1 / 6), ...F32X4_SUB, ...get(c), ...mulc(1 / 24), ...F32X4_ADD]),
    ...sink(1, [...get(b), ...mulc(1 / 6), ...get(d), ...mulc(1 / 12), ...F32X4_ADD]),
    ...sink(2, [...get(c), ...get(a), ...F32X4_SUB, ...mulc(1 / 6), ...m5, ...F32X4_ADD]),
  ];
}

/**
 * gradientTransform(table, dw, coFirst, coCount): dW[u][v][ci][co] = Σ_rs G[r][u] Sᵀ_rs[co][ci] G[s][v] for the output
 * channels [coFirst, coFirst + coCount) and every 4 input channels; Sᵀ_rs is the [cout, cin] matrix at
 * table[6r + s]. dW is [3, 3, cin, cout]: the 4 lanes go to 4 rows cout apart.
 */
function gradientTransformFunc(cin: number, cout: number): Func {
  const [table, dw, coFirst, coCount] = [0, 1, 2, 3];
  const [co, coEnd, p, q, n] = [4, 5, 6, 7, 8]; // p: byte offset of (co, ci) in Sᵀ; q: dW address of (ci, co)
  const t0 = 9; // 18 v128: Gᵀ S, row u, column s at t0 + 6u + s
  const tmp = [27, 28, 29, 30];
  const value = 31;
  const columns: number[] = [];
  for (let col = 0; col < 6; col++) {
    const m = [0, 1, 2, 3, 4, 5].map((r) => [...get(table), ...I32_LOAD(4 * (r * 6 + col)), ...get(p), ...I32_ADD, ...load(0)]);
    columns.push(...gradientTransform1d(m, tmp, (u, expr) => [...expr, ...set(t0 + 6 * u + col)]));
  }
  const rows: number[] = [];
  for (let u = 0; u < 3; u++) {
    const t = [0, 1, 2, 3, 4, 5].map((col) => get(t0 + 6 * u + col));
    rows.push(...gradientTransform1d(t, tmp, (v, expr) => [
      ...expr, ...set(value),
      ...[0, 1, 2, 3].flatMap((lane) => [
        ...get(q), ...get(value), ...F32X4_EXTRACT(lane), ...F32_STORE(((u * 3 + v) * cin + lane) * cout * 4),
      ]),
    ]));
  }
  const body = [
    ...BLOCK,
    ...get(coCount), ...I32_EQZ, ...brIf(0),
    ...get(coFirst), ...tee(co), ...get(coCount), ...I32_ADD, ...set(coEnd),
    ...LOOP,
    ...get(co), ...i32c(cin * 4), ...I32_MUL, ...set(p),
    ...get(dw), ...get(co), ...i32c(4), ...I32_MUL, ...I32_ADD, ...set(q),
    ...countedLoop(n, i32c(cin / 4), [
      ...columns, ...rows,
      ...get(p), ...i32c(16), ...I32_ADD, ...set(p),
      ...get(q), ...i32c(16 * cout), ...I32_ADD, ...set(q),
    ]),
    ...get(co), ...i32c(1), ...I32_ADD, ...tee(co),
    ...get(coEnd), ...I32_LT_U, ...brIf(0),
    ...END,
    ...END,
  ];
  return { name: 'gradientTransform', params: 4, locals: [[5, I32], [23, V128]], body };
}

/**
 * The filter gradient's 36 products reduce over all tiles in one pass when V_k fits in L2 (smaller layers ran a little
 * slower in slices), else in slices of about `sliceFloats` floats of V_k, in whole tile rows of one image (faster on the
 * large layers; docs/wasm-training.md). Tests lower both to exercise the slices on small shapes.
 */
export const filterGradientSlices = { sliceAboveBytes: 512 * 1024, sliceFloats: 32768 };

interface Conv2DBackpropFilterAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

/** Conv2DBackpropFilter by Winograd for the same shapes as the forward path; null hands the call on. */
export function winogradConv2DBackpropFilter(args: KernelArgs): TensorInfo | null {
  if (use === 'never') return null;
  const { backend } = args;
  const x = args.inputs['x']!;
  const dy = args.inputs['dy']!;
  const attrs = args.attrs as unknown as Conv2DBackpropFilterAttrs;
  if (x.dtype !== 'float32' || dy.dtype !== 'float32' || attrs.dataFormat === 'NCHW') return null;
  if (x.shape.length !== 4 || attrs.filterShape?.[0] !== 3 || attrs.filterShape[1] !== 3) return null;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], attrs.filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode,
  );
  if (!winogradTakes(info)) return null;
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const tilesH = Math.ceil(outHeight / 4);
  const tilesW = Math.ceil(outWidth / 4);
  const tiles = batchSize * tilesH * tilesW;
  const largest = Math.max(batchSize * inHeight * inWidth * inChannels, (tiles + 48) * Math.max(inChannels, outChannels), batchSize * outHeight * outWidth * outChannels);
  if (largest * 4 >= 2 ** 31) return null;

  const inGeometry = inputGeometry(info);
  // The sums over tiles in slices of whole tile rows of one image, when V_k is large; chunks of tiles
  // (winogradWorkspace) in whole slices, so that chunking leaves the sums as they are.
  const { sliceAboveBytes, sliceFloats } = filterGradientSlices;
  const sliced = tiles * inChannels * 4 > sliceAboveBytes;
  const sliceRows = sliced ? Math.max(1, Math.round(sliceFloats / (inChannels * tilesW))) : tilesH;
  const chunkList = tileChunks(batchSize, tilesH, tilesW, 36 * (inChannels + outChannels) * 4, sliced ? sliceRows : 1);
  const most = Math.max(...chunkList.map((chunk) => chunkTiles(chunk, tilesW)));
  const dyGeometry: DyGeometry = {
    channelBytes: outChannels * 4, rowBytes: outWidth * outChannels * 4, imageBytes: outHeight * outWidth * outChannels * 4,
    outH: outHeight, outW: outWidth,
  };
  const chunks = chunkList.map((chunk) => {
    const { geometry: ig, offset: inOffset } = chunkInput(inGeometry, chunk, tilesH);
    const { geometry: dg, offset: dyOffset } = chunkOutput(dyGeometry, chunk, tilesH);
    const dyKernels = transformKernel(backend, `dy ${outChannels} ${dg.outH} ${outWidth}`, () => dyTransformFunc(dg));
    return { chunk, input: inputTransformKernel(backend, ig), inOffset, dyKernels, dyOffset };
  });
  // A = Eᵀ_k read in place from E_k [tiles, cout]: rows 1 float apart, k (tiles) cout floats apart.
  const gemm = gemmKernels(backend, { lda: 1, aStep: outChannels, ldb: inChannels, ldc: inChannels, n: inChannels });
  const gradient = transformKernel(backend, `gradient ${inChannels} ${outChannels}`, () => gradientTransformFunc(inChannels, outChannels));
  if (chunks.some((c) => c.input?.inputTransform === undefined || c.dyKernels?.dyTransform === undefined) || gradient?.gradientTransform === undefined || gemm === null) return null;

  const { tensor: vs, offsets: vOffsets } = skewedMatrices(backend, 36, most, inChannels);
  const { tensor: ets, offsets: eOffsets } = skewedMatrices(backend, 36, most, outChannels);
  const { tensor: st, offsets: stOffsets } = skewedMatrices(backend, 36, outChannels, inChannels);
  const [xBase, dyBase] = [heapOffset(backend, x), heapOffset(backend, dy)];
  const accumulate = sliced || chunks.length > 1;
  if (accumulate) heapF32(backend, st).fill(0);
  for (const { chunk, input, inOffset, dyKernels, dyOffset } of chunks) {
    const n = chunkTiles(chunk, tilesW);
    const tilesPerImage = chunk.rows * tilesW;
    const inSteps = { data: xBase + inOffset, dataStep: inGeometry.imageBytes, tableStep: tilesPerImage * inChannels * 4 };
    transformImages(backend, input!, 'inputTransform', { ...inSteps, table: vOffsets }, chunk.images, chunk.rows, tilesW);
    const dySteps = { data: dyBase + dyOffset, dataStep: dyGeometry.imageBytes, tableStep: tilesPerImage * outChannels * 4 };
    transformImages(backend, dyKernels!, 'dyTransform', { ...dySteps, table: eOffsets }, chunk.images, chunk.rows, tilesW);
    // The 36 products Sᵀ_k (+)= Eᵀ_k · V_k [cout, cin] by gemm.ts over the chunk's tiles, split between the pool's threads.
    const ranges: [number, number][] = [];
    for (let image = 0; image < chunk.images; image++) {
      for (let row = 0; row < chunk.rows; row += sliceRows) ranges.push([(image * chunk.rows + row) * tilesW, Math.min(sliceRows, chunk.rows - row) * tilesW]);
    }
    const kSlices = accumulate ? { ranges: sliced ? ranges : [[0, n] as [number, number]], ldb: inChannels, aStep: outChannels } : null;
    products(backend, gemm, eOffsets.map((e, k) => [e, vOffsets[k]!, stOffsets[k]!, n]), outChannels, kSlices);
  }
  release(backend, vs, ets);
  // dW = Gᵀ S G, the output channels split between the pool's threads.
  const dw = backend.makeOutput([3, 3, inChannels, outChannels], 'float32');
  const table = backend.makeOutput([36], 'int32');
  heapI32(backend, table).set(stOffsets);
  runRanges(backend, gradient, 'gradientTransform', outChannels, (first, count) => [heapOffset(backend, table), heapOffset(backend, dw), first, count]);
  release(backend, st, table);
  return dw;
}
