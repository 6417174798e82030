/**
 * A minimal WebAssembly binary writer: just what the KITTI evaluator's small kernels need (i32/i64/f64 locals,
 * structured control flow, loads and stores on one exported memory). Used because code compiled by WebAssembly's
 * baseline compiler runs at near-native speed from its first instruction, while the same loops in JavaScript spend
 * a short command-line run in the interpreter and in optimising-compiler jobs (see docs/kitti-eval.md).
 */
import { sleb128, uleb128 } from '../../src/util/leb128.js';

export const I32 = 0x7f;
export const I64 = 0x7e;
export const F64 = 0x7c;
export type ValType = typeof I32 | typeof I64 | typeof F64;
const VOID = 0x40;

/** Opcodes used (WebAssembly core specification 1.0, section 5.4). */
export const enum Op {
  block = 0x02,
  loop = 0x03,
  if = 0x04,
  else = 0x05,
  end = 0x0b,
  br = 0x0c,
  br_if = 0x0d,
  return = 0x0f,
  call = 0x10,
  drop = 0x1a,
  select = 0x1b,
  local_get = 0x20,
  local_set = 0x21,
  local_tee = 0x22,
  i32_load = 0x28,
  f64_load = 0x2b,
  i32_load8_s = 0x2c,
  i32_load8_u = 0x2d,
  i32_store = 0x36,
  f64_store = 0x39,
  i32_store8 = 0x3a,
  i32_const = 0x41,
  i64_const = 0x42,
  f64_const = 0x44,
  i32_eqz = 0x45,
  i32_eq = 0x46,
  i32_ne = 0x47,
  i32_lt_s = 0x48,
  i32_lt_u = 0x49,
  i32_gt_s = 0x4a,
  i32_gt_u = 0x4b,
  i32_le_s = 0x4c,
  i32_ge_s = 0x4e,
  i32_ge_u = 0x4f,
  f64_eq = 0x61,
  f64_ne = 0x62,
  f64_lt = 0x63,
  f64_gt = 0x64,
  f64_le = 0x65,
  f64_ge = 0x66,
  i32_add = 0x6a,
  i32_sub = 0x6b,
  i32_mul = 0x6c,
  i32_and = 0x71,
  i32_or = 0x72,
  i32_shl = 0x74,
  i32_shr_u = 0x76,
  i64_add = 0x7c,
  i64_mul = 0x7e,
  f64_abs = 0x99,
  f64_neg = 0x9a,
  f64_trunc = 0x9d,
  f64_add = 0xa0,
  f64_sub = 0xa1,
  f64_mul = 0xa2,
  f64_div = 0xa3,
  i32_trunc_f64_s = 0xaa,
  i64_extend_i32_u = 0xad,
  f64_convert_i32_s = 0xb7,
  f64_convert_i64_s = 0xb9,
}

function uleb(out: number[], v: number): void {
  out.push(...uleb128(v));
}

function sleb(out: number[], v: bigint): void {
  out.push(...sleb128(v));
}

/** A tuple of N elements of type T. */
type Tuple<T, N extends number, R extends T[] = []> = R['length'] extends N ? R : Tuple<T, N, [...R, T]>;

/** One function's body, written as a sequence of instructions. */
export class FunctionBuilder {
  readonly code: number[] = [];
  private readonly localTypes: ValType[] = [];

  constructor(
    readonly name: string,
    readonly params: readonly ValType[],
    readonly results: readonly ValType[],
  ) {}

  /** A new local of the given type; returns its index. */
  local(type: ValType): number {
    this.localTypes.push(type);
    return this.params.length + this.localTypes.length - 1;
  }

  /** n new locals of one type, typed as an n-tuple so that destructuring them needs no checks. */
  locals<N extends number>(type: ValType, n: N): Tuple<number, N> {
    // Array.from cannot express the length in its type; the loop makes exactly n.
    return Array.from({ length: n }, () => this.local(type)) as Tuple<number, N>;
  }

  op(...ops: Op[]): this {
    this.code.push(...ops);
    return this;
  }

  get(l: number): this {
    this.code.push(Op.local_get);
    uleb(this.code, l);
    return this;
  }

  set(l: number): this {
    this.code.push(Op.local_set);
    uleb(this.code, l);
    return this;
  }

  tee(l: number): this {
    this.code.push(Op.local_tee);
    uleb(this.code, l);
    return this;
  }

  i32(v: number): this {
    this.code.push(Op.i32_const);
    sleb(this.code, BigInt(v | 0));
    return this;
  }

