/**
 * The shared control block between the kernel pool (kernel-pool.ts) and its workers (kernel-pool-worker.ts): an
 * Int32Array on a SharedArrayBuffer. No imports: the worker loads this and nothing heavy.
 *
 * A job: the main thread writes each busy worker's slot (module, function, arguments), then the slot's sequence
 * number, then sets DONE to 0 and bumps SEQ and wakes the workers. A worker whose slot carries the new sequence number
 * runs it and adds 1 to DONE; the others wait again. A worker acts only on SEQ changing, never on a wake-up alone: a
 * notify can arrive late, after the job it announced has run. A slot's sequence number is written after its arguments, so a
 * worker that sees it sees them too (Atomics are sequentially consistent).
 */
export const SEQ = 0;
export const DONE = 1;
/** Set by a worker whose call threw; its message follows on the worker's port. */
export const FAILED = 2;
/** Workers that have started their loop. */
export const STARTED = 3;
export const SLOTS = 4;
export const MAX_ARGS = 12;
/** [sequence, module id, function index, argument count, ...arguments] */
export const SLOT_INTS = 4 + MAX_ARGS;

export function controlInts(workers: number): number {
  return SLOTS + (workers + 1) * SLOT_INTS;
}

/** The message on a worker's port before the first job that runs a module: the compiled WebAssembly.Module. */
export interface ModuleMessage {
  id: number;
  module: unknown;
}

/** What a worker starts with. */
export interface WorkerInit {
  memory: unknown; // the backend's shared WebAssembly.Memory
  control: SharedArrayBuffer;
  port: unknown; // a MessagePort
  index: number; // 1.. (0 is the main thread)
}
