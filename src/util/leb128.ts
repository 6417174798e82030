/**
 * LEB128, the variable-length integers of the WebAssembly binary format, for the modules this project assembles
 * itself (src/runtime/wasm-training/simd-kernels.ts' encoder and detection/kitti-eval/wasm-emit.ts).
 */

/** Unsigned LEB128 of a non-negative integer below 2^32 (indices, sizes, alignments, memory offsets). */
export function uleb128(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 of an integer (i32.const and i64.const immediates). */
export function sleb128(n: bigint): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = Number(n & 0x7fn);
    n >>= 7n;
    if ((n === 0n && (byte & 0x40) === 0) || (n === -1n && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}