  i64(v: number): this {
    this.code.push(Op.i64_const);
    sleb(this.code, BigInt(v));
    return this;
  }

  f64(v: number): this {
    this.code.push(Op.f64_const);
    const b = new Uint8Array(new Float64Array([v]).buffer);
    this.code.push(...b);
    return this;
  }

  /** A load or store with its alignment (log2 bytes) and a constant offset. */
  mem(op: Op, align: number, offset = 0): this {
    this.code.push(op);
    uleb(this.code, align);
    uleb(this.code, offset);
    return this;
  }

  /** block / loop / if with an optional result type. */
  begin(op: Op.block | Op.loop | Op.if, result: ValType | null = null): this {
    this.code.push(op, result ?? VOID);
    return this;
  }

  /** br / br_if to the enclosing block `depth` levels out (0 = innermost). */
  br(op: Op.br | Op.br_if, depth: number): this {
    this.code.push(op);
    uleb(this.code, depth);
    return this;
  }

  call(index: number): this {
    this.code.push(Op.call);
    uleb(this.code, index);
    return this;
  }

  private readonly labels: number[] = [];
  private nextLabel = 0;

  /** Opens a block / loop / if (with an optional result type) and returns its label for `jump`; `close` ends it. */
  open(op: Op.block | Op.loop | Op.if, result: ValType | null = null): number {
    this.code.push(op, result ?? VOID);
    this.labels.push(this.nextLabel);
    return this.nextLabel++;
  }

  close(): this {
    if (this.labels.pop() === undefined) throw new Error(`${this.name}: close without open`);
    this.code.push(Op.end);
    return this;
  }

  /** br / br_if to an open label (a block's end, a loop's start). */
  jump(op: Op.br | Op.br_if, label: number): this {
    const k = this.labels.lastIndexOf(label);
    if (k < 0) throw new Error(`${this.name}: jump to a label that is not open`);
    return this.br(op, this.labels.length - 1 - k);
  }

  /** The function body: local declarations, code, end. */
  body(): number[] {
    if (this.labels.length !== 0) throw new Error(`${this.name}: ${this.labels.length} block(s) left open`);
    const out: number[] = [];
    uleb(out, this.localTypes.length);
    for (const t of this.localTypes) out.push(1, t);
    out.push(...this.code, Op.end);
    return out;
  }
}

function section(out: number[], id: number, content: number[]): void {
  out.push(id);
  uleb(out, content.length);
  out.push(...content);
}

function vec(out: number[], items: number[][]): void {
  uleb(out, items.length);
  for (const it of items) out.push(...it);
}

function name(s: string): number[] {
  const b = [...new TextEncoder().encode(s)];
  const out: number[] = [];
  uleb(out, b.length);
  return out.concat(b);
}

/**
 * A module of the given functions (called by their index in this list) and one memory, all exported by name. With
 * `importMemory` the memory is not the module's own but imported as env.memory (at least `memoryPages`), so that an
 * instance can work on another instance's memory.
 */
export function buildModule(functions: readonly FunctionBuilder[], memoryPages: number, importMemory = false): Uint8Array {
  const out = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const types = functions.map((f) => [0x60, f.params.length, ...f.params, f.results.length, ...f.results]);
  const typeSec: number[] = [];
  vec(typeSec, types);
  section(out, 1, typeSec);
  if (importMemory) {
    const imp = [...name('env'), ...name('memory'), 0x02, 0];
    uleb(imp, memoryPages);
    const impSec: number[] = [];
    vec(impSec, [imp]);
    section(out, 2, impSec);
  }
  const funcSec: number[] = [];
  vec(
    funcSec,
    functions.map((_, i) => {
      const idx: number[] = [];
      uleb(idx, i);
      return idx;
    }),
  );
  section(out, 3, funcSec);
  if (!importMemory) {
    const memSec: number[] = [1, 0];
    uleb(memSec, memoryPages);
    section(out, 5, memSec);
  }
  const exports: number[][] = [[...name('memory'), 0x02, 0]];
  functions.forEach((f, i) => {
    const e = [...name(f.name), 0x00];
    uleb(e, i);
    exports.push(e);
  });
  const expSec: number[] = [];
  vec(expSec, exports);
  section(out, 7, expSec);
  const codeSec: number[] = [];
  vec(
    codeSec,
    functions.map((f) => {
      const b = f.body();
      const sized: number[] = [];
      uleb(sized, b.length);
      return sized.concat(b);
    }),
  );
  section(out, 10, codeSec);
  return Uint8Array.from(out);
}
