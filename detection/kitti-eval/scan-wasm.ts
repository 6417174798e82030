/**
 * The byte scanner of scan.ts as a WebAssembly kernel, with the same contract: it reads the common form (ASCII,
 * plain decimals of at most 15 digits) and hands any other file to the reference parser, `parseKittiObjects`, so
 * that the accepted files, the values and the error messages are exactly the reference parser's.
 *
 * Why WebAssembly: a command-line run scans ~6 MB once. JavaScript spends most of that in the interpreter and in
 * optimising-compiler jobs (and deoptimisations); WebAssembly's baseline compiler turns these few hundred bytes of
 * code into machine code in well under a millisecond. The arithmetic is the same: m (at most 15 digits, an exact
 * integer) converted to double, divided once by an exact power of ten.
 *
 * Memory: [0, 184) powers of ten, [256, 384) the current line's field values, [1 KiB, 1 KiB + 1 MiB) the input
 * file, then the table's columns for `capacity` rows (box, truncated, occluded, score, type), moved apart when the
 * capacity grows; the finished table's arrays are views of this memory (no copy).
 */
import { parseKittiObjects, type KittiObject } from '../../datasets/kitti/label-file.js';
import { TYPE_CODES, TypeCode, typeCode, type KittiBoxTable } from './box-table.js';
import { buildModule, F64, FunctionBuilder, I32, I64, Op } from './wasm-emit.js';
import { SCANNER_WASM } from './wasm-binaries.js';

const POW10_AT = 0;
const VALS_AT = 256;
const INPUT_AT = 1024;
/** Largest file the kernel scans; a larger one (far beyond any KITTI file) goes to the reference parser. */
export const WASM_INPUT_CAPACITY = 1 << 20;
const COLUMNS_AT = INPUT_AT + WASM_INPUT_CAPACITY;
/** Bytes per row: box 32, truncated, occluded and score 8 each, type 1. */
const ROW_BYTES = 57;
/** Bit k set when field k is used: truncated (1), occluded (2), the box (4..7) and the score (15). */
const USED_MASK = (1 << 1) | (1 << 2) | (0xf << 4) | (1 << 15);

/** Function indices: scan 0, type 1. */
const FN_TYPE = 1;

/** Pushes 1 when local x holds an ASCII space of JavaScript's \s (space, \t \n \v \f \r), else 0. */
function isSpace(f: FunctionBuilder, x: number): FunctionBuilder {
  return f.get(x).i32(32).op(Op.i32_eq).get(x).i32(9).op(Op.i32_sub).i32(5).op(Op.i32_lt_u, Op.i32_or);
}

/**
 * scan(inPtr, length, isResult, rows, capacity) → the row count after appending the file's rows to the columns (laid
 * out for `capacity` rows), or -1 when the file needs the reference parser. Statement for statement the loop of
 * scan.ts's scanFast.
 */
