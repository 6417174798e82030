/**
 * A few loops written directly in WebAssembly SIMD, run on the wasm backend's own memory (the module imports
 * tfjs-backend-wasm's WebAssembly.Memory, so tensors are read and written in place, without copies): per-channel
 * sums, batch norm and its gradient, broadcast binary ops, exp, the ReLU/square gradients, max-pool gradient, row
 * copies.
 *
 * Why: these are one-pass loops over [rows, channels] data that tfjs-backend-wasm does slowly (a reduction over
 * leading axes transposes the whole tensor first; broadcasting ops use a generic index loop), and the same loops in
 * JavaScript ran no faster than the built-ins; as SIMD they run at about memory speed.
 *
 * The module is assembled here from its bytes (no toolchain, no dependency). The per-channel functions work on
 * `rows` rows of `c` float32 channels, c a positive multiple of 4 (the callers check); element-wise ones on a
 * positive number of 4-float groups (callers do the tail); pointers are byte offsets into the heap. Sums are
 * accumulated in float64 (more accurate than the built-ins' float32 running sums).
 */
import { sleb128, uleb128 } from '../../util/leb128.js';
import type { BackendWasm, TensorInfo } from './wasm-kernel-utils.js';

// ---- a minimal WebAssembly encoder ----

export const uleb = uleb128;

/** An i32 immediate: `n` as a 32-bit integer (so 0xffffffff and -1 encode alike), in signed LEB128. */
export function sleb(n: number): number[] {
  return sleb128(BigInt(n | 0));
}

export const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
export const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
export const name = (s: string): number[] => vec([...s].map((ch) => [ch.charCodeAt(0)]));

export const I32 = 0x7f;
export const V128 = 0x7b;

export const get = (i: number): number[] => [0x20, ...uleb(i)];
export const set = (i: number): number[] => [0x21, ...uleb(i)];
export const tee = (i: number): number[] => [0x22, ...uleb(i)];
export const i32c = (n: number): number[] => [0x41, ...sleb(n)];
export const I32_ADD = [0x6a];
export const I32_SUB = [0x6b];
export const I32_SHL = [0x74];
export const I32_SHR_U = [0x76];
export const I32_MUL = [0x6c];
export const I32_AND = [0x71];
export const I32_LT_U = [0x49];
export const I32_EQZ = [0x45];
export const I32_GE_S = [0x4e];
export const I32_GT_S = [0x4a];
export const I32_LT_S = [0x48];
export const I32_LE_S = [0x4c];
export const BLOCK = [0x02, 0x40];
export const LOOP = [0x03, 0x40];
export const END = [0x0b];
export const brIf = (depth: number): number[] => [0x0d, ...uleb(depth)];
export const I32_EQ = [0x46];
export const IF = [0x04, 0x40];
export const ELSE = [0x05];
export const CALL = (index: number): number[] => [0x10, ...uleb(index)];
export const I32_LOAD = (offset: number): number[] => [0x28, 2, ...uleb(offset)];
export const F32_LOAD = (offset: number): number[] => [0x2a, 2, ...uleb(offset)];
export const F32_STORE = (offset: number): number[] => [0x38, 2, ...uleb(offset)];
export const F32_CONST_0 = [0x43, 0, 0, 0, 0];
/** memory.fill of memory 0: [dst, byte value, bytes] on the stack. */
export const MEMORY_FILL = [0xfc, 0x0b, 0x00];
/** memory.copy (bulk memory) within memory 0: [dst, src, bytes] on the stack. */
const MEMORY_COPY = [0xfc, 0x0a, 0x00, 0x00];
export const simd = (op: number): number[] => [0xfd, ...uleb(op)];
export const load = (offset = 0): number[] => [...simd(0x00), 4, ...uleb(offset)];
export const store = (offset = 0): number[] => [...simd(0x0b), 4, ...uleb(offset)];
export const LOAD32_SPLAT = (offset: number): number[] => [...simd(0x09), 2, ...uleb(offset)];
export const I32X4_SPLAT = simd(0x11);
export const F32X4_EXTRACT = (lane: number): number[] => [...simd(0x1f), lane];
const HIGH_TO_LOW = [...simd(0x0d), 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]; // i8x16.shuffle
export const F32X4_ADD = simd(0xe4);
export const F32X4_SUB = simd(0xe5);
export const F32X4_MUL = simd(0xe6);
const F64X2_ADD = simd(0xf0);
const PROMOTE_LOW = simd(0x5f); // f64x2.promote_low_f32x4
const F32X4_NE = simd(0x42);
const F32X4_GT = simd(0x44);
const V128_AND = simd(0x4e);
const V128_OR = simd(0x50);
export const f32x4Const = (v: number): number[] => [...simd(0x0c), ...[0, 1, 2, 3].flatMap(() => [...new Uint8Array(new Float32Array([v]).buffer)])];

