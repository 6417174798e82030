/**
 * Worker threads that run functions of our own wasm modules (simd-kernels.ts, winograd.ts) on the threaded build's
 * shared heap, side by side with the main thread.
 *
 * Why: XNNPACK's thread pool runs only XNNPACK's operators; everything else (the Winograd transforms, our GEMMs,
 * copies) ran on the main thread while the other cores idled, so a second thread gained little. These workers share the heap with the backend (its WebAssembly.Memory is shared on the threaded
 * build), so a call needs no copies: each participant gets its own arguments (its part of the images, its GEMMs).
 *
 * Synchronisation is a shared control block (kernel-pool-protocol.ts) with Atomics.wait/notify; the main thread runs
 * the first call itself and then waits for the others. The workers are unref'd: a script still exits on its own.
 * Only where the heap is shared and the backend runs more than one thread (size = its thread count), and not with
 * DATA_PARAMS_WASM_POOL=off. Results never depend on the pool: callers split work into the same independent pieces
 * whether or not it runs in parallel.
 */
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { DONE, FAILED, MAX_ARGS, SEQ, SLOTS, SLOT_INTS, STARTED, controlInts, type ModuleMessage, type WorkerInit } from './kernel-pool-protocol.js';
import { backendMemory, heapBuffer, moduleRecord, scratch } from './simd-kernels.js';
import { wasmThreadsState } from './threads.js';
import type { BackendWasm } from './wasm-kernel-utils.js';

/** A worker that does not answer within this long is taken as lost (the call throws instead of hanging). */
const ANSWER_TIMEOUT_MS = 120_000;
/** Nor one that has not started within this long. */
const START_TIMEOUT_MS = 20_000;

export interface KernelPool {
  /** Participants: the main thread and the workers. */
  readonly size: number;
  /**
   * Runs `exports[name](...calls[i])` for every i, call 0 on the main thread and the others on workers, and returns
   * when all have finished; throws if any threw. `exports` must come from instantiateOnBackendMemory.
   */
  run(exports: object, name: string, calls: number[][]): void;
}

interface PoolWorker {
  port: MessagePort;
  sent: Set<number>;
}

const pools = new WeakMap<object, KernelPool | null>();
let enabled = true;

/** For tests and timings: turns the pool off (calls run on the main thread) or back on. Returns the previous setting. */
export function setKernelPoolEnabled(on: boolean): boolean {
  const old = enabled;
  enabled = on;
  return old;
}

/** The pool for the backend's heap, or null where calls run on the main thread only (see the file comment). */
export function kernelPool(backend: BackendWasm): KernelPool | null {
  if (!enabled) return null;
  const memory = backendMemory(backend);
  if (memory === null) return null;
  const cached = pools.get(memory);
  if (cached !== undefined) return cached;
  const threads = wasmThreadsState().threads;
  const off = (process.env['DATA_PARAMS_WASM_POOL'] ?? '').toLowerCase() === 'off';
  const pool = !off && threads > 1 && memory.buffer instanceof SharedArrayBuffer ? startPool(memory, threads) : null;
  pools.set(memory, pool);
  return pool;
}