function scanFunction(): FunctionBuilder {
  const f = new FunctionBuilder('scan', [I32, I32, I32, I32, I32], [I32]);
  const [inPtr, len, isResult, rows, cap] = [0, 1, 2, 3, 4];
  const i = f.local(I32);
  const end = f.local(I32);
  const n = f.local(I32);
  const type = f.local(I32);
  const c = f.local(I32);
  const s = f.local(I32);
  const neg = f.local(I32);
  const digits = f.local(I32);
  const frac = f.local(I32);
  const r8 = f.local(I32);
  const col = f.local(I32); // capacity * 8: the distance between the double columns after the box
  const m = f.local(I64);
  const v = f.local(F64);
  const occ = f.local(F64);
  const fail = (): void => void f.i32(-1).op(Op.return);
  const next = (): void => {
    // i++; c = buf[i] (the sentinel '\n' at the end stands for scan.ts's ' ' past the end: both are white space)
    f.get(i).i32(1).op(Op.i32_add).tee(i).mem(Op.i32_load8_u, 0).set(c);
  };
  const val = (k: number): void => void f.i32(0).mem(Op.f64_load, 3, VALS_AT + 8 * k);

  f.get(inPtr).get(len).op(Op.i32_add).set(end);
  // A sentinel '\n' after the file (the input buffer always has room: a file that fills it is not scanned here), so
  // that only the line loop tests for the end: within a line, every loop stops at white space.
  f.get(end).i32(10).mem(Op.i32_store8, 0);
  f.get(inPtr).set(i);
  f.get(cap).i32(3).op(Op.i32_shl).set(col);
  f.begin(Op.block); // $done
  f.begin(Op.loop); // $lines
  f.get(i).get(end).op(Op.i32_ge_u).br(Op.br_if, 1);
  f.i32(0).set(n).i32(-1).set(type);
  f.begin(Op.block); // $eol
  f.begin(Op.loop); // $fields
  f.get(i).mem(Op.i32_load8_u, 0).tee(c).i32(10).op(Op.i32_eq).br(Op.br_if, 1);
  isSpace(f, c).begin(Op.if);
  f.get(i).i32(1).op(Op.i32_add).set(i).br(Op.br, 1);
  f.op(Op.end);
  f.get(n).i32(16).op(Op.i32_eq).begin(Op.if);
  fail();
  f.op(Op.end);
  // Field 0: the type name.
  f.get(n).op(Op.i32_eqz).begin(Op.if);
  f.get(i).set(s);
  f.begin(Op.block).begin(Op.loop);
  f.get(i).mem(Op.i32_load8_u, 0).set(c);
  isSpace(f, c).br(Op.br_if, 1);
  f.get(i).i32(1).op(Op.i32_add).set(i).br(Op.br, 0);
  f.op(Op.end, Op.end);
  f.get(s).get(i).call(FN_TYPE).tee(type).i32(0).op(Op.i32_lt_s).begin(Op.if);
  fail();
  f.op(Op.end);
  f.i32(1).set(n).br(Op.br, 1); // continue $fields
  f.op(Op.end);
  // A number: [+-]?(d+(.d*)?|.d+), at most 15 digits.
  f.i32(0).set(neg);
  f.get(c).i32(45).op(Op.i32_eq).get(c).i32(43).op(Op.i32_eq).op(Op.i32_or).begin(Op.if);
  f.get(c).i32(45).op(Op.i32_eq).set(neg);
  next();
  f.op(Op.end);
  f.i64(0).set(m).i32(0).set(digits).i32(-1).set(frac);
  f.begin(Op.block).begin(Op.loop); // $num $digit
  f.get(c).i32(48).op(Op.i32_sub).i32(10).op(Op.i32_lt_u).begin(Op.if);
  f.get(m).i64(10).op(Op.i64_mul).get(c).i32(48).op(Op.i32_sub, Op.i64_extend_i32_u, Op.i64_add).set(m);
  f.get(digits).i32(1).op(Op.i32_add).set(digits);
  f.get(frac).i32(0).op(Op.i32_ge_s).begin(Op.if).get(frac).i32(1).op(Op.i32_add).set(frac).op(Op.end);
  f.op(Op.else);
  f.get(c).i32(46).op(Op.i32_eq).get(frac).i32(0).op(Op.i32_lt_s).op(Op.i32_and).begin(Op.if);
  f.i32(0).set(frac);
  f.op(Op.else).br(Op.br, 3); // break $num
  f.op(Op.end);
  f.op(Op.end);
  next();
  f.br(Op.br, 0);
  f.op(Op.end, Op.end);
  f.get(digits).op(Op.i32_eqz).get(digits).i32(15).op(Op.i32_gt_s).op(Op.i32_or);
  isSpace(f, c).op(Op.i32_eqz, Op.i32_or).begin(Op.if);
  fail();
  f.op(Op.end);
  // Only the columns the evaluation uses are converted.
  f.i32(USED_MASK).get(n).op(Op.i32_shr_u).i32(1).op(Op.i32_and).begin(Op.if);
  f.get(m).op(Op.f64_convert_i64_s).set(v);
  f.get(frac).i32(0).op(Op.i32_gt_s).begin(Op.if);
  f.get(v).get(frac).i32(3).op(Op.i32_shl).mem(Op.f64_load, 3, POW10_AT).op(Op.f64_div).set(v);
  f.op(Op.end);
  f.get(n).i32(3).op(Op.i32_shl);
  f.get(v).op(Op.f64_neg).get(v).get(neg).op(Op.select);
  f.mem(Op.f64_store, 3, VALS_AT);
  f.op(Op.end);
  f.get(n).i32(1).op(Op.i32_add).set(n);
  f.br(Op.br, 0); // continue $fields
  f.op(Op.end, Op.end); // $fields, $eol
  f.get(i).i32(1).op(Op.i32_add).set(i); // past '\n'
  f.get(n).op(Op.i32_eqz).br(Op.br_if, 0); // a blank line
  f.get(isResult).begin(Op.if, I32).get(n).i32(16).op(Op.i32_ne);
  f.op(Op.else).get(n).i32(15).op(Op.i32_ne).get(n).i32(16).op(Op.i32_ne).op(Op.i32_and);
  f.op(Op.end).begin(Op.if);
  fail();
  f.op(Op.end);
  // occluded must be an integer in [-1, 3] (it is finite: at most 15 digits).
  val(2);
  f.set(occ);
  f.get(occ).op(Op.f64_trunc).get(occ).op(Op.f64_ne);
  f.get(occ).f64(-1).op(Op.f64_lt, Op.i32_or).get(occ).f64(3).op(Op.f64_gt, Op.i32_or).begin(Op.if);
  fail();
  f.op(Op.end);
  // Columns at COLUMNS_AT: box (4 doubles a row), truncated, occluded, score, then the type bytes.
  f.get(rows).i32(3).op(Op.i32_shl).set(r8);
  for (let k = 0; k < 4; k++) {
    f.get(r8).i32(2).op(Op.i32_shl);
    val(4 + k);
    f.mem(Op.f64_store, 3, COLUMNS_AT + 8 * k);
  }
  const column = (k: number): void => void f.get(col).i32(4 + k).op(Op.i32_mul).get(r8).op(Op.i32_add);
  column(0);
  val(1);
  f.mem(Op.f64_store, 3, COLUMNS_AT);
  column(1);
  f.get(occ).mem(Op.f64_store, 3, COLUMNS_AT);
  column(2);
  val(15);
  f.f64(Number.NaN).get(n).i32(16).op(Op.i32_eq, Op.select).mem(Op.f64_store, 3, COLUMNS_AT);
  f.get(col).i32(7).op(Op.i32_mul).get(rows).op(Op.i32_add).get(type).mem(Op.i32_store8, 0, COLUMNS_AT);
  f.get(rows).i32(1).op(Op.i32_add).set(rows);
  f.br(Op.br, 0); // continue $lines
  f.op(Op.end, Op.end); // $lines, $done
  f.get(rows);
  return f;
}

