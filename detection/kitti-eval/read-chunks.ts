/**
 * Reading one image set's label and result files with two threads, balanced while it runs. The files, in the
 * sequential reader's order (every label file, then every result file), are cut into chunks of CHUNK_FILES; each
 * thread claims the next chunk from a shared counter until none is left. So the main thread never waits for a worker
 * that starts slowly (it reads more instead), and the worker takes whatever is left once it has started. The tables
 * are put back together in chunk order, and the first error in chunk order is the one the sequential reader throws:
 * every chunk before a failed one was claimed (claims only go up) and is finished by whoever claimed it.
 * Kept free of heavy imports, like read-files.ts: the worker loads it.
 */
import type { KittiBoxTable } from './box-table.js';
import { WasmTableScanner } from './scan-wasm.js';
import { scanFile, type SerialisedError } from './read-files.js';
import * as path from 'node:path';

/** Files per chunk: a short stretch of reading, so that a thread finishing last keeps the other waiting at most that long. */
export const CHUNK_FILES = 64;

/** What both threads read. */
export interface ChunkJob {
  labels: string;
  /** The results directory itself (results or results/data). */
  results: string;
  ids: string[];
  /** On a SharedArrayBuffer: [0] the next unclaimed chunk, [1] set to 1 once a thread has met an error. */
  control: Int32Array;
}

/** One thread's chunks, ascending, with their images in that order in `table`. */
export interface ChunkScan {
  chunks: number[];
  table: KittiBoxTable;
  /** Image indices (into ids) without a result file. */
  missing: number[];
  /** The error that stopped this thread, in the chunk it was reading. */
  error?: { chunk: number; error: unknown };
}

/** A ChunkScan as a worker posts it: own arrays, the error serialised. */
export interface PostedChunkScan extends Omit<ChunkScan, 'error'> {
  error?: { chunk: number; error: SerialisedError };
}

export function newChunkControl(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(8));
}

function chunksPerKind(nImages: number): number {
  return Math.ceil(nImages / CHUNK_FILES);
}

export function chunkCount(nImages: number): number {
  return 2 * chunksPerKind(nImages);
}

/** Chunk c: label files first, then result files, CHUNK_FILES images each (the last of each kind may be shorter). */
function chunkRange(c: number, nImages: number): { kind: 'label' | 'result'; from: number; to: number } {
  const perKind = chunksPerKind(nImages);
  const kind = c < perKind ? 'label' : 'result';
  const from = (c % perKind) * CHUNK_FILES;
  return { kind, from, to: Math.min(nImages, from + CHUNK_FILES) };
}

/** Reads the chunks `next` hands out (-1: no more) with one scanner; stops at the first error. */
export function scanChunks(job: ChunkJob, next: () => number): ChunkScan {
  const n = job.ids.length;
  // Normalised once, with the trailing separator.
  const labelPrefix = path.join(job.labels, '_').slice(0, -1);
  const resultPrefix = path.join(job.results, '_').slice(0, -1);
  let scanner: WasmTableScanner | null = null;
  const chunks: number[] = [];
  const missing: number[] = [];
  for (let c = next(); c >= 0; c = next()) {
    // Room for what the first chunk's kind suggests for all files (this thread may read most of them).
    scanner ??= new WasmTableScanner(32 * n);
    const { kind, from, to } = chunkRange(c, n);
    const prefix = kind === 'label' ? labelPrefix : resultPrefix;
    try {
      for (let i = from; i < to; i++) {
        if (!scanFile(scanner, prefix + job.ids[i]! + '.txt', kind, kind === 'result')) missing.push(i);
        scanner.endImage();
      }
    } catch (error) {
      Atomics.store(job.control, 1, 1);
      return { chunks, table: (scanner ?? new WasmTableScanner(16)).finish(), missing, error: { chunk: c, error } };
    }
    chunks.push(c);
  }
  return { chunks, table: (scanner ?? new WasmTableScanner(16)).finish(), missing };
}

/** Claims chunks from the shared counter until none is left or some thread has met an error. */
export function scanSharedChunks(job: ChunkJob): ChunkScan {
  const total = chunkCount(job.ids.length);
  return scanChunks(job, () => {
    if (Atomics.load(job.control, 1) !== 0) return -1;
    const c = Atomics.add(job.control, 0, 1);
    return c < total ? c : -1;
  });
}

