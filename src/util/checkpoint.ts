/**
 * One-file checkpoints: a JSON header (anything serialisable: config, step, epoch, RNG state, schedule) followed by
 * named typed arrays (weights, optimiser slots, data parameters). Written atomically; read back bit-exactly.
 *
 * Layout: 8-byte magic "DPCKPT01", u32 header length, header JSON (utf-8), then the arrays' bytes, each starting at a
 * multiple of 8 so that they can be viewed without copying.
 */
import { promises as fs } from 'node:fs';
import { writeFileAtomic } from './atomic-file.js';

export type CheckpointArray = Float32Array | Int32Array | Uint8Array | Float64Array | Uint32Array;
type ArrayKind = 'float32' | 'int32' | 'uint8' | 'float64' | 'uint32';

export interface Checkpoint<Meta = unknown> {
  meta: Meta;
  arrays: Record<string, CheckpointArray>;
}

const MAGIC = 'DPCKPT01';

function kindOf(a: CheckpointArray): ArrayKind {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Uint8Array) return 'uint8';
  if (a instanceof Float64Array) return 'float64';
  return 'uint32';
}

function makeArray(kind: ArrayKind, buf: ArrayBuffer, offset: number, length: number): CheckpointArray {
  switch (kind) {
    case 'float32':
      return new Float32Array(buf, offset, length);
    case 'int32':
      return new Int32Array(buf, offset, length);
    case 'uint8':
      return new Uint8Array(buf, offset, length);
    case 'float64':
      return new Float64Array(buf, offset, length);
    case 'uint32':
      return new Uint32Array(buf, offset, length);
  }
}

export function encodeCheckpoint(ckpt: Checkpoint): Uint8Array[] {
  const entries: ArrayEntry[] = [];
  let offset = 0;
  for (const [name, a] of Object.entries(ckpt.arrays)) {
    entries.push({ name, kind: kindOf(a), length: a.length, offset });
    offset += Math.ceil(a.byteLength / 8) * 8;
  }
  const header = new TextEncoder().encode(JSON.stringify({ meta: ckpt.meta, arrays: entries }));
  const headerPadded = Math.ceil((16 + header.length) / 8) * 8 - 16;
  const head = new Uint8Array(16 + headerPadded);
  head.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(head.buffer).setUint32(8, header.length, true);
  new DataView(head.buffer).setUint32(12, headerPadded, true);
  head.set(header, 16);
  const chunks: Uint8Array[] = [head];
  for (const a of Object.values(ckpt.arrays)) {
    chunks.push(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    const pad = Math.ceil(a.byteLength / 8) * 8 - a.byteLength;
    if (pad > 0) chunks.push(new Uint8Array(pad));
  }
  return chunks;
}

const ARRAY_KINDS: readonly string[] = ['float32', 'int32', 'uint8', 'float64', 'uint32'] satisfies ArrayKind[];

interface ArrayEntry {
  name: string;
  kind: ArrayKind;
  length: number;
  offset: number;
}

/** The parsed header's shape: meta is the caller's to check; every array entry is checked here. */
function checkHeader<Meta>(parsed: unknown, source: string): { meta: Meta; arrays: ArrayEntry[] } {
  const h = parsed as { meta?: unknown; arrays?: unknown } | null;
  if (typeof h !== 'object' || h === null || !Array.isArray(h.arrays)) throw new Error(`${source}: corrupt header (no array list)`);
  const count = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 0;
  h.arrays.forEach((e: unknown, i) => {
    const a = e as Partial<Record<keyof ArrayEntry, unknown>> | null;
    if (typeof a !== 'object' || a === null || typeof a.name !== 'string' || typeof a.kind !== 'string' || !ARRAY_KINDS.includes(a.kind) || !count(a.length) || !count(a.offset)) {
      throw new Error(`${source}: corrupt header (array entry ${i} needs a name, a kind among ${ARRAY_KINDS.join('/')}, a length and an offset)`);
    }
  });
  return { meta: h.meta as Meta, arrays: h.arrays as ArrayEntry[] };
}

export function decodeCheckpoint<Meta = unknown>(bytes: Uint8Array, source = 'checkpoint'): Checkpoint<Meta> {
  const magic = new TextDecoder().decode(bytes.subarray(0, 8));
  if (bytes.length < 16 || magic !== MAGIC) throw new Error(`${source}: not a data-params checkpoint (bad magic)`);
  // Copy into a fresh, 8-aligned buffer so that typed-array views are always valid.
  const buf = new ArrayBuffer(bytes.length);
  new Uint8Array(buf).set(bytes);
  const view = new DataView(buf);
  const headerLength = view.getUint32(8, true);
  const headerPadded = view.getUint32(12, true);
  if (16 + headerPadded > bytes.length) throw new Error(`${source}: truncated header`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 16, headerLength)));
  } catch (err) {
    throw new Error(`${source}: corrupt header (${(err as Error).message})`);
  }
  const header = checkHeader<Meta>(parsed, source);
  const base = 16 + headerPadded;
  const arrays: Record<string, CheckpointArray> = {};
  for (const e of header.arrays) {
    const bytesPer = e.kind === 'float64' ? 8 : e.kind === 'uint8' ? 1 : 4;
    if (base + e.offset + e.length * bytesPer > bytes.length) {
      throw new Error(`${source}: truncated (array '${e.name}' runs past the end of the file)`);
    }
    arrays[e.name] = makeArray(e.kind, buf, base + e.offset, e.length);
  }
  return { meta: header.meta, arrays };
}

export async function saveCheckpoint(file: string, ckpt: Checkpoint): Promise<void> {
  await writeFileAtomic(file, encodeCheckpoint(ckpt));
}

export async function loadCheckpoint<Meta = unknown>(file: string): Promise<Checkpoint<Meta>> {
  const bytes = await fs.readFile(file);
  return decodeCheckpoint<Meta>(bytes, file);
}
