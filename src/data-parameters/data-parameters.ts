/**
 * Data parameters (Saxena, Tuzel & DeCoste, NeurIPS 2019): a learned temperature σ per class and per training
 * instance. A sample's logits are divided by its σ* (class σ, instance σ, or their sum) before softmax cross-entropy;
 * σ is learned by its own SGD. High σ flattens the sample's softmax and weakens its gradient: "learn this later".
 *
 * Semantics follow the authors' reference code (see shared notes, data-parameters.md):
 * - σ is stored as log σ, initialised to log(init);
 * - loss = mean CE(logits / σ*) + Σ over learned kinds 0.5·wd·Σ_batch (gathered log σ)², not divided by the batch;
 * - one momentum SGD per kind (buf = g on the first update, then μ·buf + g; p -= lr·buf), where entries whose gradient
 *   is exactly zero in a step keep their value and their momentum buffer;
 * - after both updates, learned log σ is clamped to [ln min, ln max] (σ in [0.05, 20] by default).
 *
 * The tables live on the backend as tf.Variables (K and N floats), so a step needs no host round trip: the gradient of
 * the gather is one dense tensor per kind and the sparse update is a few element-wise ops, exactly as the reference
 * does it on the GPU. Memory is O(K + N); nothing per instance is ever allocated per step.
 */
import * as tf from '@tensorflow/tfjs';

export const CURRICULUM_MODES = ['none', 'class', 'instance', 'joint'] as const;
export type CurriculumMode = (typeof CURRICULUM_MODES)[number];

/** Bounds on σ (not log σ). */
export interface SigmaBounds {
  min: number;
  max: number;
}

export interface KindOptions {
  /** Initial σ (> 0). Default 1. */
  init: number;
  /** Learning rate of this kind's SGD (constant: only the model's lr is scheduled). Default 0.1. */
  lr: number;
  /** SGD momentum, no dampening, no Nesterov. Default 0.9. */
  momentum: number;
  /** Weight decay on log σ, added to the loss per sample occurrence. Default 0. */
  weightDecay: number;
  /** Overrides the global clamp for this kind (`null`: no clamp). */
  clamp?: SigmaBounds | null;
}

export interface DataParametersOptions {
  numClasses: number;
  numInstances: number;
  mode: CurriculumMode;
  class?: Partial<KindOptions>;
  instance?: Partial<KindOptions>;
  /** σ bounds applied after every update; `null` disables. Default { min: 0.05, max: 20 }. */
  clamp?: SigmaBounds | null;
}

export interface DataParametersState {
  classLogSigma: Float32Array | null;
  instanceLogSigma: Float32Array | null;
  classMomentum: Float32Array | null;
  instanceMomentum: Float32Array | null;
  step: number;
}

export interface SigmaStats {
  count: number;
  min: number;
  max: number;
  mean: number;
  std: number;
  /** Equal-width bins over [min, max] of the values. */
  histogram: { edges: number[]; counts: number[] };
}

export interface DataParameterStats {
  class?: SigmaStats;
  /** σ of every class, index = class. */
  perClass?: Float32Array;
  instance?: SigmaStats;
}

/** Integer indices given as a plain array, a typed array or an int32 tensor. */
export type IndexInput = ArrayLike<number> | tf.Tensor1D;

export const DEFAULT_CLAMP: SigmaBounds = { min: 0.05, max: 20 };
const DEFAULT_KIND: KindOptions = { init: 1, lr: 0.1, momentum: 0.9, weightDecay: 0 };

type Kind = 'class' | 'instance';

interface KindState {
  readonly kind: Kind;
  readonly size: number;
  readonly options: KindOptions;
  /** Clamp bounds on log σ, or null. */
  readonly logBounds: [number, number] | null;
  readonly logSigma: tf.Variable<tf.Rank.R1>;
  momentum: tf.Tensor1D | null;
}

let nextId = 0;

export class DataParameters {
  readonly mode: CurriculumMode;
  readonly numClasses: number;
  readonly numInstances: number;
  /** Names of the trainable variables this object owns. Give the model's optimiser only the other gradients. */
  readonly variableNames: readonly string[];
  private readonly classState: KindState | null;
  private readonly instanceState: KindState | null;
  private stepCount = 0;
  private disposed = false;