/** `counter = 0; do { body } while (++counter < limit)`: limit (code pushing an i32) must be positive. */
export function forLoop(counter: number, limit: number[], body: number[]): number[] {
  return [
    ...i32c(0), ...set(counter),
    ...LOOP, ...body,
    ...get(counter), ...i32c(1), ...I32_ADD, ...tee(counter),
    ...limit, ...I32_LT_U, ...brIf(0),
    ...END,
  ];
}

export interface Func {
  name: string;
  params: number; // all i32
  locals: [count: number, type: number][];
  body: number[];
}

/**
 * `for rows: { rowStart; for each 4 channels at byte offset p (0 <= p < 4c): { inner; advance } rowEnd }`.
 * Locals: rows and c (params; rows counts down), p and end (scratch i32 locals).
 */
function rowLoop(
  v: { rows: number; c: number; p: number; end: number },
  inner: number[],
  advance: number[],
  rowStart: number[] = [],
  rowEnd: number[] = [],
): number[] {
  return [
    ...BLOCK,
    ...get(v.rows), ...I32_EQZ, ...brIf(0),
    ...get(v.c), ...i32c(2), ...I32_SHL, ...set(v.end),
    ...LOOP,
    ...rowStart,
    ...i32c(0), ...set(v.p),
    ...LOOP,
    ...inner,
    ...advance,
    ...get(v.p), ...i32c(16), ...I32_ADD, ...tee(v.p),
    ...get(v.end), ...I32_LT_U, ...brIf(0),
    ...END,
    ...rowEnd,
    ...get(v.rows), ...i32c(1), ...I32_SUB, ...tee(v.rows), ...brIf(0),
    ...END,
    ...END,
  ];
}

/** acc[j] += promote(v) for the 4 lanes of v at channel byte offset p (acc is float64, so at byte 2p). */
function accumulate(acc: number, p: number, value: number): number[] {
  return [
    ...get(acc), ...get(p), ...get(p), ...I32_ADD, ...I32_ADD,
    ...get(acc), ...get(p), ...get(p), ...I32_ADD, ...I32_ADD, ...load(0), ...get(value), ...PROMOTE_LOW, ...F64X2_ADD,
    ...store(0),
    ...get(acc), ...get(p), ...get(p), ...I32_ADD, ...I32_ADD,
    ...get(acc), ...get(p), ...get(p), ...I32_ADD, ...I32_ADD, ...load(16), ...get(value), ...get(value), ...HIGH_TO_LOW, ...PROMOTE_LOW, ...F64X2_ADD,
    ...store(16),
  ];
}

const advance16 = (ptr: number): number[] => [...get(ptr), ...i32c(16), ...I32_ADD, ...set(ptr)];

/** columnSums(x, rows, c, acc): acc[j] += sum_r x[r, j]. */
function columnSums(): Func {
  const [x, rows, c, acc, p, end, v] = [0, 1, 2, 3, 4, 5, 6];
  const inner = [...get(x), ...load(0), ...set(v), ...accumulate(acc, p, v)];
  return { name: 'columnSums', params: 4, locals: [[2, I32], [1, V128]], body: rowLoop({ rows, c, p, end }, inner, advance16(x)) };
}

/** normalize(x, rows, c, mean, scale, offset, out): out = (x - mean[j]) * scale[j] + offset[j] in float32. */
function normalize(): Func {
  const [x, rows, c, mean, scale, offset, out, p, end] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const at = (base: number): number[] => [...get(base), ...get(p), ...I32_ADD, ...load(0)];
  const inner = [
    ...get(out),
    ...get(x), ...load(0), ...at(mean), ...F32X4_SUB, ...at(scale), ...F32X4_MUL, ...at(offset), ...F32X4_ADD,
    ...store(0),
  ];
  const adv = [...advance16(x), ...advance16(out)];
  return { name: 'normalize', params: 7, locals: [[2, I32]], body: rowLoop({ rows, c, p, end }, inner, adv) };
}

/**
 * normalizeRelu(x, rows, c, mean, scale, offset, out): normalize's value through relu's (i32x4.max_s with 0 on the
 * float bits, as `relu` below): batch norm and ReLU as one pass.
 */
function normalizeRelu(): Func {
  const [x, rows, c, mean, scale, offset, out, p, end] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const at = (base: number): number[] => [...get(base), ...get(p), ...I32_ADD, ...load(0)];
  const inner = [
    ...get(out),
    ...get(x), ...load(0), ...at(mean), ...F32X4_SUB, ...at(scale), ...F32X4_MUL, ...at(offset), ...F32X4_ADD,
    ...i32c(0), ...I32X4_SPLAT, ...simd(0xb8),
    ...store(0),
  ];
  const adv = [...advance16(x), ...advance16(out)];
  return { name: 'normalizeRelu', params: 7, locals: [[2, I32]], body: rowLoop({ rows, c, p, end }, inner, adv) };
}

/** Rows summed in float32 before the sums move into the float64 accumulators (batchNormGradSums). */
export const FLOAT32_SUM_ROWS = 32;

