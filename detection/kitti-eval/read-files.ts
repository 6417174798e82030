/** Reading many small KITTI files into a KittiBoxTable; kept free of heavy imports so that a worker loads it fast. */
import { closeSync, constants, openSync, readSync } from 'node:fs';
import * as path from 'node:path';
import { KittiFormatError } from '../../datasets/kitti/label-file.js';
import { BoxTableBuilder, type KittiBoxTable } from './box-table.js';
import { scanKittiFile } from './scan.js';

/** Reads whole files into one reused buffer: open, read, close, and no allocation per file. */
class FileReader {
  buffer = new Uint8Array(1 << 16);

  /** Reads the file; its bytes are buffer[0 .. returned length). */
  read(file: string): number {
    const fd = openSync(file, constants.O_RDONLY);
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

/**
 * `<dir>/<id>.txt` for every id, as image i of the table. When `present` is given, ids it lacks have no file: they
 * get an empty image and are listed in `missing`. The first bad file throws (KittiFormatError naming file and line).
 */
export function scanFiles(
  dir: string,
  ids: readonly string[],
  kind: 'label' | 'result',
  present: ReadonlySet<string> | null,
): { table: KittiBoxTable; missing: string[] } {
  const builder = new BoxTableBuilder(16 * ids.length);
  const reader = new FileReader();
  const missing: string[] = [];
  const prefix = path.join(dir, '_').slice(0, -1); // normalised once, with its trailing separator
  for (const id of ids) {
    if (present === null || present.has(id)) {
      const file = prefix + id + '.txt';
      scanKittiFile(reader.buffer, reader.read(file), file, kind, builder);
    } else {
      missing.push(id);
    }
    builder.endImage();
  }
  return { table: builder.finish(), missing };
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

export function tableBuffers(t: KittiBoxTable): ArrayBuffer[] {
  return [t.start, t.type, t.box, t.truncated, t.occluded, t.score].map((a) => a.buffer as ArrayBuffer);
}
