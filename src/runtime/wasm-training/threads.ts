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
 * Opt-in: `DATA_PARAMS_WASM_THREADS=N` (N > 1) asks for N threads; the default is the stock single-threaded SIMD
 * build, because (measured here) a wasm abort in the threaded build hangs the process instead of throwing, and on a
 * machine whose cores are busy with other processes the pool's synchronisation made steps slower (3.5 s vs 2.7 s at
 * load average 8 on 2 cores), while the notes measured 1.37x faster on an idle one.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as tfwasm from '@tensorflow/tfjs-backend-wasm';

const require = createRequire(import.meta.url);
const SUPPORTED_VERSION = '4.22.0';
const WASM_PRIORITY = 2;

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

/** Threads asked for by the environment (DATA_PARAMS_WASM_THREADS, default 1). */
export function requestedWasmThreads(): number {
  const env = process.env['DATA_PARAMS_WASM_THREADS'];
  if (env === undefined || env === '') return 1;
  const n = Number(env);
  if (!Number.isInteger(n) || n < 1) throw new Error(`DATA_PARAMS_WASM_THREADS must be a positive integer, got '${env}'`);
  return n;
}

interface PThreadWorker {
  unref(): void;
}

interface ThreadedModule {
  cwrap(name: string, ret: string | null, args: string[]): (...a: number[]) => number;
  PThread?: { runningWorkers: PThreadWorker[]; unusedWorkers: PThreadWorker[] };
  tfjs?: Record<string, unknown>;
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
  const pthread = wasm.PThread;
  if (pthread === undefined) throw new Error('the threaded module has no PThread');
  for (const worker of [...pthread.runningWorkers, ...pthread.unusedWorkers]) worker.unref();
  return backend;
}

/**
 * Replaces the 'wasm' backend factory by one that starts the threaded-SIMD module (falling back to the stock factory).
 * Does nothing when the wasm backend has already started or only one thread is wanted.
 */
export function installThreadedWasmFactory(): void {
  let requested: number;
  try {
    requested = requestedWasmThreads();
  } catch (err) {
    state = { requested: 1, threads: 1, fallback: (err as Error).message };
    return;
  }
  const stock = tf.findBackendFactory('wasm');
  if (stock === null || stock === undefined) return;
  if (requested <= 1) {
    state = { requested, threads: 1, fallback: 'one thread requested' };
    return;
  }
  if (tfwasm.version_wasm !== SUPPORTED_VERSION) {
    state = { requested, threads: 1, fallback: `tfjs-backend-wasm ${tfwasm.version_wasm} is not ${SUPPORTED_VERSION}` };
    return;
  }
  if (tf.engine().registry['wasm'] !== undefined) return; // already running: keep it
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