/**
 * batchNormGradSums(x, dy, rows, c, mean, accDy, accDyXc, partial) and batchNormReluGradSums(x, dy, y, rows, c, mean,
 * accDy, accDyXc, partial): accDy[j] += g, accDyXc[j] += g * (x - mean[j]), with g = dy (masked to y > 0 for the
 * ReLU variant, the gradient through a ReLU that is never stored). shiftedMoments(x, rows, c, shift, accSum, accSquares,
 * partial): accSum[j] += x - shift[j], accSquares[j] += (x - shift[j])². Products and the sums of FLOAT32_SUM_ROWS
 * rows in float32 (`partial`: 2c zeroed floats of scratch), each such partial sum then added into the float64
 * accumulators: float64 at every element made the statistics pass a third slower.
 */
function batchNormGradSums(mode: 'grad' | 'reluGrad' | 'moments'): Func {
  const relu = mode === 'reluGrad';
  const [x, dy, y, rows, c, mean, accDy, accDyXc, partial, p, end, g, xc, left, q] =
    mode === 'reluGrad' ? [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
    : mode === 'grad' ? [0, 1, -1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]
    : [0, -1, -1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
  const at = (base: number, offset: number[] = []): number[] => [...get(base), ...get(p), ...I32_ADD, ...offset];
  const addTo = (address: number[], value: number[]): number[] => [...address, ...address, ...load(0), ...value, ...F32X4_ADD, ...store(0)];
  const dyValue = mode === 'reluGrad' ? [...get(dy), ...load(0), ...get(y), ...load(0), ...f32x4Const(0), ...F32X4_GT, ...V128_AND] : [...get(dy), ...load(0)];
  const inner = [
    ...get(x), ...load(0), ...at(mean), ...load(0), ...F32X4_SUB, ...set(xc),
    ...(mode === 'moments' ? get(xc) : dyValue), ...set(g),
    ...addTo(at(partial), get(g)),
    ...addTo(at(partial, [...get(end), ...I32_ADD]), [...get(g), ...get(xc), ...F32X4_MUL]),
  ];
  // f64 acc at byte 2q (+16) += the low (high) half of the float32 partial sums at byte q, which then restart at 0.
  const f64At = (acc: number): number[] => [...get(acc), ...get(q), ...get(q), ...I32_ADD, ...I32_ADD];
  const partialAt = (second: boolean): number[] => [...get(partial), ...get(q), ...I32_ADD, ...(second ? [...get(end), ...I32_ADD] : [])];
  const flushOne = (acc: number, second: boolean): number[] => [
    ...f64At(acc), ...f64At(acc), ...load(0), ...partialAt(second), ...load(0), ...PROMOTE_LOW, ...F64X2_ADD, ...store(0),
    ...f64At(acc), ...f64At(acc), ...load(16), ...partialAt(second), ...load(0), ...set(g), ...get(g), ...get(g), ...HIGH_TO_LOW, ...PROMOTE_LOW, ...F64X2_ADD, ...store(16),
    ...partialAt(second), ...f32x4Const(0), ...store(0),
  ];
  const flush = [
    ...BLOCK,
    ...i32c(0), ...set(q),
    ...get(end), ...I32_EQZ, ...brIf(0),
    ...LOOP,
    ...flushOne(accDy, false),
    ...flushOne(accDyXc, true),
    ...get(q), ...i32c(16), ...I32_ADD, ...tee(q),
    ...get(end), ...I32_LT_U, ...brIf(0),
    ...END,
    ...END,
  ];
  const rowEnd = [
    ...get(left), ...i32c(1), ...I32_SUB, ...tee(left), ...I32_EQZ,
    ...IF, ...flush, ...i32c(FLOAT32_SUM_ROWS), ...set(left), ...END,
  ];
  const adv = [...advance16(x), ...(mode === 'moments' ? [] : advance16(dy)), ...(relu ? advance16(y) : [])];
  const body = [
    ...i32c(FLOAT32_SUM_ROWS), ...set(left),
    ...get(c), ...i32c(2), ...I32_SHL, ...set(end),
    ...rowLoop({ rows, c, p, end }, inner, adv, [], rowEnd),
    ...flush,
  ];
  const name = { grad: 'batchNormGradSums', reluGrad: 'batchNormReluGradSums', moments: 'shiftedMoments' }[mode];
  return { name, params: partial + 1, locals: [[2, I32], [2, V128], [2, I32]], body };
}

/**
 * batchNormBackward(x, dy, y, rows, c, mean, a, b, d, out) and batchNormReluBackward (same arguments): the input
 * gradient of a batch norm with batch statistics, out = a[j] * g + b[j] * (x - mean[j]) + d[j], where g = dy, or for
 * the ReLU variant dy where y > 0 (y is unused otherwise).
 */
function batchNormBackward(relu: boolean): Func {
  const [x, dy, y, rows, c, mean, a, b, d, out, p, end] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
  const at = (base: number): number[] => [...get(base), ...get(p), ...I32_ADD, ...load(0)];
  const g = relu ? [...get(dy), ...load(0), ...get(y), ...load(0), ...f32x4Const(0), ...F32X4_GT, ...V128_AND] : [...get(dy), ...load(0)];
  const inner = [
    ...get(out),
    ...g, ...at(a), ...F32X4_MUL,
    ...get(x), ...load(0), ...at(mean), ...F32X4_SUB, ...at(b), ...F32X4_MUL, ...F32X4_ADD,
    ...at(d), ...F32X4_ADD,
    ...store(0),
  ];
  const adv = [...advance16(x), ...advance16(dy), ...(relu ? advance16(y) : []), ...advance16(out)];
  return { name: relu ? 'batchNormReluBackward' : 'batchNormBackward', params: 10, locals: [[2, I32]], body: rowLoop({ rows, c, p, end }, inner, adv) };
}

/** broadcastRows(v, rows, c, out): every row of out [rows, c] = v [c] (4-byte elements, c a multiple of 4). */
function broadcastRows(): Func {
  const [v, rows, c, out, p, end] = [0, 1, 2, 3, 4, 5];
  const inner = [...get(out), ...get(v), ...get(p), ...I32_ADD, ...load(0), ...store(0)];
  return { name: 'broadcastRows', params: 4, locals: [[2, I32]], body: rowLoop({ rows, c, p, end }, inner, advance16(out)) };
}

/**
 * `for p in [0, 16 * groups) step 16: inner` over whole 4-float groups; pointers advanced by `advance`.
 * groups must be positive.
 */
function elementLoop(groups: number, inner: number[], advance: number[]): number[] {
  return [...LOOP, ...inner, ...advance, ...get(groups), ...i32c(1), ...I32_SUB, ...tee(groups), ...brIf(0), ...END];
}

/**
 * reluGrad(x, dy, groups, out): out = dy * step(x), step(x) = 1 for x > 0, NaN for NaN, else 0 (tfjs-core's
 * mul(dy, step(x)) as one pass, the same float32 products).
 */
function reluGrad(): Func {
  const [x, dy, groups, out, v] = [0, 1, 2, 3, 4];
  const step = [
    ...get(v), ...f32x4Const(0), ...F32X4_GT, ...f32x4Const(1), ...V128_AND,
    ...get(v), ...get(v), ...F32X4_NE, ...f32x4Const(NaN), ...V128_AND,
    ...V128_OR,
  ];
  const inner = [...get(x), ...load(0), ...set(v), ...get(out), ...get(dy), ...load(0), ...step, ...F32X4_MUL, ...store(0)];
  return { name: 'reluGrad', params: 4, locals: [[1, V128]], body: elementLoop(groups, inner, [...advance16(x), ...advance16(dy), ...advance16(out)]) };
}

/** squareGrad(x, dy, groups, out): out = dy * (x + x) (tfjs-core's mul(dy, mul(x, 2)) as one pass, same values). */
function squareGrad(): Func {
  const [x, dy, groups, out] = [0, 1, 2, 3];
  const inner = [...get(out), ...get(dy), ...load(0), ...get(x), ...load(0), ...get(x), ...load(0), ...F32X4_ADD, ...F32X4_MUL, ...store(0)];
  return { name: 'squareGrad', params: 4, locals: [], body: elementLoop(groups, inner, [...advance16(x), ...advance16(dy), ...advance16(out)]) };
}

/**
 * exp(x, groups, out): out = e^x (Cephes' single-precision method: e^x = 2^n * e^r, n = round(x log2 e), r reduced
 * with a two-part ln 2, e^r by a degree-7 polynomial; 2^n applied as two power-of-two factors so that overflow
 * gives infinity and underflow gradual denormals). Within 2 ulp of the correctly rounded result (tested); NaN stays
 * NaN; x is clamped to [-104, 89] first (e^x is 0 resp. infinity beyond).
 */
function exp(): Func {
  const [x, groups, out, v, n, ni, half] = [0, 1, 2, 3, 4, 5, 6];
  const f = (op: number): number[] => simd(op);
  const [F32X4_MIN, F32X4_MAX, F32X4_NEAREST] = [f(0xe8), f(0xe9), f(0x6a)];
  const [I32X4_SHL, I32X4_SHR_S, I32X4_ADD, I32X4_SUB, TRUNC_SAT] = [f(0xab), f(0xac), f(0xae), f(0xb1), f(0xf8)];
  const i32x4Const = (k: number): number[] => [...simd(0x0c), ...[0, 1, 2, 3].flatMap(() => [...new Uint8Array(new Int32Array([k]).buffer)])];
  const coefficients = [1.987569150e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1];
  // p = (((((c0 r + c1) r + c2) r + c3) r + c4) r + c5) r^2 + r + 1, with r in local v.
  let poly = f32x4Const(coefficients[0]!);
  for (const k of coefficients.slice(1)) poly = [...poly, ...get(v), ...F32X4_MUL, ...f32x4Const(k), ...F32X4_ADD];
  poly = [...poly, ...get(v), ...get(v), ...F32X4_MUL, ...F32X4_MUL, ...get(v), ...F32X4_ADD, ...f32x4Const(1), ...F32X4_ADD];
  const powerOfTwo = (exponent: number[]): number[] => [...exponent, ...i32x4Const(127), ...I32X4_ADD, ...i32c(23), ...I32X4_SHL];
  const inner = [
    ...get(x), ...load(0), ...f32x4Const(-104), ...F32X4_MAX, ...f32x4Const(89), ...F32X4_MIN, ...set(v),
    ...get(v), ...f32x4Const(Math.LOG2E), ...F32X4_MUL, ...F32X4_NEAREST, ...tee(n),
    ...TRUNC_SAT, ...tee(ni), ...i32c(1), ...I32X4_SHR_S, ...set(half),
    // r = x - n * 0.693359375 - n * (-2.12194440e-4): the first product is exact
    ...get(v), ...get(n), ...f32x4Const(0.693359375), ...F32X4_MUL, ...F32X4_SUB,
    ...get(n), ...f32x4Const(-2.12194440e-4), ...F32X4_MUL, ...F32X4_SUB, ...set(v),
    ...get(out),
    ...poly,
    ...powerOfTwo(get(half)), ...F32X4_MUL,
    ...powerOfTwo([...get(ni), ...get(half), ...I32X4_SUB]), ...F32X4_MUL,
    ...store(0),
  ];
  return { name: 'exp', params: 3, locals: [[4, V128]], body: elementLoop(groups, inner, [...advance16(x), ...advance16(out)]) };
}

/**
 * copyRows(src, dst, rows, c, srcStride, dstStride): copies c 4-byte elements (any c >= 0) per row; strides in bytes.
 * A row is one bulk `memory.copy` (on a shared heap faster than a v128 load/store loop or V8's TypedArray copyWithin;
 * figures in docs/wasm-training.md), except rows of 4 or 8 elements (the columns of a detection head's
 * output), which one or two v128 moves copy without memory.copy's per-call cost.
 */
function copyRows(): Func {
  const [src, dst, rows, c, srcStride, dstStride, bytes] = [0, 1, 2, 3, 4, 5, 6];
  const advance = [
    ...get(src), ...get(srcStride), ...I32_ADD, ...set(src),
    ...get(dst), ...get(dstStride), ...I32_ADD, ...set(dst),
  ];
  const moves = (count: number): number[] => {
    const code: number[] = [];
    for (let i = 0; i < count; i++) code.push(...get(dst), ...get(src), ...load(16 * i), ...store(16 * i));
    return code;
  };
  // Inside an `if` within the block: copy every row, then leave the block (br 1).
  const rowsOf = (code: number[]): number[] => [...countedLoop(rows, get(rows), [...code, ...advance]), 0x0c, 1];
  const body = [
    ...BLOCK,
    ...get(rows), ...I32_EQZ, ...brIf(0),
    ...get(c), ...i32c(2), ...I32_SHL, ...set(bytes),
    ...get(c), ...i32c(4), ...I32_EQ, ...IF, ...rowsOf(moves(1)), ...END,
    ...get(c), ...i32c(8), ...I32_EQ, ...IF, ...rowsOf(moves(2)), ...END,
    ...countedLoop(rows, get(rows), [...get(dst), ...get(src), ...get(bytes), ...MEMORY_COPY, ...advance]),
    ...END,
  ];
  return { name: 'copyRows', params: 6, locals: [[1, I32]], body };
}

/** `counter = count; do { body } while (--counter)`: count must be positive. */
function countedLoop(counter: number, count: number[], body: number[]): number[] {
  return [...count, ...set(counter), ...LOOP, ...body, ...get(counter), ...i32c(1), ...I32_SUB, ...tee(counter), ...brIf(0), ...END];
}

/**
 * maxPoolGradTiles(x, dy, dx, windows, c, fh, fw, rowBytes): the max-pool gradient for one row of `windows`
 * non-overlapping fh x fw windows (stride = window, no padding) starting at x / dx, rows rowBytes apart. Per channel,
 * the first maximum in row-major order (strictly greater wins, starting from -infinity, so NaN never wins) gets dy;
 * every other element of the window gets 0.
 */
function maxPoolGradTiles(): Func {
  const [x, dy, dx, windows, c, fh, fw, rowBytes] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [p, end, i, j, addr, a2, k] = [8, 9, 10, 11, 12, 13, 14];
  const [best, win, v, gt, dyv] = [15, 16, 17, 18, 19];
  const [I32X4_SPLAT, I32X4_EQ, BITSELECT] = [simd(0x11), simd(0x37), simd(0x52)];
  const pixelBytes = [...get(c), ...i32c(2), ...I32_SHL];
  const overWindow = (start: number[], inner: number[]): number[] => [
    ...i32c(0), ...set(k),
    ...start, ...set(addr),
    ...countedLoop(i, get(fh), [
      ...get(addr), ...set(a2),
      ...countedLoop(j, get(fw), [
        ...inner,
        ...get(k), ...i32c(1), ...I32_ADD, ...set(k),
        ...get(a2), ...pixelBytes, ...I32_ADD, ...set(a2),
      ]),
      ...get(addr), ...get(rowBytes), ...I32_ADD, ...set(addr),
    ]),
  ];
  const scan = [
    ...get(a2), ...load(0), ...tee(v), ...get(best), ...F32X4_GT, ...set(gt),
    ...get(v), ...get(best), ...get(gt), ...BITSELECT, ...set(best),
    ...get(k), ...I32X4_SPLAT, ...get(win), ...get(gt), ...BITSELECT, ...set(win),
  ];
  const write = [...get(a2), ...get(dyv), ...get(win), ...get(k), ...I32X4_SPLAT, ...I32X4_EQ, ...V128_AND, ...store(0)];
  const perGroup = [
    ...f32x4Const(-Infinity), ...set(best),
    ...simd(0x0c), ...new Array<number>(16).fill(0xff), ...set(win), // i32x4 all -1
    ...overWindow([...get(x), ...get(p), ...I32_ADD], scan),
    ...get(dy), ...get(p), ...I32_ADD, ...load(0), ...set(dyv),
    ...overWindow([...get(dx), ...get(p), ...I32_ADD], write),
  ];
  const windowBytes = [...get(fw), ...pixelBytes, ...I32_MUL];
  const body = countedLoop(windows, get(windows), [
    ...pixelBytes, ...set(end),
    ...i32c(0), ...set(p),
    ...LOOP,
    ...perGroup,
    ...get(p), ...i32c(16), ...I32_ADD, ...tee(p),
    ...get(end), ...I32_LT_U, ...brIf(0),
    ...END,
    ...get(x), ...windowBytes, ...I32_ADD, ...set(x),
    ...get(dx), ...windowBytes, ...I32_ADD, ...set(dx),
    ...get(dy), ...pixelBytes, ...I32_ADD, ...set(dy),
  ]);
  return { name: 'maxPoolGradTiles', params: 8, locals: [[7, I32], [5, V128]], body };
}

/**
 * maxPoolGradRows(x, dy, dx, windows, c, fh, fw, rowBytes, rows): maxPoolGradTiles for `rows` consecutive rows of
 * windows (x and dx advance by fh input rows, dy by one row of windows); `tiles` is maxPoolGradTiles' function index.
 */
function maxPoolGradRows(tiles: number): Func {
  const [x, dy, dx, windows, c, fh, fw, rowBytes, rows] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const body = [
    ...BLOCK,
    ...get(rows), ...I32_EQZ, ...brIf(0),
    ...countedLoop(rows, get(rows), [
      ...[x, dy, dx, windows, c, fh, fw, rowBytes].flatMap(get), 0x10, ...uleb(tiles),
      ...get(x), ...get(fh), ...get(rowBytes), ...I32_MUL, ...I32_ADD, ...set(x),
      ...get(dx), ...get(fh), ...get(rowBytes), ...I32_MUL, ...I32_ADD, ...set(dx),
      ...get(dy), ...get(windows), ...get(c), ...I32_MUL, ...i32c(2), ...I32_SHL, ...I32_ADD, ...set(dy),
    ]),
    ...END,
  ];
  return { name: 'maxPoolGradRows', params: 9, locals: [], body };
}

/** f32x4 opcodes of the binary ops with a fast path (binary-broadcast.ts). */
export const BINARY_OPS = { add: 0xe4, sub: 0xe5, mul: 0xe6, div: 0xe7, min: 0xe8, max: 0xe9 } as const;
export type BinaryOp = keyof typeof BINARY_OPS;
/** The broadcast operand: a last-axis vector `v[j]` or a column `v[r]` (one value per row); second or first operand. */
export const BROADCAST_MODES = ['vectorSecond', 'vectorFirst', 'columnSecond', 'columnFirst'] as const;
export type BroadcastMode = (typeof BROADCAST_MODES)[number];

/** binary_<op>_<mode>(a, v, rows, c, out): out[r, j] = a[r, j] op v (or v op a[r, j]), a full [rows, c]. */
function binary(op: BinaryOp, mode: BroadcastMode): Func {
  const [a, v, rows, c, out, p, end, s] = [0, 1, 2, 3, 4, 5, 6, 7];
  const column = mode.startsWith('column');
  const other = column ? get(s) : [...get(v), ...get(p), ...I32_ADD, ...load(0)];
  const full = [...get(a), ...load(0)];
  const operands = mode.endsWith('Second') ? [...full, ...other] : [...other, ...full];
  const inner = [...get(out), ...operands, ...simd(BINARY_OPS[op]), ...store(0)];
  const adv = [...advance16(a), ...advance16(out)];
  // A column: v[r] splatted to 4 lanes at the start of each row (v128.load32_splat), v advanced by 4 bytes per row.
  const rowStart = column ? [...get(v), ...simd(0x09), 2, 0, ...set(s)] : [];
  const rowEnd = column ? [...get(v), ...i32c(4), ...I32_ADD, ...set(v)] : [];
  return {
    name: `binary_${op}_${mode}`,
    params: 5,
    locals: [[2, I32], [1, V128]],
    body: rowLoop({ rows, c, p, end }, inner, adv, rowStart, rowEnd),
  };
}

/** Ops with an equal-shape kernel (binarySame): the gradient accumulations of a backward pass are Adds. */
export const SAME_SHAPE_OPS = ['add', 'sub', 'mul'] as const;
export type SameShapeOp = (typeof SAME_SHAPE_OPS)[number];

/** binarySame_<op>(a, b, groups, out): out = a op b over `groups` groups of 4 elements. */
function binarySame(op: SameShapeOp): Func {
  const [a, b, groups, out] = [0, 1, 2, 3];
  const inner = [...get(out), ...get(a), ...load(0), ...get(b), ...load(0), ...simd(BINARY_OPS[op]), ...store(0)];
  return { name: `binarySame_${op}`, params: 4, locals: [], body: elementLoop(groups, inner, [...advance16(a), ...advance16(b), ...advance16(out)]) };
}

/**
 * relu(x, groups, out): out = i32x4.max_s(x, 0) on the float bits: x for +0 and positive x, +0 for negative x and -0,
 * and NaN for a NaN with the sign bit clear, +0 with it set: exactly what the built-in (XNNPACK's clamp at [0, inf])
 * returns on wasm (checked on those values).
 */
function relu(): Func {
  const [x, groups, out] = [0, 1, 2];
  const inner = [...get(out), ...get(x), ...load(0), ...i32c(0), ...simd(0x11), ...simd(0xb8), ...store(0)];
  return { name: 'relu', params: 3, locals: [], body: elementLoop(groups, inner, [...advance16(x), ...advance16(out)]) };
}

/** square(x, groups, out): out = x * x (one float32 product per element, as the built-in). */
function square(): Func {
  const [x, groups, out] = [0, 1, 2];
  const inner = [...get(out), ...get(x), ...load(0), ...get(x), ...load(0), ...F32X4_MUL, ...store(0)];
  return { name: 'square', params: 3, locals: [], body: elementLoop(groups, inner, [...advance16(x), ...advance16(out)]) };
}

export function assemble(funcs: Func[], shared: boolean): Uint8Array {
  const types = funcs.map((f) => [0x60, ...vec(new Array<number[]>(f.params).fill([I32])), 0]);
  // Memory import: no minimum beyond 0; a shared memory must declare a maximum (4 GiB covers any).
  const memoryType = shared ? [0x03, ...uleb(0), ...uleb(65536)] : [0x00, ...uleb(0)];
  const imports = vec([[...name('env'), ...name('memory'), 0x02, ...memoryType]]);
  const functions = vec(funcs.map((_, i) => uleb(i)));
  const exports = vec(funcs.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]));
  const code = vec(
    funcs.map((f) => {
      const body = [...vec(f.locals.map(([n, t]) => [...uleb(n), t])), ...f.body, ...END];
      return [...uleb(body.length), ...body];
    }),
  );
  // The function names (custom section "name", subsection 1), so that CPU profiles name the kernels.
  const functionNames = vec(funcs.map((f, i) => [...uleb(i), ...name(f.name)]));
  const names = [...name('name'), 1, ...uleb(functionNames.length), ...functionNames];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(types)),
    ...section(2, imports),
    ...section(3, functions),
    ...section(7, exports),
    ...section(10, code),
    ...section(0, names),
  ]);
}

