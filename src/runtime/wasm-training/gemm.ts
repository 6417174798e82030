/**
 * A float32 GEMM in WebAssembly SIMD for the filter gradients' products: C[m, n] (+)= A[m, k] · B[k, n], all
 * row-major with fixed row strides, n a multiple of 4.
 *
 * Why not XNNPACK's (the built-in BatchMatMul): its fully-connected operator packs the right operand with scalar code
 * on one thread before every product. A filter gradient's operands are both long in k (the reduction runs over
 * positions or tiles), so packing B [k, n] costs 1/m of the product, which with m = 27..64 is as much as the product
 * or more (figures in docs/wasm-training.md). Here B is read in place; several products run side by side on the kernel pool
 * (kernel-pool.ts) instead of on XNNPACK's.
 *
 * Micro-kernel: 4 rows x 8 columns of C in 8 v128 accumulators; per step of k, two loads of B's row, and for each of the
 * 4 rows one broadcast load of A and two multiply-adds. Modules are specialised per (lda, ldb, ldc, n): the row
 * strides become immediate offsets. Each element of C is one sum in k order, whatever the split between threads.
 */
import {
  BLOCK, CALL, END, F32X4_ADD, F32X4_MUL, I32, I32_ADD, I32_AND, I32_EQZ, I32_LOAD, I32_LT_U, I32_MUL, I32_SHR_U, I32_SUB,
  I32X4_SPLAT, IF, LOAD32_SPLAT, LOOP, V128, brIf, get, i32c, load, set, shapeModule, store, tee, type Func,
} from './simd-kernels.js';
import { F32X4_RELAXED_MADD, useFusedMultiplyAdd } from './relaxed-simd.js';
import type { BackendWasm } from './wasm-kernel-utils.js';

/** Row strides (in elements) and the column count a GEMM module is specialised for. */
export interface GemmShape {
  lda: number;
  ldb: number;
  ldc: number;
  n: number;
  /** Column blocks outermost (each 8-column panel of B reused from L1 by all rows) instead of row blocks. */
  columnMajor?: boolean;
  /** Elements from one k to the next in A (default 1). With lda = 1 and aStep = m, A is the transpose of a row-major [k, m]. */
  aStep?: number;
}

/** A GemmShape and whether its multiply-adds are fused (relaxed-simd.ts). */
interface GemmCode extends GemmShape {
  fma: boolean;
}

/**
 * gemm(a, b, c, m, k, accumulate): C (+)= A · B for m >= 0 rows and k >= 1 steps (pointers are byte offsets): blocks
 * of 4 rows, then the m % 4 rows left one at a time.
 * gemms(list, count, m, aOffset, cOffset, accumulate): gemm for each of `count` entries (a, b, c, k) of four i32 at
 * `list`, with aOffset / cOffset bytes added to a / c (a part's first row).
 * gemmsRows(list, count, k, accumulate): gemm for each of `count` entries (a, b, c, m), all with the same k.
 */
