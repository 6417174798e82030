#!/usr/bin/env node
/**
 * Measures the memory of reading a synthetic WebVision-sized list (default 2.4M lines):
 * `node --expose-gc dist/datasets/webvision/measure-memory.js [lines]`. Prints one JSON line.
 */
import { mkdtempSync, openSync, writeSync, closeSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { readFileLists } from './file-list.js';

async function main(): Promise<void> {
  const lines = Number(process.argv[2] ?? 2_400_000);
  const dir = mkdtempSync(path.join(tmpdir(), 'webvision-list-'));
  const file = path.join(dir, 'train_filelist_google.txt');
  const fd = openSync(file, 'w');
  let buf = '';
  for (let i = 0; i < lines; i++) {
    const q = (i % 1632) + 1;
    buf += `google/q${String(q).padStart(4, '0')}/${String(i).padStart(7, '0')}.jpg ${i % 1000}\n`;
    if (buf.length > 1 << 20) {
      writeSync(fd, buf);
      buf = '';
    }
  }
  writeSync(fd, buf);
  closeSync(fd);
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage();
  let peakRss = before.rss;
  const timer = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 20);
  const t0 = Date.now();
  const list = await readFileLists([file], { numClasses: 1000 });
  const seconds = (Date.now() - t0) / 1000;
  clearInterval(timer);
  // Let the stream's buffers and the growth arrays that trimming left behind be collected before measuring.
  await new Promise((r) => setImmediate(r));
  gc?.();
  gc?.();
  const after = process.memoryUsage();
  const mib = (b: number): number => Math.round((b / 2 ** 20) * 10) / 10;
  process.stdout.write(
    JSON.stringify({
      lines: list.count,
      fileMiB: mib(statSync(file).size),
      seconds,
      typedArrayMiB: mib(list.byteSize),
      heapUsedDeltaMiB: mib(after.heapUsed - before.heapUsed),
      arrayBuffersDeltaMiB: mib(after.arrayBuffers - before.arrayBuffers),
      rssDeltaMiB: mib(after.rss - before.rss),
      peakRssDeltaMiB: mib(peakRss - before.rss),
      gcExposed: gc !== undefined,
      lastPath: list.path(list.count - 1),
    }) + '\n',
  );
  rmSync(dir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