export interface SimdKernels {
  columnSums(x: number, rows: number, c: number, acc: number): void;
  batchNormGradSums(x: number, dy: number, rows: number, c: number, mean: number, accDy: number, accDyXc: number, partial: number): void;
  normalize(x: number, rows: number, c: number, mean: number, scale: number, offset: number, out: number): void;
  normalizeRelu(x: number, rows: number, c: number, mean: number, scale: number, offset: number, out: number): void;
  batchNormReluGradSums(x: number, dy: number, y: number, rows: number, c: number, mean: number, accDy: number, accDyXc: number, partial: number): void;
  shiftedMoments(x: number, rows: number, c: number, shift: number, accSum: number, accSquares: number, partial: number): void;
  batchNormBackward(x: number, dy: number, y: number, rows: number, c: number, mean: number, a: number, b: number, d: number, out: number): void;
  batchNormReluBackward(x: number, dy: number, y: number, rows: number, c: number, mean: number, a: number, b: number, d: number, out: number): void;
  reluGrad(x: number, dy: number, groups: number, out: number): void;
  squareGrad(x: number, dy: number, groups: number, out: number): void;
  exp(x: number, groups: number, out: number): void;
  square(x: number, groups: number, out: number): void;
  relu(x: number, groups: number, out: number): void;
  broadcastRows(v: number, rows: number, c: number, out: number): void;
  copyRows(src: number, dst: number, rows: number, c: number, srcStride: number, dstStride: number): void;
  maxPoolGradTiles(x: number, dy: number, dx: number, windows: number, c: number, fh: number, fw: number, rowBytes: number): void;
  maxPoolGradRows(x: number, dy: number, dx: number, windows: number, c: number, fh: number, fw: number, rowBytes: number, rows: number): void;
  /** binary_<op>_<mode>(a, v, rows, c, out) for every BinaryOp and BroadcastMode. */
  [binary: `binary_${string}`]: (a: number, v: number, rows: number, c: number, out: number) => void;
  /** binarySame_<op>(a, b, groups, out) for every SameShapeOp. */
  [same: `binarySame_${string}`]: (a: number, b: number, groups: number, out: number) => void;
}

