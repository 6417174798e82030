/**
 * A fast reader of KITTI label/result files straight from bytes into a BoxTableBuilder. It handles the common form
 * (ASCII, plain decimal numbers of at most 15 digits) and hands anything else to the reference parser,
 * `parseKittiObjects`, which then decides: it returns the objects or throws its error naming the file and the line.
 * So the accepted files, the values read and the error messages are exactly the reference parser's.
 *
 * Exactness of the fast path: a decimal with at most 15 significant digits is m / 10^k with m < 2^53 and k <= 22,
 * both exact doubles, so the one division rounds correctly, to the same double as Number() (and C's strtod).
 */
import { parseKittiObjects } from '../../datasets/kitti/label-file.js';
import { BoxTableBuilder, TYPE_CODES, TypeCode } from './box-table.js';

const POW10 = Float64Array.from({ length: 23 }, (_, k) => Number(`1e${k}`));

function isSpace(c: number): boolean {
  // The ASCII characters of JavaScript's \s: space, \t, \n, \v, \f, \r.
  return c === 32 || (c >= 9 && c <= 13);
}

/** The type names as bytes, with their codes. */
const NAMES: readonly (readonly [TypeCode, Uint8Array])[] = Array.from(TYPE_CODES, ([name, code]) => [code, new TextEncoder().encode(name)] as const);

/** Type code of bytes [s, e), ASCII case-insensitive; -1 when a byte is not ASCII. */
function typeOfBytes(buf: Uint8Array, s: number, e: number): number {
  for (let i = s; i < e; i++) if (buf[i]! >= 128) return -1;
  const n = e - s;
  for (const [code, name] of NAMES) {
    if (name.length !== n) continue;
    let k = 0;
    while (k < n) {
      const c = buf[s + k]!;
      if ((c >= 65 && c <= 90 ? c + 32 : c) !== name[k]) break;
      k++;
    }
    if (k === n) return code;
  }
  return TypeCode.OTHER;
}

const MAX_FIELDS = 16;
/** Values of the current line's fields 1..15 (field 0 is the type); only the USED ones are filled. */
const vals = new Float64Array(MAX_FIELDS);
const USED = Uint8Array.from({ length: MAX_FIELDS }, (_, k) => (k === 1 || k === 2 || (k >= 4 && k <= 7) || k === 15 ? 1 : 0));

/**
 * Appends the objects of one file (bytes [0, length) of buf) as rows of the builder's current image. Blank lines
 * are skipped. Returns false when the file needs the reference parser (rows added so far must then be dropped).
 * One pass over the bytes: each field after the type must be a plain decimal [+-]?(d+(.d*)?|.d+) of at most 15 digits.
 */
function scanFast(buf: Uint8Array, length: number, kind: 'label' | 'result', out: BoxTableBuilder): boolean {
  let i = 0;
  while (i < length) {
    let n = 0;
    let type = -1;
    // Fields until the end of the line.
    while (i < length) {
      let c = buf[i]!;
      if (c === 10) break;
      if (c === 32 || (c >= 9 && c <= 13)) {
        i++;
        continue;
      }
      if (n === MAX_FIELDS) return false;
      if (n === 0) {
        const s = i;
        while (i < length && !isSpace(buf[i]!)) i++;
        type = typeOfBytes(buf, s, i);
        if (type < 0) return false;
        n = 1;
        continue;
      }
      let neg = false;
      if (c === 45 || c === 43) {
        neg = c === 45;
        c = ++i < length ? buf[i]! : 32;
      }
      let m = 0;
      let digits = 0;
      let frac = -1; // digits after the point, -1 before it
      while (true) {
        if (c >= 48 && c <= 57) {
          m = m * 10 + (c - 48);
          digits++;
          if (frac >= 0) frac++;
        } else if (c === 46 && frac < 0) {
          frac = 0;
        } else {
          break;
        }
        c = ++i < length ? buf[i]! : 32;
      }
      if (digits === 0 || digits > 15 || !isSpace(c)) return false;
      // Only the columns the evaluation uses are converted (truncated, occluded, the box, the score).
      if (USED[n] === 1) {
        const v = frac <= 0 ? m : m / POW10[frac]!;
        vals[n] = neg ? -v : v;
      }
      n++;
    }
    i++; // past '\n'
    if (n === 0) continue;
    if (kind === 'result' ? n !== 16 : n !== 15 && n !== 16) return false;
    const occluded = vals[2]!;
    if (!Number.isInteger(occluded) || occluded < -1 || occluded > 3) return false;
    out.add(type, vals[4]!, vals[5]!, vals[6]!, vals[7]!, vals[1]!, occluded, n === 16 ? vals[15]! : Number.NaN);
  }
  return true;
}

/** Reads one label ('label') or result ('result') file's bytes into the builder's current image (not closed). */
export function scanKittiFile(buf: Uint8Array, length: number, file: string, kind: 'label' | 'result', out: BoxTableBuilder): void {
  if (scanFast(buf, length, kind, out)) return;
  out.rewindImage();
  const text = new TextDecoder('utf-8').decode(buf.subarray(0, length));
  for (const o of parseKittiObjects(text, file, { kind })) out.addObject(o);
}
