/**
 * The KITTI object benchmark's 2D detection metric, reproducing `evaluate_object.cpp` of the official devkit
 * (post-2019) rule for rule; the rules are listed in docs/kitti-eval.md. All arithmetic is in
 * doubles with the devkit's expressions in the devkit's order, so results agree with it to the last bit.
 *
 * Speed, without changing any result: boxes are packed per class into typed arrays once; each ground truth keeps only
 * its candidate detections (IoU above the threshold, computed once and shared by the three difficulties and all score
 * thresholds); in pass 2 a detection that is no ground truth's candidate only ever adds a false positive, and an image
 * is matched again only at the thresholds where one of its candidates joins (the detection sets above successive
 * thresholds are nested, so between two such thresholds nothing changes).
 */
import type { KittiObject } from '../../datasets/kitti/label-file.js';
import { KITTI_DIFFICULTIES, type KittiDifficulty } from '../../datasets/kitti/label-file.js';
import { KITTI_CLASS_PARAMS, KITTI_EVAL_CLASSES, type KittiEvalClass } from './classes.js';
import { tableFromObjects, TypeCode, type KittiBoxTable } from './box-table.js';
import { EvalKernel, KernelSlot as H, KernelTooLarge } from './evaluate-wasm.js';

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
  return summarise(evaluateKittiDetailed(input));
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
  const images = [...input.groundTruth];
  return evaluateKittiTables({
    groundTruth: tableFromObjects(images.map(([, objects]) => objects)),
    detections: tableFromObjects(images.map(([id]) => input.detections.get(id) ?? [])),
    classes: input.classes,
  });
}

/** Drops the curves from a detailed result. */
export function summarise(detailed: KittiEvalResult<KittiApDetail>): KittiEvalResult {
  const out: KittiEvalResult = {};
  for (const [cls, byDifficulty] of Object.entries(detailed) as [KittiEvalClass, KittiClassResult<KittiApDetail>][]) {
    const entry = (d: KittiApDetail): KittiApEntry => ({ ap11: d.ap11, ap40: d.ap40, gt: d.gt });
    out[cls] = { easy: entry(byDifficulty.easy), moderate: entry(byDifficulty.moderate), hard: entry(byDifficulty.hard) };
  }
  return out;
}

export interface KittiTableInput {
  /** Ground truth of image i in rows groundTruth.start[i] .. start[i + 1] (DontCare included). */
  groundTruth: KittiBoxTable;
  /** Detections of image i, with scores; the same number of images. */
  detections: KittiBoxTable;
  classes?: readonly KittiEvalClass[];
  /** 'wasm' (default): the WebAssembly kernel, falling back to JavaScript for huge inputs; 'js': JavaScript only
   * (the reference the kernel is tested against). */
  engine?: 'wasm' | 'js';
}

/** The evaluation on columnar boxes (what the directory reader produces). */
export function evaluateKittiTables(input: KittiTableInput): KittiEvalResult<KittiApDetail> {
  if (input.groundTruth.nImages !== input.detections.nImages) {
    throw new Error(`ground truth has ${input.groundTruth.nImages} images but detections have ${input.detections.nImages}`);
  }
  let kernel: EvalKernel | null = null;
  if (input.engine !== 'js') {
    try {
      kernel = new EvalKernel();
      kernel.load(input.groundTruth, input.detections);
    } catch (e) {
      if (!(e instanceof KernelTooLarge)) throw e;
      kernel = null;
    }
  }
  return evaluateClasses(kernel, () => input, input.classes);
}

/**
 * The evaluation of tables a reader wrote into `kernel`'s memory (EvalKernel.allocTables), without the copy that
 * evaluateKittiTables makes.
 */
export function evaluateKernelTables(kernel: EvalKernel, classes?: readonly KittiEvalClass[]): KittiEvalResult<KittiApDetail> {
  // The tables are read back from the kernel only for a class too large for it (its allocations move the memory).
  return evaluateClasses(kernel, () => kernel.loadedTables(), classes);
}

function evaluateClasses(
  kernel: EvalKernel | null,
  tables: () => { groundTruth: KittiBoxTable; detections: KittiBoxTable },
  classes: readonly KittiEvalClass[] | undefined,
): KittiEvalResult<KittiApDetail> {
  const out: KittiEvalResult<KittiApDetail> = {};
  for (const cls of classes ?? KITTI_EVAL_CLASSES) {
    const viaKernel = kernel === null ? null : evaluateClassKernel(kernel, cls, kernel.header(H.nImages));
    if (viaKernel !== null) {
      out[cls] = viaKernel;
      continue;
    }
    const { groundTruth, detections } = tables();
    const packed = packClass(cls, groundTruth, detections);
    out[cls] = {
      easy: evaluateDifficulty(packed, KITTI_DIFFICULTIES[0]),
      moderate: evaluateDifficulty(packed, KITTI_DIFFICULTIES[1]),
      hard: evaluateDifficulty(packed, KITTI_DIFFICULTIES[2]),
    };
  }
  return out;
}

