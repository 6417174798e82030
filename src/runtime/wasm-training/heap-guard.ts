/**
 * A clear error when the wasm heap has no room for a tensor. The backend gives every tensor (and every kernel's
 * scratch tensor) memory from the module's malloc, which returns 0 once the heap (at most 4 GiB in wasm32) cannot
 * grow or has no free block large enough; tfjs-backend-wasm 4.22 does not check, so the tensor lands at address 0,
 * its data overwrites what lies there, and a later operation can trap with "memory access out of bounds", far from
 * the cause. The guard checks malloc's result and throws a WasmHeapExhaustedError that names the size, the kernel
 * that asked and the heap's state. The wasm state stays sound: nothing was written.
 */
import * as tf from '@tensorflow/tfjs';
import * as tfwasm from '@tensorflow/tfjs-backend-wasm';

const MB = 2 ** 20;
const mb = (bytes: number): string => `${(bytes / MB).toFixed(bytes < 10 * MB ? 1 : 0)} MB`;

/** The kernel running when a tensor could not be allocated: its name and its inputs' shapes. */
export interface KernelCall {
  name: string;
  inputs: string;
}

export class WasmHeapExhaustedError extends Error {
  constructor(
    readonly bytes: number,
    /** Innermost first: a kernel run by another kernel (e.g. the Conv2D inside Conv2DBackpropInput) comes first. */
    readonly kernels: KernelCall[],
    readonly heapBytes: number,
    /** Bytes the backend holds for tensors and kernels' buffers (what it allocated and has not freed). */
    readonly liveBytes: number,
  ) {
    const where = kernels.length === 0 ? 'a tensor outside any kernel' : kernels.map((k) => `${k.name} (${k.inputs})`).join(' inside ');
    super(
      `wasm heap exhausted: needed ${bytes} bytes (${mb(bytes)}) for ${where}; the heap has grown to ${mb(heapBytes)} ` +
        `of its 4096 MB limit, ${mb(liveBytes)} of it held by tensors and kernels' buffers (the rest: XNNPACK's ` +
        `buffers and free blocks too small for this one). Use a smaller input or batch.`,
    );
    this.name = 'WasmHeapExhaustedError';
  }
}

interface WasmModule {
  _malloc(bytes: number): number;
  _free(pointer: number): void;
  HEAPU8: Uint8Array;
}

/** The kernels running now, outermost first (their inputs are formatted only for an error). */
const calls: { name: string; inputs: tf.NamedTensorInfoMap }[] = [];
const guarded = new WeakSet<object>();

function shapes(inputs: tf.NamedTensorInfoMap): string {
  return Object.entries(inputs)
    .map(([name, t]) => `${name} ${t === undefined ? '?' : t.shape.join('x')}`)
    .join(', ');
}

/** The heap's limit (emscripten's getHeapMax: 4 GiB - 64 KiB) less 64 MiB. */
const LARGEST_REQUEST = 4294901760 - 64 * MB;

/** Per module: the size of every block allocated through the guard and not yet freed, and their sum. */
const live = new WeakMap<object, { sizes: Map<number, number>; bytes: number }>();

function exhausted(wasm: WasmModule, bytes: number): WasmHeapExhaustedError {
  const kernels = calls.map(({ name, inputs }) => ({ name, inputs: shapes(inputs) })).reverse();
  return new WasmHeapExhaustedError(bytes, kernels, wasm.HEAPU8.buffer.byteLength, live.get(wasm)?.bytes ?? 0);
}

/**
 * Makes `wasm._malloc` throw a WasmHeapExhaustedError instead of returning 0, and counts the bytes allocated and not
 * yet freed through it (once per module).
 */
function guardMalloc(wasm: WasmModule): void {
  if (guarded.has(wasm)) return;
  guarded.add(wasm);
  // Emscripten's export stubs replace themselves by the raw exports on their first call: call them once, then wrap.
  wasm._free(wasm._malloc(16));
  const [malloc, free] = [wasm._malloc.bind(wasm), wasm._free.bind(wasm)];
  const held = { sizes: new Map<number, number>(), bytes: 0 };
  live.set(wasm, held);
  wasm._malloc = (bytes: number): number => {
    // A request within a few MB of 4 GiB can never be placed, and the module's allocator, asked for one (4 GiB - 128
    // KiB on a heap of 256 MB), broke its own state instead of returning 0: the next small allocation trapped.
    if (bytes >>> 0 > LARGEST_REQUEST) throw exhausted(wasm, bytes >>> 0);
    const pointer = malloc(bytes);
    if (pointer === 0 && bytes !== 0) throw exhausted(wasm, bytes >>> 0);
    held.sizes.set(pointer >>> 0, bytes >>> 0); // unsigned, as the backend passes it to free
    held.bytes += bytes >>> 0;
    return pointer;
  };
  wasm._free = (pointer: number): void => {
    const bytes = held.sizes.get(pointer >>> 0);
    if (bytes !== undefined) {
      held.sizes.delete(pointer >>> 0);
      held.bytes -= bytes;
    }
    free(pointer);
  };
}

let installed = false;

/**
 * Installs the guard (idempotent): on every wasm backend's allocations, and on the kernels registered for wasm now (so
 * that the error can name the kernel). Call after the kernels are registered.
 */
export function installHeapGuard(): void {
  const proto = tfwasm.BackendWasm.prototype as unknown as { move: (this: { wasm: WasmModule }, ...args: unknown[]) => void };
  if (!installed) {
    installed = true;
    const move = proto.move;
    proto.move = function (this: { wasm: WasmModule }, ...args: unknown[]): void {
      guardMalloc(this.wasm);
      const [, , shape, dtype] = args as [unknown, unknown, number[], tf.DataType];
      // malloc takes an i32: 4 GiB or more would wrap around to a small block.
      if (dtype !== 'string' && tf.util.sizeFromShape(shape) * tf.util.bytesPerElement(dtype) >= 2 ** 32) {
        throw exhausted(this.wasm, tf.util.sizeFromShape(shape) * tf.util.bytesPerElement(dtype));
      }
      move.apply(this, args);
    };
  }
  for (const config of tf.getKernelsForBackend('wasm')) {
    const kernelFunc = config.kernelFunc as unknown as { heapGuarded?: true } & ((args: { inputs: tf.NamedTensorInfoMap }) => unknown);
    if (kernelFunc.heapGuarded === true) continue;
    const wrapped = Object.assign(
      (args: { inputs: tf.NamedTensorInfoMap }): unknown => {
        calls.push({ name: config.kernelName, inputs: args.inputs });
        try {
          return kernelFunc(args);
        } finally {
          calls.pop();
        }
      },
      { heapGuarded: true as const },
    );
    tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel({ ...config, kernelFunc: wrapped as unknown as tf.KernelFunc });
  }
}
