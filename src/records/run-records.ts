/**
 * Run records: what a trainer writes so that a person can later see the curriculum (`visualize-curriculum`).
 *
 * A run directory holds
 * - `run.json`     the manifest (task, config, the tracked instances), written atomically;
 * - `sigma.jsonl`  one record per epoch (plus one at epoch 0 before training): σ of the tracked instances and summary
 *                  statistics of σ over all instances in named groups;
 * - `metrics.jsonl` one record per logged training step or evaluation.
 *
 * JSON has no NaN or Infinity: a non-finite number is written as `null` and read back as `NaN`.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { WriteError, writeFileAtomic } from '../util/atomic-file.js';

export type RunTask = 'detection' | 'classification';
export type Difficulty = 'easy' | 'moderate' | 'hard';

/** One instance (a ground-truth box, or a classification sample) whose σ is snapshotted at every epoch. */
export interface TrackedInstance {
  /** The instance's index in the data parameters (or any stable id). */
  id: number | string;
  /** The image the instance belongs to. A relative path is looked up against the run directory first, then the
   * current directory. */
  image?: string;
  /** Ground-truth box [x1, y1, x2, y2] in original image pixels. */
  box?: [number, number, number, number];
  /** KITTI occlusion level 0 (fully visible), 1 (partly), 2 (largely occluded), 3 (unknown). */
  occlusion?: number;
  truncation?: number;
  /** KITTI difficulty (the easiest level the box qualifies for), null when it fits none. */
  difficulty?: Difficulty | null;
  classIndex?: number;
  className?: string;
  /** True when the label of this sample was corrupted (noisy-label experiments). */
  noisy?: boolean;
}

export interface RunManifest {
  task: RunTask;
  /** ISO 8601 time the run started. */
  createdAt: string;
  config: Record<string, unknown>;
  classNames?: string[];
  tracked: TrackedInstance[];
  /** Resumes that changed options: at which step, and each option's value before and after. */
  resumes?: ResumeNote[];
}

export interface ResumeNote {
  step: number;
  /** ISO 8601 time of the resume. */
  at: string;
  changed: { key: string; checkpoint: unknown; now: unknown }[];
}

/** σ statistics over one group of instances (population std). An empty group has count 0 and NaN statistics. */
export interface SigmaSummary {
  count: number;
  mean: number;
  std: number;
  min: number;
  max: number;
}

export interface SigmaEntry {
  epoch: number;
  step: number;
  /** σ (not log σ) of the tracked instances, in the order of `RunManifest.tracked`. */
  tracked: number[];
  /** Keys like 'all', 'occlusion:0', 'difficulty:easy', 'clean', 'noisy' (see `sigmaGroups`). */
  groups: Record<string, SigmaSummary>;
  /** σ of every class (class or joint mode). */
  classSigma?: number[];
  /** Fraction of corrupted samples among the top-r of instances ranked by σ (see `noisyTopFraction`). */
  noisyTopFraction?: number;
  /** The r of `noisyTopFraction` as a fraction of all instances (0.2 = top 20%). */
  noisyTopRatio?: number;
}

export type MetricsKind = 'train' | 'val' | 'epoch';

/** A logged step or evaluation: kind, step, epoch and any named numbers (loss parts, lr, AP, top1, ...). */
export interface MetricsEntry {
  kind: MetricsKind;
  step: number;
  epoch: number;
  [name: string]: number | string;
}

export interface RunRecords {
  dir: string;
  manifest: RunManifest;
  sigma: SigmaEntry[];
  metrics: MetricsEntry[];
}

export const MANIFEST_FILE = 'run.json';
export const SIGMA_FILE = 'sigma.jsonl';
export const METRICS_FILE = 'metrics.jsonl';

/** A run record that is missing, truncated, corrupt or inconsistent; `file` and `line` (1-based, when known) say where. */
export class RunRecordError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | null,
    detail: string,
  ) {
    super(`${file}${line === null ? '' : `:${line}`}: ${detail}`);
    this.name = 'RunRecordError';
  }
}

/** Writes a run directory. Each append is one write of one complete line. */
export class RunRecorder {
  readonly manifestFile: string;
  readonly sigmaFile: string;
  readonly metricsFile: string;

  constructor(readonly dir: string) {
    this.manifestFile = path.join(dir, MANIFEST_FILE);
    this.sigmaFile = path.join(dir, SIGMA_FILE);
    this.metricsFile = path.join(dir, METRICS_FILE);
  }

