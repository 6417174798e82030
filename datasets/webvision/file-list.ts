/**
 * WebVision 2017 list files (`info/train_filelist_google.txt`, `info/train_filelist_flickr.txt`,
 * `info/val_filelist.txt`): one "<relative path> <label>" per line. The training lists have 2.4M lines, so they are
 * streamed chunk by chunk and stored in typed arrays (path bytes concatenated + offsets, labels in an Int32Array)
 * instead of 2.4M JavaScript strings: about 40 bytes per entry instead of ~150.
 */
import { createReadStream } from 'node:fs';
import * as path from 'node:path';
import { DatasetFormatError } from '../idx/dataset-format-error.js';

const NEWLINE = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const TAB = 0x09;

/** Growable byte / uint32 / int32 storage (doubling), trimmed to size at the end. */
class Growable<T extends Uint8Array | Uint32Array | Int32Array> {
  length = 0;
  constructor(
    public data: T,
    private readonly make: (n: number) => T,
  ) {}
  reserve(extra: number): void {
    if (this.length + extra <= this.data.length) return;
    let cap = Math.max(16, this.data.length * 2);
    while (cap < this.length + extra) cap *= 2;
    const next = this.make(cap);
    next.set(this.data.subarray(0, this.length));
    this.data = next;
  }
  push(v: number): void {
    this.reserve(1);
    this.data[this.length++] = v;
  }
  trimmed(): T {
    return this.data.slice(0, this.length) as T;
  }
}

/** An immutable list of (relative path, label, source list) in typed arrays. */
export class FileList {
  private readonly decoder = new TextDecoder();
  constructor(
    readonly pathBytes: Uint8Array,
    /** count + 1 offsets into pathBytes. */
    readonly pathOffsets: Uint32Array,
    readonly labels: Int32Array,
    /** Index into `sources` of the list file each entry came from. */
    readonly sourceIds: Uint8Array,
    readonly sources: string[],
  ) {}

  get count(): number {
    return this.labels.length;
  }

  path(i: number): string {
    return this.decoder.decode(this.pathBytes.subarray(this.pathOffsets[i], this.pathOffsets[i + 1]));
  }

  /** Bytes held by the typed arrays. */
  get byteSize(): number {
    return this.pathBytes.byteLength + this.pathOffsets.byteLength + this.labels.byteLength + this.sourceIds.byteLength;
  }
}

export interface ReadListOptions {
  /** Labels must be below this (WebVision: 1000). */
  numClasses: number;
  /** Read size per chunk (bounded memory: one chunk + the growing arrays). */
  chunkSize?: number;
}

/** Streams one or more list files into one FileList, in order. */
export async function readFileLists(files: string[], options: ReadListOptions): Promise<FileList> {
  const bytes = new Growable(new Uint8Array(1 << 16), (n) => new Uint8Array(n));
  const offsets = new Growable(new Uint32Array(1 << 12), (n) => new Uint32Array(n));
  const labels = new Growable(new Int32Array(1 << 12), (n) => new Int32Array(n));
  const sourceIds = new Growable(new Uint8Array(1 << 12), (n) => new Uint8Array(n));
  offsets.push(0);
  let carry = new Uint8Array(0);
  for (let s = 0; s < files.length; s++) {
    const file = files[s]!;
    let lineNo = 0;
    const handleLine = (line: Uint8Array): void => {
      lineNo++;
      let end = line.length;
      if (end > 0 && line[end - 1] === CR) end--;
      while (end > 0 && (line[end - 1] === SPACE || line[end - 1] === TAB)) end--;
      let start = 0;
      while (start < end && (line[start] === SPACE || line[start] === TAB)) start++;
      if (start === end) return; // blank line
      let sep = end - 1;
      while (sep > start && line[sep] !== SPACE && line[sep] !== TAB) sep--;
      if (sep === start) {
        throw new DatasetFormatError(file, lineNo, 'expected "<relative path> <label>"');
      }
      let label = 0;
      for (let k = sep + 1; k < end; k++) {
        const d = line[k]! - 48;
        if (d < 0 || d > 9) {
          throw new DatasetFormatError(file, lineNo, `label '${new TextDecoder().decode(line.subarray(sep + 1, end))}' is not an integer`);
        }
        label = label * 10 + d;
      }
      if (label >= options.numClasses) {
        throw new DatasetFormatError(file, lineNo, `label ${label} is not below ${options.numClasses}`);
      }
      let pathEnd = sep;
      while (pathEnd > start && (line[pathEnd - 1] === SPACE || line[pathEnd - 1] === TAB)) pathEnd--;
      const p = line.subarray(start, pathEnd);
      bytes.reserve(p.length);
      bytes.data.set(p, bytes.length);
      bytes.length += p.length;
      if (bytes.length > 0xffffffff) throw new DatasetFormatError(file, lineNo, 'list too large (paths over 4 GiB)');
      offsets.push(bytes.length);
      labels.push(label);
      sourceIds.push(s);
    };
    const stream = createReadStream(file, { highWaterMark: options.chunkSize ?? 1 << 20 });
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        let from = 0;
        for (let i = chunk.indexOf(NEWLINE); i >= 0; i = chunk.indexOf(NEWLINE, from)) {
          if (carry.length > 0) {
            const joined = new Uint8Array(carry.length + i - from);
            joined.set(carry);
            joined.set(chunk.subarray(from, i), carry.length);
            carry = new Uint8Array(0);
            handleLine(joined);
          } else {
            handleLine(chunk.subarray(from, i));
          }
          from = i + 1;
        }
        if (from < chunk.length) {
          const rest = chunk.subarray(from);
          const joined = new Uint8Array(carry.length + rest.length);
          joined.set(carry);
          joined.set(rest, carry.length);
          carry = joined;
        }
      }
    } catch (err) {
      if (err instanceof DatasetFormatError) throw err;
      throw new DatasetFormatError(file, null, `cannot read list file (${(err as Error).message})`);
    }
    if (carry.length > 0) {
      handleLine(carry);
      carry = new Uint8Array(0);
    }
  }
  if (labels.length === 0) throw new DatasetFormatError(files.join(', '), null, 'empty file list');
  return new FileList(bytes.trimmed(), offsets.trimmed(), labels.trimmed(), sourceIds.trimmed(), files);
}

export type WebVisionSource = 'google' | 'flickr';

export interface WebVisionOptions {
  root: string;
  /** Training sources (default both, as in the paper). */
  sources?: WebVisionSource[];
  /** Where bare validation file names live (default `val_images_256`, the resized release). */
  valImageDir?: string;
  numClasses?: number;
}

export const WEBVISION_CLASSES = 1000;

export async function loadWebVisionList(options: WebVisionOptions, split: 'train' | 'val'): Promise<FileList> {
  const info = path.join(options.root, 'info');
  const files =
    split === 'train'
      ? (options.sources ?? ['google', 'flickr']).map((s) => path.join(info, `train_filelist_${s}.txt`))
      : [path.join(info, 'val_filelist.txt')];
  return readFileLists(files, { numClasses: options.numClasses ?? WEBVISION_CLASSES });
}

/** The image file of entry i: training paths are relative to root; bare validation names to `val_images_256/`. */
export function webVisionImagePath(options: WebVisionOptions, list: FileList, i: number): string {
  const rel = list.path(i);
  if (rel.includes('/')) return path.join(options.root, rel);
  return path.join(options.root, options.valImageDir ?? 'val_images_256', rel);
}
