/**
 * SSD multibox loss with per-box data parameters.
 *
 *   L = ( Σ_pos smoothL1(loc) + Σ_{pos ∪ hard neg} CE(z_a / σ_a) ) / max(1, #positives in the batch)
 *
 * - Smooth-L1 (β = 1) summed over the 4 offsets of positive anchors.
 * - Softmax cross-entropy (background is class 0) on positive anchors and on hard-mined negatives: per image the
 *   `negPosRatio`·#pos negatives with the largest background loss −log p(bg). The ranking is computed from the logits'
 *   values read outside the autograd graph (tfjs has no stopGradient): the selection is a constant 0/1 mask built as a
 *   typed array, so no gradient flows through it. It ranks the UNSCALED logits (the σ-scaled ranking would differ only
 *   through the mini-batch's mean σ, shared by every negative).
 * - An image without positives (no cars, or only ignored regions) still contributes `minNegatives` hard negatives, so
 *   that car-free road scenes teach the background class (the reference SSDs give such images 0 negatives).
 *
 * Data parameters (paper §3.3): σ_a is the σ of the anchor's matched box for positives; for negatives it is the mean σ
 * over the mini-batch's boxes (1 when the batch has no box). `negativeSigma: 'detached'` (default) uses that mean as a
 * constant: each box's σ then learns only from the anchors matched to it. With 'through', every negative anchor also
 * sends gradient to every box's σ (∂mean/∂σ_i = 1/n), and since negatives outnumber positives 3:1 that shared term would
 * dominate and push all σ of a batch together, erasing the per-box curriculum the paper is after. Both are tested
 * against finite differences. `boxSigmaGradient: 'mean'` (opt-in; default 'sum', the paper's) leaves the loss value
 * unchanged but divides the gradient each positive anchor sends to its box's σ by the box's number of positive anchors:
 * with 'sum' a box's σ moves in proportion to how many anchors match it (large boxes move fast whatever their label),
 * with 'mean' by the mean over its anchors, as the per-box loss of the label review is. The loss is computed on the
 * gathered rows of the selected anchors only; their σ is a
 * gather from [σ_1..σ_G, mean] (the gathers' gradient is UnsortedSegmentSum, which every backend initBackend sets up
 * has: wasm through the training kernels).
 */
import * as tf from '@tensorflow/tfjs';
import type { BatchTargets } from './targets.js';

export interface MultiBoxLossOptions {
  negPosRatio?: number;
  /** Hard negatives taken from an image without positive anchors. */
  minNegatives?: number;
  /** Weight of the localisation term. */
  locWeight?: number;
  negativeSigma?: 'detached' | 'through';
  /** How a box's σ hears its positive anchors: their summed gradient ('sum', the paper's) or its mean per box. */
  boxSigmaGradient?: 'sum' | 'mean';
}

export interface LossParts {
  total: tf.Scalar;
  cls: tf.Scalar;
  loc: tf.Scalar;
  numPositive: number;
  numNegative: number;
}

export class MultiBoxLoss {
  readonly negPosRatio: number;
  readonly minNegatives: number;
  readonly locWeight: number;
  readonly negativeSigma: 'detached' | 'through';
  readonly boxSigmaGradient: 'sum' | 'mean';

  constructor(options: MultiBoxLossOptions = {}) {
    this.negPosRatio = options.negPosRatio ?? 3;
    this.minNegatives = options.minNegatives ?? 16;
    this.locWeight = options.locWeight ?? 1;
    this.negativeSigma = options.negativeSigma ?? 'detached';
    this.boxSigmaGradient = options.boxSigmaGradient ?? 'sum';
  }

  /**
   * Chooses the anchors whose classification loss counts: positives and hard negatives. Returns a 0/1 mask [B·A].
   * @param logits class logits [B·A·C] (values only)
   */
  selectAnchors(logits: ArrayLike<number>, targets: BatchTargets, numClasses: number): { mask: Float32Array; numNegative: number } {
    const { batchSize: B, numAnchors: A, boxIndex } = targets;
    const mask = new Float32Array(B * A);
    let numNegative = 0;
    const negIdx = new Int32Array(A);
    const negLoss = new Float32Array(A);
    for (let b = 0; b < B; b++) {
      let nNeg = 0;
      let nPos = 0;
      for (let a = 0; a < A; a++) {
        const o = b * A + a;
        const m = boxIndex[o]!;
        if (m >= 0) {
          mask[o] = 1;
          nPos++;
        } else if (m === -1) {
          // −log p(background) with a stable log-sum-exp.
          let mx = -Infinity;
          for (let c = 0; c < numClasses; c++) mx = Math.max(mx, logits[o * numClasses + c]!);
          let s = 0;
          for (let c = 0; c < numClasses; c++) s += Math.exp(logits[o * numClasses + c]! - mx);
          negLoss[nNeg] = mx + Math.log(s) - logits[o * numClasses]!;
          negIdx[nNeg] = a;
          nNeg++;
        }
      }
      const want = nPos > 0 ? this.negPosRatio * nPos : this.minNegatives;
      const k = Math.min(nNeg, want);
      if (k === 0) continue;
      const order = Array.from({ length: nNeg }, (_, i) => i);
      // Largest loss first; ties by anchor index so that the selection is deterministic.
      order.sort((i, j) => negLoss[j]! - negLoss[i]! || negIdx[i]! - negIdx[j]!);
      for (let i = 0; i < k; i++) mask[b * A + negIdx[order[i]!]!] = 1;
      numNegative += k;
    }
    return { mask, numNegative };
  }