  constructor(options: DataParametersOptions) {
    const { mode } = options;
    if (!(CURRICULUM_MODES as readonly string[]).includes(mode)) {
      throw new Error(`DataParameters: unknown mode '${String(mode)}' (expected ${CURRICULUM_MODES.join(', ')})`);
    }
    this.mode = mode;
    this.numClasses = options.numClasses;
    this.numInstances = options.numInstances;
    const learnsClass = mode === 'class' || mode === 'joint';
    const learnsInstance = mode === 'instance' || mode === 'joint';
    if (learnsClass) checkCount('numClasses', options.numClasses);
    if (learnsInstance) checkCount('numInstances', options.numInstances);
    const globalClamp = options.clamp === undefined ? DEFAULT_CLAMP : options.clamp;
    const prefix = `dataParameters${nextId++}`;
    this.classState = learnsClass ? makeKind('class', options.numClasses, options.class, globalClamp, prefix) : null;
    this.instanceState = learnsInstance
      ? makeKind('instance', options.numInstances, options.instance, globalClamp, prefix)
      : null;
    this.variableNames = [this.classState, this.instanceState].filter((s) => s !== null).map((s) => s.logSigma.name);
  }

  /** Number of updates applied so far. */
  get step(): number {
    return this.stepCount;
  }

  /** The bounds the clamp holds a kind's σ to (null: that kind is not learned or not clamped). */
  sigmaBounds(kind: 'class' | 'instance'): SigmaBounds | null {
    const state = kind === 'class' ? this.classState : this.instanceState;
    return state?.logBounds ? { min: Math.exp(state.logBounds[0]), max: Math.exp(state.logBounds[1]) } : null;
  }

  /** The trainable variables this object owns (the log σ tables), for tf.variableGrads' variable list. */
  get variables(): tf.Variable[] {
    this.checkAlive();
    return [this.classState, this.instanceState].filter((s) => s !== null).map((s) => s.logSigma);
  }

  /** σ* per sample: exp(class[y]) | exp(instance[i]) | their sum | 1, differentiable with respect to this object's
   * variables. */
  sigma(targets: IndexInput, instanceIds?: IndexInput): tf.Tensor1D {
    this.checkAlive();
    const classIds = this.classState ? toIndices(targets, this.numClasses, 'target class') : null;
    let instIds: Int32Array | null = null;
    if (this.instanceState) {
      if (instanceIds === undefined) throw new Error(`DataParameters: mode '${this.mode}' needs instance ids`);
      instIds = toIndices(instanceIds, this.numInstances, 'instance id');
    }
    const batch = classIds?.length ?? instIds?.length ?? lengthOf(targets);
    if (classIds && instIds && classIds.length !== instIds.length) {
      throw new Error(`DataParameters: ${classIds.length} targets but ${instIds.length} instance ids`);
    }
    return tf.tidy(() => {
      let s: tf.Tensor1D | null = null;
      if (this.classState && classIds) s = gatherSigma(this.classState, classIds);
      if (this.instanceState && instIds) {
        const si = gatherSigma(this.instanceState, instIds);
        s = s === null ? si : (tf.add<tf.Tensor1D>(s, si));
      }
      return s ?? tf.ones([batch]);
    });
  }

  /** σ of the given instances (detection: one per ground-truth box of the batch), differentiable. */
  instanceSigma(instanceIds: IndexInput): tf.Tensor1D {
    this.checkAlive();
    if (!this.instanceState) throw new Error(`DataParameters: mode '${this.mode}' has no instance parameters`);
    const ids = toIndices(instanceIds, this.numInstances, 'instance id');
    const state = this.instanceState;
    return tf.tidy(() => gatherSigma(state, ids));
  }

  /**
   * 0.5·wd·Σ (gathered log σ)² per learned kind with weight decay, over the samples given: their classes (`targets`)
   * for the class kind, their `instanceIds` for the instance kind (one entry per occurrence, as sigma() and
   * instanceSigma() were given them). A kind without weight decay needs no ids.
   */
  weightDecayLoss(samples: { targets?: IndexInput; instanceIds?: IndexInput }): tf.Scalar {
    this.checkAlive();
    const idsOf = (state: KindState | null, given: IndexInput | undefined, size: number, what: string): Int32Array | null => {
      if (!state || state.options.weightDecay <= 0) return null;
      if (given === undefined) throw new Error(`DataParameters.weightDecayLoss: mode '${this.mode}' with ${state.kind} weight decay needs ${what}s`);
      return toIndices(given, size, what);
    };
    const terms: [KindState | null, Int32Array | null][] = [
      [this.classState, idsOf(this.classState, samples.targets, this.numClasses, 'target class')],
      [this.instanceState, idsOf(this.instanceState, samples.instanceIds, this.numInstances, 'instance id')],
    ];
    return tf.tidy(() => {
      let total: tf.Scalar = tf.scalar(0);
      for (const [state, ids] of terms) {
        if (!state || !ids || ids.length === 0) continue;
        const logs = gatherEntries(state.logSigma, ids);
        total = tf.add(total, tf.mul(0.5 * state.options.weightDecay, tf.sum(tf.square(logs))));
      }
      return total;
    });
  }