function startPool(memory: object, size: number): KernelPool {
  const control = new SharedArrayBuffer(controlInts(size - 1) * 4);
  const ctrl = new Int32Array(control);
  const workers: PoolWorker[] = [];
  let lost: string | null = null;
  for (let index = 1; index < size; index++) {
    const { port1, port2 } = new MessageChannel();
    const init: WorkerInit = { memory, control, port: port2, index };
    // execArgv [] : a worker inherits the process's by default, and `node -e SCRIPT` would run SCRIPT in it.
    const worker = new Worker(new URL('./kernel-pool-worker.js', import.meta.url), { workerData: init, transferList: [port2], execArgv: [] });
    worker.on('error', (err) => {
      lost ??= `worker ${index} failed: ${err.message}`;
    });
    worker.unref();
    port1.unref();
    workers.push({ port: port1, sent: new Set() });
  }
  let seq = 0;

  const created = performance.now();
  const waitForWorkers = (expected: number): void => {
    const deadline = performance.now() + ANSWER_TIMEOUT_MS;
    for (let spins = 0; ; spins++) {
      const done = Atomics.load(ctrl, DONE);
      if (done >= expected) return;
      if (spins < 4000) continue; // most parts end within microseconds of each other
      if (lost !== null) throw new Error(`wasm kernel pool: ${lost}`);
      const now = performance.now();
      if (Atomics.load(ctrl, STARTED) < size - 1 && now - created > START_TIMEOUT_MS) {
        lost = `a worker did not start within ${START_TIMEOUT_MS / 1000} s`;
        throw new Error(`wasm kernel pool: ${lost}`);
      }
      if (now > deadline) {
        lost = `a worker did not answer within ${ANSWER_TIMEOUT_MS / 1000} s`;
        throw new Error(`wasm kernel pool: ${lost}`);
      }
      Atomics.wait(ctrl, DONE, done, 100);
    }
  };

  return {
    size,
    run(exports, name, calls) {
      const module = moduleRecord(exports);
      if (module === undefined) throw new Error('wasm kernel pool: the module was not made by instantiateOnBackendMemory');
      const fn = (exports as Record<string, (...args: number[]) => unknown>)[name];
      const index = module.names.indexOf(name);
      if (fn === undefined || index < 0) throw new Error(`wasm kernel pool: no function '${name}' in the module`);
      if (calls.length > size) throw new Error(`wasm kernel pool: ${calls.length} calls for ${size} participants`);
      if (lost !== null) throw new Error(`wasm kernel pool: ${lost}`);
      seq = (seq + 1) | 0 || 1;
      for (let w = 1; w < calls.length; w++) {
        const args = calls[w]!;
        if (args.length > MAX_ARGS) throw new Error(`wasm kernel pool: ${args.length} arguments (at most ${MAX_ARGS})`);
        const worker = workers[w - 1]!;
        if (!worker.sent.has(module.id)) {
          const message: ModuleMessage = { id: module.id, module: module.module };
          worker.port.postMessage(message);
          worker.sent.add(module.id);
        }
        const slot = SLOTS + w * SLOT_INTS;
        ctrl[slot + 1] = module.id;
        ctrl[slot + 2] = index;
        ctrl[slot + 3] = args.length;
        ctrl.set(args, slot + 4);
        Atomics.store(ctrl, slot, seq);
      }
      Atomics.store(ctrl, DONE, 0);
      Atomics.store(ctrl, SEQ, seq);
      if (calls.length > 1) Atomics.notify(ctrl, SEQ);
      let mainError: unknown = null;
      try {
        if (calls.length > 0) fn(...calls[0]!);
      } catch (err) {
        mainError = err;
      }
      waitForWorkers(calls.length - 1);
      if (Atomics.load(ctrl, FAILED) !== 0) {
        Atomics.store(ctrl, FAILED, 0);
        const messages = workers.map((w): unknown => receiveMessageOnPort(w.port)?.message).filter((m) => m !== undefined).map(String);
        throw new Error(`wasm kernel pool: '${name}' failed on a worker: ${messages.join('; ')}`);
      }
      if (mainError !== null) throw mainError instanceof Error ? mainError : new Error('wasm kernel pool: a kernel threw a non-Error value', { cause: mainError });
    },
  };
}

/**
 * Runs `calls` on the backend's pool, or one after another on this thread where there is none. Same results either
 * way: each call is an independent piece of the work.
 */
export function runParts(backend: BackendWasm, exports: object, name: string, calls: number[][]): void {
  const pool = kernelPool(backend);
  if (pool !== null && calls.length > 1) {
    for (let i = 0; i < calls.length; i += pool.size) pool.run(exports, name, calls.slice(i, i + pool.size));
    return;
  }
  const fn = (exports as Record<string, (...args: number[]) => unknown>)[name];
  if (fn === undefined) throw new Error(`wasm kernel pool: no function '${name}' in the module`);
  for (const args of calls) fn(...args);
}

/** How many parts to split work into: the pool's size, or 1 without a pool. */
export function poolParts(backend: BackendWasm): number {
  return kernelPool(backend)?.size ?? 1;
}

/** [0, count) as `parts` consecutive ranges [first, length] whose lengths differ by at most one. */
export function evenRanges(count: number, parts: number): [number, number][] {
  return Array.from({ length: parts }, (_, p) => {
    const first = Math.floor((p * count) / parts);
    return [first, Math.floor(((p + 1) * count) / parts) - first];
  });
}

