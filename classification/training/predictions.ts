/**
 * What a trained classifier's predictions on its own training entries (classificationSampleScores in
 * sample-scores.ts) say about label noise: how many corrupted entries the model predicts as their noisy label
 * (memorisation) and how many entries it fits at all.
 */

export interface LabelFit {
  /** Fraction of all entries predicted as the label they are trained with. */
  trainAccuracy: number;
  /** Fraction of the corrupted entries predicted as their (wrong) training label; NaN without corrupted entries. */
  memorised: number;
  /** Fraction of the clean entries predicted as their label; NaN without clean entries. */
  cleanFit: number;
}

/** How well predictions match the training labels, split by `corrupted` (1 = label differs from the true class). */
export function labelFit(predicted: ArrayLike<number>, labels: ArrayLike<number>, corrupted: ArrayLike<number> | null): LabelFit {
  const n = predicted.length;
  if (labels.length !== n || (corrupted && corrupted.length !== n)) {
    throw new Error(`labelFit: ${n} predictions, ${labels.length} labels, ${corrupted?.length ?? n} corruption flags`);
  }
  let hit = 0;
  let noisy = 0;
  let noisyHit = 0;
  for (let i = 0; i < n; i++) {
    const h = predicted[i] === labels[i] ? 1 : 0;
    hit += h;
    if (corrupted && corrupted[i] === 1) {
      noisy++;
      noisyHit += h;
    }
  }
  const clean = n - noisy;
  return {
    trainAccuracy: n > 0 ? hit / n : NaN,
    memorised: noisy > 0 ? noisyHit / noisy : NaN,
    cleanFit: clean > 0 ? (hit - noisyHit) / clean : NaN,
  };
}

/** Fraction of the corrupted entries whose σ is above the σ of every clean entry (NaN without either kind). */
export function corruptedAboveAllClean(sigma: ArrayLike<number>, corrupted: ArrayLike<number>): number {
  let maxClean = -Infinity;
  let noisy = 0;
  for (let i = 0; i < sigma.length; i++) {
    if (corrupted[i] === 1) noisy++;
    else maxClean = Math.max(maxClean, sigma[i]!);
  }
  if (noisy === 0 || maxClean === -Infinity) return NaN;
  let above = 0;
  for (let i = 0; i < sigma.length; i++) if (corrupted[i] === 1 && sigma[i]! > maxClean) above++;
  return above / noisy;
}