  /** Mean softmax cross-entropy of logits / σ* plus the weight-decay term. */
  loss(logits: tf.Tensor2D, targets: IndexInput, instanceIds?: IndexInput): tf.Scalar {
    this.checkAlive();
    if (logits.rank !== 2) throw new Error(`DataParameters.loss: logits must be [batch, classes], got [${logits.shape}]`);
    const [batch, classes] = logits.shape;
    const n = lengthOf(targets);
    if (n !== batch) throw new Error(`DataParameters.loss: ${batch} rows of logits but ${n} targets`);
    if (instanceIds !== undefined && lengthOf(instanceIds) !== batch) {
      throw new Error(`DataParameters.loss: ${batch} rows of logits but ${lengthOf(instanceIds)} instance ids`);
    }
    const labels = toIndices(targets, classes, 'target class');
    const ids = instanceIds !== undefined && this.instanceState ? toIndices(instanceIds, this.numInstances, 'instance id') : instanceIds;
    return tf.tidy(() => {
      const sigma = this.sigma(labels, ids);
      const scaled = tf.div<tf.Tensor2D>(logits, tf.reshape(sigma, [batch, 1]));
      const ce = softmaxCrossEntropy(scaled, labels);
      return tf.add(ce, this.weightDecayLoss({ targets: labels, instanceIds: ids }));
    });
  }

  /**
   * One SGD step per learned kind from a gradient map (as returned by tf.variableGrads); entries of other variables
   * are ignored. Entries with an exactly-zero gradient keep their value and momentum. Then clamps. The caller keeps
   * ownership of `grads`.
   */
  applyGradients(grads: tf.NamedTensorMap): void {
    this.checkAlive();
    for (const state of [this.classState, this.instanceState]) {
      if (!state) continue;
      const g = grads[state.logSigma.name];
      if (!g) continue;
      if (g.size !== state.size) {
        throw new Error(`DataParameters: gradient for ${state.kind} has ${g.size} entries, expected ${state.size}`);
      }
      updateKind(state, g as tf.Tensor1D);
    }
    for (const state of [this.classState, this.instanceState]) {
      if (state?.logBounds) {
        const [lo, hi] = state.logBounds;
        const clamped = tf.tidy(() => tf.clipByValue(state.logSigma, lo, hi));
        state.logSigma.assign(clamped);
        clamped.dispose();
      }
    }
    this.stepCount++;
  }

  /** σ of every class (a copy). */
  classSigma(): Float32Array {
    this.checkAlive();
    if (!this.classState) throw new Error(`DataParameters: mode '${this.mode}' has no class parameters`);
    return expOf(this.classState.logSigma);
  }

  /** σ of the given instances, or of all instances (a copy). */
  instanceSigmaValues(ids?: ArrayLike<number>): Float32Array {
    this.checkAlive();
    if (!this.instanceState) throw new Error(`DataParameters: mode '${this.mode}' has no instance parameters`);
    const all = expOf(this.instanceState.logSigma);
    if (ids === undefined) return all;
    const idx = toIndices(ids, this.numInstances, 'instance id');
    const out = new Float32Array(idx.length);
    for (let i = 0; i < idx.length; i++) out[i] = all[idx[i]!]!;
    return out;
  }

  /** Summary statistics of σ: over classes (with σ per class), and over the given instances (default all). */
  stats(options: { instanceIds?: ArrayLike<number>; bins?: number } = {}): DataParameterStats {
    const bins = options.bins ?? 10;
    const out: DataParameterStats = {};
    if (this.classState) {
      out.perClass = this.classSigma();
      out.class = summarise(out.perClass, bins);
    }
    if (this.instanceState) out.instance = summarise(this.instanceSigmaValues(options.instanceIds), bins);
    return out;
  }