/**
 * One class through the WebAssembly kernel (evaluate-wasm.ts: packClass, pass 1 and pass 2 of this file, the same
 * statements); null when its memory would be too large, then the JavaScript functions below do it.
 */
function evaluateClassKernel(k: EvalKernel, cls: KittiEvalClass, nImages: number): KittiClassResult<KittiApDetail> | null {
  const mark = k.mark();
  try {
    const x = k.exports;
    const code = CLASS_CODE[cls];
    const neighbour = NEIGHBOUR_CODE[cls];
    const minOverlap = KITTI_CLASS_PARAMS[cls].minOverlap;
    k.alloc(H.gtStart, 4 * (nImages + 1));
    k.alloc(H.detStart, 4 * (nImages + 1));
    const bound = x.count(code, neighbour, MAX_MIN_HEIGHT);
    const nGt = k.header(H.nGt);
    const nDet = k.header(H.nDet);
    const maxDets = k.header(H.maxDets);
    const sizes: [H, number][] = [
      [H.gtRow, 4 * nGt],
      [H.gtNeighbour, nGt],
      [H.gtHeight, 8 * nGt],
      [H.pGtOcc, 8 * nGt],
      [H.pGtTrunc, 8 * nGt],
      [H.detRow, 4 * nDet],
      [H.detOfClass, nDet],
      [H.detIntHeight, 8 * nDet],
      [H.pDetScore, 8 * nDet],
      [H.detInDontCare, nDet],
      [H.detConnected, nDet],
      [H.candStart, 4 * (nGt + 1)],
      [H.candDet, 4 * bound],
      [H.candIou, 8 * bound],
      [H.ignGt, nGt],
      [H.ignDet, nDet],
      [H.assigned, maxDets],
      [H.v, 8 * nGt],
      [H.thresholds, 8 * (nGt + 1)],
      [H.dTp, 8 * (nGt + 2)],
      [H.dFp, 8 * (nGt + 2)],
      [H.joinsAt, 4 * maxDets],
      [H.events, 4 * maxDets],
    ];
    for (const [slot, bytes] of sizes) k.alloc(slot, bytes);
    x.pack(code, neighbour, minOverlap, MAX_MIN_HEIGHT);
    const difficulty = (d: Difficulty): KittiApDetail => {
      const nv = x.pass1(d.minHeight, d.maxOcclusion, d.maxTruncation);
      const thresholds = selectThresholds(k.f64(k.header(H.v), nv), k.header(H.nGtValid));
      const nThr = thresholds.length;
      k.f64(k.header(H.thresholds), nThr).set(thresholds);
      const dTp = k.f64(k.header(H.dTp), nThr + 1).fill(0);
      const dFp = k.f64(k.header(H.dFp), nThr + 1).fill(0);
      if (nThr > 0) x.pass2(nThr);
      return apDetail(thresholds, dTp, dFp, k.header(H.nGtValid));
    };
    return { easy: difficulty(KITTI_DIFFICULTIES[0]), moderate: difficulty(KITTI_DIFFICULTIES[1]), hard: difficulty(KITTI_DIFFICULTIES[2]) };
  } catch (e) {
    if (e instanceof KernelTooLarge) return null;
    throw e;
  } finally {
    k.reset(mark);
  }
}

const CLASS_CODE: Readonly<Record<KittiEvalClass, TypeCode>> = { car: TypeCode.CAR, pedestrian: TypeCode.PEDESTRIAN, cyclist: TypeCode.CYCLIST };
const NEIGHBOUR_CODE: Readonly<Record<KittiEvalClass, number>> = { car: TypeCode.VAN, pedestrian: TypeCode.PERSON_SITTING, cyclist: -1 };

/**
 * The boxes of one class, in file order, without the objects the devkit skips for it at every difficulty, and for
 * each ground truth its candidate detections (IoU above the class threshold): every rule of the matching requires that
 * overlap, so other pairs never matter.
 */