/** The parts of the WebAssembly JS API used here (the project's `lib` setting does not declare them). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
}
interface WasmApi {
  Memory: abstract new (...args: never[]) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface EmscriptenModule {
  asm?: { memory?: WasmMemory };
  wasmMemory?: WasmMemory;
}

const instances = new WeakMap<WasmMemory, SimdKernels | null>();

/** The backend's WebAssembly.Memory (shared on the threaded build), or null where it cannot be found. */
export function backendMemory(backend: BackendWasm): WasmMemory | null {
  const module = backend.wasm as unknown as EmscriptenModule;
  const memory = module.asm?.memory ?? module.wasmMemory;
  return memory instanceof wasmApi.Memory ? memory : null;
}

/** The SIMD kernels bound to the backend's memory, or null where they cannot run (no SIMD, memory not found). */
export function simdKernels(backend: BackendWasm): SimdKernels | null {
  const memory = backendMemory(backend);
  if (memory === null) return null;
  const cached = instances.get(memory);
  if (cached !== undefined) return cached;
  const binaries = (Object.keys(BINARY_OPS) as BinaryOp[]).flatMap((op) => BROADCAST_MODES.map((mode) => binary(op, mode)));
  const sameShape = SAME_SHAPE_OPS.map(binarySame);
  const funcs = [columnSums(), batchNormGradSums('grad'), normalize(), normalizeRelu(), batchNormGradSums('reluGrad'), batchNormGradSums('moments'), batchNormBackward(false), batchNormBackward(true), reluGrad(), squareGrad(), exp(), square(), relu(), broadcastRows(), maxPoolGradTiles(), copyRows(), ...binaries, ...sameShape];
  funcs.push(maxPoolGradRows(funcs.findIndex((f) => f.name === 'maxPoolGradTiles')));
  // Null on an engine without wasm SIMD: callers fall back.
  const kernels = instantiateOnBackendMemory(backend, funcs) as SimdKernels | null;
  instances.set(memory, kernels);
  return kernels;
}

