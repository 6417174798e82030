/** Reads KITTI label and result directories (the object benchmark's layout) for `evaluateKitti`. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import * as path from 'node:path';
import { evaluateKittiTables, summarise, type KittiEvalResult } from './evaluate.js';
import type { KittiEvalClass } from './classes.js';
import type { KittiBoxTable } from './box-table.js';
import { deserialiseError, scanFiles, type SerialisedError } from './read-files.js';
import type { ReadWorkerData } from './read-worker.js';

export interface KittiDirsOptions {
  /** Directory of label files `<id>.txt` (e.g. training/label_2). */
  labels: string;
  /** Directory of result files `<id>.txt`, or a directory whose `data/` subdirectory holds them. */
  results: string;
  /** File listing the image ids to evaluate, one per line (e.g. ImageSets/val.txt); default: every label file. */
  ids?: string;
  /** Read the label files in a worker thread while this thread reads the results. Default: when there are at least
   * PARALLEL_MIN_IMAGES images and a CPU to spare (more than one, and a load average below their number minus one:
   * on a saturated machine the worker only adds its start-up). Only `readKittiDirsAsync` / `evaluateKittiDirs` use it. */
  parallel?: boolean;
}

/** Below this many images a worker costs more than it saves. */
export const PARALLEL_MIN_IMAGES = 1000;

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

/** Like readKittiDirs; with many images the label files are read by a worker thread in parallel with the results. */
export async function readKittiDirsAsync(options: KittiDirsOptions): Promise<KittiDirsData> {
  const set = listImages(options);
  const cpus = availableParallelism();
  const parallel = options.parallel ?? (set.ids.length >= PARALLEL_MIN_IMAGES && cpus > 1 && loadavg()[0]! < cpus - 1);
  if (!parallel) return readListedImages(options, set); // listed once: listing costs ~5 ms per 3769 files
  const workerData: ReadWorkerData = { dir: options.labels, ids: set.ids, kind: 'label' };
  // Loaded here, not at the top: a sequential run need not pay for loading the worker machinery.
  const { Worker } = await import('node:worker_threads');
  const worker = new Worker(new URL('./read-worker.js', import.meta.url), { workerData });
  // A format error found by the worker is the answer; a worker that fails to run at all is replaced by this thread.
  const labels = new Promise<KittiBoxTable>((resolve, reject) => {
    let settled = false;
    const fallback = (): void => {
      if (settled) return;
      settled = true;
      try {
        resolve(scanFiles(options.labels, set.ids, 'label', false).table);
      } catch (e) {
        reject(e);
      }
    };
    worker.once('message', (m: { table?: KittiBoxTable; error?: SerialisedError }) => {
      settled = true;
      if (m.error !== undefined) reject(deserialiseError(m.error));
      else resolve(m.table!);
    });
    worker.once('error', fallback);
    worker.once('exit', fallback);
  });
  let results: { table: KittiBoxTable; missing: string[] } | undefined;
  let resultsError: unknown;
  try {
    results = scanFiles(set.resultsDir, set.ids, 'result', true);
  } catch (e) {
    resultsError = e;
  }
  try {
    // Label errors first, as in the sequential reader.
    const groundTruth = await labels;
    if (results === undefined) throw resultsError;
    return { ids: set.ids, groundTruth, detections: results.table, resultsDir: set.resultsDir, missingResults: results.missing };
  } finally {
    await worker.terminate();
  }
}

/** Reads the directories and evaluates them; `onMissingResults` hears about images without a result file. */
export async function evaluateKittiDirs(
  options: KittiDirsOptions & { classes?: readonly KittiEvalClass[]; onMissingResults?: (ids: string[], resultsDir: string) => void },
): Promise<KittiEvalResult> {
  const data = await readKittiDirsAsync(options);
  if (data.missingResults.length > 0) options.onMissingResults?.(data.missingResults, data.resultsDir);
  return summarise(evaluateKittiTables({ groundTruth: data.groundTruth, detections: data.detections, classes: options.classes }));
}
