/**
 * Finding label errors with σ: per-sample scores from a model's outputs, the ranking by σ (with the ranking by loss and
 * by 1 − p(given label) beside it for comparison), the metrics that say how well a ranking finds known corrupted
 * samples, and the `label-review.csv` file both trainers write after training.
 *
 *   const scores = scoresFromLogits(logits, givenLabels, numClasses);         // predicted, probability, loss, p(given)
 *   const review = rankSuspects({ sigma: dp, ids, givenLabels, scores });     // most suspect first
 *   compareRankings(review, corrupted)                                          // AUC, precision@k, recall@k per ranking
 *
 * Everything here is plain arrays: a user with any model can compute logits and get the ranking without our trainers.
 */
import type { DataParameters } from '../data-parameters/data-parameters.js';

/** What a model says about one sample, measured without σ (σ is a training-time device only). */
export interface SampleScores {
  /** Arg-max class. */
  predicted: Int32Array;
  /** Softmax probability of the predicted class. */
  probability: Float32Array;
  /** Softmax probability of the given label. */
  pGiven: Float32Array;
  /** Cross-entropy of the given label: −log p(given). */
  loss: Float32Array;
  /** Highest probability of another class minus p(given) (cleanlab's normalised margin, negated): in [−1, 1]. */
  margin: Float32Array;
}

/** Score arrays for `n` samples, zero-filled. */
export function emptySampleScores(n: number): SampleScores {
  return {
    predicted: new Int32Array(n),
    probability: new Float32Array(n),
    pGiven: new Float32Array(n),
    loss: new Float32Array(n),
    margin: new Float32Array(n),
  };
}

/** Softmax scores of `n` rows of logits (row-major [n, k]) against the given labels. */
export function scoresFromLogits(logits: ArrayLike<number>, givenLabels: ArrayLike<number>, numClasses: number): SampleScores {
  const n = givenLabels.length;
  const k = numClasses;
  if (!(Number.isInteger(k) && k >= 1)) throw new Error(`scoresFromLogits: numClasses must be a positive integer, got ${k}`);
  if (logits.length !== n * k) throw new Error(`scoresFromLogits: ${logits.length} logits for ${n} samples of ${k} classes (expected ${n * k})`);
  const out = emptySampleScores(n);
  for (let i = 0; i < n; i++) {
    const y = givenLabels[i]!;
    if (!(Number.isInteger(y) && y >= 0 && y < k)) throw new Error(`scoresFromLogits: label ${y} of sample ${i} is not in [0, ${k})`);
    const o = i * k;
    let best = 0;
    let max = -Infinity;
    for (let c = 0; c < k; c++) {
      const v = logits[o + c]!;
      if (v > max) {
        max = v;
        best = c;
      }
    }
    let sum = 0;
    let other = -Infinity;
    for (let c = 0; c < k; c++) {
      sum += Math.exp(logits[o + c]! - max);
      if (c !== y && logits[o + c]! > other) other = logits[o + c]!;
    }
    const logZ = max + Math.log(sum);
    out.margin[i] = (k > 1 ? Math.exp(other - logZ) : 0) - Math.exp(logits[o + y]! - logZ);
    out.predicted[i] = best;
    out.probability[i] = Math.exp(max - logZ);
    out.pGiven[i] = Math.exp(logits[o + y]! - logZ);
    out.loss[i] = logZ - logits[o + y]!;
  }
  return out;
}

/** Indices sorted by score, highest first; ties keep index order (so a ranking is reproducible). NaN sorts last. */
export function orderByScore(scores: ArrayLike<number>): Int32Array {
  const key = (i: number): number => (Number.isNaN(scores[i]!) ? -Infinity : scores[i]!);
  return Int32Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => key(b) - key(a) || a - b);
}

/** 1-based rank of every sample in `orderByScore(scores)`. */
export function ranksOf(scores: ArrayLike<number>): Int32Array {
  const order = orderByScore(scores);
  const rank = new Int32Array(order.length);
  order.forEach((i, r) => (rank[i] = r + 1));
  return rank;
}

