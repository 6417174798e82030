/**
 * Shared types of the detection input pipeline (pure typed arrays, no tfjs).
 *
 * Coordinates: continuous pixel coordinates, pixel i covering [i, i + 1); boxes are [x1, y1, x2, y2] in that space
 * (KITTI's convention up to the sub-pixel detail, which KITTI does not specify).
 */

/** A decoded image: interleaved RGB bytes, row-major (HWC). */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Reads an image file into RGB bytes (default: sharp, `decodeImage`; tests inject in-memory images). */
export type ImageDecoder = (file: string) => Promise<RawImage>;

/** The boxes of one image: trained boxes with labels and data-parameter ids, plus ignore regions. */
export interface DetectionTarget {
  /** n × [x1, y1, x2, y2]. */
  boxes: Float32Array;
  /** n class indices, 0-based over the trained classes (no background class). */
  labels: Int32Array;
  /** n dataset-wide instance ids (index of each box's data parameter). */
  instanceIds: Int32Array;
  /** m × [x1, y1, x2, y2]: DontCare regions and neighbour classes (neither positive nor negative). */
  ignore: Float32Array;
}

/**
 * Axis-aligned map from original image pixels to output pixels: u = sx·x + tx, v = sy·y + ty. A horizontal flip makes
 * sx negative (then a box's x1 and x2 swap roles).
 */
export interface Affine {
  sx: number;
  tx: number;
  sy: number;
  ty: number;
}

export function emptyTarget(): DetectionTarget {
  return { boxes: new Float32Array(0), labels: new Int32Array(0), instanceIds: new Int32Array(0), ignore: new Float32Array(0) };
}
