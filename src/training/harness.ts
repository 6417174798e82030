/**
 * What the detector's and the classifier's training loops share around their steps:
 * - the run directory: created with a time limit and refused on virtual file systems (/proc, /sys, /dev), where a
 *   recursive mkdir can hang for ever; stale temporary files of interrupted atomic writes removed;
 * - `--resume`: the command line's options compared with the checkpoint's; only options that are safe to change (such
 *   as the number of epochs, to extend a run) are accepted, and recorded in run.json;
 * - the non-finite policy: the first non-finite loss (or gradient) stops training with a checkpoint of the last finite
 *   state (NonFiniteLossError); nothing is skipped;
 * - an input that fails mid-run (an unreadable image) stops training with a checkpoint of the state before the step
 *   (TrainingInputError);
 * - warnings when training has plainly gone wrong without a non-finite number: every σ at a clamp bound, or the loss
 *   grown by orders of magnitude;
 * - the CLIs' last resort: an error that escapes (an unhandled rejection) ends the process with its message, no stack.
 * Checkpoint encoding lives in src/util/checkpoint.ts, atomic writes in src/util/atomic-file.ts, signals in
 * src/util/interrupt.ts.
 */
import { promises as fs, realpathSync } from 'node:fs';
import * as path from 'node:path';
import type { DataParameters } from '../data-parameters/data-parameters.js';
import { ATOMIC_TEMP_PATTERN } from '../util/atomic-file.js';
import type { Logger } from '../util/log.js';

/** How long creating and probing the run directory may take before the run gives up with a message. */
export const RUN_DIR_TIMEOUT_MS = 20_000;

const VIRTUAL_FILE_SYSTEMS = ['/proc', '/sys', '/dev'];

export class RunDirError extends Error {
  constructor(
    readonly dir: string,
    reason: string,
  ) {
    super(`cannot use ${dir} as the run directory: ${reason}`);
    this.name = 'RunDirError';
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(what()), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The real path of `p`'s nearest existing ancestor (or `p` itself), with the rest appended. */
function resolveExisting(p: string): string {
  let head = path.resolve(p);
  const rest: string[] = [];
  for (;;) {
    try {
      return path.join(realpathSync(head), ...rest);
    } catch {
      const parent = path.dirname(head);
      if (parent === head) return path.join(head, ...rest);
      rest.unshift(path.basename(head));
      head = parent;
    }
  }
}

/**
 * Creates (if needed) the run directory and checks that a file can be written there, within `timeoutMs`; throws a
 * RunDirError naming it otherwise. Then removes stale temporary files of interrupted atomic writes (never valid
 * checkpoints or records) and returns their names.
 */
export async function prepareRunDir(dir: string, options: { timeoutMs?: number; log?: Logger } = {}): Promise<string[]> {
  const real = resolveExisting(dir);
  const virtual = VIRTUAL_FILE_SYSTEMS.find((v) => real === v || real.startsWith(v + '/'));
  if (virtual) throw new RunDirError(dir, `it is on ${virtual}, a virtual file system that holds no files`);
  const ms = options.timeoutMs ?? RUN_DIR_TIMEOUT_MS;
  const setup = async (): Promise<void> => {
    try {
      await fs.mkdir(dir, { recursive: true });
    } catch (err) {
      throw new RunDirError(dir, (err as Error).message);
    }
    const probe = path.join(dir, `.write-test-${process.pid}`);
    try {
      await fs.writeFile(probe, '');
      await fs.rm(probe, { force: true });
    } catch (err) {
      throw new RunDirError(dir, `no file can be written there (${(err as Error).message})`);
    }
  };
  await withTimeout(setup(), ms, () => new RunDirError(dir, `creating it or writing to it took more than ${ms / 1000} s`));
  const removed = await removeStaleTemps(dir);
  if (removed.length > 0) options.log?.(`removed ${removed.length} temporary file(s) of an interrupted write in ${dir}: ${removed.join(', ')}`);
  return removed;
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes `<file>.tmp-<pid>-<time>` files (writeFileAtomic's) in `dir` and its direct subfolders whose writer is no
 * longer running; returns their paths relative to `dir`.
 */
export async function removeStaleTemps(dir: string): Promise<string[]> {
  const removed: string[] = [];
  const scan = async (sub: string, depth: number): Promise<void> => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fs.readdir(path.join(dir, sub), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const rel = path.join(sub, e.name);
      if (e.isDirectory()) {
        if (depth === 0) await scan(rel, 1);
        continue;
      }
      const m = ATOMIC_TEMP_PATTERN.exec(e.name);
      if (m && e.isFile() && !processAlive(Number(m[1]))) {
        await fs.rm(path.join(dir, rel), { force: true });
        removed.push(rel);
      }
    }
  };
  await scan('', 0);
  return removed.sort();
}

/** One option whose value differs between the checkpoint and this run (dotted key, JSON values). */
export interface ConfigChange {
  key: string;
  checkpoint: unknown;
  now: unknown;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The leaves in which two JSON values differ (arrays compare as wholes); both sides are taken as JSON would store them. */
export function configChanges(checkpoint: unknown, now: unknown): ConfigChange[] {
  const out: ConfigChange[] = [];
  const walk = (a: unknown, b: unknown, key: string): void => {
    if (isPlainObject(a) && isPlainObject(b)) {
      for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) walk(a[k], b[k], key ? `${key}.${k}` : k);
      return;
    }
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push({ key: key || '(root)', checkpoint: a, now: b });
  };
  const json = (v: unknown): unknown => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));
  walk(json(checkpoint), json(now), '');
  return out;
}

export class ResumeMismatchError extends Error {
  constructor(
    readonly checkpoint: string,
    readonly changes: readonly ConfigChange[],
    safe: readonly string[],
  ) {
    const show = (v: unknown): string => (v === undefined ? '(absent)' : JSON.stringify(v));
    super(
      `--resume: this run's options differ from those ${checkpoint} was trained with:\n` +
        changes.map((c) => `  ${c.key}: ${show(c.checkpoint)} in the checkpoint, ${show(c.now)} now`).join('\n') +
        `\nResume with the original options (only ${safe.join(', ')} may change), or start a new run with another --out.`,
    );
    this.name = 'ResumeMismatchError';
  }
}

/**
 * Compares a resumed run's config with its checkpoint's: throws a ResumeMismatchError listing every difference outside
 * `safe` (dotted keys; a key covers its sub-keys); returns the accepted ones.
 */
export function checkResumeConfig(checkpoint: string, saved: unknown, now: unknown, safe: readonly string[]): ConfigChange[] {
  const changes = configChanges(saved, now);
  const isSafe = (c: ConfigChange): boolean => safe.some((s) => c.key === s || c.key.startsWith(s + '.'));
  const refused = changes.filter((c) => !isSafe(c));
  if (refused.length > 0) throw new ResumeMismatchError(checkpoint, refused, safe);
  return changes;
}

/** The non-finite policy of both trainers: stop at the first non-finite loss or gradient, keeping the last finite state. */
export class NonFiniteLossError extends Error {
  constructor(
    readonly step: number,
    /** The checkpoint of the last finite state (null when the run writes none). */
    readonly checkpoint: string | null,
  ) {
    super(
      `non-finite loss at step ${step}: training stopped. ` +
        (checkpoint ? `The last finite state is in ${checkpoint} ` : 'Nothing was saved (no output directory) ') +
        '(lower --lr, lengthen the warmup or check the labels for degenerate boxes, then rerun with --resume).',
    );
    this.name = 'NonFiniteLossError';
  }
}

/** An input that failed during training (e.g. a truncated image): the run stopped with a checkpoint before that step. */
export class TrainingInputError extends Error {
  constructor(
    cause: unknown,
    readonly step: number,
    readonly checkpoint: string | null,
  ) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(
      `${why}\ntraining stopped at step ${step}` +
        (checkpoint ? `; the state before that step is in ${checkpoint}: replace the file, then rerun with --resume.` : '.'),
    );
    this.name = 'TrainingInputError';
  }
}