/**
 * Scratch memory in the wasm heap for the kernels (float64 accumulators, per-channel vectors): `bytes` bytes from a
 * 16-byte aligned offset. Free it with release(backend, scratch.info); heap views must be taken after allocating.
 */
export function scratch(backend: BackendWasm, bytes: number): { info: TensorInfo; offset: number } {
  const info = backend.makeOutput([Math.ceil(bytes / 4) + 4], 'float32');
  const base = heapOffset(backend, info);
  return { info, offset: base + ((16 - (base % 16)) % 16) };
}

/** The wasm heap's current buffer (replaced when the memory grows: take views after the last allocation). */
export function heapBuffer(backend: BackendWasm): ArrayBuffer {
  return (backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.buffer as ArrayBuffer;
}

/** Byte offset of a tensor's data in the wasm heap. */
export function heapOffset(backend: BackendWasm, info: { dataId: object }): number {
  return backend.getMemoryOffset(info.dataId);
}

/**
 * Instantiates a module of `funcs` (assembled as above) on the backend's memory, or returns null where it cannot run
 * (no SIMD, memory not found). Used for the kernels above and, through shapeModule, by the generators in other files;
 * the caller caches the result.
 */
export function instantiateOnBackendMemory(backend: BackendWasm, funcs: Func[]): unknown {
  const memory = backendMemory(backend);
  if (memory === null) return null;
  try {
    const module = new wasmApi.Module(assemble(funcs, memory.buffer instanceof SharedArrayBuffer));
    const exports = new wasmApi.Instance(module, { env: { memory } }).exports as object;
    modules.set(exports, { id: nextModuleId++, module, names: Object.keys(exports) });
    return exports;
  } catch {
    return null;
  }
}

const shapeModules = new WeakMap<BackendWasm, Map<string, unknown>>();

/**
 * The module of `funcs()` for one shape (generators bake strides and sizes into their code), instantiated on the
 * backend's memory once per `key` and backend; null where it cannot run. Keys start with the generator's name.
 */
export function shapeModule<T>(backend: BackendWasm, key: string, funcs: () => Func[]): T | null {
  let cache = shapeModules.get(backend);
  if (cache === undefined) shapeModules.set(backend, (cache = new Map<string, unknown>()));
  if (!cache.has(key)) cache.set(key, instantiateOnBackendMemory(backend, funcs()) ?? null);
  return cache.get(key) as T | null;
}

/**
 * A module made by instantiateOnBackendMemory, for kernel-pool.ts' workers: the compiled module (shared with them, so
 * that they run the same optimised code instead of compiling their own) and its export names, in order.
 */
export interface ModuleRecord {
  id: number;
  module: object;
  names: string[];
}

const modules = new WeakMap<object, ModuleRecord>();
let nextModuleId = 1;

export function moduleRecord(exports: object): ModuleRecord | undefined {
  return modules.get(exports);
}
