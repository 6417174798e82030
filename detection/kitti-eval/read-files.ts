/** Reading many small KITTI files into a KittiBoxTable; kept free of heavy imports so that a worker loads it fast. */
import { closeSync, constants, openSync, readFileSync, readSync } from 'node:fs';
import * as path from 'node:path';
import { KittiFormatError, parseKittiObjects } from '../../datasets/kitti/label-file.js';
import type { KittiBoxTable } from './box-table.js';
import { WASM_INPUT_CAPACITY, WasmTableScanner } from './scan-wasm.js';

/**
 * `<dir>/<id>.txt` for every id, as image i of the table. With `allowMissing`, an id without a file (open fails with
 * ENOENT; cheaper than listing the directory, as missing files are rare) gets an empty image and is listed in
 * `missing`; otherwise that is an error. The first bad file throws (KittiFormatError naming file and line).
 * Each file is read straight into the WebAssembly scanner's input buffer: open, read, close, no allocation.
 */
export function scanFiles(
  dir: string,
  ids: readonly string[],
  kind: 'label' | 'result',
  allowMissing: boolean,
): { table: KittiBoxTable; missing: string[] } {
  const scanner = new WasmTableScanner(16 * ids.length);
  const missing = scanInto(scanner, dir, ids, kind, allowMissing);
  return { table: scanner.finish(), missing };
}

/** scanFiles into a given scanner (after the images it has); returns the missing ids. */
export function scanInto(
  scanner: WasmTableScanner,
  dir: string,
  ids: readonly string[],
  kind: 'label' | 'result',
  allowMissing: boolean,
): string[] {
  const missing: string[] = [];
  const prefix = path.join(dir, '_').slice(0, -1); // normalised once, with its trailing separator
  for (const id of ids) {
    if (!scanFile(scanner, prefix + id + '.txt', kind, allowMissing)) missing.push(id);
    scanner.endImage();
  }
  return missing;
}

/**
 * Appends one file's objects to the scanner's current image; false when the file does not exist and `allowMissing`
 * (open fails with ENOENT; cheaper than listing the directory, as missing files are rare).
 */
export function scanFile(scanner: WasmTableScanner, file: string, kind: 'label' | 'result', allowMissing: boolean): boolean {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY);
  } catch (e) {
    if (!allowMissing || (e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    return false;
  }
  let n: number;
  try {
    n = readSync(fd, scanner.input, 0, WASM_INPUT_CAPACITY, null);
  } finally {
    closeSync(fd);
  }
  // A short read of a regular file is its end; a file that fills the buffer is read whole by the reference parser.
  if (n < WASM_INPUT_CAPACITY) scanner.scan(n, file, kind);
  else scanner.addObjects(parseKittiObjects(readFileSync(file, 'utf8'), file, { kind }));
  return true;
}

/** An error as a worker can post it. */
export interface SerialisedError {
  message: string;
  format?: { file: string; line: number };
}

export function serialiseError(e: unknown): SerialisedError {
  if (e instanceof KittiFormatError) return { message: e.message, format: { file: e.file, line: e.line } };
  return { message: e instanceof Error ? e.message : String(e) };
}

export function deserialiseError(s: SerialisedError): Error {
  if (s.format === undefined) return new Error(s.message);
  const prefix = `${s.format.file}:${s.format.line}: `;
  return new KittiFormatError(s.format.file, s.format.line, s.message.startsWith(prefix) ? s.message.slice(prefix.length) : s.message);
}

/** A copy with arrays of their own (the scanner's are views of its WebAssembly memory, which cannot be transferred). */
export function ownTable(t: KittiBoxTable): KittiBoxTable {
  return {
    nImages: t.nImages,
    start: t.start.slice(),
    type: t.type.slice(),
    box: t.box.slice(),
    truncated: t.truncated.slice(),
    occluded: t.occluded.slice(),
    score: t.score.slice(),
  };
}

/** The buffers of a table from `ownTable`, to transfer. */
export function tableBuffers(t: KittiBoxTable): ArrayBuffer[] {
  return [t.start, t.type, t.box, t.truncated, t.occluded, t.score].map((a) => a.buffer as ArrayBuffer);
}
