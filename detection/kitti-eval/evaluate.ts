/**
 * The KITTI object benchmark's 2D detection metric, reproducing `evaluate_object.cpp` of the official devkit
 * (post-2019) rule for rule; see README "evaluate-kitti" and shared/notes/kitti-evaluation.md. All arithmetic is in
 * doubles with the devkit's expressions in the devkit's order, so results agree with it to the last bit.
 *
 * Speed: boxes are packed per class into typed arrays once; overlaps are computed once per (ground truth, detection)
 * pair and shared by the three difficulties and the 41 score thresholds; an image is only re-matched for a threshold
 * when the set of its detections above the threshold changed (the sets are nested, so equal counts mean equal sets).
 */
import type { KittiObject } from '../../datasets/kitti/label-file.js';
import { KITTI_DIFFICULTIES, type KittiDifficulty } from '../../datasets/kitti/label-file.js';
import { KITTI_CLASS_PARAMS, KITTI_EVAL_CLASSES, type KittiEvalClass } from './classes.js';

/** Number of recall sample points of the devkit (N_SAMPLE_PTS). */
export const N_SAMPLE_PTS = 41;
/** The devkit's "no detection" score sentinel: a detection scored at or below it never matches in pass 1. */
const NO_DETECTION = -10000;
/** Detections lower than the largest minimum height may be ignored detections for some difficulty. */
const MAX_MIN_HEIGHT = Math.max(...KITTI_DIFFICULTIES.map((d) => d.minHeight));

export interface KittiApEntry {
  /** PASCAL 11-point AP in percent: mean precision at sample points 0, 4, ..., 40 (KITTI server until Oct 2019). */
  ap11: number;
  /** AP|R40 in percent: mean precision at sample points 1..40 (KITTI server since 8 Oct 2019). */
  ap40: number;
  /** Number of valid (non-ignored) ground-truth boxes at this difficulty. */
  gt: number;
}

export interface KittiApDetail extends KittiApEntry {
  /** The score thresholds the devkit selected (descending), at most 41. */
  thresholds: number[];
  /** The 41 monotone precision values (slots past the number of thresholds are 0). */
  precision: number[];
  /** True and false positives at each threshold. */
  tp: number[];
  fp: number[];
}

export type KittiClassResult<E extends KittiApEntry = KittiApEntry> = Record<KittiDifficulty, E>;
/** Keyed by lower-case class name, in the order the classes were asked for. */
export type KittiEvalResult<E extends KittiApEntry = KittiApEntry> = Partial<Record<KittiEvalClass, KittiClassResult<E>>>;

export interface KittiEvalInput {
  /** Ground truth per image id (label file contents, DontCare included). The image set is its keys. */
  groundTruth: ReadonlyMap<string, readonly KittiObject[]>;
  /** Detections per image id (each with a score); an image absent here has no detections. */
  detections: ReadonlyMap<string, readonly KittiObject[]>;
  /** Classes to evaluate; default car, pedestrian, cyclist. */
  classes?: readonly KittiEvalClass[];
}

/** Per-class, per-difficulty AP11 and AP|R40 (percent) and the number of valid ground-truth boxes. */
export function evaluateKitti(input: KittiEvalInput): KittiEvalResult {
  const detailed = evaluateKittiDetailed(input);
  const out: KittiEvalResult = {};
  for (const [cls, byDifficulty] of Object.entries(detailed) as [KittiEvalClass, KittiClassResult<KittiApDetail>][]) {
    const entry = (d: KittiApDetail): KittiApEntry => ({ ap11: d.ap11, ap40: d.ap40, gt: d.gt });
    out[cls] = { easy: entry(byDifficulty.easy), moderate: entry(byDifficulty.moderate), hard: entry(byDifficulty.hard) };
  }
  return out;
}

