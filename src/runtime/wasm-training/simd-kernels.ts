/**
 * A few per-channel loops written directly in WebAssembly SIMD, run on the wasm backend's own memory (the module
 * imports tfjs-backend-wasm's WebAssembly.Memory, so tensors are read and written in place, without copies).
 *
 * Why: the batch-norm statistics and their gradients are one-pass loops over [rows, channels] data. tfjs-backend-wasm
 * has no kernel for a reduction over leading axes (it transposes the whole tensor first), and the same loops in
 * JavaScript ran at ~3 ns per element, no faster than transpose + reduce; as SIMD they run at memory speed.
 *
 * The module is assembled here from its bytes (no toolchain, no dependency). Every function works on `rows` rows
 * of `c` float32 channels, c a positive multiple of 4 (the callers check), pointers are byte offsets into the heap.
 * Sums are accumulated in float64 (more accurate than the built-ins' float32 running sums).
 */
import type { BackendWasm, TensorInfo } from './wasm-kernel-utils.js';

// ---- a minimal WebAssembly encoder ----

export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
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
const I32_SHL = [0x74];
export const I32_LT_U = [0x49];
const I32_EQZ = [0x45];
export const BLOCK = [0x02, 0x40];
export const LOOP = [0x03, 0x40];
export const END = [0x0b];
export const brIf = (depth: number): number[] => [0x0d, ...uleb(depth)];
export const simd = (op: number): number[] => [0xfd, ...uleb(op)];
export const load = (offset = 0): number[] => [...simd(0x00), 4, ...uleb(offset)];
export const store = (offset = 0): number[] => [...simd(0x0b), 4, ...uleb(offset)];
const HIGH_TO_LOW = [...simd(0x0d), 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]; // i8x16.shuffle
export const F32X4_ADD = simd(0xe4);
export const F32X4_SUB = simd(0xe5);
export const F32X4_MUL = simd(0xe6);
const F64X2_ADD = simd(0xf0);
const F64X2_MUL = simd(0xf2);
const PROMOTE_LOW = simd(0x5f); // f64x2.promote_low_f32x4
const F32X4_NE = simd(0x42);
const F32X4_GT = simd(0x44);
const V128_AND = simd(0x4e);
const V128_OR = simd(0x50);
export const f32x4Const = (v: number): number[] => [...simd(0x0c), ...[0, 1, 2, 3].flatMap(() => [...new Uint8Array(new Float32Array([v]).buffer)])];

export interface Func {
  name: string;
  params: number; // all i32
  locals: [count: number, type: number][];
  body: number[];
}

/**
 * `for rows: for each 4 channels at byte offset p (0 <= p < 4c): inner(p)`, with x advanced by 16 bytes per group.
 * Locals used: rows (param), c (param), `x` (param, byte pointer, advanced), p and end (scratch i32 locals).
 */