  /**
   * @param clsLogits [B, A, C]
   * @param locPreds [B, A, 4]
   * @param boxSigma σ of the batch's boxes [targets.numBoxes] (differentiable), or null for plain SSD (no σ at all)
   */
  compute(clsLogits: tf.Tensor3D, locPreds: tf.Tensor3D, targets: BatchTargets, boxSigma: tf.Tensor1D | null): LossParts {
    const [B, A, C] = clsLogits.shape;
    if (B !== targets.batchSize || A !== targets.numAnchors) {
      throw new Error(`loss: predictions for ${B}×${A} anchors but targets for ${targets.batchSize}×${targets.numAnchors}`);
    }
    if (boxSigma !== null && boxSigma.shape[0] !== targets.numBoxes) {
      throw new Error(`loss: ${boxSigma.shape[0]} σ values for ${targets.numBoxes} boxes`);
    }
    const N = B * A;
    const { mask, numNegative } = this.selectAnchors(clsLogits.dataSync(), targets, C);
    let numPositive = 0;
    for (let o = 0; o < N; o++) if (targets.boxIndex[o]! >= 0) numPositive++;
    const norm = Math.max(1, numPositive);
    return this.computeSelected(clsLogits, locPreds, targets, boxSigma, mask, numPositive, numNegative, norm);
  }

  /**
   * The loss on the selected anchors only (positives and hard negatives, a few % of all anchors): rows gathered from
   * the logits and offsets, so the σ division, softmax and smooth-L1 touch M ≪ B·A rows.
   */
  private computeSelected(
    clsLogits: tf.Tensor3D,
    locPreds: tf.Tensor3D,
    targets: BatchTargets,
    boxSigma: tf.Tensor1D | null,
    mask: Float32Array,
    numPositive: number,
    numNegative: number,
    norm: number,
  ): LossParts {
    const [B, A, C] = clsLogits.shape;
    const N = B * A;
    const G = targets.numBoxes;
    const sel: number[] = [];
    const pos: number[] = [];
    for (let o = 0; o < N; o++) {
      if (mask[o]) sel.push(o);
      if (targets.boxIndex[o]! >= 0) pos.push(o);
    }
    const M = sel.length, P = pos.length;
    const onehot = new Float32Array(M * C);
    const sigmaIndex = new Int32Array(M);
    sel.forEach((o, i) => {
      onehot[i * C + targets.labels[o]!] = 1;
      const m = targets.boxIndex[o]!;
      sigmaIndex[i] = m >= 0 ? m : G;
    });
    const locT = new Float32Array(P * 4);
    pos.forEach((o, i) => locT.set(targets.locTargets.subarray(o * 4, o * 4 + 4), i * 4));
    return tf.tidy(() => {
      let cls: tf.Scalar = tf.scalar(0);
      if (M > 0) {
        let z = tf.gather(clsLogits.reshape([N, C]), tf.tensor1d(Int32Array.from(sel), 'int32')) as tf.Tensor2D;
        if (boxSigma !== null && G > 0) {
          const mean: tf.Tensor = this.negativeSigma === 'through' ? tf.mean(boxSigma) : tf.scalar(meanOf(boxSigma.dataSync()));
          const ext = tf.concat([boxSigma, tf.reshape(mean, [1])]);
          let rowSigma: tf.Tensor = tf.gather(ext, tf.tensor1d(sigmaIndex, 'int32'));
          if (this.boxSigmaGradient === 'mean') rowSigma = perBoxMeanGradient(rowSigma, boxSigma.dataSync(), sigmaIndex, G);
          z = tf.div(z, rowSigma.reshape([M, 1]));
        }
        const ce = tf.neg(tf.sum(tf.mul(tf.tensor2d(onehot, [M, C]), tf.logSoftmax(z))));
        cls = tf.div<tf.Scalar>(ce, norm);
      }
      let loc: tf.Scalar = tf.scalar(0);
      if (P > 0) {
        const l = tf.gather(locPreds.reshape([N, 4]), tf.tensor1d(Int32Array.from(pos), 'int32'));
        loc = tf.div<tf.Scalar>(tf.sum(smoothL1(tf.sub(l, tf.tensor2d(locT, [P, 4])))), norm);
      }
      const total = tf.add<tf.Scalar>(cls, tf.mul(loc, this.locWeight));
      return { total, cls, loc, numPositive, numNegative };
    });
  }
}

/** Smooth-L1 (β = 1) per row, summed over the last axis: 0.5·d² where |d| < 1, |d| − 0.5 elsewhere (with minimum, so
 * it is differentiable everywhere). */
function smoothL1(d: tf.Tensor2D | tf.Tensor): tf.Tensor {
  const a = tf.abs(d);
  const q = tf.minimum(a, 1);
  return tf.sum(tf.mul(q, tf.sub(a, tf.mul(q, 0.5))), -1);
}

/**
 * σ of the selected rows with the same value but the gradient to box g's σ scaled by 1 / (its number of positive rows):
 * c + w·(σ − c) with c the values read outside the tape (a constant) and w = 1/n_g on positives, 1 on negatives.
 */
function perBoxMeanGradient(rowSigma: tf.Tensor, boxSigma: ArrayLike<number>, sigmaIndex: Int32Array, G: number): tf.Tensor {
  const count = new Int32Array(G);
  for (const m of sigmaIndex) if (m < G) count[m]!++;
  const c = new Float32Array(sigmaIndex.length);
  const w = new Float32Array(sigmaIndex.length);
  const values = rowSigma.dataSync();
  sigmaIndex.forEach((m, i) => {
    c[i] = m < G ? boxSigma[m]! : values[i]!;
    w[i] = m < G ? 1 / count[m]! : 1;
  });
  const constant = tf.tensor1d(c);
  return tf.add(constant, tf.mul(tf.tensor1d(w), tf.sub(rowSigma, constant)));
}

function meanOf(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]!;
  return s / v.length;
}