/** type(s, e) → type code of bytes [s, e), ASCII case-insensitive; -1 when a byte is not ASCII. */
function typeFunction(): FunctionBuilder {
  const f = new FunctionBuilder('type', [I32, I32], [I32]);
  const [s, e] = [0, 1];
  const k = f.local(I32);
  const c = f.local(I32);
  f.get(s).set(k);
  f.begin(Op.block).begin(Op.loop);
  f.get(k).get(e).op(Op.i32_ge_u).br(Op.br_if, 1);
  f.get(k).mem(Op.i32_load8_u, 0).i32(128).op(Op.i32_ge_u).begin(Op.if).i32(-1).op(Op.return).op(Op.end);
  f.get(k).i32(1).op(Op.i32_add).set(k).br(Op.br, 0);
  f.op(Op.end, Op.end);
  for (const [name, code] of TYPE_CODES) {
    f.get(e).get(s).op(Op.i32_sub).i32(name.length).op(Op.i32_eq).begin(Op.if);
    for (let j = 0; j < name.length; j++) {
      // Lower-case: c + 32 when c is 'A'..'Z'.
      f.get(s).mem(Op.i32_load8_u, 0, j).tee(c).get(c).i32(65).op(Op.i32_sub).i32(26).op(Op.i32_lt_u).i32(5).op(Op.i32_shl, Op.i32_add);
      f.i32(name.charCodeAt(j)).op(Op.i32_eq);
      if (j > 0) f.op(Op.i32_and);
    }
    f.begin(Op.if).i32(code).op(Op.return).op(Op.end);
    f.op(Op.end);
  }
  f.i32(TypeCode.OTHER);
  return f;
}

/** The few WebAssembly JS-API members used (the project's lib settings do not declare them). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

/** A scanner's columns: byte addresses in its memory (rows at 32 bytes of box, 8 of each double, 1 of type). */
export interface ScannedColumns {
  memory: WasmMemory;
  box: number;
  truncated: number;
  occluded: number;
  score: number;
  type: number;
  /** The first byte after the columns. */
  end: number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface ScannerExports {
  memory: WasmMemory;
  scan(inPtr: number, length: number, isResult: number, rows: number, capacity: number): number;
}

let compiled: object | null = null;

/** The compiled kernel (once per thread; compiling it takes well under a millisecond). */
function scannerModule(): object {
  compiled ??= new wasm.Module(Buffer.from(SCANNER_WASM, 'base64'));
  return compiled;
}

/** The kernel's bytes from its code above; wasm-binaries.ts holds them (the code runs slowly in a cold process). */
export function buildScannerWasm(): Uint8Array {
  return buildModule([scanFunction(), typeFunction()], (COLUMNS_AT >> 16) + 1);
}

/**
 * Builds a KittiBoxTable from files scanned one after another: write a file's bytes into `input`, call `scan`,
 * and `endImage` after each image.
 */
export class WasmTableScanner {
  private readonly exports: ScannerExports;
  private rows = 0;
  private capacity = 0;
  private readonly images: number[] = [0];
  /** Where to put a file's bytes (valid until the next scan: memory growth replaces it). */
  input: Uint8Array;