function rowLoop(v: { x: number; rows: number; c: number; p: number; end: number }, inner: number[], advance: number[]): number[] {
  return [
    ...BLOCK,
    ...get(v.rows), ...I32_EQZ, ...brIf(0),
    ...get(v.c), ...i32c(2), ...I32_SHL, ...set(v.end),
    ...LOOP,
    ...i32c(0), ...set(v.p),
    ...LOOP,
    ...inner,
    ...advance,
    ...get(v.p), ...i32c(16), ...I32_ADD, ...tee(v.p),
    ...get(v.end), ...I32_LT_U, ...brIf(0),
    ...END,
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
  return { name: 'columnSums', params: 4, locals: [[2, I32], [1, V128]], body: rowLoop({ x, rows, c, p, end }, inner, advance16(x)) };
}

/**
 * batchNormGradSums(x, dy, rows, c, mean, accDy, accDyXc): accDy[j] += dy, accDyXc[j] += dy * (x - mean[j]) with
 * x - mean rounded to float32 (as a float32 tensor op would) and the product and sums in float64.
 */
function batchNormGradSums(): Func {
  const [x, dy, rows, c, mean, accDy, accDyXc, p, end, g, xc] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const prodLow = [...get(g), ...PROMOTE_LOW, ...get(xc), ...PROMOTE_LOW, ...F64X2_MUL];
  const prodHigh = [...get(g), ...get(g), ...HIGH_TO_LOW, ...PROMOTE_LOW, ...get(xc), ...get(xc), ...HIGH_TO_LOW, ...PROMOTE_LOW, ...F64X2_MUL];
  const accAt = (offset: number, value: number[]): number[] => [
    ...get(accDyXc), ...get(p), ...get(p), ...I32_ADD, ...I32_ADD,
    ...get(accDyXc), ...get(p), ...get(p), ...I32_ADD, ...I32_ADD, ...load(offset), ...value, ...F64X2_ADD,
    ...store(offset),
  ];
  const inner = [
    ...get(dy), ...load(0), ...set(g),
    ...get(x), ...load(0), ...get(mean), ...get(p), ...I32_ADD, ...load(0), ...F32X4_SUB, ...set(xc),
    ...accumulate(accDy, p, g),
    ...accAt(0, prodLow),
    ...accAt(16, prodHigh),
  ];
  const adv = [...advance16(x), ...advance16(dy)];
  return { name: 'batchNormGradSums', params: 7, locals: [[2, I32], [2, V128]], body: rowLoop({ x, rows, c, p, end }, inner, adv) };
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
  return { name: 'normalize', params: 7, locals: [[2, I32]], body: rowLoop({ x, rows, c, p, end }, inner, adv) };
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
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(types)),
    ...section(2, imports),
    ...section(3, functions),
    ...section(7, exports),
    ...section(10, code),
  ]);
}

export interface SimdKernels {
  columnSums(x: number, rows: number, c: number, acc: number): void;
  batchNormGradSums(x: number, dy: number, rows: number, c: number, mean: number, accDy: number, accDyXc: number): void;
  normalize(x: number, rows: number, c: number, mean: number, scale: number, offset: number, out: number): void;
  reluGrad(x: number, dy: number, groups: number, out: number): void;
  squareGrad(x: number, dy: number, groups: number, out: number): void;
}

/** The parts of the WebAssembly JS API used here (the project's `lib` setting does not declare them). */
interface WasmMemory {
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

/** The SIMD kernels bound to the backend's memory, or null where they cannot run (no SIMD, memory not found). */
export function simdKernels(backend: BackendWasm): SimdKernels | null {
  const module = backend.wasm as unknown as EmscriptenModule;
  const memory = module.asm?.memory ?? module.wasmMemory;
  if (!(memory instanceof wasmApi.Memory)) return null;
  const cached = instances.get(memory);
  if (cached !== undefined) return cached;
  let kernels: SimdKernels | null = null;
  try {
    const bytes = assemble([columnSums(), batchNormGradSums(), normalize(), reluGrad(), squareGrad()], memory.buffer instanceof SharedArrayBuffer);
    const instance = new wasmApi.Instance(new wasmApi.Module(bytes), { env: { memory } });
    kernels = instance.exports as unknown as SimdKernels;
  } catch {
    kernels = null; // an engine without wasm SIMD: callers fall back
  }
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
 * (no SIMD, memory not found). For kernels kept in other files (winograd.ts); the caller caches the result.
 */
export function instantiateOnBackendMemory(backend: BackendWasm, funcs: Func[]): unknown {
  const module = backend.wasm as unknown as EmscriptenModule;
  const memory = module.asm?.memory ?? module.wasmMemory;
  if (!(memory instanceof wasmApi.Memory)) return null;
  try {
    const bytes = assemble(funcs, memory.buffer instanceof SharedArrayBuffer);
    return new wasmApi.Instance(new wasmApi.Module(bytes), { env: { memory } }).exports;
  } catch {
    return null;
  }
}