  getState(): DataParametersState {
    this.checkAlive();
    const read = (t: tf.Tensor | null | undefined): Float32Array | null => (t ? Float32Array.from(t.dataSync()) : null);
    return {
      classLogSigma: read(this.classState?.logSigma),
      instanceLogSigma: read(this.instanceState?.logSigma),
      classMomentum: read(this.classState?.momentum),
      instanceMomentum: read(this.instanceState?.momentum),
      step: this.stepCount,
    };
  }

  setState(state: DataParametersState): void {
    this.checkAlive();
    const pairs: [KindState | null, Float32Array | null, Float32Array | null][] = [
      [this.classState, state.classLogSigma, state.classMomentum],
      [this.instanceState, state.instanceLogSigma, state.instanceMomentum],
    ];
    for (const [kind, values, momentum] of pairs) {
      const name = kind?.kind ?? 'unused';
      if (!kind) {
        if (values) throw new Error(`DataParameters.setState: state has ${name} values but mode is '${this.mode}'`);
        continue;
      }
      if (!values || values.length !== kind.size) {
        throw new Error(`DataParameters.setState: ${kind.kind} log σ needs ${kind.size} values, got ${values?.length ?? 'none'}`);
      }
      if (momentum && momentum.length !== kind.size) {
        throw new Error(`DataParameters.setState: ${kind.kind} momentum needs ${kind.size} values, got ${momentum.length}`);
      }
      const v = tf.tensor1d(values, 'float32');
      kind.logSigma.assign(v);
      v.dispose();
      kind.momentum?.dispose();
      kind.momentum = momentum ? tf.keep(tf.tensor1d(momentum, 'float32')) : null;
    }
    if (!Number.isInteger(state.step) || state.step < 0) throw new Error('DataParameters.setState: bad step');
    this.stepCount = state.step;
  }

  dispose(): void {
    if (this.disposed) return;
    for (const s of [this.classState, this.instanceState]) {
      if (!s) continue;
      s.logSigma.dispose();
      s.momentum?.dispose();
    }
    this.disposed = true;
  }

  private checkAlive(): void {
    if (this.disposed) throw new Error('DataParameters: used after dispose()');
  }
}

/** Mean softmax cross-entropy with a stable log-sum-exp; labels as integer classes. */
export function softmaxCrossEntropy(logits: tf.Tensor2D, labels: Int32Array): tf.Scalar {
  return tf.tidy(() => {
    const [, classes] = logits.shape;
    const oneHot = tf.oneHot(tf.tensor1d(labels, 'int32'), classes);
    const logp = tf.logSoftmax(logits);
    return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, logp), 1))) as tf.Scalar;
  });
}

/** The gradients of a map that do not belong to the given names (e.g. the model's share of a variableGrads result). */
export function omitGradients(grads: tf.NamedTensorMap, names: readonly string[]): tf.NamedTensorMap {
  const out: tf.NamedTensorMap = {};
  for (const [k, v] of Object.entries(grads)) if (!names.includes(k)) out[k] = v;
  return out;
}

function makeKind(
  kind: Kind,
  size: number,
  partial: Partial<KindOptions> | undefined,
  globalClamp: SigmaBounds | null,
  prefix: string,
): KindState {
  const options: KindOptions = { ...DEFAULT_KIND, ...stripUndefined(partial ?? {}) };
  const where = `DataParameters (${kind})`;
  if (!(options.init > 0) || !Number.isFinite(options.init)) {
    throw new Error(`${where}: init must be a positive number (σ > 0, stored as log σ), got ${options.init}`);
  }
  if (!(options.lr >= 0) || !Number.isFinite(options.lr)) throw new Error(`${where}: lr must be >= 0, got ${options.lr}`);
  if (!(options.momentum >= 0 && options.momentum < 1)) {
    throw new Error(`${where}: momentum must be in [0, 1), got ${options.momentum}`);
  }
  if (!(options.weightDecay >= 0) || !Number.isFinite(options.weightDecay)) {
    throw new Error(`${where}: weightDecay must be >= 0, got ${options.weightDecay}`);
  }
  const bounds = partial?.clamp === undefined ? globalClamp : partial.clamp;
  if (bounds && !(bounds.min > 0 && bounds.max > bounds.min && Number.isFinite(bounds.max))) {
    throw new Error(`${where}: clamp needs 0 < min < max, got [${bounds.min}, ${bounds.max}]`);
  }
  const initial = tf.fill([size], Math.log(options.init));
  const logSigma = tf.variable(initial, true, `${prefix}/${kind}LogSigma`) as tf.Variable<tf.Rank.R1>;
  initial.dispose();
  return {
    kind,
    size,
    options,
    logBounds: bounds ? [Math.log(bounds.min), Math.log(bounds.max)] : null,
    logSigma,
    momentum: null,
  };
}

