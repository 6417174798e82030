/**
 * CPU-side training targets for a batch: anchors matched to boxes, class labels, regression targets, and the
 * batch-wide index of each positive anchor's box (the index of the σ that divides its logits).
 */
import type { Anchors } from './anchors/anchor-generator.js';
import type { BoxCoder } from './box-coder.js';
import { IGNORED, NEGATIVE, type Matcher } from './matcher.js';

/** Ground truth of one image, normalised to the network input (x by width, y by height). */
export interface ImageTargets {
  /** Corner-form boxes [G·4]. */
  boxes: Float32Array;
  /** Class of each box, 1..numClasses−1 (0 is background). */
  labels: Int32Array;
  /** Ignore regions (DontCare, neighbouring classes), corner form [R·4]. */
  ignore?: Float32Array;
}

export interface BatchTargets {
  batchSize: number;
  numAnchors: number;
  /** Per anchor (image-major): class label (0 for negatives and ignored anchors). */
  labels: Int32Array;
  /** Per anchor: index into the batch's boxes (images' boxes concatenated in order), or NEGATIVE / IGNORED. */
  boxIndex: Int32Array;
  /** Per anchor: regression targets (zeros except for positives). */
  locTargets: Float32Array;
  /** Boxes in the batch (the length of the σ vector the loss expects). */
  numBoxes: number;
  /** Positive anchors per image. */
  positivesPerImage: Int32Array;
}

export function buildTargets(images: ImageTargets[], anchors: Anchors, matcher: Matcher, coder: BoxCoder): BatchTargets {
  const A = anchors.count;
  const B = images.length;
  const labels = new Int32Array(B * A);
  const boxIndex = new Int32Array(B * A);
  const locTargets = new Float32Array(B * A * 4);
  const positivesPerImage = new Int32Array(B);
  let boxOffset = 0;
  for (let b = 0; b < B; b++) {
    const img = images[b]!;
    const G = img.boxes.length / 4;
    if (img.labels.length !== G) throw new Error(`image ${b} of the batch has ${G} boxes but ${img.labels.length} labels`);
    const { matched, numPositive } = matcher.match(anchors.corner, img.boxes, img.ignore ?? []);
    positivesPerImage[b] = numPositive;
    for (let a = 0; a < A; a++) {
      const m = matched[a]!;
      const o = b * A + a;
      if (m >= 0) {
        labels[o] = img.labels[m]!;
        boxIndex[o] = boxOffset + m;
        coder.encodeOne(img.boxes, m, anchors.centre, a, locTargets, o);
      } else {
        labels[o] = 0;
        boxIndex[o] = m === IGNORED ? IGNORED : NEGATIVE;
      }
    }
    boxOffset += G;
  }
  return { batchSize: B, numAnchors: A, labels, boxIndex, locTargets, numBoxes: boxOffset, positivesPerImage };
}
