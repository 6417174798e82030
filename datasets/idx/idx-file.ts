/**
 * IDX files (the MNIST / Fashion-MNIST format), raw or gzip-compressed: a 4-byte magic (0, 0, type code, number of
 * dimensions), the dimensions as big-endian uint32, then the values in row-major order, big-endian.
 */
import { promises as fs } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { DatasetFormatError } from './dataset-format-error.js';

export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  dims: number[];
  data: IdxData;
}

const TYPES: Record<number, { name: string; size: number }> = {
  0x08: { name: 'uint8', size: 1 },
  0x09: { name: 'int8', size: 1 },
  0x0b: { name: 'int16', size: 2 },
  0x0c: { name: 'int32', size: 4 },
  0x0d: { name: 'float32', size: 4 },
  0x0e: { name: 'float64', size: 8 },
};

/** True for gzip data (magic 1f 8b), so callers need not trust the file name's `.gz`. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

export function parseIdx(input: Uint8Array, file = 'idx'): IdxArray {
  let bytes = input;
  if (isGzip(bytes)) {
    try {
      bytes = gunzipSync(bytes);
    } catch (err) {
      throw new DatasetFormatError(file, null, `corrupt gzip data (${(err as Error).message})`);
    }
  }
  if (bytes.length < 4) throw new DatasetFormatError(file, null, `too short for an IDX header (${bytes.length} bytes)`);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new DatasetFormatError(file, null, 'not an IDX file (the first two bytes must be zero)');
  }
  const type = TYPES[bytes[2]!];
  if (!type) throw new DatasetFormatError(file, null, `unknown IDX type code 0x${bytes[2]!.toString(16)}`);
  const ndims = bytes[3]!;
  const headerSize = 4 + 4 * ndims;
  if (bytes.length < headerSize) throw new DatasetFormatError(file, null, `truncated header (${ndims} dimensions)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let d = 0; d < ndims; d++) dims.push(view.getUint32(4 + 4 * d, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const expected = headerSize + count * type.size;
  if (bytes.length < expected) {
    throw new DatasetFormatError(
      file,
      null,
      `truncated: dimensions [${dims.join(', ')}] need ${expected} bytes, the file has ${bytes.length}`,
    );
  }
  if (bytes.length > expected) {
    throw new DatasetFormatError(file, null, `${bytes.length - expected} unexpected trailing bytes after the data`);
  }
  let data: IdxData;
  switch (type.name) {
    case 'uint8':
      data = bytes.slice(headerSize, expected);
      break;
    case 'int8':
      data = new Int8Array(bytes.slice(headerSize, expected).buffer);
      break;
    default: {
      const out =
        type.name === 'int16'
          ? new Int16Array(count)
          : type.name === 'int32'
            ? new Int32Array(count)
            : type.name === 'float32'
              ? new Float32Array(count)
              : new Float64Array(count);
      for (let i = 0; i < count; i++) {
        const o = headerSize + i * type.size;
        out[i] =
          type.name === 'int16'
            ? view.getInt16(o, false)
            : type.name === 'int32'
              ? view.getInt32(o, false)
              : type.name === 'float32'
                ? view.getFloat32(o, false)
                : view.getFloat64(o, false);
      }
      data = out;
    }
  }
  return { dims, data };
}

export async function readIdxFile(file: string): Promise<IdxArray> {
  return parseIdx(await fs.readFile(file), file);
}

/** Encodes an IDX file (used for fixtures and exports); uint8 data only, which is what image datasets use. */
export function encodeIdxUint8(dims: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  out[2] = 0x08;
  out[3] = dims.length;
  const view = new DataView(out.buffer);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}
