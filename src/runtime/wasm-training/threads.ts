/**
 * Multi-threaded wasm (XNNPACK's thread pool on the threaded-SIMD binary) in Node.
 *
 * tfjs-backend-wasm 4.22 turns threads off under Node: its thread workers would be created from `blob:` URLs, which
 * worker_threads rejects. We build the threaded module ourselves instead: the worker script is written to a temp
 * file, the module's main script is given by path, and the C++ side (which caps its pool at half the logical cores)
 * is shown enough cores while the pool starts. The pool's workers are then unref'd so that they never keep the
 * process alive: a script that trains on wasm still exits on its own. Anything unexpected (another tfjs version, a
 * failed start) falls back to the stock single-threaded factory.
 *
 * Failures. A trap inside the threaded module (out-of-bounds access, abort) unwinds the calling thread without
 * releasing what it held: the pool's execution mutex when it was inside a parallel region, so the next pool call
 * waited forever on a mutex its own thread held (reproduced: the op after a trap spun until killed), and a crashed
 * worker's error event later killed the process (exit code 7). So every export the backend calls is guarded: the
 * first trap marks the module broken and throws a WasmThreadsError, and every later call throws it at once; a
 * crashed worker's error is kept as the reason instead of being rethrown.
 *
 * Default: one thread per available core (at most MAX_THREADS), unless all cores are busy at start-up (see
 * wasmThreadsChoice); `DATA_PARAMS_WASM_THREADS=1` selects the stock single-threaded SIMD build and `=N` asks for N.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as tfwasm from '@tensorflow/tfjs-backend-wasm';

const require = createRequire(import.meta.url);
// Typed as string: the installed package's version is only known at run time, whatever its declaration says.
const SUPPORTED_VERSION: string = '4.22.0';
const WASM_PRIORITY = 2;
/** The module preloads 8 pool workers; more threads would need workers started while the main thread blocks. */
const MAX_THREADS = 8;

/** What the wasm backend actually runs with, once it has started. */
export interface WasmThreadsState {
  requested: number;
  /** Threads in XNNPACK's pool (the main thread included); 1 when single-threaded. */
  threads: number;
  /** Why threads are off, when they are. */
  fallback: string | null;
}

let state: WasmThreadsState = { requested: 1, threads: 1, fallback: 'the wasm backend has not started' };

export function wasmThreadsState(): WasmThreadsState {
  return { ...state };
}

export interface WasmThreadsChoice {
  threads: number;
  /** Why this many: the variable, the cores, or why one thread. */
  why: string;
}

let defaultChoice: WasmThreadsChoice | null = null;

/**
 * Threads to start and why: `DATA_PARAMS_WASM_THREADS=N` (at most MAX_THREADS), else one per available core unless
 * the 1-minute load average already covers every core, where the pool's threads would keep waiting for each other
 * (a step measured slower with 2 threads than with 1 on a loaded 2-core machine; docs/wasm-training.md). The default is decided once per process.
 */
export function wasmThreadsChoice(): WasmThreadsChoice {
  const env = process.env['DATA_PARAMS_WASM_THREADS'];
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1) throw new Error(`DATA_PARAMS_WASM_THREADS must be a positive integer, got '${env}'`);
    return { threads: Math.min(MAX_THREADS, n), why: `DATA_PARAMS_WASM_THREADS=${env}` };
  }
  defaultChoice ??= defaultThreads();
  return { ...defaultChoice };
}

function defaultThreads(): WasmThreadsChoice {
  const cores = os.availableParallelism();
  if (cores <= 1) return { threads: 1, why: 'one core available' };
  const load = os.loadavg()[0] ?? 0;
  if (load >= cores) {
    return { threads: 1, why: `load average ${load.toFixed(1)} >= ${cores} cores, threads would wait on each other (DATA_PARAMS_WASM_THREADS=N forces N)` };
  }
  return { threads: Math.min(MAX_THREADS, cores), why: `${cores} cores` };
}

/** Threads asked for (see wasmThreadsChoice). */
export function requestedWasmThreads(): number {
  return wasmThreadsChoice().threads;
}

/** Thrown by every call into the threaded module once something inside it has trapped. */
export class WasmThreadsError extends Error {
  constructor(reason: string, options?: { cause?: unknown }) {
    super(
      `the threaded wasm build failed (${reason}); its memory and thread pool are in an unknown state, so every ` +
        'later wasm operation in this process fails too (DATA_PARAMS_WASM_THREADS=1 selects the single-threaded build)',
      options,
    );
    this.name = 'WasmThreadsError';
  }
}