function countPositives(positives: ArrayLike<number | boolean>): number {
  let p = 0;
  for (let i = 0; i < positives.length; i++) if (positives[i]) p++;
  return p;
}

function checkSameLength(what: string, scores: ArrayLike<number>, positives: ArrayLike<number | boolean>): void {
  if (scores.length !== positives.length) throw new Error(`${what}: ${scores.length} scores but ${positives.length} labels`);
}

/**
 * Of the `k` highest-scored samples (ties broken by index, as in orderByScore), the fraction that are positive
 * (corrupted). NaN when k is 0.
 */
export function precisionAtK(scores: ArrayLike<number>, positives: ArrayLike<number | boolean>, k: number): number {
  checkSameLength('precisionAtK', scores, positives);
  const kk = Math.min(k, scores.length);
  if (kk <= 0) return NaN;
  const order = orderByScore(scores);
  let hit = 0;
  for (let r = 0; r < kk; r++) if (positives[order[r]!]) hit++;
  return hit / kk;
}

/** The fraction of all positives found among the `k` highest-scored samples. NaN without positives. */
export function recallAtK(scores: ArrayLike<number>, positives: ArrayLike<number | boolean>, k: number): number {
  checkSameLength('recallAtK', scores, positives);
  const p = countPositives(positives);
  if (p === 0) return NaN;
  const order = orderByScore(scores);
  let hit = 0;
  for (let r = 0; r < Math.min(k, scores.length); r++) if (positives[order[r]!]) hit++;
  return hit / p;
}

/**
 * ROC AUC of the scores as a detector of positives: the probability that a random positive scores above a random
 * negative, ties counting one half (the Mann-Whitney statistic with mid-ranks). NaN when either class is empty.
 */
export function rocAuc(scores: ArrayLike<number>, positives: ArrayLike<number | boolean>): number {
  checkSameLength('rocAuc', scores, positives);
  const n = scores.length;
  const p = countPositives(positives);
  const q = n - p;
  if (p === 0 || q === 0) return NaN;
  const key = (i: number): number => (Number.isNaN(scores[i]!) ? -Infinity : scores[i]!);
  const order = Int32Array.from({ length: n }, (_, i) => i).sort((a, b) => key(a) - key(b));
  let rankSum = 0;
  for (let start = 0; start < n; ) {
    let end = start + 1;
    while (end < n && key(order[end]!) === key(order[start]!)) end++;
    const mid = (start + 1 + end) / 2; // mean of the 1-based ranks start+1..end
    for (let r = start; r < end; r++) if (positives[order[r]!]) rankSum += mid;
    start = end;
  }
  return (rankSum - (p * (p + 1)) / 2) / (p * q);
}

export interface RankingQuality {
  /** Number of positives: the k of precision@k and recall@k. */
  k: number;
  auc: number;
  precisionAtK: number;
  recallAtK: number;
}

/** AUC, precision@k and recall@k with k = the number of positives. */
export function rankingQuality(scores: ArrayLike<number>, positives: ArrayLike<number | boolean>): RankingQuality {
  const k = countPositives(positives);
  return { k, auc: rocAuc(scores, positives), precisionAtK: precisionAtK(scores, positives, k), recallAtK: recallAtK(scores, positives, k) };
}

/** One reviewed sample: its id, label, what the model says, σ and its place in each ranking (1 = most suspect). */
export interface Suspect {
  /** Position in the caller's arrays. */
  index: number;
  /** Instance id (the data parameter's index). */
  id: number;
  given: number;
  predicted: number;
  probability: number;
  pGiven: number;
  loss: number;
  margin: number;
  /** σ* as the loss used it; null where there are no data parameters. */
  sigma: number | null;
  sigmaRank: number | null;
  lossRank: number;
  /** Rank by 1 − p(given) (the confident-learning score). */
  confidentRank: number;
  marginRank: number;
}