function updateKind(state: KindState, g: tf.Tensor1D): void {
  const { lr, momentum: mu } = state.options;
  if (mu === 0) {
    const p = tf.tidy(() => tf.sub<tf.Tensor1D>(state.logSigma, tf.mul(lr, g)));
    state.logSigma.assign(p);
    p.dispose();
    return;
  }
  const [p, buf] = tf.tidy((): [tf.Tensor1D, tf.Tensor1D] => {
    const present = tf.notEqual(g, 0);
    // First update: buf = g for every entry (zero where absent, so those stay put); later: μ·buf + g where present.
    const b = state.momentum ? tf.where(present, tf.add<tf.Tensor1D>(tf.mul(mu, state.momentum), g), state.momentum) : g.clone();
    return [tf.where(present, tf.sub<tf.Tensor1D>(state.logSigma, tf.mul(lr, b)), state.logSigma), b];
  });
  state.logSigma.assign(p);
  p.dispose();
  state.momentum?.dispose();
  state.momentum = buf;
}

function gatherSigma(state: KindState, ids: Int32Array): tf.Tensor1D {
  return tf.exp<tf.Tensor1D>(gatherEntries(state.logSigma, ids));
}

/**
 * table[ids] whose gradient is one scatter of the batch's B values into a zero table (duplicates summed): O(N + B).
 * tf.gather's own gradient is UnsortedSegmentSum, which the pure-JS backend runs as one pass over the batch per
 * table entry, O(N·B): minutes per step at WebVision's N.
 */
function gatherEntries(table: tf.Tensor1D, ids: Int32Array): tf.Tensor1D {
  const size = table.shape[0];
  const gather = tf.customGrad((t, save) => {
    const idx = tf.tensor2d(ids, [ids.length, 1], 'int32');
    (save as tf.GradSaveFunc)([idx]);
    return {
      value: tf.gatherND(t as tf.Tensor1D, idx) as tf.Tensor1D,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.scatterND(saved[0]!, dy, [size]),
    };
  });
  return gather(table);
}

function expOf(v: tf.Tensor): Float32Array {
  const log = v.dataSync();
  const out = new Float32Array(log.length);
  for (let i = 0; i < log.length; i++) out[i] = Math.exp(log[i]!);
  return out;
}

function lengthOf(x: IndexInput): number {
  return x instanceof tf.Tensor ? x.size : x.length;
}

function toIndices(x: IndexInput, size: number, what: string): Int32Array {
  let values: ArrayLike<number>;
  if (x instanceof tf.Tensor) {
    if (x.rank !== 1) throw new Error(`DataParameters: ${what}s must be a 1-D tensor, got shape [${x.shape}]`);
    values = x.dataSync();
  } else {
    values = x;
  }
  const out = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isInteger(v) || v < 0 || v >= size) {
      throw new Error(`DataParameters: ${what} ${v} at position ${i} is out of range [0, ${size})`);
    }
    out[i] = v;
  }
  return out;
}

function checkCount(name: string, n: number): void {
  if (!Number.isInteger(n) || n <= 0) throw new Error(`DataParameters: ${name} must be a positive integer, got ${n}`);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function summarise(values: Float32Array, bins: number): SigmaStats {
  const n = values.length;
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
  }
  const mean = n > 0 ? sum / n : NaN;
  let sq = 0;
  for (let i = 0; i < n; i++) sq += (values[i]! - mean) ** 2;
  const std = n > 0 ? Math.sqrt(sq / n) : NaN;
  const counts = new Array<number>(bins).fill(0);
  const width = (max - min) / bins;
  for (let i = 0; i < n; i++) {
    const b = width > 0 ? Math.min(bins - 1, Math.floor((values[i]! - min) / width)) : 0;
    counts[b]!++;
  }
  const edges = Array.from({ length: bins + 1 }, (_, i) => (n > 0 ? min + i * width : NaN));
  return { count: n, min: n > 0 ? min : NaN, max: n > 0 ? max : NaN, mean, std, histogram: { edges, counts } };
}