/** A short description of what the wasm backend runs, for the backend log line. */
export function describeWasmBuild(): string {
  if (state.fallback === null) return `threaded SIMD build, ${state.threads} threads`;
  return `single-threaded SIMD build: ${state.fallback}`;
}

interface PThreadWorker {
  unref(): void;
  onerror: (e: unknown) => void;
}

type WasmExport = (...args: unknown[]) => unknown;

interface ThreadedModule {
  cwrap(name: string, ret: string | null, args: string[]): (...a: number[]) => number;
  asm: Record<string, unknown>;
  PThread?: { runningWorkers: PThreadWorker[]; unusedWorkers: PThreadWorker[] };
  tfjs?: Record<string, unknown>;
  [key: string]: unknown;
}

/** tfjs's own exports besides the kernels (which start with a capital, `_FusedMatMul` with an underscore). */
const API_EXPORTS = new Set(['init', 'init_with_threads_count', 'get_threads_count', 'register_tensor', 'dispose_data', 'malloc', 'free']);

function describeThrown(err: unknown): string {
  // A crashed pool thread makes the waiting main thread throw emscripten's "unwind" string.
  if (err === 'unwind') return 'a thread of the pool crashed';
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/**
 * Routes tfjs's calls into the module through a guard: after the first exception from wasm every call throws the same
 * WasmThreadsError instead of entering a module whose locks may still be held. Pool workers that crash report here
 * instead of rethrowing on the main thread (which would kill the process with exit code 7 at its next turn).
 * Must run before tfjs `cwrap`s the exports (it captures `Module._name`).
 */
function guardModule(wasm: ThreadedModule, workers: PThreadWorker[]): void {
  let failure: WasmThreadsError | null = null;
  let workerError: string | null = null;
  const fail = (err: unknown): WasmThreadsError => {
    if (failure === null) {
      const reason = err === 'unwind' && workerError !== null ? `a thread of the pool crashed: ${workerError}` : describeThrown(err);
      failure = new WasmThreadsError(reason, { cause: err });
    }
    return failure;
  };
  for (const [name, raw] of Object.entries(wasm.asm)) {
    if (typeof raw !== 'function' || !(/^_?[A-Z]/.test(name) || API_EXPORTS.has(name))) continue;
    if (typeof wasm[`_${name}`] !== 'function') continue;
    const exported = raw as WasmExport;
    wasm[`_${name}`] = (...args: unknown[]): unknown => {
      if (failure !== null) throw failure;
      try {
        return exported(...args);
      } catch (err) {
        throw fail(err);
      }
    };
  }
  // The module's own _dispose also removes its process listeners: keep it, but skip it once the module is broken
  // (its locks may be held), so that removing the backend still works.
  const dispose = wasm['_dispose'];
  if (typeof dispose === 'function') {
    wasm['_dispose'] = (): unknown => (failure === null ? (dispose as WasmExport)() : undefined);
  }
  for (const worker of workers) {
    worker.onerror = (e: unknown) => {
      if (workerError !== null) return;
      workerError = describeThrown(e);
      // The main thread usually saw only "unwind": later calls report the worker's own error.
      if (failure === null || failure.cause === 'unwind') failure = new WasmThreadsError(`a thread of the pool crashed: ${workerError}`, { cause: e });
    };
  }
}

function poolWorkers(wasm: ThreadedModule): PThreadWorker[] {
  const pthread = wasm.PThread;
  if (pthread === undefined) throw new Error('the threaded module has no PThread');
  return [...pthread.runningWorkers, ...pthread.unusedWorkers];
}

type ModuleFactory = (config: Record<string, unknown>) => Promise<ThreadedModule>;

function packageDir(): string {
  return path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
}

/** Writes the pthread worker script to a temp file (removed at exit) and returns its path. */
function writeWorkerScript(dir: string): string {
  const { wasmWorkerContents } = require(path.join(dir, 'wasm-out/tfjs-backend-wasm-threaded-simd.worker.js')) as {
    wasmWorkerContents: string;
  };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'data-params-wasm-'));
  const file = path.join(tmp, 'worker.cjs');
  // The contents were a template literal: its "\n" escapes became real newlines inside string literals.
  fs.writeFileSync(file, wasmWorkerContents.replace(/\n/g, '\\n'));
  process.once('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
  return file;
}

