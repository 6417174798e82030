/** Reads KITTI label and result directories (the object benchmark's layout) for `evaluateKitti`. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import * as path from 'node:path';
import { evaluateKernelTables, evaluateKittiTables, summarise, type KittiEvalResult } from './evaluate.js';
import { EvalKernel, KernelTooLarge } from './evaluate-wasm.js';
import type { KittiEvalClass } from './classes.js';
import type { KittiBoxTable } from './box-table.js';
import { deserialiseError, scanFiles, scanInto, type SerialisedError } from './read-files.js';
import { WasmTableScanner } from './scan-wasm.js';
import {
  chunkCount,
  chunksLeft,
  firstError,
  joinChunkScans,
  newTables,
  newChunkControl,
  scanChunks,
  scanSharedChunks,
  type ChunkJob,
  type ChunkScan,
  type PostedChunkScan,
  type TableAllocator,
} from './read-chunks.js';

export interface KittiDirsOptions {
  /** Directory of label files `<id>.txt` (e.g. training/label_2). */
  labels: string;
  /** Directory of result files `<id>.txt`, or a directory whose `data/` subdirectory holds them. */
  results: string;
  /** File listing the image ids to evaluate, one per line (e.g. ImageSets/val.txt); default: every label file. */
  ids?: string;
  /** Share the reading with a worker thread (see read-chunks.ts). Default: when there are at least
   * PARALLEL_MIN_IMAGES images and a CPU to spare (more than one, and a load average below their number minus one:
   * on a busy machine the worker's start-up and the contention cost more than its share of the files saves). Only `readKittiDirsAsync` / `evaluateKittiDirs` use it. */
  parallel?: boolean;
}

/**
 * Below this many images a worker costs more than it saves: at KITTI val's size the main thread used more CPU with
 * the worker than without (starting it, joining the tables, and both threads faulting in fresh memory at once), while
 * on much larger sets the worker takes a good share of the files. So only large sets on an idle machine gain wall
 * time (figures in docs/kitti-eval.md).
 */
export const PARALLEL_MIN_IMAGES = 10000;

