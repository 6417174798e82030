/**
 * A kernel pool worker (see kernel-pool.ts): instantiates the pool's wasm modules on the backend's shared memory and
 * runs the calls the main thread puts in its slot, forever; the pool unrefs it, so it never holds the process.
 */
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { DONE, FAILED, SEQ, SLOTS, SLOT_INTS, STARTED, type ModuleMessage, type WorkerInit } from './kernel-pool-protocol.js';

interface WasmApi {
  Instance: new (module: unknown, imports: object) => { exports: Record<string, unknown> };
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

type Call = (...args: number[]) => unknown;

const init = workerData as WorkerInit;
const port = init.port as MessagePort;
const ctrl = new Int32Array(init.control);
const slot = SLOTS + init.index * SLOT_INTS;
const modules = new Map<number, Call[]>();

/** The functions of module `id`, in export order; its bytes were posted before the first job that uses it. */
function functionsOf(id: number): Call[] {
  for (;;) {
    const known = modules.get(id);
    if (known !== undefined) return known;
    const received = receiveMessageOnPort(port);
    if (received === undefined) throw new Error(`kernel pool worker ${init.index}: module ${id} was never sent`);
    const message = received.message as ModuleMessage;
    const instance = new wasmApi.Instance(message.module, { env: { memory: init.memory } });
    modules.set(message.id, Object.values(instance.exports).filter((e): e is Call => typeof e === 'function'));
  }
}

Atomics.add(ctrl, STARTED, 1);
/** Checks of SEQ before sleeping: jobs often come back to back, and waking from Atomics.wait takes longer. */
const SPINS = 20_000;

/** The next job's sequence number: SEQ once it differs from `seen`, the last one this worker took. */
function nextJob(seen: number): number {
  let seq = Atomics.load(ctrl, SEQ);
  for (let i = 0; i < SPINS && seq === seen; i++) seq = Atomics.load(ctrl, SEQ);
  // A wake-up is not a job: the main thread notifies after publishing SEQ, and if it is descheduled in between, its
  // notify can reach this worker after it has run that job and gone back to sleep. Taken as a new job, the part would
  // run again, racing the main thread's next kernels, and its extra DONE would release a later job early.
  while (seq === seen) {
    Atomics.wait(ctrl, SEQ, seen);
    seq = Atomics.load(ctrl, SEQ);
  }
  return seq;
}

let seen = 0;
for (;;) {
  seen = nextJob(seen);
  if (Atomics.load(ctrl, slot) !== seen) continue; // nothing for this worker in this job
  try {
    const fn = functionsOf(ctrl[slot + 1]!)[ctrl[slot + 2]!];
    if (fn === undefined) throw new Error(`no function ${ctrl[slot + 2]} in module ${ctrl[slot + 1]}`);
    const args = Array.from(ctrl.subarray(slot + 4, slot + 4 + ctrl[slot + 3]!));
    fn(...args);
  } catch (err) {
    Atomics.store(ctrl, FAILED, 1);
    port.postMessage(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
  }
  Atomics.add(ctrl, DONE, 1);
  Atomics.notify(ctrl, DONE);
}