/** Like `evaluateKitti`, with the selected thresholds, the precision curve and TP/FP counts. */
export function evaluateKittiDetailed(input: KittiEvalInput): KittiEvalResult<KittiApDetail> {
  for (const [id, dets] of input.detections) {
    if (!input.groundTruth.has(id)) throw new Error(`detections given for image '${id}', which has no ground truth entry`);
    dets.forEach((d, k) => {
      if (d.score === undefined || !Number.isFinite(d.score)) {
        throw new Error(`detection ${k + 1} (${d.type}) of image '${id}' has no finite score`);
      }
    });
  }
  const ids = [...input.groundTruth.keys()];
  const gtLists = ids.map((id) => input.groundTruth.get(id)!);
  const detLists = ids.map((id) => input.detections.get(id) ?? []);
  const out: KittiEvalResult<KittiApDetail> = {};
  for (const cls of input.classes ?? KITTI_EVAL_CLASSES) {
    const packed = packClass(cls, gtLists, detLists);
    const minOverlap = KITTI_CLASS_PARAMS[cls].minOverlap;
    out[cls] = {
      easy: evaluateDifficulty(packed, minOverlap, KITTI_DIFFICULTIES[0]),
      moderate: evaluateDifficulty(packed, minOverlap, KITTI_DIFFICULTIES[1]),
      hard: evaluateDifficulty(packed, minOverlap, KITTI_DIFFICULTIES[2]),
    };
  }
  return out;
}

/** The boxes of one class, in file order, without the objects the devkit skips for it at every difficulty. */
interface PackedClass {
  nImages: number;
  /** Ground truth of the class or its neighbour class; image i owns [gtStart[i], gtStart[i+1]). */
  gtStart: Int32Array;
  gtNeighbour: Uint8Array;
  gtHeight: Float64Array;
  gtOccluded: Float64Array;
  gtTruncated: Float64Array;
  /** Detections of the class, and detections of any class lower than the largest minimum height. */
  detStart: Int32Array;
  detOfClass: Uint8Array;
  /** (int)|y1 - y2|, as the devkit truncates it. */
  detIntHeight: Float64Array;
  detScore: Float64Array;
  /** 1 when some DontCare box covers more than minOverlap of the detection's area. */
  detInDontCare: Uint8Array;
  /** IoU of image i's ground truth g and detection d at iouStart[i] + g * nDet(i) + d. */
  iouStart: Int32Array;
  iou: Float64Array;
  maxDetsPerImage: number;
}

/** The devkit's imageBoxOverlap(det, gt, -1): intersection over union, areas without +1. */
function boxIou(a: readonly number[], b: readonly number[]): number {
  const x1 = a[0]! < b[0]! ? b[0]! : a[0]!;
  const y1 = a[1]! < b[1]! ? b[1]! : a[1]!;
  const x2 = a[2]! > b[2]! ? b[2]! : a[2]!;
  const y2 = a[3]! > b[3]! ? b[3]! : a[3]!;
  const w = x2 - x1;
  const h = y2 - y1;
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  const aArea = (a[2]! - a[0]!) * (a[3]! - a[1]!);
  const bArea = (b[2]! - b[0]!) * (b[3]! - b[1]!);
  return inter / (aArea + bArea - inter);
}

/** The devkit's imageBoxOverlap(det, dontcare, 0): intersection over the detection's area. */
function overlapOverFirst(a: readonly number[], b: readonly number[]): number {
  const x1 = a[0]! < b[0]! ? b[0]! : a[0]!;
  const y1 = a[1]! < b[1]! ? b[1]! : a[1]!;
  const x2 = a[2]! > b[2]! ? b[2]! : a[2]!;
  const y2 = a[3]! > b[3]! ? b[3]! : a[3]!;
  const w = x2 - x1;
  const h = y2 - y1;
  if (w <= 0 || h <= 0) return 0;
  return (w * h) / ((a[2]! - a[0]!) * (a[3]! - a[1]!));
}