interface PackedClass {
  nImages: number;
  /** Ground truth of the class or its neighbour class; image i owns [gtStart[i], gtStart[i+1]). */
  gtStart: Int32Array;
  gtNeighbour: Uint8Array;
  gtHeight: Float64Array;
  gtOccluded: Float64Array;
  gtTruncated: Float64Array;
  /** Candidates of ground truth g: candDet[candStart[g] .. candStart[g+1]) (detection index within its image, in
   * file order) with IoU candIou[...]. */
  candStart: Int32Array;
  candDet: Int32Array;
  candIou: Float64Array;
  /** Detections of the class, and detections of any class lower than the largest minimum height. */
  detStart: Int32Array;
  detOfClass: Uint8Array;
  /** (int)|y1 - y2|, as the devkit truncates it. */
  detIntHeight: Float64Array;
  detScore: Float64Array;
  /** 1 when some DontCare box covers more than minOverlap of the detection's area. */
  detInDontCare: Uint8Array;
  /** 1 when the detection is a candidate of some ground truth. */
  detConnected: Uint8Array;
  maxDetsPerImage: number;
}

/** Intersection area of two boxes (0 when they do not overlap). a and b index 4-tuples. */
function intersection(A: Float64Array, a: number, B: Float64Array, b: number): number {
  const x1 = A[a]! < B[b]! ? B[b]! : A[a]!;
  const y1 = A[a + 1]! < B[b + 1]! ? B[b + 1]! : A[a + 1]!;
  const x2 = A[a + 2]! > B[b + 2]! ? B[b + 2]! : A[a + 2]!;
  const y2 = A[a + 3]! > B[b + 3]! ? B[b + 3]! : A[a + 3]!;
  const w = x2 - x1;
  const h = y2 - y1;
  return w <= 0 || h <= 0 ? 0 : w * h;
}

function area(A: Float64Array, a: number): number {
  return (A[a + 2]! - A[a]!) * (A[a + 3]! - A[a + 1]!);
}

/** The devkit's imageBoxOverlap(det, gt, -1): intersection over union, areas without +1. */
function boxIou(A: Float64Array, a: number, B: Float64Array, b: number): number {
  const inter = intersection(A, a, B, b);
  return inter === 0 ? 0 : inter / (area(A, a) + area(B, b) - inter);
}

/** The devkit's imageBoxOverlap(det, dontcare, 0): intersection over the detection's area. */
function overlapOverFirst(A: Float64Array, a: number, B: Float64Array, b: number): number {
  const inter = intersection(A, a, B, b);
  return inter === 0 ? 0 : inter / area(A, a);
}

function intHeight(box: Float64Array, r: number): number {
  return Math.trunc(Math.abs(box[4 * r + 1]! - box[4 * r + 3]!));
}

