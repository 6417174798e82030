/**
 * Anchor ↔ ground-truth matching (SSD): an anchor is positive for the box it overlaps most if that IoU ≥ 0.5, and every
 * box's best anchor is forced positive for that box (so no box goes untrained, however small or oddly shaped). The
 * matched box index is KEPT per anchor: the per-box data parameter needs to know which box an anchor learns from.
 *
 * Ignore regions (KITTI DontCare, and neighbouring classes such as Van when training Car, which the KITTI metric also
 * ignores) make an otherwise negative anchor "ignored" (neither positive nor negative) when more than
 * `ignoreOverlap` of the anchor's area lies inside one of them.
 */
import { boxArea, intersection, iou } from './boxes.js';

export const NEGATIVE = -1;
export const IGNORED = -2;

export interface MatcherOptions {
  /** IoU at or above which an anchor is positive (default 0.5). */
  iouThreshold?: number;
  /** Fraction of an anchor's area inside an ignore region above which a negative anchor is ignored (default 0.5). */
  ignoreOverlap?: number;
}

export interface MatchResult {
  /** Per anchor: index of the matched box (≥ 0), NEGATIVE (−1) or IGNORED (−2). */
  matched: Int32Array;
  /** Per anchor: its IoU with the box it matched (0 for negatives and ignored anchors). */
  overlap: Float32Array;
  numPositive: number;
}

export class Matcher {
  readonly iouThreshold: number;
  readonly ignoreOverlap: number;

  constructor(options: MatcherOptions = {}) {
    this.iouThreshold = options.iouThreshold ?? 0.5;
    this.ignoreOverlap = options.ignoreOverlap ?? 0.5;
  }

  /**
   * @param anchors corner form [A·4]
   * @param boxes ground-truth boxes, corner form [G·4] (same normalisation as the anchors)
   * @param ignore ignore regions, corner form [R·4]
   */
  match(anchors: ArrayLike<number>, boxes: ArrayLike<number>, ignore: ArrayLike<number> = []): MatchResult {
    const A = anchors.length / 4, G = boxes.length / 4, R = ignore.length / 4;
    const matched = new Int32Array(A).fill(NEGATIVE);
    const overlap = new Float32Array(A);
    const bestAnchor = new Int32Array(G).fill(-1);
    const bestAnchorIoU = new Float32Array(G).fill(-1);
    for (let a = 0; a < A; a++) {
      let best = -1, bestIoU = 0;
      for (let g = 0; g < G; g++) {
        const v = iou(anchors, a, boxes, g);
        if (v > bestIoU) {
          bestIoU = v;
          best = g;
        }
        if (v > bestAnchorIoU[g]!) {
          bestAnchorIoU[g] = v;
          bestAnchor[g] = a;
        }
      }
      if (best >= 0 && bestIoU >= this.iouThreshold) {
        matched[a] = best;
        overlap[a] = bestIoU;
      }
    }
    // Forced matches; a later box wins an anchor two boxes both chose (rare: it needs two boxes with the same best anchor).
    for (let g = 0; g < G; g++) {
      const a = bestAnchor[g]!;
      if (a >= 0 && bestAnchorIoU[g]! > 0) {
        matched[a] = g;
        overlap[a] = bestAnchorIoU[g]!;
      }
    }
    if (R > 0) {
      for (let a = 0; a < A; a++) {
        if (matched[a] !== NEGATIVE) continue;
        const area = boxArea(anchors, a);
        if (area <= 0) continue;
        for (let r = 0; r < R; r++) {
          if (intersection(anchors, a, ignore, r) / area > this.ignoreOverlap) {
            matched[a] = IGNORED;
            break;
          }
        }
      }
    }
    let numPositive = 0;
    for (let a = 0; a < A; a++) if (matched[a]! >= 0) numPositive++;
    return { matched, overlap, numPositive };
  }
}
