/**
 * kitti-eval: the whole `evaluate-kitti` process (node start, reading 2 x 3769 files, car AP at three difficulties,
 * JSON out) on a KITTI-val-sized synthetic set with ~10 detections per image. Target: under the C++ devkit's time for
 * car on the same machine.
 *
 * `npm run bench -- --only kitti-eval [--runs 5] [--devkit CMD]`. Prints the median wall time (value), the median CPU
 * time (user + system, cpuMs: what a loaded machine distorts least) and the load average. With --devkit, CMD is run
 * alternately with ours on car-only results (so that it evaluates car only), and devkitMs / devkitCpuMs and the
 * ratios (ours / devkit, below 1 is faster) are added: CMD is a build of evaluate_object.cpp patched to take the
 * results directory as its argument and GT_DIR / N_IMAGES from the environment (the official one hard-codes its paths
 * and image count; never commit such a build).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchContext } from './run.js';
import { makeSyntheticKittiEvalSet, writeSyntheticKittiEvalSet } from '../detection/kitti-eval/synthetic.js';

export const names = ['kitti-eval'];

// The bundled command that the `evaluate-kitti` bin runs (built by tools/bundle-cli.ts).
const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'detection', 'cli', 'evaluate-kitti.cjs');
const IMAGES = 3769;

/** CPU seconds of reaped children (Linux /proc; null elsewhere). */
function childrenCpuMs(): number | null {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 16 and 17 (cutime, cstime) of proc(5), counted from 1 with pid and comm before this slice.
    return ((Number(fields[13]) + Number(fields[14])) * 1000) / 100;
  } catch {
    return null;
  }
}

function timeProcess(cmd: string, args: string[], env?: NodeJS.ProcessEnv): { ms: number; cpuMs: number | null; stdout: string } {
  const cpu0 = childrenCpuMs();
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: env ?? process.env, maxBuffer: 1 << 24 });
  const ms = performance.now() - t0;
  const cpu1 = childrenCpuMs();
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return { ms, cpuMs: cpu0 === null || cpu1 === null ? null : cpu1 - cpu0, stdout: r.stdout };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function run(ctx: BenchContext, only: string | null): Promise<void> {
  if (only !== null && !names.includes(only)) return;
  const runs = Number(ctx.options['runs'] ?? 5);
  const dir = mkdtempSync(path.join(tmpdir(), 'kitti-eval-bench-'));
  try {
    const set = makeSyntheticKittiEvalSet({ images: IMAGES, seed: 7 });
    const { labels, results } = writeSyntheticKittiEvalSet(dir, set);
    let detections = 0;
    for (const d of set.detections.values()) detections += d.length;
    if (!existsSync(CLI)) throw new Error(`${CLI} not found: run npm run build (tsc, then the bundler)`);
    const args = [CLI, '--labels', labels, '--results', results, '--classes', 'car', '--format', 'json'];
    const devkit = ctx.options['devkit'];
    let devkitRun: (() => ReturnType<typeof timeProcess>) | null = null;
    if (devkit !== undefined) {
      // Car-only copy of the results in the devkit's layout (results/data), so that it evaluates car only.
      const carOnly = path.join(dir, 'results-car');
      mkdirSync(path.join(carOnly, 'data'), { recursive: true });
      const from = existsSync(path.join(results, 'data')) ? path.join(results, 'data') : results;
      for (const f of readdirSync(from)) {
        const lines = readFileSync(path.join(from, f), 'utf8').split('\n').filter((l) => /^car /i.test(l));
        writeFileSync(path.join(carOnly, 'data', f), lines.map((l) => l + '\n').join(''));
      }
      const env = { ...process.env, GT_DIR: labels, N_IMAGES: String(IMAGES) };
      devkitRun = () => timeProcess(devkit, [carOnly], env);
    }
    // Warm the file cache, then alternate the two programs so that both see the same machine load.
    timeProcess(process.execPath, args);
    devkitRun?.();
    const ms: number[] = [];
    const cpu: number[] = [];
    const dms: number[] = [];
    const dcpu: number[] = [];
    for (let i = 0; i < runs; i++) {
      const r = timeProcess(process.execPath, args);
      ms.push(r.ms);
      if (r.cpuMs !== null) cpu.push(r.cpuMs);
      if (devkitRun !== null) {
        const d = devkitRun();
        dms.push(d.ms);
        if (d.cpuMs !== null) dcpu.push(d.cpuMs);
      }
    }
    const extra: Record<string, unknown> = {
      images: IMAGES,
      detections,
      runs,
      minMs: Math.round(Math.min(...ms)),
      targetMs: 500,
      loadAverage: Number(loadavg()[0]!.toFixed(2)),
    };
    if (cpu.length > 0) extra['cpuMs'] = Math.round(median(cpu));
    if (dms.length > 0) {
      extra['devkitMs'] = Math.round(median(dms));
      extra['devkitMinMs'] = Math.round(Math.min(...dms));
      // Below 1: faster than the devkit.
      extra['ratio'] = Number((median(ms) / median(dms)).toFixed(2));
      if (cpu.length > 0 && dcpu.length > 0) {
        extra['devkitCpuMs'] = Math.round(median(dcpu));
        extra['cpuRatio'] = Number((median(cpu) / median(dcpu)).toFixed(2));
      }
    }
    ctx.emit({ bench: 'kitti-eval', backend: 'none', value: Math.round(median(ms)), unit: 'ms', ...extra });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