  /** `expectedRows`: the initial capacity (it grows by doubling). */
  constructor(expectedRows = 1024) {
    this.exports = new wasm.Instance(scannerModule(), {}).exports as ScannerExports;
    const pow10 = new Float64Array(this.exports.memory.buffer, POW10_AT, 23);
    for (let k = 0; k <= 22; k++) pow10[k] = Number(`1e${k}`);
    this.input = this.ensureRows(Math.max(16, expectedRows));
  }

  /** Makes room for `rows` rows; returns the (new) input view. */
  private ensureRows(rows: number): Uint8Array {
    if (rows > this.capacity) {
      const old = this.capacity;
      const cap = Math.max(rows, 2 * old);
      const memory = this.exports.memory;
      const need = COLUMNS_AT + cap * ROW_BYTES - memory.buffer.byteLength;
      if (need > 0) memory.grow(Math.ceil(need / 65536));
      // Move the columns after the box to their new places, the last first (each moves up).
      const bytes = new Uint8Array(memory.buffer);
      for (let k = 7; k >= 4; k--) bytes.copyWithin(COLUMNS_AT + k * 8 * cap, COLUMNS_AT + k * 8 * old, COLUMNS_AT + k * 8 * old + (k === 7 ? 1 : 8) * this.rows);
      this.capacity = cap;
      this.input = new Uint8Array(memory.buffer, INPUT_AT, WASM_INPUT_CAPACITY);
    }
    return this.input;
  }

  /**
   * Appends the objects of input[0, length) (a whole file) to the current image; files the kernel does not read go
   * to the reference parser, which throws its KittiFormatError naming `file` and the line.
   */
  scan(length: number, file: string, kind: 'label' | 'result'): void {
    if (!(length < WASM_INPUT_CAPACITY)) throw new RangeError(`${file}: ${length} bytes do not fit the scanner's input buffer`);
    // A row takes at least 30 bytes (15 fields and their separators).
    this.ensureRows(this.rows + Math.floor(length / 16) + 1);
    const rows = this.exports.scan(INPUT_AT, length, kind === 'result' ? 1 : 0, this.rows, this.capacity);
    if (rows >= 0) this.rows = rows;
    else this.addObjects(parseKittiObjects(new TextDecoder('utf-8').decode(this.input.subarray(0, length)), file, { kind }));
  }

  /** Appends objects (as the reference parser returns them) to the current image. */
  addObjects(objects: readonly KittiObject[]): void {
    this.ensureRows(this.rows + objects.length);
    const t = this.columns(this.capacity);
    for (const o of objects) {
      const r = this.rows++;
      t.type[r] = typeCode(o.type);
      t.box.set(o.bbox, 4 * r);
      t.truncated[r] = o.truncated;
      t.occluded[r] = o.occluded;
      t.score[r] = o.score ?? Number.NaN;
    }
  }

  endImage(): void {
    this.images.push(this.rows);
  }

  private columns(n: number): Omit<KittiBoxTable, 'nImages' | 'start'> {
    const buffer = this.exports.memory.buffer;
    const cap = this.capacity;
    return {
      box: new Float64Array(buffer, COLUMNS_AT, 4 * n),
      truncated: new Float64Array(buffer, COLUMNS_AT + 32 * cap, n),
      occluded: new Float64Array(buffer, COLUMNS_AT + 40 * cap, n),
      score: new Float64Array(buffer, COLUMNS_AT + 48 * cap, n),
      type: new Uint8Array(buffer, COLUMNS_AT + 56 * cap, n),
    };
  }

  /**
   * Where the columns are (byte addresses in `memory`) and the first byte after them, for a kernel that reads the
   * rows in place (EvalKernel.adoptTables); scan nothing more after that.
   */
  columnAddresses(): ScannedColumns {
    const cap = this.capacity;
    return {
      memory: this.exports.memory,
      box: COLUMNS_AT,
      truncated: COLUMNS_AT + 32 * cap,
      occluded: COLUMNS_AT + 40 * cap,
      score: COLUMNS_AT + 48 * cap,
      type: COLUMNS_AT + 56 * cap,
      end: COLUMNS_AT + ROW_BYTES * cap,
    };
  }

  /** The table; its arrays are views of this scanner's memory (scan nothing more). */
  finish(): KittiBoxTable {
    return { nImages: this.images.length - 1, start: Int32Array.from(this.images), ...this.columns(this.rows) };
  }
}
