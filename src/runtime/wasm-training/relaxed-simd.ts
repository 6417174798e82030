/**
 * Fused multiply-add for the generated kernels: WebAssembly's relaxed SIMD `f32x4.relaxed_madd`, which V8 compiles
 * to one FMA instruction on x64 CPUs that have it. A GEMM's inner loop is bound by the CPU's floating-point ports,
 * and one fused instruction replaces a multiply and an add there.
 *
 * Relaxed SIMD is on by default from V8 11.4 (Node 22); Node 20's V8 has it behind a flag, which is turned on here
 * before the first module that uses it is compiled (V8 reads the flag at compile time; it changes nothing else).
 * `DATA_PARAMS_WASM_FMA=off` keeps the separate multiply and add (each product then rounded before it is added, as
 * XNNPACK's kernels do).
 */
import * as v8 from 'node:v8';

/** The opcode of f32x4.relaxed_madd(a, b, c) = a * b + c (SIMD prefix, LEB128 0x105). */
export const F32X4_RELAXED_MADD = [0xfd, 0x85, 0x02];

/** (func (result v128) v128.const 0 x3 f32x4.relaxed_madd): validates where the engine has relaxed SIMD. */
function probe(): Uint8Array {
  const zero = [0xfd, 0x0c, ...new Array<number>(16).fill(0)];
  const body = [0x00, ...zero, ...zero, ...zero, ...F32X4_RELAXED_MADD, 0x0b];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type: () -> v128
    0x03, 0x02, 0x01, 0x00,
    0x0a, body.length + 2, 0x01, body.length, ...body,
  ]);
}

interface WasmValidate {
  validate(bytes: Uint8Array): boolean;
}

let available: boolean | undefined;

/** Whether the engine compiles f32x4.relaxed_madd (enabling V8's flag once where needed). */
function relaxedSimdAvailable(): boolean {
  if (available !== undefined) return available;
  const wasm = (globalThis as unknown as { WebAssembly: WasmValidate }).WebAssembly;
  const bytes = probe();
  try {
    available = wasm.validate(bytes);
    if (!available) {
      v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
      available = wasm.validate(bytes);
    }
  } catch {
    available = false;
  }
  return available;
}

/** Whether generated kernels should use fused multiply-adds: the engine has them and DATA_PARAMS_WASM_FMA is not `off`. */
export function useFusedMultiplyAdd(): boolean {
  return process.env['DATA_PARAMS_WASM_FMA'] !== 'off' && relaxedSimdAvailable();
}