function packClass(cls: KittiEvalClass, gtLists: (readonly KittiObject[])[], detLists: (readonly KittiObject[])[]): PackedClass {
  const { neighbour, minOverlap } = KITTI_CLASS_PARAMS[cls];
  const nImages = gtLists.length;
  const gtStart = new Int32Array(nImages + 1);
  const detStart = new Int32Array(nImages + 1);
  const iouStart = new Int32Array(nImages + 1);
  // Selection per image, kept for the fill pass.
  const gtSel: KittiObject[][] = new Array<KittiObject[]>(nImages);
  const gtNb: boolean[][] = new Array<boolean[]>(nImages);
  const dcSel: KittiObject[][] = new Array<KittiObject[]>(nImages);
  const detSel: KittiObject[][] = new Array<KittiObject[]>(nImages);
  const detCls: boolean[][] = new Array<boolean[]>(nImages);
  let nGt = 0;
  let nDet = 0;
  let nIou = 0;
  let maxDets = 0;
  for (let i = 0; i < nImages; i++) {
    const g: KittiObject[] = [];
    const nb: boolean[] = [];
    const dc: KittiObject[] = [];
    for (const o of gtLists[i]!) {
      const t = o.type.toLowerCase();
      if (t === cls) {
        g.push(o);
        nb.push(false);
      } else if (t === neighbour) {
        g.push(o);
        nb.push(true);
      } else if (t === 'dontcare') {
        dc.push(o);
      }
    }
    const d: KittiObject[] = [];
    const dcls: boolean[] = [];
    for (const o of detLists[i]!) {
      const ofClass = o.type.toLowerCase() === cls;
      if (ofClass || Math.trunc(Math.abs(o.bbox[1] - o.bbox[3])) < MAX_MIN_HEIGHT) {
        d.push(o);
        dcls.push(ofClass);
      }
    }
    gtSel[i] = g;
    gtNb[i] = nb;
    dcSel[i] = dc;
    detSel[i] = d;
    detCls[i] = dcls;
    gtStart[i] = nGt;
    detStart[i] = nDet;
    iouStart[i] = nIou;
    nGt += g.length;
    nDet += d.length;
    nIou += g.length * d.length;
    if (d.length > maxDets) maxDets = d.length;
  }
  gtStart[nImages] = nGt;
  detStart[nImages] = nDet;
  iouStart[nImages] = nIou;

  const gtNeighbour = new Uint8Array(nGt);
  const gtHeight = new Float64Array(nGt);
  const gtOccluded = new Float64Array(nGt);
  const gtTruncated = new Float64Array(nGt);
  const detOfClass = new Uint8Array(nDet);
  const detIntHeight = new Float64Array(nDet);
  const detScore = new Float64Array(nDet);
  const detInDontCare = new Uint8Array(nDet);
  const iou = new Float64Array(nIou);
  for (let i = 0; i < nImages; i++) {
    const g = gtSel[i]!;
    const d = detSel[i]!;
    const g0 = gtStart[i]!;
    const d0 = detStart[i]!;
    for (let k = 0; k < g.length; k++) {
      const o = g[k]!;
      gtNeighbour[g0 + k] = gtNb[i]![k] ? 1 : 0;
      gtHeight[g0 + k] = o.bbox[3] - o.bbox[1];
      gtOccluded[g0 + k] = o.occluded;
      gtTruncated[g0 + k] = o.truncated;
    }
    for (let k = 0; k < d.length; k++) {
      const o = d[k]!;
      detOfClass[d0 + k] = detCls[i]![k] ? 1 : 0;
      detIntHeight[d0 + k] = Math.trunc(Math.abs(o.bbox[1] - o.bbox[3]));
      detScore[d0 + k] = o.score!;
      for (const c of dcSel[i]!) {
        if (overlapOverFirst(o.bbox, c.bbox) > minOverlap) {
          detInDontCare[d0 + k] = 1;
          break;
        }
      }
    }
    const base = iouStart[i]!;
    for (let a = 0; a < g.length; a++) {
      for (let b = 0; b < d.length; b++) iou[base + a * d.length + b] = boxIou(d[b]!.bbox, g[a]!.bbox);
    }
  }
  return {
    nImages,
    gtStart,
    gtNeighbour,
    gtHeight,
    gtOccluded,
    gtTruncated,
    detStart,
    detOfClass,
    detIntHeight,
    detScore,
    detInDontCare,
    iouStart,
    iou,
    maxDetsPerImage: maxDets,
  };
}