/**
 * Makes os.cpus() report at least `n` cores until the returned function is called. The module reads the core count
 * (and caps its pool at half of it) while it starts up asynchronously, so the whole start-up is covered.
 */
function reportCores(n: number): () => void {
  const osModule = require('os') as typeof os;
  const real = osModule.cpus;
  osModule.cpus = () => {
    const cpus = real();
    while (cpus.length < n && cpus.length > 0) cpus.push(cpus[0]!);
    return cpus;
  };
  return () => {
    osModule.cpus = real;
  };
}

async function createThreadedBackend(threads: number): Promise<tf.KernelBackend> {
  const dir = packageDir();
  const factoryFile = path.join(dir, 'wasm-out/tfjs-backend-wasm-threaded-simd.js');
  const workerFile = writeWorkerScript(dir);
  const factory = require(factoryFile) as ModuleFactory;
  const restoreCores = reportCores(2 * threads);
  try {
    return await startThreaded(factory, factoryFile, workerFile, dir, threads);
  } finally {
    restoreCores();
  }
}

async function startThreaded(
  factory: ModuleFactory,
  factoryFile: string,
  workerFile: string,
  dir: string,
  threads: number,
): Promise<tf.KernelBackend> {
  const started = factory({
    locateFile: (file: string, prefix: string) =>
      file.endsWith('.worker.js')
        ? workerFile
        : file.endsWith('.wasm')
          ? path.join(dir, 'dist', 'tfjs-backend-wasm-threaded-simd.wasm')
          : prefix + file,
    // Given as a path, pthread workers load the module with importScripts (a readFileSync + eval in Node).
    mainScriptUrlOrBlob: factoryFile,
  });
  // A module whose workers never report back would wait forever: give up after a while (the timer never holds exit).
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('the thread pool did not start within 60 s')), 60_000);
    timer.unref();
  });
  const wasm = await Promise.race([started, timeout]).finally(() => clearTimeout(timer));
  const workers = poolWorkers(wasm);
  guardModule(wasm, workers);
  wasm.tfjs = {
    init: wasm.cwrap('init', null, []),
    initWithThreadsCount: wasm.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: wasm.cwrap('get_threads_count', 'number', []),
    registerTensor: wasm.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: wasm.cwrap('dispose_data', null, ['number']),
    dispose: wasm.cwrap('dispose', null, []),
  };
  tfwasm.setThreadsCount(threads);
  const backend = new tfwasm.BackendWasm(wasm as unknown as tfwasm.BackendWasm['wasm']);
  // The pool's threads wait on futexes between kernels; unref'd, they never hold the event loop.
  for (const worker of workers) worker.unref();
  return backend;
}

/**
 * Replaces the 'wasm' backend factory by one that starts the threaded-SIMD module (falling back to the stock factory).
 * Does nothing when the wasm backend has already started or only one thread is wanted.
 */
export function installThreadedWasmFactory(): void {
  let choice: WasmThreadsChoice;
  try {
    choice = wasmThreadsChoice();
  } catch (err) {
    state = { requested: 1, threads: 1, fallback: (err as Error).message };
    return;
  }
  const requested = choice.threads;
  const stock = tf.findBackendFactory('wasm');
  if (stock === null || stock === undefined) return;
  if (requested <= 1) {
    state = { requested, threads: 1, fallback: choice.why };
    return;
  }
  if (tfwasm.version_wasm !== SUPPORTED_VERSION) {
    state = { requested, threads: 1, fallback: `tfjs-backend-wasm ${tfwasm.version_wasm} is not ${SUPPORTED_VERSION}` };
    return;
  }
  if (tf.engine().registry['wasm'] !== undefined) {
    // Already running (started before the training kernels were registered): keep it.
    if (state.fallback === 'the wasm backend has not started') state = { requested, threads: 1, fallback: 'started before the threaded build was installed' };
    return;
  }
  tf.removeBackend('wasm');
  tf.registerBackend(
    'wasm',
    async () => {
      try {
        const backend = await createThreadedBackend(requested);
        state = { requested, threads: tfwasm.getThreadsCount(), fallback: null };
        return backend;
      } catch (err) {
        state = { requested, threads: 1, fallback: `threaded start failed: ${(err as Error).message}` };
        return stock();
      }
    },
    WASM_PRIORITY,
  );
}
