/**
 * Boxes of many images in columns (typed arrays), the form the evaluator works on: no per-box objects, so that a
 * whole validation set is scored without garbage-collector pauses.
 */
import type { KittiObject } from '../../datasets/kitti/label-file.js';

/** The object types the 2D evaluation distinguishes; every other type (Truck, Tram, Misc, ...) is OTHER. */
export const enum TypeCode {
  OTHER = 0,
  CAR = 1,
  PEDESTRIAN = 2,
  CYCLIST = 3,
  VAN = 4,
  PERSON_SITTING = 5,
  DONTCARE = 6,
}

/** Lower-case type name → code (KITTI type names compare case-insensitively). */
export const TYPE_CODES: ReadonlyMap<string, TypeCode> = new Map([
  ['car', TypeCode.CAR],
  ['pedestrian', TypeCode.PEDESTRIAN],
  ['cyclist', TypeCode.CYCLIST],
  ['van', TypeCode.VAN],
  ['person_sitting', TypeCode.PERSON_SITTING],
  ['dontcare', TypeCode.DONTCARE],
]);

export function typeCode(type: string): TypeCode {
  return TYPE_CODES.get(type.toLowerCase()) ?? TypeCode.OTHER;
}

export interface KittiBoxTable {
  /** Number of images. */
  nImages: number;
  /** Rows of image i are [start[i], start[i + 1]), in file order. */
  start: Int32Array;
  type: Uint8Array;
  /** x1 y1 x2 y2 of row r at 4r .. 4r + 3. */
  box: Float64Array;
  truncated: Float64Array;
  occluded: Float64Array;
  /** Detection score (NaN for ground truth). */
  score: Float64Array;
}

/** Appends rows image by image into growing typed arrays. */
export class BoxTableBuilder {
  private rows = 0;
  private cap: number;
  private images: number[] = [0];
  type: Uint8Array;
  box: Float64Array;
  truncated: Float64Array;
  occluded: Float64Array;
  score: Float64Array;

  constructor(capacity = 1024) {
    this.cap = Math.max(16, capacity);
    this.type = new Uint8Array(this.cap);
    this.box = new Float64Array(4 * this.cap);
    this.truncated = new Float64Array(this.cap);
    this.occluded = new Float64Array(this.cap);
    this.score = new Float64Array(this.cap);
  }

  private grow(): void {
    const cap = this.cap * 2;
    const copy = <T extends Uint8Array | Float64Array>(a: T, n: number): T => {
      const b = new (a.constructor as new (n: number) => T)(n);
      b.set(a);
      return b;
    };
    this.type = copy(this.type, cap);
    this.box = copy(this.box, 4 * cap);
    this.truncated = copy(this.truncated, cap);
    this.occluded = copy(this.occluded, cap);
    this.score = copy(this.score, cap);
    this.cap = cap;
  }

  /** Adds a row to the current image; returns its index. */
  add(type: TypeCode, x1: number, y1: number, x2: number, y2: number, truncated: number, occluded: number, score: number): number {
    if (this.rows === this.cap) this.grow();
    const r = this.rows++;
    this.type[r] = type;
    this.box[4 * r] = x1;
    this.box[4 * r + 1] = y1;
    this.box[4 * r + 2] = x2;
    this.box[4 * r + 3] = y2;
    this.truncated[r] = truncated;
    this.occluded[r] = occluded;
    this.score[r] = score;
    return r;
  }

  addObject(o: KittiObject): void {
    this.add(typeCode(o.type), o.bbox[0], o.bbox[1], o.bbox[2], o.bbox[3], o.truncated, o.occluded, o.score ?? Number.NaN);
  }

  /** Drops the rows added since the current image began (used when a file is re-read by the reference parser). */
  rewindImage(): void {
    this.rows = this.images[this.images.length - 1]!;
  }

  /** Closes the current image; the next rows belong to the next one. */
  endImage(): void {
    this.images.push(this.rows);
  }

  finish(): KittiBoxTable {
    const n = this.rows;
    return {
      nImages: this.images.length - 1,
      start: Int32Array.from(this.images),
      type: this.type.slice(0, n),
      box: this.box.slice(0, 4 * n),
      truncated: this.truncated.slice(0, n),
      occluded: this.occluded.slice(0, n),
      score: this.score.slice(0, n),
    };
  }
}

/** Columns of `lists[i]` for image i. */
export function tableFromObjects(lists: readonly (readonly KittiObject[])[]): KittiBoxTable {
  let total = 0;
  for (const l of lists) total += l.length;
  const b = new BoxTableBuilder(total);
  for (const l of lists) {
    for (const o of l) b.addObject(o);
    b.endImage();
  }
  return b.finish();
}