export interface RankSuspectsInput {
  /**
   * σ per sample: a DataParameters (σ* as its loss uses it: class σ of the given label, instance σ of the id, or
   * their sum), σ values in the caller's order, or null (no σ: the review is sorted by loss).
   */
  sigma: DataParameters | ArrayLike<number> | null;
  /** Instance id of each sample (its data parameter). */
  ids: ArrayLike<number>;
  givenLabels: ArrayLike<number>;
  /** The model's scores of each sample (scoresFromLogits). */
  scores: SampleScores;
}

export interface SuspectRanking {
  /** Every sample, most suspect first: by σ descending, or by loss where there is no σ. */
  suspects: Suspect[];
  /** True when the order is by σ. */
  bySigma: boolean;
}

/** σ* of the given samples as the data parameters' loss would use it (1 in mode 'none'). */
export function sigmaOfSamples(dp: DataParameters, ids: ArrayLike<number>, givenLabels: ArrayLike<number>): Float32Array {
  const n = ids.length;
  const out = new Float32Array(n);
  if (dp.mode === 'none') return out.fill(1);
  const cls = dp.mode === 'class' || dp.mode === 'joint' ? dp.classSigma() : null;
  const inst = dp.mode === 'instance' || dp.mode === 'joint' ? dp.instanceSigmaValues(Int32Array.from(ids)) : null;
  for (let i = 0; i < n; i++) out[i] = (cls ? cls[givenLabels[i]!]! : 0) + (inst ? inst[i]! : 0);
  return out;
}

function isDataParameters(v: unknown): v is DataParameters {
  return typeof v === 'object' && v !== null && 'instanceSigmaValues' in v && 'mode' in v;
}

/**
 * The ranking of samples by how likely their label is wrong. A DataParameters in mode 'none' counts as no σ. Ranks
 * of the comparison rankings (loss, 1 − p(given)) come with every sample.
 */
export function rankSuspects(input: RankSuspectsInput): SuspectRanking {
  const { ids, givenLabels, scores } = input;
  const n = ids.length;
  if (givenLabels.length !== n) throw new Error(`rankSuspects: ${n} ids but ${givenLabels.length} labels`);
  for (const name of ['predicted', 'probability', 'pGiven', 'loss', 'margin'] as const) {
    const arr = scores[name];
    if (arr.length !== n) throw new Error(`rankSuspects: ${n} ids but ${arr.length} values of ${name}`);
  }
  let sigma: ArrayLike<number> | null;
  if (input.sigma === null) sigma = null;
  else if (isDataParameters(input.sigma)) sigma = input.sigma.mode === 'none' ? null : sigmaOfSamples(input.sigma, ids, givenLabels);
  else sigma = input.sigma;
  if (sigma && sigma.length !== n) throw new Error(`rankSuspects: ${n} ids but ${sigma.length} σ values`);
  const lossRank = ranksOf(scores.loss);
  const confidentRank = ranksOf(Float32Array.from(scores.pGiven, (p) => 1 - p));
  const marginRank = ranksOf(scores.margin);
  const sigmaRank = sigma ? ranksOf(sigma) : null;
  const order = sigma ? orderByScore(sigma) : orderByScore(scores.loss);
  const suspects = Array.from(order, (i): Suspect => ({
    index: i,
    id: ids[i]!,
    given: givenLabels[i]!,
    predicted: scores.predicted[i]!,
    probability: scores.probability[i]!,
    pGiven: scores.pGiven[i]!,
    loss: scores.loss[i]!,
    margin: scores.margin[i]!,
    sigma: sigma ? sigma[i]! : null,
    sigmaRank: sigmaRank ? sigmaRank[i]! : null,
    lossRank: lossRank[i]!,
    confidentRank: confidentRank[i]!,
    marginRank: marginRank[i]!,
  }));
  return { suspects, bySigma: sigma !== null };
}