/** Relative tolerance of "at the bound" (σ is stored as float32 log σ). */
const BOUND_TOLERANCE = 1e-4;
/** An epoch's mean loss this many times the run's first step loss is "grown by orders of magnitude". */
export const LOSS_GROWTH_WARNING = 100;

/**
 * Warnings for runs that went wrong without a non-finite number: every learned σ pinned at a clamp bound, or the
 * epoch loss grown by orders of magnitude over the first step's. Each warning is logged once per process.
 */
export class DivergenceWatch {
  private firstLoss: number | null = null;
  private readonly said = new Set<string>();

  constructor(private readonly log: Logger) {}

  /** Every step's loss (only the first finite one is kept, as the reference). */
  step(loss: number): void {
    if (this.firstLoss === null && Number.isFinite(loss)) this.firstLoss = loss;
  }

  /** At the end of an epoch: its mean loss and the data parameters (σ of `instanceIds`, default all). */
  epochEnd(epoch: number, meanLoss: number, dp: DataParameters | null, instanceIds?: ArrayLike<number>): string[] {
    const out: { key: string; text: string }[] = [];
    const first = this.firstLoss;
    if (first !== null && first > 0 && meanLoss > LOSS_GROWTH_WARNING * first) {
      out.push({
        key: 'loss',
        text:
          `warning: epoch ${epoch}'s mean loss ${meanLoss.toPrecision(3)} is ${Math.round(meanLoss / first)}x the first step's ` +
          `(${first.toPrecision(3)}): training is diverging; lower --lr`,
      });
    }
    if (dp) {
      for (const kind of ['class', 'instance'] as const) {
        const bounds = dp.sigmaBounds(kind);
        if (!bounds) continue;
        const values = kind === 'class' ? dp.classSigma() : dp.instanceSigmaValues(instanceIds);
        if (values.length === 0) continue;
        for (const [name, bound] of [
          ['max', bounds.max],
          ['min', bounds.min],
        ] as const) {
          if (values.every((v) => Math.abs(v - bound) <= BOUND_TOLERANCE * bound)) {
            out.push({
              key: `${kind}-${name}`,
              text:
                `warning: every ${kind} σ (${values.length}) sits at the clamp's ${name} ${Number(bound.toPrecision(6))} after epoch ${epoch}: ` +
                'the data parameters no longer learn anything; lower --lr',
            });
          }
        }
      }
    }
    const fresh = out.filter((w) => !this.said.has(w.key)).map((w) => (this.said.add(w.key), w.text));
    for (const w of fresh) this.log(w);
    return fresh;
  }
}

/**
 * For a CLI's main: an error that escapes every handler (a rejected promise nobody awaited, an exception in a
 * callback) ends the process with `<name>: <message>` and status 1 instead of a stack trace (the wasm backend's own
 * handler would otherwise rethrow it and exit with 7).
 */
export function exitOnEscapedErrors(name: string): void {
  const fail = (err: unknown): void => {
    process.stderr.write(`${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  };
  process.prependListener('uncaughtException', fail);
  process.prependListener('unhandledRejection', fail);
}
