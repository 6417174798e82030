/**
 * The per-box pass over a detection training set: every image once, unaugmented, the model in inference mode, and
 * for every ground-truth box of a trained class
 * - its best IoU with the model's own detections of its class (score ≥ the postprocessor's threshold), and that
 *   detection's score;
 * - over the anchors matched to it (the training matcher's assignment): the mean softmax probability of its class
 *   (p(given)), the mean cross-entropy of its class (its classification loss, without σ), and the class with the
 *   highest mean probability.
 * The label review and the ranking benchmark both use it.
 */
import * as tf from '@tensorflow/tfjs';
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import type { DataParameters } from '../../src/data-parameters/data-parameters.js';
import { writeFileAtomic } from '../../src/util/atomic-file.js';
import { emptySampleScores, formatCsv, rankSuspects, ranksOf, type CsvValue, LABEL_REVIEW_FILE, type SampleScores, type SuspectRanking } from '../../src/review/label-review.js';
import { iou } from '../boxes.js';
import type { SSD } from '../model/ssd.js';
import { isTrainedBox } from '../../datasets/pipeline/loader.js';
import type { ImageDecoder } from '../../datasets/pipeline/types.js';
import { detectorLoader, trainingBatch, type DetectionBox, type DetectionRecord } from './batches.js';

export interface ReviewedBox {
  record: DetectionRecord;
  box: DetectionBox;
}

export interface BoxScores extends SampleScores {
  /** The boxes in order: images as given, each image's trained boxes in label-file order. */
  boxes: ReviewedBox[];
  /** Instance id of each box. */
  ids: Int32Array;
  /** Given class (the dataset's class index) of each box. */
  given: Int32Array;
  /** Best IoU with a detection of the box's class (0 when there is none). */
  bestIou: Float32Array;
  /** Score of that detection (0 when there is none). */
  detectionScore: Float32Array;
  /** Anchors matched to the box (0: the box got no scores, e.g. a degenerate box the loader dropped; NaN scores). */
  anchors: Int32Array;
}

/** Ground-truth boxes that get a data parameter: the loader's targets (`isTrainedBox`) that have an instance id. */
export function trainedBoxesOf(records: readonly DetectionRecord[]): ReviewedBox[] {
  const out: ReviewedBox[] = [];
  for (const record of records) for (const box of record.objects) if (isTrainedBox(box) && box.instanceId >= 0) out.push({ record, box });
  return out;
}

export async function detectionBoxScores(
  model: SSD,
  records: readonly DetectionRecord[],
  o: { batchSize?: number; decode?: ImageDecoder } = {},
): Promise<BoxScores> {
  const boxes = trainedBoxesOf(records);
  const n = boxes.length;
  const K = model.numClasses - 1;
  const slot = new Map<number, number>();
  boxes.forEach((b, i) => slot.set(b.box.instanceId, i));
  const probSum = new Float64Array(n * K);
  const lossSum = new Float64Array(n);
  const anchors = new Int32Array(n);
  const bestIou = new Float32Array(n);
  const detectionScore = new Float32Array(n);
  if (n > 0) {
    const loader = detectorLoader(records, {
      inputSize: model.inputSize,
      batchSize: Math.max(1, Math.min(o.batchSize ?? 8, records.length)),
      seed: 0,
      augment: null,
      ...(o.decode ? { decode: o.decode } : {}),
    });
    const { width: W, height: H } = model.inputSize;
    const C = model.numClasses;
    for (let s = 0; s < loader.batchesPerEpoch; s++) {
      const batch = trainingBatch(await loader.prepareBatch(0, s));
      const B = batch.images.length;
      const x = tf.tensor4d(batch.x, [B, H, W, 3]);
      const p = model.forward(x, false);
      const logProb = tf.tidy(() => tf.logSoftmax(p.cls, -1));
      const lp = logProb.dataSync() as Float32Array;
      const dets = model.postprocess.run(p.cls, p.loc, model.anchors.centre, model.boxCoder);
      tf.dispose([x, p.cls, p.loc, logProb]);
      const targets = model.targets(batch.images);
      const A = targets.numAnchors;
      for (let o2 = 0; o2 < B * A; o2++) {
        const bi = targets.boxIndex[o2]!;
        if (bi < 0) continue;
        const i = slot.get(batch.instanceIds[bi]!);
        if (i === undefined) continue;
        const label = targets.labels[o2]!;
        const row = o2 * C;
        lossSum[i]! -= lp[row + label]!;
        for (let k = 0; k < K; k++) probSum[i * K + k]! += Math.exp(lp[row + k + 1]!);
        anchors[i]!++;
      }
      let offset = 0;
      for (let b = 0; b < B; b++) {
        const img = batch.images[b]!;
        const G = img.labels.length;
        for (let g = 0; g < G; g++) {
          const i = slot.get(batch.instanceIds[offset + g]!);
          if (i === undefined) continue;
          for (const d of dets[b]!) {
            if (d.classIndex !== img.labels[g]) continue;
            const v = iou(img.boxes, g, d.box, 0);
            if (v > bestIou[i]!) {
              bestIou[i] = v;
              detectionScore[i] = d.score;
            }
          }
        }
        offset += G;
      }
    }
    await loader.close();
  }
  const scores = emptySampleScores(n);
  for (let i = 0; i < n; i++) {
    const m = anchors[i]!;
    const given = boxes[i]!.box.classIndex;
    if (m === 0) {
      for (const a of [scores.probability, scores.pGiven, scores.loss, scores.margin]) a[i] = NaN;
      scores.predicted[i] = -1;
      continue;
    }
    // Mean probabilities per foreground class; background is what remains.
    let best = -1;
    let bestP = 1;
    let fg = 0;
    let other = 0;
    for (let k = 0; k < K; k++) {
      const pk = probSum[i * K + k]! / m;
      fg += pk;
      if (best < 0 || pk > bestP) {
        best = k;
        bestP = pk;
      }
      if (k !== given) other = Math.max(other, pk);
    }
    const background = Math.max(0, 1 - fg);
    if (background > bestP) {
      best = -1;
      bestP = background;
    }
    other = Math.max(other, background);
    const pGiven = probSum[i * K + given]! / m;
    scores.predicted[i] = best;
    scores.probability[i] = bestP;
    scores.pGiven[i] = pGiven;
    scores.loss[i] = lossSum[i]! / m;
    scores.margin[i] = other - pGiven;
  }
  return {
    ...scores,
    boxes,
    ids: Int32Array.from(boxes, (b) => b.box.instanceId),
    given: Int32Array.from(boxes, (b) => b.box.classIndex),
    bestIou,
    detectionScore,
    anchors,
  };
}

