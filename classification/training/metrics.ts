/** Classification metrics computed on the host from logits: top-k accuracy, expected calibration error, and
 * temperature scaling fitted by minimising the held-out negative log-likelihood. */

/** Number of rows whose label is among the k largest logits (ties count against: strictly larger logits push out). */
export function topKCorrect(logits: Float32Array, labels: ArrayLike<number>, numClasses: number, k: number): number {
  const n = labels.length;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const row = i * numClasses;
    const target = logits[row + labels[i]!]!;
    let larger = 0;
    for (let j = 0; j < numClasses; j++) {
      const v = logits[row + j]!;
      if (v > target || (v === target && j < labels[i]!)) larger++;
    }
    if (larger < k) correct++;
  }
  return correct;
}

function softmaxRow(logits: Float32Array, row: number, numClasses: number, temperature: number, out: Float64Array): void {
  let max = -Infinity;
  for (let j = 0; j < numClasses; j++) max = Math.max(max, logits[row + j]! / temperature);
  let sum = 0;
  for (let j = 0; j < numClasses; j++) {
    out[j] = Math.exp(logits[row + j]! / temperature - max);
    sum += out[j]!;
  }
  for (let j = 0; j < numClasses; j++) out[j] = out[j]! / sum;
}

/** Mean negative log-likelihood of softmax(logits / T). */
export function nllAt(logits: Float32Array, labels: ArrayLike<number>, numClasses: number, temperature: number): number {
  const n = labels.length;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const row = i * numClasses;
    let max = -Infinity;
    for (let j = 0; j < numClasses; j++) max = Math.max(max, logits[row + j]! / temperature);
    let sum = 0;
    for (let j = 0; j < numClasses; j++) sum += Math.exp(logits[row + j]! / temperature - max);
    total += Math.log(sum) + max - logits[row + labels[i]!]! / temperature;
  }
  return total / n;
}

/**
 * Expected calibration error (Guo et al. 2017): confidences (max softmax probability) in `bins` equal-width bins;
 * Σ_b |B_b|/n · |accuracy(B_b) − confidence(B_b)|.
 */
export function expectedCalibrationError(
  logits: Float32Array,
  labels: ArrayLike<number>,
  numClasses: number,
  temperature = 1,
  bins = 15,
): number {
  const n = labels.length;
  const count = new Float64Array(bins);
  const conf = new Float64Array(bins);
  const acc = new Float64Array(bins);
  const p = new Float64Array(numClasses);
  for (let i = 0; i < n; i++) {
    softmaxRow(logits, i * numClasses, numClasses, temperature, p);
    let best = 0;
    for (let j = 1; j < numClasses; j++) if (p[j]! > p[best]!) best = j;
    const c = p[best]!;
    const b = Math.min(bins - 1, Math.floor(c * bins));
    count[b]!++;
    conf[b]! += c;
    acc[b]! += best === labels[i] ? 1 : 0;
  }
  let ece = 0;
  for (let b = 0; b < bins; b++) if (count[b]! > 0) ece += Math.abs(acc[b]! - conf[b]!) / n;
  return ece;
}

/** The temperature minimising held-out NLL: golden-section search on log T in [ln 0.05, ln 20] (NLL(T) is unimodal
 * in practice; the search is exact to ~1e-4 in log T). */
export function fitTemperature(logits: Float32Array, labels: ArrayLike<number>, numClasses: number): number {
  let a = Math.log(0.05);
  let b = Math.log(20);
  const phi = (Math.sqrt(5) - 1) / 2;
  let c = b - phi * (b - a);
  let d = a + phi * (b - a);
  let fc = nllAt(logits, labels, numClasses, Math.exp(c));
  let fd = nllAt(logits, labels, numClasses, Math.exp(d));
  while (b - a > 1e-4) {
    if (fc < fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - phi * (b - a);
      fc = nllAt(logits, labels, numClasses, Math.exp(c));
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + phi * (b - a);
      fd = nllAt(logits, labels, numClasses, Math.exp(d));
    }
  }
  return Math.exp((a + b) / 2);
}

export interface MeanStd {
  count: number;
  mean: number;
  std: number;
}

/** Mean and population std of values[i] over the indices where mask[i] === want. */
export function maskedMeanStd(values: ArrayLike<number>, mask: ArrayLike<number>, want: number): MeanStd {
  let n = 0;
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < values.length; i++) {
    if (mask[i] !== want) continue;
    const v = values[i]!;
    n++;
    s += v;
    s2 += v * v;
  }
  if (n === 0) return { count: 0, mean: NaN, std: NaN };
  const mean = s / n;
  return { count: n, mean, std: Math.sqrt(Math.max(0, s2 / n - mean * mean)) };
}