export interface KittiDirsData {
  ids: string[];
  /** Ground truth of image ids[i] in rows groundTruth.start[i] .. start[i + 1]. */
  groundTruth: KittiBoxTable;
  detections: KittiBoxTable;
  /** The directory the result files were read from (results or results/data). */
  resultsDir: string;
  /** Ids with no result file: evaluated as images without detections. */
  missingResults: string[];
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function listTxt(dir: string, what: string): Set<string> {
  if (!isDirectory(dir)) throw new Error(`${what} directory not found: ${dir}`);
  const names = new Set<string>();
  for (const f of readdirSync(dir)) if (f.endsWith('.txt')) names.add(f.slice(0, -4));
  return names;
}

/** Reads an ids file: one id per line, blank lines skipped, an optional '.txt' suffix dropped. */
export function readIdsFile(file: string): { id: string; line: number }[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ids file ${file}: ${(e as Error).message}`);
  }
  const out: { id: string; line: number }[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const id = raw.trim().replace(/\.txt$/, '');
    if (id === '') return;
    if (/\s|\//.test(id)) throw new Error(`${file}:${i + 1}: not an image id: '${raw.trim()}'`);
    out.push({ id, line: i + 1 });
  });
  return out;
}

interface ImageSet {
  ids: string[];
  resultsDir: string;
}

/** The image ids (label files or --ids) and where the results are. */
function listImages(options: KittiDirsOptions): ImageSet {
  const labelNames = listTxt(options.labels, 'labels');
  const resultsDir = isDirectory(path.join(options.results, 'data')) ? path.join(options.results, 'data') : options.results;
  if (!isDirectory(resultsDir)) throw new Error(`results directory not found: ${resultsDir}`);
  let ids: string[];
  if (options.ids !== undefined) {
    const listed = readIdsFile(options.ids);
    for (const { id, line } of listed) {
      if (!labelNames.has(id)) throw new Error(`${options.ids}:${line}: no label file ${path.join(options.labels, id + '.txt')}`);
    }
    ids = [...new Set(listed.map((e) => e.id))];
  } else {
    ids = [...labelNames].sort();
  }
  if (ids.length === 0) throw new Error(`no images to evaluate: no label files (*.txt) in ${options.labels}`);
  return { ids, resultsDir };
}

/**
 * Reads ground truth and detections. A malformed line throws a KittiFormatError naming the file and the line (label
 * files are checked before result files).
 */
export function readKittiDirs(options: KittiDirsOptions): KittiDirsData {
  return readListedImages(options, listImages(options));
}

function readListedImages(options: KittiDirsOptions, { ids, resultsDir }: ImageSet): KittiDirsData {
  const groundTruth = scanFiles(options.labels, ids, 'label', false).table;
  const { table: detections, missing } = scanFiles(resultsDir, ids, 'result', true);
  return { ids, groundTruth, detections, resultsDir, missingResults: missing };
}

/** A started read worker: `read` hands it the job; null when it failed (its chunks are then read again here). */
interface ReadWorker {
  read(job: ChunkJob): Promise<PostedChunkScan | null>;
  /** Lets the process exit without waiting for the worker. */
  stop(): void;
}

type WorkerThreads = typeof import('node:worker_threads');

function startReadWorker(threads: WorkerThreads): ReadWorker {
  // stdout/stderr: true: not piped to this process's streams, whose creation costs this short process several ms
  // (the worker writes nothing). SHARE_ENV: no copy of the environment. Unmanaged fds: every file it opens it closes.
  const worker = new threads.Worker(new URL('./read-worker.js', import.meta.url), {
    stdout: true,
    stderr: true,
    env: threads.SHARE_ENV,
    trackUnmanagedFds: false,
  });
  const posted = new Promise<PostedChunkScan | null>((resolve) => {
    worker.once('message', (m: PostedChunkScan | { failed: SerialisedError }) => resolve('failed' in m ? null : m));
    worker.once('error', () => resolve(null));
    worker.once('exit', () => resolve(null));
  });
  return {
    read(job) {
      worker.postMessage(job);
      return posted;
    },
    stop() {
      worker.unref();
      void worker.terminate();
    },
  };
}

/**
 * Like readKittiDirs; with many images a worker thread reads part of the files (whatever it can claim once it has
 * started, see read-chunks.ts) while this thread reads the rest. Same tables, same first error.
 */
export function readKittiDirsAsync(options: KittiDirsOptions): Promise<KittiDirsData> {
  return readDirsAsync(options, null);
}

/**
 * Where evaluateKittiDirs wants the tables: in an evaluation kernel's memory, so that the kernel need not copy them
 * in (~60k rows of fresh memory, whose page faults are costly on a VM). The readers set `kernel`; null when they could not.
 */
interface KernelTarget {
  kernel: EvalKernel | null;
}

/** The sequential reader for a KernelTarget: both directories into one scanner, whose rows the kernel then adopts. */
function readIntoKernel(options: KittiDirsOptions, { ids, resultsDir }: ImageSet, target: KernelTarget): KittiDirsData {
  const n = ids.length;
  const scanner = new WasmTableScanner(32 * n);
  scanInto(scanner, options.labels, ids, 'label', false);
  const missingResults = scanInto(scanner, resultsDir, ids, 'result', true);
  const both = scanner.finish();
  const cols = scanner.columnAddresses();
  try {
    const kernel = new EvalKernel(cols.memory, cols.end);
    kernel.adoptTables(n, both.start, cols);
    target.kernel = kernel;
    return { ids, ...kernel.loadedTables(), resultsDir, missingResults };
  } catch (e) {
    if (!(e instanceof KernelTooLarge)) throw e;
  }
  // Beyond the kernel's memory limit: two tables for the JavaScript evaluator.
  const g = both.start[n]!;
  const rows = (t: KittiBoxTable, from: number, to: number, start: Int32Array): KittiBoxTable => ({
    nImages: n,
    start,
    type: t.type.slice(from, to),
    box: t.box.slice(4 * from, 4 * to),
    truncated: t.truncated.slice(from, to),
    occluded: t.occluded.slice(from, to),
    score: t.score.slice(from, to),
  });
  const groundTruth = rows(both, 0, g, both.start.slice(0, n + 1));
  const detections = rows(both, g, both.type.length, both.start.slice(n).map((r) => r - g));
  return { ids, groundTruth, detections, resultsDir, missingResults };
}

/** readKittiDirsAsync; with a target, the tables go into an evaluation kernel (see KernelTarget). */
async function readDirsAsync(options: KittiDirsOptions, target: KernelTarget | null): Promise<KittiDirsData> {
  const set = listImages(options);
  const cpus = availableParallelism();
  const parallel = options.parallel ?? (set.ids.length >= PARALLEL_MIN_IMAGES && cpus > 1 && loadavg()[0]! < cpus - 1);
  // Listed once: listing thousands of files is not free.
  if (!parallel) return target === null ? readListedImages(options, set) : readIntoKernel(options, set, target);
  // Loaded only here (getBuiltinModule: without the ES-module loader that import() brings into a CommonJS bundle).
  const threads =
    (process.getBuiltinModule?.('node:worker_threads') as WorkerThreads | undefined) ?? (await import('node:worker_threads'));
  const worker = startReadWorker(threads);
  const job: ChunkJob = { labels: options.labels, results: set.resultsDir, ids: set.ids, control: newChunkControl() };
  const posted = worker.read(job);
  const total = chunkCount(set.ids.length);
  const scans: ChunkScan[] = [scanSharedChunks(job)];
  // The worker's part is needed when it claimed chunks before this thread's first error (or at all).
  if (chunksLeft(scans, scans[0]!.error?.chunk ?? total).length > 0) {
    const theirs = await posted;
    if (theirs !== null) {
      const { error, ...rest } = theirs;
      scans.push(error === undefined ? rest : { ...rest, error: { chunk: error.chunk, error: deserialiseError(error.error) } });
    }
  }
  worker.stop();
  // Chunks a failed worker had claimed: read here.
  const left = chunksLeft(scans, firstError(scans)?.chunk ?? total);
  if (left.length > 0) {
    let k = 0;
    scans.push(scanChunks(job, () => (k < left.length ? left[k++]! : -1)));
  }
  const error = firstError(scans);
  if (error !== undefined) throw error.error;
  const alloc: TableAllocator =
    target === null
      ? newTables
      : (nImages, gtRows, detRows) => {
          try {
            const kernel = new EvalKernel();
            const tables = kernel.allocTables(nImages, gtRows, detRows);
            target.kernel = kernel;
            return tables;
          } catch (e) {
            if (!(e instanceof KernelTooLarge)) throw e;
            return newTables(nImages, gtRows, detRows);
          }
        };
  const { groundTruth, detections, missing } = joinChunkScans(scans, set.ids.length, alloc);
  return { ids: set.ids, groundTruth, detections, resultsDir: set.resultsDir, missingResults: missing.map((i) => set.ids[i]!) };
}

/** Reads the directories and evaluates them; `onMissingResults` hears about images without a result file. */
export async function evaluateKittiDirs(
  options: KittiDirsOptions & { classes?: readonly KittiEvalClass[]; onMissingResults?: (ids: string[], resultsDir: string) => void },
): Promise<KittiEvalResult> {
  const joined: KernelTarget = { kernel: null };
  const data = await readDirsAsync(options, joined);
  if (data.missingResults.length > 0) options.onMissingResults?.(data.missingResults, data.resultsDir);
  const classes = options.classes;
  return summarise(
    joined.kernel !== null
      ? evaluateKernelTables(joined.kernel, classes)
      : evaluateKittiTables({ groundTruth: data.groundTruth, detections: data.detections, classes }),
  );
}