/**
 * Runs `argsFor(first, length)` for one range of [0, count) items per pool participant (at most one per item; one
 * range without a pool): the items must be independent, so that the results do not depend on the split.
 */
export function runRanges(backend: BackendWasm, exports: object, name: string, count: number, argsFor: (first: number, length: number) => number[]): void {
  const parts = Math.max(1, Math.min(poolParts(backend), count));
  runParts(backend, exports, name, evenRanges(count, parts).map(([first, length]) => argsFor(first, length)));
}

/** Below this many bytes of rows a split costs more (the hand-off to the workers) than it saves. */
const MIN_SPLIT_BYTES = 1 << 18;

/**
 * Runs a row-loop function of `exports` (a module from instantiateOnBackendMemory) with `args`, its rows split into
 * one range per kernel pool participant. `rowsArg` is the index of the row-count argument; `moving` lists the pointer
 * arguments that advance with the rows, as [argument index, bytes per row]. Rows must be independent (each written
 * from its own inputs only), so the results never depend on the split.
 */
export function runRows(backend: BackendWasm, exports: object, name: string, args: number[], rowsArg: number, moving: [number, number][]): void {
  const rows = args[rowsArg]!;
  const rowBytes = moving.reduce((sum, [, bytes]) => sum + bytes, 0);
  if (rows * rowBytes < MIN_SPLIT_BYTES) {
    runParts(backend, exports, name, [args]);
    return;
  }
  runRanges(backend, exports, name, rows, (first, length) => {
    const part = [...args];
    part[rowsArg] = length;
    for (const [index, bytes] of moving) part[index] = args[index]! + first * bytes;
    return part;
  });
}

/** Row blocks of a large column reduction: fixed, so that the sums do not depend on the thread count. */
export const SUM_BLOCKS = 8;
/** From this many bytes of input a column reduction is split into SUM_BLOCKS blocks. */
const MIN_BLOCKED_SUM_BYTES = 1 << 20;

/**
 * Runs a float64 column-sum function over `rows` rows, each call accumulating into its own zeroed accumulators: one
 * call for small inputs, else SUM_BLOCKS calls over consecutive row blocks, shared out between the kernel pool's
 * threads, whose sums are then added in block order. `argsFor(firstRow, rowCount, accumulators)` gives a call's
 * arguments; `accumulators` lists each call's accumulator arrays (`width` float64 each). Returns the sums per
 * accumulator array. The result depends on the input size only, never on the threads.
 */
export function blockedColumnSums(
  backend: BackendWasm,
  exports: object,
  name: string,
  rows: number,
  rowBytes: number,
  arrays: number,
  width: number,
  argsFor: (firstRow: number, rowCount: number, accumulators: number[]) => number[],
): Float64Array[] {
  const blocks = rows * rowBytes >= MIN_BLOCKED_SUM_BYTES ? Math.min(SUM_BLOCKS, rows) : 1;
  // Each block's accumulators on cache lines of their own: the columnSums loops store to them at every row, and two
  // threads storing to one line slow each other down (false sharing).
  const blockBytes = Math.ceil((arrays * width * 8) / 64) * 64;
  const area = scratch(backend, blocks * blockBytes + 64);
  const base = Math.ceil(area.offset / 64) * 64;
  new Uint8Array(heapBuffer(backend), base, blocks * blockBytes).fill(0);
  const accumulatorsOf = (b: number): number[] => Array.from({ length: arrays }, (_, a) => base + b * blockBytes + a * width * 8);
  runParts(backend, exports, name, evenRanges(rows, blocks).map(([first, length], b) => argsFor(first, length, accumulatorsOf(b))));
  const all = new Float64Array(heapBuffer(backend), base, (blocks * blockBytes) / 8);
  const sums = Array.from({ length: arrays }, () => new Float64Array(width));
  for (let b = 0; b < blocks; b++) {
    for (let a = 0; a < arrays; a++) {
      const at = (b * blockBytes) / 8 + a * width;
      const s = sums[a]!;
      for (let j = 0; j < width; j++) s[j]! += all[at + j]!;
    }
  }
  backend.disposeData(area.info.dataId);
  return sums;
}
