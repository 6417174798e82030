/**
 * Helpers shared by the step benchmarks that compare with PyTorch (train-step, vgg16-ssd-step): the median, a
 * per-kernel profile of one step, and a run of a PyTorch reference script from bench/reference/.
 */
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';

/** The median (NaN for no values). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  const hi = s[m] ?? NaN;
  return s.length % 2 === 1 ? hi : ((s[m - 1] ?? NaN) + hi) / 2;
}

/**
 * Per-kernel CPU milliseconds of this process in one call of `step`, biggest first: [name, ms, calls] (nested kernels
 * count inside their caller). CPU time rather than the backend's wall-clock timer, so that other processes on a busy
 * machine do not show up in the figures; with one wasm thread it is the kernel's own time. With `byShape`, kernels are
 * keyed by name and input shapes, which tells the layers of a network apart.
 */
export async function profileKernels(step: () => void, byShape = false): Promise<[string, number, number][]> {
  const backend = tf.backend() as unknown as { time(f: () => void): Promise<{ kernelMs: number }> };
  const wallTimer = Object.getOwnPropertyDescriptor(backend, 'time');
  backend.time = (f: () => void): Promise<{ kernelMs: number }> => {
    const c0 = process.cpuUsage();
    f();
    const c = process.cpuUsage(c0);
    return Promise.resolve({ kernelMs: (c.user + c.system) / 1000 });
  };
  let info: Awaited<ReturnType<typeof tf.profile>>;
  try {
    info = await tf.profile(step);
  } finally {
    if (wallTimer === undefined) delete (backend as { time?: unknown }).time;
    else Object.defineProperty(backend, 'time', wallTimer);
  }
  const byName = new Map<string, [number, number]>();
  for (const k of info.kernels) {
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    const key = byShape ? `${k.name} ${k.inputShapes.map((s) => (s === undefined ? '-' : s.join('x'))).join(' ')}` : k.name;
    const prev = byName.get(key) ?? [0, 0];
    byName.set(key, [prev[0] + ms, prev[1] + 1]);
  }
  return [...byName.entries()].map(([n, [ms, count]]) => [n, ms, count] as [string, number, number]).sort((a, b) => b[1] - a[1]);
}

export interface PytorchTiming {
  value: number;
  version: string;
  threads: number;
  [extra: string]: unknown;
}

/**
 * Median ms per step printed (as the last JSON line) by a PyTorch reference script in bench/reference/ (next to the
 * compiled bench's source), run by `python` with `threads` threads.
 */
export function timePytorch(python: string, script: string, args: string[], threads: number): PytorchTiming {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const file = path.join(here, '..', '..', 'bench', 'reference', script);
  const r = spawnSync(python, [file, ...args, '--threads', String(threads)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${python} ${file} failed (${r.status ?? r.error?.message}): ${r.stderr}`);
  const last = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as PytorchTiming;
  } catch {
    throw new Error(`${file}: expected a JSON line last, got '${last}'`);
  }
}

export interface PytorchOption {
  python: string;
  threads: number;
}

/**
 * The --pytorch [PYTHON] option (null when absent, or for the pure-JS cpu backend; `python3` for a bare flag) and
 * --pytorch-threads N (default: one per core).
 */
export function pytorchOption(options: Record<string, string>, backend: string): PytorchOption | null {
  const option = options['pytorch'];
  if (option === undefined || backend === 'cpu') return null;
  const threads = Number(options['pytorch-threads'] ?? os.availableParallelism());
  if (!(Number.isInteger(threads) && threads >= 1)) throw new Error(`--pytorch-threads must be a positive integer, got ${options['pytorch-threads']}`);
  return { python: option === 'true' ? 'python3' : option, threads };
}