function packClass(cls: KittiEvalClass, gt: KittiBoxTable, det: KittiBoxTable): PackedClass {
  // Plain numbers: compared with the raw type bytes of the tables.
  const code: number = CLASS_CODE[cls];
  const neighbour: number = NEIGHBOUR_CODE[cls];
  const minOverlap = KITTI_CLASS_PARAMS[cls].minOverlap;
  const nImages = gt.nImages;
  const gtStart = new Int32Array(nImages + 1);
  const detStart = new Int32Array(nImages + 1);
  let nGt = 0;
  let nDet = 0;
  let maxDets = 0;
  for (let i = 0; i < nImages; i++) {
    gtStart[i] = nGt;
    detStart[i] = nDet;
    for (let r = gt.start[i]!; r < gt.start[i + 1]!; r++) if (gt.type[r] === code || gt.type[r] === neighbour) nGt++;
    for (let r = det.start[i]!; r < det.start[i + 1]!; r++) if (det.type[r] === code || intHeight(det.box, r) < MAX_MIN_HEIGHT) nDet++;
    if (nDet - detStart[i]! > maxDets) maxDets = nDet - detStart[i]!;
  }
  gtStart[nImages] = nGt;
  detStart[nImages] = nDet;

  const gtRow = new Int32Array(nGt);
  const gtNeighbour = new Uint8Array(nGt);
  const gtHeight = new Float64Array(nGt);
  const gtOccluded = new Float64Array(nGt);
  const gtTruncated = new Float64Array(nGt);
  const detRow = new Int32Array(nDet);
  const detOfClass = new Uint8Array(nDet);
  const detIntHeight = new Float64Array(nDet);
  const detScore = new Float64Array(nDet);
  const detInDontCare = new Uint8Array(nDet);
  const detConnected = new Uint8Array(nDet);
  const candStart = new Int32Array(nGt + 1);
  let candDet = new Int32Array(Math.max(16, nGt * 2));
  let candIou = new Float64Array(candDet.length);
  let nCand = 0;
  let gk = 0;
  let dk = 0;
  for (let i = 0; i < nImages; i++) {
    const gEnd = gt.start[i + 1]!;
    for (let r = gt.start[i]!; r < gEnd; r++) {
      const t = gt.type[r];
      if (t !== code && t !== neighbour) continue;
      gtRow[gk] = r;
      gtNeighbour[gk] = t === code ? 0 : 1;
      gtHeight[gk] = gt.box[4 * r + 3]! - gt.box[4 * r + 1]!;
      gtOccluded[gk] = gt.occluded[r]!;
      gtTruncated[gk] = gt.truncated[r]!;
      gk++;
    }
    const dEnd = det.start[i + 1]!;
    for (let r = det.start[i]!; r < dEnd; r++) {
      const ofClass = det.type[r] === code;
      const h = intHeight(det.box, r);
      if (!ofClass && h >= MAX_MIN_HEIGHT) continue;
      detRow[dk] = r;
      detOfClass[dk] = ofClass ? 1 : 0;
      detIntHeight[dk] = h;
      detScore[dk] = det.score[r]!;
      for (let c = gt.start[i]!; c < gEnd; c++) {
        if (gt.type[c] === TypeCode.DONTCARE && overlapOverFirst(det.box, 4 * r, gt.box, 4 * c) > minOverlap) {
          detInDontCare[dk] = 1;
          break;
        }
      }
      dk++;
    }
    const d0 = detStart[i]!;
    const nd = detStart[i + 1]! - d0;
    for (let g = gtStart[i]!; g < gtStart[i + 1]!; g++) {
      candStart[g] = nCand;
      const gb = 4 * gtRow[g]!;
      for (let j = 0; j < nd; j++) {
        const o = boxIou(det.box, 4 * detRow[d0 + j]!, gt.box, gb);
        if (!(o > minOverlap)) continue;
        if (nCand === candDet.length) {
          const moreDet = new Int32Array(2 * nCand);
          moreDet.set(candDet);
          candDet = moreDet;
          const moreIou = new Float64Array(2 * nCand);
          moreIou.set(candIou);
          candIou = moreIou;
        }
        candDet[nCand] = j;
        candIou[nCand++] = o;
        detConnected[d0 + j] = 1;
      }
    }
  }
  candStart[nGt] = nCand;
  return {
    nImages,
    gtStart,
    gtNeighbour,
    gtHeight,
    gtOccluded,
    gtTruncated,
    candStart,
    candDet,
    candIou,
    detStart,
    detOfClass,
    detIntHeight,
    detScore,
    detInDontCare,
    detConnected,
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

function evaluateDifficulty(p: PackedClass, diff: Difficulty): KittiApDetail {
  const { gtStart, detStart, candStart, candDet, detScore } = p;
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

  // Pass 1 (compute_fp = false): each ground truth, in file order, takes the highest-scoring unassigned candidate.
  const v = new Float64Array(nGt);
  let nv = 0;
  for (let i = 0; i < p.nImages; i++) {
    const d0 = detStart[i]!;
    const nd = detStart[i + 1]! - d0;
    if (nd === 0) continue;
    assigned.fill(0, 0, nd);
    for (let g = gtStart[i]!; g < gtStart[i + 1]!; g++) {
      let detIdx = -1;
      let best = NO_DETECTION;
      for (let c = candStart[g]!; c < candStart[g + 1]!; c++) {
        const j = candDet[c]!;
        if (ignDet[d0 + j] === -1 || assigned[j] === 1) continue;
        if (detScore[d0 + j]! > best) {
          detIdx = j;
          best = detScore[d0 + j]!;
        }
      }
      if (detIdx < 0) continue;
      assigned[detIdx] = 1;
      if (ignGt[g] === 0 && ignDet[d0 + detIdx] === 0) v[nv++] = detScore[d0 + detIdx]!;
    }
  }
  const thresholds = selectThresholds(v.subarray(0, nv), nGt);

  // Pass 2 (compute_fp = true) per threshold, image by image (a small function, so that V8 optimises it early).
  const nThr = thresholds.length;
  const ctx: Pass2Context = {
    p,
    ignGt,
    ignDet,
    thresholds: Float64Array.from(thresholds),
    nThr,
    dTp: new Float64Array(nThr + 1),
    dFp: new Float64Array(nThr + 1),
    assigned,
    joinsAt: new Int32Array(p.maxDetsPerImage),
    events: new Int32Array(p.maxDetsPerImage),
  };
  if (nThr > 0) for (let i = 0; i < p.nImages; i++) pass2Image(ctx, i);
  return apDetail(thresholds, ctx.dTp, ctx.dFp, nGt);
}

/** AP11, AP|R40 and the curves from the TP / FP changes at each threshold. */
function apDetail(thresholds: number[], dTp: Float64Array, dFp: Float64Array, nGt: number): KittiApDetail {
  const nThr = thresholds.length;
  const tp = new Array<number>(nThr);
  const fp = new Array<number>(nThr);
  let runTp = 0;
  let runFp = 0;
  for (let t = 0; t < nThr; t++) {
    runTp += dTp[t]!;
    runFp += dFp[t]!;
    tp[t] = runTp;
    fp[t] = runFp;
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

interface Pass2Context {
  p: PackedClass;
  ignGt: Int8Array;
  ignDet: Int8Array;
  /** Descending. */
  thresholds: Float64Array;
  nThr: number;
  /** TP and FP changes at each threshold index, summed afterwards. */
  dTp: Float64Array;
  dFp: Float64Array;
  assigned: Uint8Array;
  joinsAt: Int32Array;
  events: Int32Array;
}

/**
 * Pass 2 of one image for every threshold. A detection takes part from the first threshold at or below its score on
 * (thresholds descend). A detection that is no ground truth's candidate is never assigned: it is a false positive from
 * then on unless ignored or inside DontCare. The others can change the matching, so the image is matched again at
 * each threshold where one of them joins, and its counts hold until the next (kept as differences).
 */
function pass2Image(ctx: Pass2Context, i: number): void {
  const { p, ignGt, ignDet, thresholds, nThr, dTp, dFp, assigned, joinsAt, events } = ctx;
  const { gtStart, detStart, candStart, candDet, candIou, detScore, detInDontCare, detConnected } = p;
  const d0 = detStart[i]!;
  const nd = detStart[i + 1]! - d0;
  let nEvents = 0;
  for (let j = 0; j < nd; j++) {
    const ign = ignDet[d0 + j]!;
    if (ign === -1) {
      joinsAt[j] = nThr;
      continue;
    }
    // First t with thresholds[t] <= score (binary search on the descending thresholds).
    const score = detScore[d0 + j]!;
    let lo = 0;
    let hi = nThr;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (thresholds[mid]! <= score) hi = mid;
      else lo = mid + 1;
    }
    joinsAt[j] = lo;
    if (lo === nThr) continue;
    if (detConnected[d0 + j] === 0) {
      if (ign === 0 && detInDontCare[d0 + j] === 0) dFp[lo]!++;
      continue;
    }
    // Insert into the sorted, distinct event list.
    let k = nEvents;
    while (k > 0 && events[k - 1]! > lo) k--;
    if (k === 0 || events[k - 1] !== lo) {
      events.copyWithin(k + 1, k, nEvents);
      events[k] = lo;
      nEvents++;
    }
  }
  let prevTp = 0;
  let prevFp = 0;
  for (let e = 0; e < nEvents; e++) {
    const t = events[e]!;
    assigned.fill(0, 0, nd);
    let imgTp = 0;
    for (let g = gtStart[i]!; g < gtStart[i + 1]!; g++) {
      let detIdx = -1;
      let maxOverlap = 0;
      let assignedIgnoredDet = false;
      for (let c = candStart[g]!; c < candStart[g + 1]!; c++) {
        const j = candDet[c]!;
        if (joinsAt[j]! > t || assigned[j] === 1) continue; // skipped class, below the threshold, or taken
        const ign = ignDet[d0 + j]!;
        const overlap = candIou[c]!;
        if ((overlap > maxOverlap || assignedIgnoredDet) && ign === 0) {
          maxOverlap = overlap;
          detIdx = j;
          assignedIgnoredDet = false;
        } else if (detIdx < 0 && ign === 1) {
          detIdx = j;
          assignedIgnoredDet = true;
        }
      }
      if (detIdx < 0) continue; // a false negative when the ground truth is valid; not needed for AP
      assigned[detIdx] = 1;
      if (ignGt[g] === 0 && ignDet[d0 + detIdx] === 0) imgTp++;
    }
    // False positives among candidates: valid, unassigned, above the threshold and not absorbed by DontCare.
    let imgFp = 0;
    for (let j = 0; j < nd; j++) {
      if (detConnected[d0 + j] === 1 && ignDet[d0 + j] === 0 && assigned[j] === 0 && joinsAt[j]! <= t && detInDontCare[d0 + j] === 0) {
        imgFp++;
      }
    }
    dTp[t]! += imgTp - prevTp;
    dFp[t]! += imgFp - prevFp;
    prevTp = imgTp;
    prevFp = imgFp;
  }
}