/** The chunks before `limit` that none of `scans` read (read by a worker that failed, or not yet claimed). */
export function chunksLeft(scans: readonly ChunkScan[], limit: number): number[] {
  const done = new Uint8Array(limit);
  for (const s of scans) for (const c of s.chunks) if (c < limit) done[c] = 1;
  const left: number[] = [];
  for (let c = 0; c < limit; c++) if (done[c] === 0) left.push(c);
  return left;
}

/** The error of the earliest chunk, if any scan met one. */
export function firstError(scans: readonly ChunkScan[]): { chunk: number; error: unknown } | undefined {
  let first: { chunk: number; error: unknown } | undefined;
  for (const s of scans) if (s.error !== undefined && (first === undefined || s.error.chunk < first.chunk)) first = s.error;
  return first;
}

/** Where chunk c's images are: scan index and its first image in that scan's table. */
interface ChunkPlace {
  scan: number;
  image: number;
}

/** Tables of these sizes to fill (fresh arrays, or room in an evaluation kernel's memory). */
export type TableAllocator = (nImages: number, gtRows: number, detRows: number) => { groundTruth: KittiBoxTable; detections: KittiBoxTable };

export const newTables: TableAllocator = (nImages, gtRows, detRows) => {
  const table = (rows: number): KittiBoxTable => ({
    nImages,
    start: new Int32Array(nImages + 1),
    type: new Uint8Array(rows),
    box: new Float64Array(4 * rows),
    truncated: new Float64Array(rows),
    occluded: new Float64Array(rows),
    score: new Float64Array(rows),
  });
  return { groundTruth: table(gtRows), detections: table(detRows) };
};

function kindRows(scans: readonly ChunkScan[], places: readonly ChunkPlace[], first: number, last: number, nImages: number): number {
  let rows = 0;
  for (let c = first; c < last; c++) {
    const { from, to } = chunkRange(c, nImages);
    const p = places[c]!;
    const start = scans[p.scan]!.table.start;
    rows += start[p.image + to - from]! - start[p.image]!;
  }
  return rows;
}

function concatKind(scans: readonly ChunkScan[], places: readonly ChunkPlace[], first: number, last: number, nImages: number, out: KittiBoxTable): void {
  let row = 0;
  for (let c = first; c < last; c++) {
    const { from, to } = chunkRange(c, nImages);
    const p = places[c]!;
    const t = scans[p.scan]!.table;
    const r0 = t.start[p.image]!;
    const r1 = t.start[p.image + to - from]!;
    for (let i = from; i < to; i++) out.start[i] = row + t.start[p.image + i - from]! - r0;
    out.type.set(t.type.subarray(r0, r1), row);
    out.box.set(t.box.subarray(4 * r0, 4 * r1), 4 * row);
    out.truncated.set(t.truncated.subarray(r0, r1), row);
    out.occluded.set(t.occluded.subarray(r0, r1), row);
    out.score.set(t.score.subarray(r0, r1), row);
    row += r1 - r0;
  }
  out.start[nImages] = row;
}

/**
 * The label and result tables from scans that together read every chunk once (throws otherwise), written into
 * `alloc`'s tables.
 */
export function joinChunkScans(
  scans: readonly ChunkScan[],
  nImages: number,
  alloc: TableAllocator = newTables,
): { groundTruth: KittiBoxTable; detections: KittiBoxTable; missing: number[] } {
  const total = chunkCount(nImages);
  const places: ChunkPlace[] = new Array<ChunkPlace>(total);
  scans.forEach((s, scan) => {
    let image = 0;
    for (const c of s.chunks) {
      if (places[c] !== undefined) throw new Error(`chunk ${c} was read twice`);
      places[c] = { scan, image };
      const { from, to } = chunkRange(c, nImages);
      image += to - from;
    }
  });
  for (let c = 0; c < total; c++) if (places[c] === undefined) throw new Error(`chunk ${c} was not read`);
  const perKind = chunksPerKind(nImages);
  const missing = scans.flatMap((s) => s.missing).sort((a, b) => a - b);
  const out = alloc(nImages, kindRows(scans, places, 0, perKind, nImages), kindRows(scans, places, perKind, total, nImages));
  concatKind(scans, places, 0, perKind, nImages, out.groundTruth);
  concatKind(scans, places, perKind, total, nImages, out.detections);
  return { ...out, missing };
}