function gemmFuncs(shape: GemmCode): Func[] {
  const { lda, ldb, ldc, n } = shape;
  const aStep4 = (shape.aStep ?? 1) * 4;
  const [a, b, c, m, k, accumulate] = [0, 1, 2, 3, 4, 5];
  const [rows, aRow, cRow, col, pa, pb, kEnd] = [6, 7, 8, 9, 10, 11, 12];
  const acc0 = 13; // 8 v128 accumulators: row r, half h at acc0 + 2r + h
  const [b0, b1, av] = [21, 22, 23];
  const lda4 = lda * 4;
  const ldb4 = ldb * 4;
  const ldc4 = ldc * 4;

  /** C's rows [aRow / cRow, + height) x columns [col, + width) of a block; width 8 or 4, height 4 or 1. */
  const block = (width: 8 | 4, height: 4 | 1): number[] => {
    const halves = width / 4;
    const code: number[] = [];
    for (let r = 0; r < height; r++) for (let h = 0; h < halves; h++) code.push(...i32c(0), ...I32X4_SPLAT, ...set(acc0 + 2 * r + h));
    code.push(
      ...get(aRow), ...set(pa),
      ...get(b), ...get(col), ...I32_ADD, ...set(pb),
      ...get(aRow), ...get(k), ...i32c(aStep4), ...I32_MUL, ...I32_ADD, ...set(kEnd), // aRow + k * aStep * 4
      ...LOOP,
      ...get(pb), ...load(0), ...set(b0),
    );
    if (halves === 2) code.push(...get(pb), ...load(16), ...set(b1));
    for (let r = 0; r < height; r++) {
      code.push(...get(pa), ...LOAD32_SPLAT(r * lda4), ...set(av));
      for (let h = 0; h < halves; h++) {
        const accIndex = acc0 + 2 * r + h;
        const bv = h === 0 ? b0 : b1;
        if (shape.fma) code.push(...get(av), ...get(bv), ...get(accIndex), ...F32X4_RELAXED_MADD, ...set(accIndex));
        else code.push(...get(accIndex), ...get(av), ...get(bv), ...F32X4_MUL, ...F32X4_ADD, ...set(accIndex));
      }
    }
    code.push(
      ...get(pb), ...i32c(ldb4), ...I32_ADD, ...set(pb),
      ...get(pa), ...i32c(aStep4), ...I32_ADD, ...tee(pa),
      ...get(kEnd), ...I32_LT_U, ...brIf(0),
      ...END,
    );
    // Store (adding what C holds when accumulating).
    for (let r = 0; r < height; r++) {
      for (let h = 0; h < halves; h++) {
        const offset = r * ldc4 + h * 16;
        const accIndex = acc0 + 2 * r + h;
        code.push(
          ...get(accumulate), ...IF,
          ...get(accIndex), ...get(cRow), ...get(col), ...I32_ADD, ...load(offset), ...F32X4_ADD, ...set(accIndex),
          ...END,
          ...get(cRow), ...get(col), ...I32_ADD, ...get(accIndex), ...store(offset),
        );
      }
    }
    return code;
  };

  /** All column blocks of `height` rows from aRow / cRow, then both move down by `height` rows. */
  const whole = n - (n % 8);
  const rowBlock = (height: 4 | 1): number[] => [
    ...(whole > 0
      ? [
          ...i32c(0), ...set(col),
          ...LOOP,
          ...block(8, height),
          ...get(col), ...i32c(32), ...I32_ADD, ...tee(col),
          ...i32c(whole * 4), ...I32_LT_U, ...brIf(0),
          ...END,
        ]
      : []),
    ...(n % 8 === 4 ? [...i32c(whole * 4), ...set(col), ...block(4, height)] : []),
    ...get(aRow), ...i32c(height * lda4), ...I32_ADD, ...set(aRow),
    ...get(cRow), ...i32c(height * ldc4), ...I32_ADD, ...set(cRow),
  ];
  /** `for (rows = count; rows > 0; rows--) body` */
  const repeat = (count: number[], body: number[]): number[] => [
    ...BLOCK,
    ...count, ...tee(rows), ...I32_EQZ, ...brIf(0),
    ...LOOP,
    ...body,
    ...get(rows), ...i32c(1), ...I32_SUB, ...tee(rows), ...brIf(0),
    ...END,
    ...END,
  ];
  /** Every row of the column block at `col` (width 8 or 4): 4 rows at a time, then the rest one by one. */
  const columnPanel = (width: 8 | 4): number[] => [
    ...get(a), ...set(aRow),
    ...get(c), ...set(cRow),
    ...repeat([...get(m), ...i32c(2), ...I32_SHR_U], [
      ...block(width, 4),
      ...get(aRow), ...i32c(4 * lda4), ...I32_ADD, ...set(aRow),
      ...get(cRow), ...i32c(4 * ldc4), ...I32_ADD, ...set(cRow),
    ]),
    ...repeat([...get(m), ...i32c(3), ...I32_AND], [
      ...block(width, 1),
      ...get(aRow), ...i32c(lda4), ...I32_ADD, ...set(aRow),
      ...get(cRow), ...i32c(ldc4), ...I32_ADD, ...set(cRow),
    ]),
  ];
  const body = shape.columnMajor
    ? [
        ...(whole > 0
          ? [
              ...i32c(0), ...set(col),
              ...LOOP,
              ...columnPanel(8),
              ...get(col), ...i32c(32), ...I32_ADD, ...tee(col),
              ...i32c(whole * 4), ...I32_LT_U, ...brIf(0),
              ...END,
            ]
          : []),
        ...(n % 8 === 4 ? [...i32c(whole * 4), ...set(col), ...columnPanel(4)] : []),
      ]
    : [
        ...get(a), ...set(aRow),
        ...get(c), ...set(cRow),
        ...repeat([...get(m), ...i32c(2), ...I32_SHR_U], rowBlock(4)),
        ...repeat([...get(m), ...i32c(3), ...I32_AND], rowBlock(1)),
      ];
  const gemm: Func = { name: 'gemm', params: 6, locals: [[7, I32], [11, V128]], body };

  const [list, count, gm, aOffset, cOffset, gacc] = [0, 1, 2, 3, 4, 5];
  const gemmsBody = [
    ...BLOCK,
    ...get(count), ...I32_EQZ, ...brIf(0),
    ...LOOP,
    ...get(list), ...I32_LOAD(0), ...get(aOffset), ...I32_ADD,
    ...get(list), ...I32_LOAD(4),
    ...get(list), ...I32_LOAD(8), ...get(cOffset), ...I32_ADD,
    ...get(gm), ...get(list), ...I32_LOAD(12), ...get(gacc), ...CALL(0),
    ...get(list), ...i32c(16), ...I32_ADD, ...set(list),
    ...get(count), ...i32c(1), ...I32_SUB, ...tee(count), ...brIf(0),
    ...END,
    ...END,
  ];
  const gemms: Func = { name: 'gemms', params: 6, locals: [], body: gemmsBody };

  // gemmsRows(list, count, k, accumulate): entries (a, b, c, m), one k for all (the taps of a convolution).
  const [rowList, rowCount, rowK, rowAcc] = [0, 1, 2, 3];
  const gemmsRowsBody = [
    ...BLOCK,
    ...get(rowCount), ...I32_EQZ, ...brIf(0),
    ...LOOP,
    ...get(rowList), ...I32_LOAD(0),
    ...get(rowList), ...I32_LOAD(4),
    ...get(rowList), ...I32_LOAD(8),
    ...get(rowList), ...I32_LOAD(12), ...get(rowK), ...get(rowAcc), ...CALL(0),
    ...get(rowList), ...i32c(16), ...I32_ADD, ...set(rowList),
    ...get(rowCount), ...i32c(1), ...I32_SUB, ...tee(rowCount), ...brIf(0),
    ...END,
    ...END,
  ];
  const gemmsRows: Func = { name: 'gemmsRows', params: 4, locals: [], body: gemmsRowsBody };
  return [gemm, gemms, gemmsRows];
}

export interface GemmKernels {
  gemm(a: number, b: number, c: number, m: number, k: number, accumulate: number): void;
  gemms(list: number, count: number, m: number, aOffset: number, cOffset: number, accumulate: number): void;
  gemmsRows(list: number, count: number, k: number, accumulate: number): void;
}

/** Entries of a gemms list: [a, b, c, k] per product (byte pointers and the product's k). */
export const GEMM_ENTRY_INTS = 4;

/** The GEMM module for `shape` (cached), or null where it cannot run (no wasm SIMD, n not a multiple of 4). */
export function gemmKernels(backend: BackendWasm, shape: GemmShape): GemmKernels | null {
  if (shape.n % 4 !== 0 || shape.n <= 0) return null;
  const fma = useFusedMultiplyAdd();
  const key = `gemm ${shape.lda} ${shape.ldb} ${shape.ldc} ${shape.n} ${shape.columnMajor === true} ${shape.aStep ?? 1} ${fma}`;
  return shapeModule<GemmKernels>(backend, key, () => gemmFuncs({ ...shape, fma }));
}
