/**
 * What every experiment runner shares, whatever its task: the output folder's settings, the arm × seed loop that skips
 * finished runs, mean ± std over seeds, and the results envelope (results.json) with the paper's claims.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../src/util/atomic-file.js';
import { readTextIfExists } from '../src/util/read-text.js';

const SETTINGS_FILE = 'experiment.json';

/** The package root (configs/ lives there): this file is experiments/ or dist/experiments/. */
export const PACKAGE_ROOT = (() => {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const up = path.resolve(here, '..');
  return path.basename(up) === 'dist' ? path.resolve(up, '..') : up;
})();

/** A claim of the paper beside our measurement. `holds` is null when the run does not measure it. */
export interface Claim {
  claim: string;
  paper: string;
  target: string;
  ours: string;
  holds: boolean | null;
}

export interface Stat {
  mean: number;
  std: number;
  n: number;
}

/** What results.json holds, for an experiment of any task. */
export interface ResultsOf<Arm, Overrides> {
  experiment: string;
  title: string;
  setup: string;
  quick: boolean;
  seeds: number[];
  epochs: number;
  overrides: Overrides;
  writtenAt: string;
  arms: Arm[];
  claims: Claim[];
}

/** An experiment's results: its settings, the arms collected, and its claims measured on them. */
export function experimentResults<Arm, Overrides>(
  exp: { name: string; title: string; setup: string; claims(results: ResultsOf<Arm, Overrides>): Claim[] },
  options: { quick: boolean; seeds: number; overrides: Overrides },
  epochs: number,
  arms: Arm[],
): ResultsOf<Arm, Overrides> {
  const results: ResultsOf<Arm, Overrides> = {
    experiment: exp.name,
    title: exp.title,
    setup: exp.setup,
    quick: options.quick,
    seeds: Array.from({ length: options.seeds }, (_, i) => i),
    epochs,
    overrides: options.overrides,
    writtenAt: new Date().toISOString(),
    arms,
    claims: [],
  };
  results.claims = exp.claims(results);
  return results;
}

/** The parsed JSON file, or `fallback` when it does not exist. */
export async function readJsonOr<T>(file: string, fallback: T): Promise<T> {
  const text = await readTextIfExists(file);
  if (text === null) return fallback;
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message}); delete it to recompute`);
  }
}

/** Mean and sample std of the finite values; null when there is none. */
export function stat(values: number[]): Stat | null {
  const v = values.filter((x) => Number.isFinite(x));
  if (v.length === 0) return null;
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) : 0;
  return { mean, std, n: v.length };
}

/** Mean ± std over seeds of a value at each epoch that every seed has (a seed's null value is left out). */
export function statPerEpoch<E extends { epoch: number }>(
  seeds: readonly { epochs: readonly E[] }[],
  value: (record: E) => unknown,
): { epoch: number; stat: Stat }[] {
  const out: { epoch: number; stat: Stat }[] = [];
  for (const first of seeds[0]?.epochs ?? []) {
    const values = seeds.map((s) => {
      const r = s.epochs.find((x) => x.epoch === first.epoch);
      return r ? value(r) : undefined;
    });
    if (values.some((v) => v === undefined)) continue;
    const st = stat(values.filter((v): v is number => typeof v === 'number'));
    if (st) out.push({ epoch: first.epoch, stat: st });
  }
  return out;
}

/** The seeds of an arm whose runs have recorded their last planned epoch, and those still unfinished. */
export async function readFinishedSeeds<R extends { epochs: readonly { epoch: number }[]; plannedEpochs: number }>(
  armDir: string,
  seeds: number,
  read: (dir: string, seed: number) => Promise<R | null>,
): Promise<{ runs: R[]; unfinishedSeeds: number[] }> {
  const runs: R[] = [];
  const unfinishedSeeds: number[] = [];
  for (let seed = 0; seed < seeds; seed++) {
    const r = await read(path.join(armDir, `seed-${seed}`), seed);
    if (r && r.epochs.at(-1)?.epoch === r.plannedEpochs) runs.push(r);
    else if (r) unfinishedSeeds.push(seed);
  }
  return { runs, unfinishedSeeds };
}

/**
 * Records the experiment's settings in `out` (experiment.json), or refuses a folder written with other settings (quick
 * or not, other overrides), so that runs of different sizes never mix.
 */
export async function claimOutputFolder(experiment: string, options: { out: string; quick: boolean; overrides: object }): Promise<void> {
  const settings = { experiment, quick: options.quick, overrides: options.overrides };
  const settingsFile = path.join(options.out, SETTINGS_FILE);
  const previous = await readJsonOr<typeof settings | null>(settingsFile, null);
  if (previous && JSON.stringify(previous) !== JSON.stringify(settings)) {
    throw new Error(
      `${settingsFile}: this folder holds ${previous.experiment}${previous.quick ? ' --quick' : ''} with overrides ` +
        `${JSON.stringify(previous.overrides)}; choose another --out for ${experiment}${options.quick ? ' --quick' : ''} with ${JSON.stringify(options.overrides)}`,
    );
  }
  if (!previous) await writeFileAtomic(settingsFile, JSON.stringify(settings, null, 2) + '\n');
}

/**
 * Runs `train` for every selected arm and seed in order (it returns false when stopped; a rerun continues). Refuses
 * unknown arms, a seed count that is not a positive integer, and an output folder written with other settings.
 */
export async function runPendingArmSeeds<Arm extends { name: string }>(
  exp: { name: string; arms: readonly Arm[] },
  options: { out: string; quick: boolean; seeds: number; arms?: readonly string[]; overrides: object },
  train: (arm: Arm, seed: number) => Promise<boolean>,
): Promise<boolean> {
  const unknown = (options.arms ?? []).filter((a) => !exp.arms.some((x) => x.name === a));
  if (unknown.length) throw new Error(`${exp.name} has no arm ${unknown.join(', ')}; its arms: ${exp.arms.map((a) => a.name).join(', ')}`);
  if (!(Number.isInteger(options.seeds) && options.seeds >= 1)) throw new Error(`seeds must be a positive integer, got ${options.seeds}`);
  await claimOutputFolder(exp.name, options);
  for (const arm of exp.arms) {
    if (options.arms && !options.arms.includes(arm.name)) continue;
    for (let seed = 0; seed < options.seeds; seed++) if (!(await train(arm, seed))) return false;
  }
  return true;
}