  async writeManifest(manifest: RunManifest): Promise<void> {
    validateManifest(manifest, this.manifestFile);
    await writeFileAtomic(this.manifestFile, JSON.stringify(manifest, null, 2) + '\n');
  }

  /** Notes a resume that changed options (accepted because they are safe to change) in run.json's `resumes`. */
  async noteResume(entry: ResumeNote): Promise<void> {
    const manifest = JSON.parse(await fs.readFile(this.manifestFile, 'utf8')) as RunManifest;
    manifest.resumes = [...(manifest.resumes ?? []), entry];
    await writeFileAtomic(this.manifestFile, JSON.stringify(manifest, null, 2) + '\n');
  }

  async appendSigma(entry: SigmaEntry): Promise<void> {
    validateSigmaEntry(toPlain(entry), this.sigmaFile, null);
    await appendLine(this.sigmaFile, entry);
  }

  async appendMetrics(entry: MetricsEntry): Promise<void> {
    validateMetricsEntry(toPlain(entry), this.metricsFile, null);
    await appendLine(this.metricsFile, entry);
  }

  /** Drops the sigma and metrics records with a step after `step` (a resumed run calls this with the checkpoint's
   * step so that it does not record those steps twice). A torn last line left by a crash is dropped as well. */
  async truncateAfter(step: number): Promise<void> {
    for (const file of [this.sigmaFile, this.metricsFile]) {
      let text: string;
      try {
        text = await fs.readFile(file, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      const kept: string[] = [];
      const lines = text.split('\n');
      for (let i = 0; i < lines.length; i++) {
        const line = lines[i]!;
        if (line.trim() === '') continue;
        let record: unknown;
        try {
          record = JSON.parse(line);
        } catch {
          if (i === lines.length - 1) continue; // the torn tail of an interrupted write
          throw new RunRecordError(file, i + 1, 'corrupt record (not JSON); refusing to truncate around it');
        }
        const s = (record as { step?: unknown }).step;
        if (typeof s !== 'number') throw new RunRecordError(file, i + 1, 'record has no numeric "step"');
        if (s <= step) kept.push(line + '\n');
      }
      await writeFileAtomic(file, kept.join(''));
    }
  }
}

export interface ReadRunOptions {
  /** What to do with a last line that was cut short (a run interrupted while writing, or still running):
   * 'error' (default) or 'skip' (drop it; `onSkip` is told). */
  truncatedTail?: 'error' | 'skip';
  /** A run that has not logged a metric yet has no metrics.jsonl: 'error' (default) or 'empty' (`onSkip` is told). */
  missingMetrics?: 'error' | 'empty';
  onSkip?: (message: string) => void;
}

/** Reads and validates a run directory. Every problem is a `RunRecordError` naming the file and, for JSONL, the line. */
export async function readRun(dir: string, options: ReadRunOptions = {}): Promise<RunRecords> {
  const manifestFile = path.join(dir, MANIFEST_FILE);
  const manifestText = await readRequired(manifestFile, dir);
  let manifestValue: unknown;
  try {
    manifestValue = JSON.parse(manifestText);
  } catch (err) {
    throw new RunRecordError(manifestFile, jsonErrorLine(err, manifestText), `not valid JSON (${(err as Error).message})`);
  }
  const manifest = validateManifest(manifestValue, manifestFile);

  const sigmaFile = path.join(dir, SIGMA_FILE);
  const sigma = parseJsonl(sigmaFile, await readRequired(sigmaFile, dir), options, (v, line) => {
    const e = validateSigmaEntry(v, sigmaFile, line);
    if (e.tracked.length !== manifest.tracked.length) {
      throw new RunRecordError(sigmaFile, line,
        `"tracked" has ${e.tracked.length} values but ${MANIFEST_FILE} tracks ${manifest.tracked.length} instances`);
    }
    if (e.classSigma && manifest.classNames && e.classSigma.length !== manifest.classNames.length) {
      throw new RunRecordError(sigmaFile, line,
        `"classSigma" has ${e.classSigma.length} values but ${MANIFEST_FILE} names ${manifest.classNames.length} classes`);
    }
    return e;
  });
  for (let i = 1; i < sigma.length; i++) {
    const [a, b] = [sigma[i - 1]!, sigma[i]!];
    if (!(b.value.epoch > a.value.epoch) || b.value.step < a.value.step) {
      throw new RunRecordError(sigmaFile, b.line,
        `epoch ${b.value.epoch} (step ${b.value.step}) does not follow epoch ${a.value.epoch} (step ${a.value.step}) ` +
        `of line ${a.line}; records repeated by a resume that did not call truncateAfter?`);
    }
  }

  const metricsFile = path.join(dir, METRICS_FILE);
  let metricsText: string;
  try {
    metricsText = await readRequired(metricsFile, dir);
  } catch (err) {
    if (!(err instanceof RunRecordError && options.missingMetrics === 'empty')) throw err;
    options.onSkip?.(`${metricsFile}: missing; no training curves`);
    metricsText = '';
  }
  const metrics = parseJsonl(metricsFile, metricsText, options, (v, line) =>
    validateMetricsEntry(v, metricsFile, line),
  );
  const lastOfKind = new Map<string, { step: number; line: number }>();
  for (const { value, line } of metrics) {
    const prev = lastOfKind.get(value.kind);
    if (prev && value.step < prev.step) {
      throw new RunRecordError(metricsFile, line,
        `"${value.kind}" record at step ${value.step} comes after step ${prev.step} (line ${prev.line}); ` +
        'records repeated by a resume that did not call truncateAfter?');
    }
    lastOfKind.set(value.kind, { step: value.step, line });
  }

  return { dir, manifest, sigma: sigma.map((s) => s.value), metrics: metrics.map((m) => m.value) };
}

/** σ statistics per group; `groups` maps a group name to the indices (into `values`) of its instances. */
export function summariseSigma(
  values: ArrayLike<number>,
  groups: Record<string, ArrayLike<number>>,
): Record<string, SigmaSummary> {
  const out: Record<string, SigmaSummary> = {};
  for (const [name, indices] of Object.entries(groups)) {
    const n = indices.length;
    let sum = 0;
    let min = Infinity;
    let max = -Infinity;
    for (let k = 0; k < n; k++) {
      const i = indices[k]!;
      if (!Number.isInteger(i) || i < 0 || i >= values.length) {
        throw new RangeError(`summariseSigma: group "${name}" has index ${i}, outside 0..${values.length - 1}`);
      }
      const v = values[i]!;
      sum += v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    if (n === 0) {
      out[name] = { count: 0, mean: NaN, std: NaN, min: NaN, max: NaN };
      continue;
    }
    const mean = sum / n;
    let sq = 0; // second pass: numerically safer than E[x²] - E[x]²
    for (let k = 0; k < n; k++) {
      const d = values[indices[k]!]! - mean;
      sq += d * d;
    }
    out[name] = { count: n, mean, std: Math.sqrt(sq / n), min, max };
  }
  return out;
}

/** The instance attributes that `sigmaGroups` groups by. */
export interface GroupableInstance {
  occlusion?: number;
  difficulty?: Difficulty | null;
  noisy?: boolean;
}

/**
 * The standard group names with the indices of their instances: 'all'; 'occlusion:<level>' for each level present;
 * 'difficulty:easy|moderate|hard|none' for instances with a difficulty field ('none' = fits no KITTI level);
 * 'clean' and 'noisy' when any instance has a `noisy` field.
 */
export function sigmaGroups(instances: readonly GroupableInstance[]): Record<string, number[]> {
  const groups: Record<string, number[]> = { all: [] };
  const add = (key: string, i: number): void => {
    (groups[key] ??= []).push(i);
  };
  instances.forEach((inst, i) => {
    add('all', i);
    if (inst.occlusion !== undefined) add(`occlusion:${inst.occlusion}`, i);
    if (inst.difficulty !== undefined) add(`difficulty:${inst.difficulty ?? 'none'}`, i);
    if (inst.noisy !== undefined) add(inst.noisy ? 'noisy' : 'clean', i);
  });
  return groups;
}

/**
 * Fraction of corrupted samples among the top `ratio` of instances ranked by σ (highest first; the paper's Figure 4:
 * if σ finds the noise, this is far above the noise rate). The top set has round(ratio·N) ≥ 1 instances.
 */
export function noisyTopFraction(values: ArrayLike<number>, noisy: ArrayLike<boolean | number>, ratio: number): number {
  if (values.length !== noisy.length) {
    throw new RangeError(`noisyTopFraction: ${values.length} σ values but ${noisy.length} noisy flags`);
  }
  if (!(ratio > 0 && ratio <= 1)) throw new RangeError(`noisyTopFraction: ratio ${ratio} is not in (0, 1]`);
  const n = values.length;
  if (n === 0) return NaN;
  const k = Math.max(1, Math.round(ratio * n));
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => values[b]! - values[a]! || a - b);
  let hits = 0;
  for (let j = 0; j < k; j++) if (noisy[order[j]!]) hits++;
  return hits / k;
}

// ---------------------------------------------------------------------------------------------------------------------

async function appendLine(file: string, record: object): Promise<void> {
  try {
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.appendFile(file, JSON.stringify(record) + '\n');
  } catch (err) {
    // A torn last line is dropped by truncateAfter when the run resumes.
    throw new WriteError(file, err);
  }
}

async function readRequired(file: string, dir: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new RunRecordError(file, null,
        `missing; a run directory (${dir}) holds ${MANIFEST_FILE}, ${SIGMA_FILE} and ${METRICS_FILE}`);
    }
    throw err;
  }
}

