/**
 * Reproducible label noise for the data-parameters experiments, in the two forms found in the literature:
 * - 'uniform' (the paper): each sample is selected with probability p and its label replaced by a class drawn
 *   uniformly from all K classes (so about p/K of the selected samples keep their true label);
 * - 'permute' (the authors' code): the images of the first ⌊N·p⌋ entries are permuted among themselves while their
 *   labels stay in place (the label distribution is kept; a sample whose image lands on an entry of its own class stays
 *   correct).
 * Both return, per training entry, the label to train on, the image to show (`imageIndex`), and which entries are
 * actually corrupt (label ≠ true class of the image shown) and which the noise process touched (`selected`).
 */
import { Rng } from '../../src/util/rng.js';

export type NoiseModel = 'uniform' | 'permute';
export const NOISE_MODELS: readonly NoiseModel[] = ['uniform', 'permute'];

export interface NoisyLabels {
  model: NoiseModel;
  rate: number;
  seed: number;
  /** The label each entry is trained with. */
  labels: Int32Array;
  /** Which source image each entry shows (identity for 'uniform'). */
  imageIndex: Int32Array;
  /** The true class of the image each entry shows. */
  trueLabels: Int32Array;
  /** 1 where labels[i] !== trueLabels[i]. */
  corrupted: Uint8Array;
  /** 1 where the noise process touched the entry (may still be correct by chance). */
  selected: Uint8Array;
  corruptedCount: number;
}

export function parseNoiseModel(s: string): NoiseModel {
  if (!(NOISE_MODELS as readonly string[]).includes(s)) {
    throw new Error(`unknown noise model '${s}': expected ${NOISE_MODELS.join(' or ')}`);
  }
  return s as NoiseModel;
}

export function corruptLabels(
  labels: ArrayLike<number>,
  numClasses: number,
  options: { rate: number; seed: number; model: NoiseModel },
): NoisyLabels {
  const { rate, seed, model } = options;
  if (!(rate >= 0 && rate <= 1)) throw new Error(`noise rate must be in [0, 1], got ${rate}`);
  if (!(numClasses >= 2)) throw new Error(`label noise needs at least 2 classes, got ${numClasses}`);
  const n = labels.length;
  const rng = new Rng(seed);
  const out = Int32Array.from(labels);
  const imageIndex = new Int32Array(n);
  for (let i = 0; i < n; i++) imageIndex[i] = i;
  const selected = new Uint8Array(n);
  if (model === 'uniform') {
    for (let i = 0; i < n; i++) {
      // Two draws per entry whatever the outcome, so entry i's fate does not depend on earlier outcomes.
      const pick = rng.next() < rate;
      const cls = rng.int(numClasses);
      if (pick) {
        selected[i] = 1;
        out[i] = cls;
      }
    }
  } else {
    const m = Math.floor(n * rate);
    const perm = rng.permutation(m);
    for (let i = 0; i < m; i++) {
      imageIndex[i] = perm[i]!;
      selected[i] = 1;
    }
  }
  const trueLabels = new Int32Array(n);
  const corrupted = new Uint8Array(n);
  let corruptedCount = 0;
  for (let i = 0; i < n; i++) {
    trueLabels[i] = labels[imageIndex[i]!]!;
    if (out[i] !== trueLabels[i]) {
      corrupted[i] = 1;
      corruptedCount++;
    }
  }
  return { model, rate, seed, labels: out, imageIndex, trueLabels, corrupted, selected, corruptedCount };
}

/**
 * The paper's Figure 4 statistic: of the ⌊N·rate⌋ entries with the highest σ, the fraction that are corrupt
 * (1 = the curriculum has put every corrupted sample above every clean one, when exactly that many are corrupt).
 * Ties are broken by index so that the result is deterministic.
 */
export function corruptedFractionInTop(sigma: ArrayLike<number>, corrupted: Uint8Array, rate: number): number {
  return noisyRanking(sigma, corrupted, rate).precision;
}

/**
 * Of the top ⌊N·rate⌋ entries by σ: `precision` = the fraction of them that are corrupt (the statistic above) and
 * `recall` = the fraction of all corrupt entries that are among them. With uniform noise only ~rate·(K−1)/K of the
 * entries are actually corrupt, so precision tops out below 1 while recall can reach 1.
 */
export function noisyRanking(sigma: ArrayLike<number>, corrupted: Uint8Array, rate: number): { precision: number; recall: number } {
  const n = sigma.length;
  const k = Math.floor(n * rate);
  if (k === 0) return { precision: NaN, recall: NaN };
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => sigma[b]! - sigma[a]! || a - b);
  let c = 0;
  for (let r = 0; r < k; r++) c += corrupted[order[r]!]!;
  let total = 0;
  for (let i = 0; i < n; i++) total += corrupted[i]!;
  return { precision: c / k, recall: total > 0 ? c / total : NaN };
}