/** The devkit's getThresholds: from the scores of pass-1 true positives, one score per 1/40 step of recall. */
export function selectThresholds(scores: Float64Array | number[], nGroundTruth: number): number[] {
  const v = Float64Array.from(scores).sort().reverse();
  const t: number[] = [];
  let currentRecall = 0;
  const n = v.length;
  for (let i = 0; i < n; i++) {
    const lRecall = (i + 1) / nGroundTruth;
    const rRecall = i < n - 1 ? (i + 2) / nGroundTruth : lRecall;
    if (rRecall - currentRecall < currentRecall - lRecall && i < n - 1) continue;
    t.push(v[i]!);
    currentRecall += 1.0 / (N_SAMPLE_PTS - 1.0);
  }
  return t;
}

/** Precision at the thresholds, made non-increasing exactly as the devkit does it (std::max_element over [i, 41)). */
export function monotonePrecision(tp: readonly number[], fp: readonly number[]): number[] {
  const nThr = tp.length;
  const precision = new Array<number>(Math.max(N_SAMPLE_PTS, nThr)).fill(0);
  for (let i = 0; i < nThr; i++) precision[i] = tp[i]! / (tp[i]! + fp[i]!);
  for (let i = 0; i < nThr; i++) {
    // std::max_element keeps the first element unless a later one compares greater (NaN never does).
    let largest = precision[i]!;
    for (let k = i + 1; k < N_SAMPLE_PTS; k++) if (largest < precision[k]!) largest = precision[k]!;
    precision[i] = largest;
  }
  return precision.slice(0, N_SAMPLE_PTS);
}

export function averagePrecision11(precision: readonly number[]): number {
  let sum = 0;
  for (let i = 0; i < N_SAMPLE_PTS; i += 4) sum += precision[i]!;
  return (sum / 11) * 100;
}

export function averagePrecisionR40(precision: readonly number[]): number {
  let sum = 0;
  for (let i = 1; i < N_SAMPLE_PTS; i++) sum += precision[i]!;
  return (sum / 40) * 100;
}

interface Difficulty {
  minHeight: number;
  maxOcclusion: number;
  maxTruncation: number;
}