// --- label-review.csv ------------------------------------------------------------------------------------------------

export const LABEL_REVIEW_FILE = 'label-review.csv';

export type CsvValue = string | number | boolean | null | undefined;

/** One CSV field: numbers with up to 6 significant decimals, empty for null/undefined/NaN, quoted where needed. */
export function csvField(v: CsvValue): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return Number.isNaN(v) ? '' : String(v);
    return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(7)));
  }
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function formatCsv(header: readonly string[], rows: readonly (readonly CsvValue[])[]): string {
  const lines = [header.map(csvField).join(',')];
  for (const r of rows) {
    if (r.length !== header.length) throw new Error(`formatCsv: a row has ${r.length} fields, the header ${header.length}`);
    lines.push(r.map(csvField).join(','));
  }
  return lines.join('\n') + '\n';
}

/** Parses the CSV this module writes (RFC 4180 quoting); every row as header → text. Errors name the file and line. */
export function parseCsv(text: string, file = 'csv'): { header: string[]; rows: Record<string, string>[] } {
  const records: { fields: string[]; line: number }[] = [];
  let field = '';
  let fields: string[] = [];
  let quoted = false;
  let line = 1;
  let startLine = 1;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else {
        if (ch === '\n') line++;
        field += ch;
      }
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === ',') {
      fields.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      fields.push(field);
      records.push({ fields, line: startLine });
      fields = [];
      field = '';
      line++;
      startLine = line;
    } else field += ch;
  }
  if (quoted) throw new Error(`${file}:${startLine}: unterminated quoted field`);
  if (field !== '' || fields.length) {
    fields.push(field);
    records.push({ fields, line: startLine });
  }
  const [first, ...body] = records.filter((r) => !(r.fields.length === 1 && r.fields[0] === ''));
  if (first === undefined) throw new Error(`${file}: empty (no header row)`);
  const header = first.fields;
  const rows = body.map((r) => {
    if (r.fields.length !== header.length) throw new Error(`${file}:${r.line}: ${r.fields.length} fields, the header has ${header.length}`);
    return Object.fromEntries(header.map((h, j) => [h, r.fields[j]!]));
  });
  return { header, rows };
}

/** Columns of a classification review, in file order. */
export const CLASSIFICATION_REVIEW_COLUMNS = [
  'rank',
  'index',
  'file',
  'source_image',
  'given_label',
  'given_class',
  'predicted_label',
  'predicted_class',
  'probability',
  'p_given',
  'sigma',
  'loss',
  'margin',
  'sigma_rank',
  'loss_rank',
  'confident_rank',
  'margin_rank',
  'corrupted',
] as const;

/**
 * A classification review as CSV text. `file` (or '') names sample i's image; `corrupted` (where the noise is known,
 * e.g. injected) fills the last column, else it is left empty.
 */
export function classificationReviewCsv(
  ranking: SuspectRanking,
  o: {
    classNames?: readonly string[];
    file?: (index: number) => string;
    /** Where the sample's pixels sit in an in-memory dataset's source file (its image number there). */
    sourceImage?: (index: number) => number;
    corrupted?: ArrayLike<number | boolean> | null;
  } = {},
): string {
  const name = (c: number): string => o.classNames?.[c] ?? '';
  const rows = ranking.suspects.map((s, r) => [
    r + 1,
    s.id,
    o.file ? o.file(s.index) : '',
    o.sourceImage ? o.sourceImage(s.index) : null,
    s.given,
    name(s.given),
    s.predicted,
    name(s.predicted),
    s.probability,
    s.pGiven,
    s.sigma,
    s.loss,
    s.margin,
    s.sigmaRank,
    s.lossRank,
    s.confidentRank,
    s.marginRank,
    o.corrupted ? (o.corrupted[s.index] ? 1 : 0) : null,
  ]);
  return formatCsv(CLASSIFICATION_REVIEW_COLUMNS, rows);
}
