/**
 * The per-sample pass over a classification set: every entry once, without augmentation, the model in inference
 * mode (batch-norm running statistics, no σ), giving each entry's predicted label, its probability, p(given label)
 * and the cross-entropy of the given label. The label review and the ranking benchmark both use it.
 */
import * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { DataParameters } from '../../src/data-parameters/data-parameters.js';
import { writeFileAtomic } from '../../src/util/atomic-file.js';
import {
  classificationReviewCsv,
  LABEL_REVIEW_FILE,
  rankSuspects,
  scoresFromLogits,
  type SampleScores,
  type SuspectRanking,
} from '../../src/review/label-review.js';
import type { ClassifierModel } from '../models/models.js';
import { InMemoryImageData, type ClassificationData } from '../input/image-data.js';

export interface ClassificationSampleScores extends SampleScores {
  /** The logits, row-major [count, numClasses], when asked for (`keepLogits`); null otherwise. */
  logits: Float32Array | null;
}

/**
 * Scores of every entry of `data` against its label as `data.labels` gives it (the noisy label, in a noisy run).
 * Scores are computed batch by batch, so memory is O(count) unless `keepLogits` asks for all the logits.
 */
export async function classificationSampleScores(
  model: ClassifierModel,
  data: ClassificationData,
  batchSize = 256,
  keepLogits = false,
): Promise<ClassificationSampleScores> {
  const k = data.numClasses;
  const [h, w, c] = data.inputShape;
  const n = data.count;
  const out: ClassificationSampleScores = {
    predicted: new Int32Array(n),
    probability: new Float32Array(n),
    pGiven: new Float32Array(n),
    loss: new Float32Array(n),
    margin: new Float32Array(n),
    logits: keepLogits ? new Float32Array(n * k) : null,
  };
  for (let start = 0; start < n; start += batchSize) {
    const m = Math.min(batchSize, n - start);
    const ids = Int32Array.from({ length: m }, (_, i) => start + i);
    const x = await data.loadBatch(ids, null);
    const t = tf.tidy(() => model.logits(tf.tensor4d(x, [m, h, w, c]), false));
    const logits = t.dataSync() as Float32Array;
    t.dispose();
    const s = scoresFromLogits(logits, data.labels.subarray(start, start + m), k);
    for (const key of ['predicted', 'probability', 'pGiven', 'loss', 'margin'] as const) out[key].set(s[key], start);
    out.logits?.set(logits, start * k);
  }
  return out;
}

/** The review of a trained classifier's training set: every entry, most suspect first (by σ, or by loss without σ). */
export async function reviewClassificationSet(model: ClassifierModel, dp: DataParameters, data: ClassificationData, batchSize = 256): Promise<SuspectRanking> {
  const scores = await classificationSampleScores(model, data, batchSize);
  const ids = Int32Array.from({ length: data.count }, (_, i) => i);
  return rankSuspects({ sigma: dp, ids, givenLabels: data.labels, scores });
}

/** Writes `<dir>/label-review.csv` for a trained classifier; returns the file. */
export async function writeClassificationReview(
  dir: string,
  parts: { model: ClassifierModel; dp: DataParameters; train: ClassificationData; corrupted?: ArrayLike<number> | null },
  batchSize = 256,
): Promise<{ file: string; ranking: SuspectRanking }> {
  const { model, dp, train } = parts;
  const ranking = await reviewClassificationSet(model, dp, train, batchSize);
  const file = path.join(dir, LABEL_REVIEW_FILE);
  await fs.mkdir(dir, { recursive: true });
  const imagePath = train.imagePath?.bind(train);
  // In-memory sets (idx, CIFAR) have no files: the entry's image in the source file lets the gallery find it.
  const source = train instanceof InMemoryImageData ? train.imageIndex : null;
  await writeFileAtomic(
    file,
    classificationReviewCsv(ranking, {
      classNames: train.classNames,
      ...(imagePath ? { file: (i: number) => imagePath(i) } : {}),
      ...(source ? { sourceImage: (i: number) => source[i]! } : {}),
      corrupted: parts.corrupted ?? null,
    }),
  );
  return { file, ranking };
}
