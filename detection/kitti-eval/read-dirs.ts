/** Reads KITTI label and result directories (the object benchmark's layout) for `evaluateKitti`. */
import { closeSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { evaluateKittiTables, summarise, type KittiEvalResult } from './evaluate.js';
import type { KittiEvalClass } from './classes.js';
import { BoxTableBuilder, type KittiBoxTable } from './box-table.js';
import { scanKittiFile } from './scan.js';

export interface KittiDirsOptions {
  /** Directory of label files `<id>.txt` (e.g. training/label_2). */
  labels: string;
  /** Directory of result files `<id>.txt`, or a directory whose `data/` subdirectory holds them. */
  results: string;
  /** File listing the image ids to evaluate, one per line (e.g. ImageSets/val.txt); default: every label file. */
  ids?: string;
}

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

/** Reads ground truth and detections. A malformed line throws a KittiFormatError naming the file and the line. */
export function readKittiDirs(options: KittiDirsOptions): KittiDirsData {
  const labelNames = listTxt(options.labels, 'labels');
  const resultsDir = isDirectory(path.join(options.results, 'data')) ? path.join(options.results, 'data') : options.results;
  const resultNames = listTxt(resultsDir, 'results');
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
  const groundTruth = new BoxTableBuilder(16 * ids.length);
  const detections = new BoxTableBuilder(16 * ids.length);
  const missingResults: string[] = [];
  const reader = new FileReader();
  for (const id of ids) {
    const labelFile = path.join(options.labels, id + '.txt');
    scanKittiFile(reader.buffer, reader.read(labelFile), labelFile, 'label', groundTruth);
    groundTruth.endImage();
    if (resultNames.has(id)) {
      const resultFile = path.join(resultsDir, id + '.txt');
      scanKittiFile(reader.buffer, reader.read(resultFile), resultFile, 'result', detections);
    } else {
      missingResults.push(id);
    }
    detections.endImage();
  }
  return { ids, groundTruth: groundTruth.finish(), detections: detections.finish(), resultsDir, missingResults };
}

/** Reads whole files into one reused buffer: open, read, close, and no allocation per file. */
class FileReader {
  buffer = new Uint8Array(1 << 16);

  /** Reads the file; its bytes are buffer[0 .. returned length). */
  read(file: string): number {
    const fd = openSync(file, 'r');
    try {
      let n = 0;
      while (true) {
        const got = readSync(fd, this.buffer, n, this.buffer.length - n, null);
        n += got;
        // A short read of a regular file is its end.
        if (got === 0 || n < this.buffer.length) return n;
        const bigger = new Uint8Array(this.buffer.length * 2);
        bigger.set(this.buffer);
        this.buffer = bigger;
      }
    } finally {
      closeSync(fd);
    }
  }
}

/** Reads the directories and evaluates them; `onMissingResults` hears about images without a result file. */
export function evaluateKittiDirs(
  options: KittiDirsOptions & { classes?: readonly KittiEvalClass[]; onMissingResults?: (ids: string[], resultsDir: string) => void },
): KittiEvalResult {
  const data = readKittiDirs(options);
  if (data.missingResults.length > 0) options.onMissingResults?.(data.missingResults, data.resultsDir);
  return summarise(evaluateKittiTables({ groundTruth: data.groundTruth, detections: data.detections, classes: options.classes }));
}