function parseJsonl<T>(
  file: string,
  text: string,
  options: ReadRunOptions,
  validate: (value: unknown, line: number) => T,
): { value: T; line: number }[] {
  const out: { value: T; line: number }[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    if (raw.trim() === '') continue;
    const lineNo = i + 1;
    const isTail = i === lines.length - 1; // text after the last newline: the write was cut short
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      if (isTail && options.truncatedTail === 'skip') {
        options.onSkip?.(`${file}:${lineNo}: skipped a truncated last record`);
        continue;
      }
      throw new RunRecordError(file, lineNo, isTail
        ? 'truncated record (the last line is cut short: the run was interrupted while writing, or is still running)'
        : 'corrupt record (not valid JSON)');
    }
    if (isTail && options.truncatedTail !== 'skip') {
      // A complete JSON value without its newline still means the writer did not finish.
      throw new RunRecordError(file, lineNo, 'truncated record (the last line has no newline)');
    }
    out.push({ value: validate(value, lineNo), line: lineNo });
  }
  return out;
}

/** JSON.stringify's view of a record (NaN → null), so that what is validated on write is what will be read. */
function toPlain(value: object): unknown {
  return JSON.parse(JSON.stringify(value));
}

function jsonErrorLine(err: unknown, text: string): number {
  const m = /position (\d+)/.exec((err as Error).message);
  const pos = m ? Number(m[1]) : text.length;
  return text.slice(0, pos).split('\n').length;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A number, or null (a non-finite number written by JSON.stringify) read as NaN. */
function num(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (v === null) return NaN;
  return undefined;
}

function requireNumber(obj: Record<string, unknown>, key: string, file: string, line: number | null, where = ''): number {
  const v = num(obj[key]);
  if (v === undefined) throw new RunRecordError(file, line, `${where}"${key}" must be a number, got ${show(obj[key])}`);
  return v;
}

function numberArray(v: unknown, what: string, file: string, line: number | null): number[] {
  if (!Array.isArray(v)) throw new RunRecordError(file, line, `${what} must be an array of numbers, got ${show(v)}`);
  return v.map((x, i) => {
    const n = num(x);
    if (n === undefined) throw new RunRecordError(file, line, `${what}[${i}] must be a number, got ${show(x)}`);
    return n;
  });
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? 'nothing' : s.length > 40 ? s.slice(0, 37) + '...' : s;
}

function validateManifest(v: unknown, file: string): RunManifest {
  if (!isObject(v)) throw new RunRecordError(file, null, 'the manifest must be a JSON object');
  if (v['task'] !== 'detection' && v['task'] !== 'classification') {
    throw new RunRecordError(file, null, `"task" must be "detection" or "classification", got ${show(v['task'])}`);
  }
  if (typeof v['createdAt'] !== 'string') throw new RunRecordError(file, null, '"createdAt" must be a string');
  if (!isObject(v['config'])) throw new RunRecordError(file, null, '"config" must be an object');
  const classNames = v['classNames'];
  if (classNames !== undefined && !(Array.isArray(classNames) && classNames.every((c) => typeof c === 'string'))) {
    throw new RunRecordError(file, null, '"classNames" must be an array of strings');
  }
  const tracked = v['tracked'];
  if (!Array.isArray(tracked)) throw new RunRecordError(file, null, '"tracked" must be an array');
  tracked.forEach((t: unknown, i) => {
    const at = `tracked[${i}]`;
    if (!isObject(t)) throw new RunRecordError(file, null, `${at} must be an object`);
    if (typeof t['id'] !== 'number' && typeof t['id'] !== 'string') {
      throw new RunRecordError(file, null, `${at}.id must be a number or string, got ${show(t['id'])}`);
    }
    if (t['image'] !== undefined && typeof t['image'] !== 'string') {
      throw new RunRecordError(file, null, `${at}.image must be a path string`);
    }
    if (t['box'] !== undefined) {
      const b = t['box'];
      if (!Array.isArray(b) || b.length !== 4 || !b.every((x) => typeof x === 'number' && Number.isFinite(x))) {
        throw new RunRecordError(file, null, `${at}.box must be [x1, y1, x2, y2] (4 finite numbers), got ${show(b)}`);
      }
    }
    for (const key of ['occlusion', 'truncation', 'classIndex']) {
      if (t[key] !== undefined && typeof t[key] !== 'number') {
        throw new RunRecordError(file, null, `${at}.${key} must be a number, got ${show(t[key])}`);
      }
    }
    const d = t['difficulty'];
    if (d !== undefined && d !== null && d !== 'easy' && d !== 'moderate' && d !== 'hard') {
      throw new RunRecordError(file, null, `${at}.difficulty must be "easy", "moderate", "hard" or null, got ${show(d)}`);
    }
    if (t['className'] !== undefined && typeof t['className'] !== 'string') {
      throw new RunRecordError(file, null, `${at}.className must be a string`);
    }
    if (t['noisy'] !== undefined && typeof t['noisy'] !== 'boolean') {
      throw new RunRecordError(file, null, `${at}.noisy must be true or false`);
    }
  });
  return v as unknown as RunManifest;
}

function validateSigmaEntry(v: unknown, file: string, line: number | null): SigmaEntry {
  if (!isObject(v)) throw new RunRecordError(file, line, 'a sigma record must be a JSON object');
  const epoch = requireNumber(v, 'epoch', file, line);
  const step = requireNumber(v, 'step', file, line);
  const tracked = numberArray(v['tracked'], '"tracked"', file, line);
  const g = v['groups'];
  if (!isObject(g)) throw new RunRecordError(file, line, `"groups" must be an object, got ${show(g)}`);
  const groups: Record<string, SigmaSummary> = {};
  for (const [name, s] of Object.entries(g)) {
    if (!isObject(s)) throw new RunRecordError(file, line, `groups["${name}"] must be {count, mean, std, min, max}`);
    const where = `groups["${name}"].`;
    groups[name] = {
      count: requireNumber(s, 'count', file, line, where),
      mean: requireNumber(s, 'mean', file, line, where),
      std: requireNumber(s, 'std', file, line, where),
      min: requireNumber(s, 'min', file, line, where),
      max: requireNumber(s, 'max', file, line, where),
    };
  }
  const entry: SigmaEntry = { epoch, step, tracked, groups };
  if (v['classSigma'] !== undefined) entry.classSigma = numberArray(v['classSigma'], '"classSigma"', file, line);
  if (v['noisyTopFraction'] !== undefined) entry.noisyTopFraction = requireNumber(v, 'noisyTopFraction', file, line);
  if (v['noisyTopRatio'] !== undefined) entry.noisyTopRatio = requireNumber(v, 'noisyTopRatio', file, line);
  return entry;
}

function validateMetricsEntry(v: unknown, file: string, line: number | null): MetricsEntry {
  if (!isObject(v)) throw new RunRecordError(file, line, 'a metrics record must be a JSON object');
  const kind = v['kind'];
  if (kind !== 'train' && kind !== 'val' && kind !== 'epoch') {
    throw new RunRecordError(file, line, `"kind" must be "train", "val" or "epoch", got ${show(kind)}`);
  }
  const entry: MetricsEntry = {
    kind,
    step: requireNumber(v, 'step', file, line),
    epoch: requireNumber(v, 'epoch', file, line),
  };
  for (const [key, value] of Object.entries(v)) {
    if (key === 'kind' || key === 'step' || key === 'epoch') continue;
    const n = num(value);
    if (n !== undefined) entry[key] = n;
    else if (typeof value === 'string') entry[key] = value;
    else throw new RunRecordError(file, line, `"${key}" must be a number or string, got ${show(value)}`);
  }
  return entry;
}
