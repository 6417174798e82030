/**
 * Run-time backend selection. Everything else in the toolkit codes against the tfjs API only; this module decides
 * which engine executes it: native TensorFlow with CUDA, native TensorFlow on the CPU, WebAssembly (XNNPACK, with our
 * own training kernels), or the pure-JavaScript reference backend.
 */
import * as tf from '@tensorflow/tfjs';
import { registerWasmTrainingKernels } from './wasm-training/index.js';
import { describeWasmBuild } from './wasm-training/threads.js';

export const BACKEND_NAMES = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];
export type ConcreteBackend = Exclude<BackendName, 'auto'>;

export interface BackendChoice {
  /** The toolkit's name for the backend that runs. */
  name: ConcreteBackend;
  /** tfjs's own name for it (`tf.getBackend()`). */
  tfBackend: string;
  /** Why each faster backend was not used (empty when the first choice loaded). */
  skipped: { name: ConcreteBackend; why: string }[];
  /** The one line logged: which backend runs and why. */
  message: string;
}

const AUTO_ORDER: ConcreteBackend[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

export function isBackendName(name: string): name is BackendName {
  return (BACKEND_NAMES as readonly string[]).includes(name);
}

export function parseBackendName(name: string): BackendName {
  if (!isBackendName(name)) {
    throw new Error(`unknown backend '${name}': expected one of ${BACKEND_NAMES.join(', ')}`);
  }
  return name;
}

/** Imports a package that may be absent; the name is a variable so that TypeScript does not need its types. */
async function importOptional(specifier: string): Promise<unknown> {
  return import(specifier);
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as Error & { code?: unknown }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return 'package not installed';
    return err.message.split('\n')[0] ?? String(err);
  }
  return String(err);
}

let loadedNative: ConcreteBackend | null = null;

async function tryBackend(name: ConcreteBackend): Promise<string> {
  switch (name) {
    case 'tensorflow-gpu':
    case 'tensorflow': {
      // Both packages register the same 'tensorflow' backend; only one of them can live in a process.
      if (loadedNative !== null && loadedNative !== name) {
        throw new Error(`${loadedNative} is already loaded in this process`);
      }
      await importOptional(name === 'tensorflow-gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node');
      loadedNative = name;
      if (!(await tf.setBackend('tensorflow'))) throw new Error('the tensorflow backend failed to initialise');
      return 'tensorflow';
    }
    case 'wasm': {
      await import('@tensorflow/tfjs-backend-wasm');
      registerWasmTrainingKernels();
      if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
      return 'wasm';
    }
    case 'cpu': {
      if (!(await tf.setBackend('cpu'))) throw new Error('the cpu backend failed to initialise');
      // The cpu backend prints a banner recommending tfjs-node on first use; our own log line already says which
      // backend runs and why, so mark it as shown.
      (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
      return 'cpu';
    }
  }
}

export interface InitBackendOptions {
  /** Where the one-line report goes; default stderr. Pass `null` to stay silent. */
  log?: ((line: string) => void) | null;
}

/**
 * Selects and initialises a backend. `auto` takes the first that loads: GPU native, CPU native, WebAssembly, pure JS.
 * An explicit name loads that backend or throws with the reason.
 */
export async function initBackend(requested: BackendName = 'auto', options: InitBackendOptions = {}): Promise<BackendChoice> {
  const log = options.log === undefined ? (line: string) => process.stderr.write(line + '\n') : options.log;
  const candidates = requested === 'auto' ? AUTO_ORDER : [requested];
  const skipped: BackendChoice['skipped'] = [];
  for (const name of candidates) {
    try {
      const tfBackend = await tryBackend(name);
      const why =
        requested === 'auto'
          ? skipped.length === 0
            ? 'fastest available'
            : skipped.map((s) => `${s.name}: ${s.why}`).join('; ')
          : 'requested';
      // wasm also says which build runs: threaded, or single-threaded and why.
      const message = `backend: ${name} (${why})${name === 'wasm' ? `, ${describeWasmBuild()}` : ''}`;
      if (log) log(message);
      return { name, tfBackend, skipped, message };
    } catch (err) {
      skipped.push({ name, why: describeError(err) });
    }
  }
  const detail = skipped.map((s) => `${s.name}: ${s.why}`).join('; ');
  throw new Error(`no backend could be initialised (${detail})`);
}