function evaluateDifficulty(p: PackedClass, minOverlap: number, diff: Difficulty): KittiApDetail {
  const { gtStart, detStart, iouStart, iou, detScore } = p;
  const nGtTotal = gtStart[p.nImages]!;
  const nDetTotal = detStart[p.nImages]!;

  // cleanData: 0 valid, 1 ignored, -1 skipped.
  const ignGt = new Int8Array(nGtTotal);
  let nGt = 0;
  for (let g = 0; g < nGtTotal; g++) {
    const filtered = p.gtOccluded[g]! > diff.maxOcclusion || p.gtTruncated[g]! > diff.maxTruncation || p.gtHeight[g]! <= diff.minHeight;
    if (p.gtNeighbour[g] === 0 && !filtered) {
      ignGt[g] = 0;
      nGt++;
    } else {
      ignGt[g] = 1;
    }
  }
  const ignDet = new Int8Array(nDetTotal);
  for (let d = 0; d < nDetTotal; d++) {
    ignDet[d] = p.detIntHeight[d]! < diff.minHeight ? 1 : p.detOfClass[d] === 1 ? 0 : -1;
  }

  const assigned = new Uint8Array(p.maxDetsPerImage);

  // Pass 1 (compute_fp = false): each ground truth takes the highest-scoring unassigned overlapping detection.
  const v = new Float64Array(nGt);
  let nv = 0;
  for (let i = 0; i < p.nImages; i++) {
    const d0 = detStart[i]!;
    const nd = detStart[i + 1]! - d0;
    if (nd === 0) continue;
    const g0 = gtStart[i]!;
    const ng = gtStart[i + 1]! - g0;
    assigned.fill(0, 0, nd);
    for (let g = 0; g < ng; g++) {
      const row = iouStart[i]! + g * nd;
      let detIdx = -1;
      let best = NO_DETECTION;
      for (let j = 0; j < nd; j++) {
        if (ignDet[d0 + j] === -1 || assigned[j] === 1) continue;
        if (iou[row + j]! > minOverlap && detScore[d0 + j]! > best) {
          detIdx = j;
          best = detScore[d0 + j]!;
        }
      }
      if (detIdx < 0) continue;
      assigned[detIdx] = 1;
      if (ignGt[g0 + g] === 0 && ignDet[d0 + detIdx] === 0) v[nv++] = detScore[d0 + detIdx]!;
    }
  }
  const thresholds = selectThresholds(v.subarray(0, nv), nGt);
  const nThr = thresholds.length;

  // Pass 2 (compute_fp = true) per threshold.
  const tp = new Array<number>(nThr).fill(0);
  const fp = new Array<number>(nThr).fill(0);
  for (let i = 0; i < p.nImages; i++) {
    const d0 = detStart[i]!;
    const nd = detStart[i + 1]! - d0;
    if (nd === 0) continue;
    const g0 = gtStart[i]!;
    const ng = gtStart[i + 1]! - g0;
    const iou0 = iouStart[i]!;
    let prevCount = -1;
    let imgTp = 0;
    let imgFp = 0;
    for (let t = 0; t < nThr; t++) {
      const thresh = thresholds[t]!;
      let count = 0;
      for (let j = 0; j < nd; j++) if (ignDet[d0 + j] !== -1 && detScore[d0 + j]! >= thresh) count++;
      if (count !== prevCount) {
        prevCount = count;
        imgTp = 0;
        imgFp = 0;
        if (count > 0) {
          assigned.fill(0, 0, nd);
          for (let g = 0; g < ng; g++) {
            const row = iou0 + g * nd;
            let detIdx = -1;
            let maxOverlap = 0;
            let assignedIgnoredDet = false;
            for (let j = 0; j < nd; j++) {
              const ign = ignDet[d0 + j]!;
              if (ign === -1 || assigned[j] === 1 || detScore[d0 + j]! < thresh) continue;
              const overlap = iou[row + j]!;
              if (overlap > minOverlap && (overlap > maxOverlap || assignedIgnoredDet) && ign === 0) {
                maxOverlap = overlap;
                detIdx = j;
                assignedIgnoredDet = false;
              } else if (overlap > minOverlap && detIdx < 0 && ign === 1) {
                detIdx = j;
                assignedIgnoredDet = true;
              }
            }
            if (detIdx < 0) continue; // a false negative when the ground truth is valid; not needed for AP
            assigned[detIdx] = 1;
            if (ignGt[g0 + g] === 0 && ignDet[d0 + detIdx] === 0) imgTp++;
          }
          // False positives: valid, unassigned detections above the threshold not absorbed by a DontCare area.
          for (let j = 0; j < nd; j++) {
            if (ignDet[d0 + j] === 0 && assigned[j] === 0 && detScore[d0 + j]! >= thresh && p.detInDontCare[d0 + j] === 0) imgFp++;
          }
        }
      }
      tp[t] += imgTp;
      fp[t] += imgFp;
    }
  }

  const precision = monotonePrecision(tp, fp);
  return {
    ap11: averagePrecision11(precision),
    ap40: averagePrecisionR40(precision),
    gt: nGt,
    thresholds,
    precision,
    tp,
    fp,
  };
}