export const DETECTION_REVIEW_COLUMNS = [
  'rank',
  'image',
  'file',
  'line',
  'x1',
  'y1',
  'x2',
  'y2',
  'class',
  'occluded',
  'truncated',
  'instance_id',
  'sigma',
  'best_iou',
  'detection_score',
  'p_given',
  'loss',
  'predicted_class',
  'sigma_rank',
  'loss_rank',
  'confident_rank',
  'iou_rank',
] as const;

/** The ranking of a detector's boxes: by σ (or by loss without σ), with the loss, 1 − p(given) and 1 − IoU ranks. */
export function rankBoxes(scores: BoxScores, sigma: DataParameters | ArrayLike<number> | null): SuspectRanking {
  return rankSuspects({ sigma, ids: scores.ids, givenLabels: scores.given, scores });
}

export function detectionReviewCsv(scores: BoxScores, ranking: SuspectRanking, classNames: readonly string[]): string {
  const iouRank = ranksOfLowIou(scores.bestIou);
  const rows: CsvValue[][] = ranking.suspects.map((s, r) => {
    const { record, box } = scores.boxes[s.index]!;
    return [
      r + 1,
      record.imageId,
      path.resolve(record.imagePath),
      (box as DetectionBox & { line?: number }).line ?? null,
      box.bbox[0],
      box.bbox[1],
      box.bbox[2],
      box.bbox[3],
      classNames[box.classIndex] ?? box.object.type,
      box.occlusion,
      box.truncation,
      box.instanceId,
      s.sigma,
      scores.bestIou[s.index]!,
      scores.detectionScore[s.index]!,
      s.pGiven,
      s.loss,
      s.predicted >= 0 ? (classNames[s.predicted] ?? s.predicted) : 'background',
      s.sigmaRank,
      s.lossRank,
      s.confidentRank,
      iouRank[s.index]!,
    ];
  });
  return formatCsv(DETECTION_REVIEW_COLUMNS, rows);
}

/** Rank by 1 − best IoU (1: the box no detection covers). */
function ranksOfLowIou(bestIou: Float32Array): Int32Array {
  return ranksOf(Float32Array.from(bestIou, (v) => 1 - v));
}

/** Writes `<dir>/label-review.csv` for a trained detector's training boxes; returns the file. */
export async function writeDetectionReview(
  dir: string,
  parts: { model: SSD; dp: DataParameters | null; records: readonly DetectionRecord[]; classNames: readonly string[]; decode?: ImageDecoder; batchSize?: number },
): Promise<{ file: string; scores: BoxScores; ranking: SuspectRanking }> {
  const scores = await detectionBoxScores(parts.model, parts.records, { ...(parts.decode ? { decode: parts.decode } : {}), ...(parts.batchSize ? { batchSize: parts.batchSize } : {}) });
  const ranking = rankBoxes(scores, parts.dp);
  const file = path.join(dir, LABEL_REVIEW_FILE);
  await fs.mkdir(dir, { recursive: true });
  await writeFileAtomic(file, detectionReviewCsv(scores, ranking, parts.classNames));
  return { file, scores, ranking };
}
