/**
 * The parameters of one model: every layer asks the store for its variables at construction, so the model's weights
 * have stable hierarchical names (`<layer path>/<param>`), a deterministic seeded initialisation, and can be read and
 * written as plain typed arrays for checkpoints. Buffers (batch-norm running statistics) are non-trainable variables.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../src/util/rng.js';

let nextStoreId = 0;

export class ParamStore {
  /** Prefix that keeps tf variable names unique when several models live in one process. */
  readonly prefix: string;
  private readonly params = new Map<string, tf.Variable>();
  private readonly buffers = new Map<string, tf.Variable>();
  readonly rng: Rng;

  constructor(seed = 0) {
    this.prefix = `model${nextStoreId++}`;
    this.rng = new Rng(seed);
  }

  /** A trainable variable initialised from `init` (given the shape and the store's Rng). */
  param(name: string, shape: number[], init: (size: number, rng: Rng) => Float32Array): tf.Variable {
    if (this.params.has(name) || this.buffers.has(name)) throw new Error(`ParamStore: '${name}' defined twice`);
    const size = shape.reduce((a, b) => a * b, 1);
    const v = tf.tidy(() => tf.variable(tf.tensor(init(size, this.rng), shape, 'float32'), true, `${this.prefix}/${name}`));
    this.params.set(name, v);
    return v;
  }

  buffer(name: string, shape: number[], fill: number): tf.Variable {
    if (this.params.has(name) || this.buffers.has(name)) throw new Error(`ParamStore: '${name}' defined twice`);
    const v = tf.tidy(() => tf.variable(tf.fill(shape, fill), false, `${this.prefix}/${name}`));
    this.buffers.set(name, v);
    return v;
  }

  trainable(): tf.Variable[] {
    return [...this.params.values()];
  }

  /** Trainable variables keyed by their name in this store (stable across processes, unlike tf's unique names). */
  named(): Map<string, tf.Variable> {
    return new Map(this.params);
  }

  /** Number of trainable scalars. */
  get parameterCount(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  /** Weights and buffers as typed arrays, keyed by name (for checkpoints). */
  getWeights(): Record<string, Float32Array> {
    const out: Record<string, Float32Array> = {};
    for (const [k, v] of [...this.params, ...this.buffers]) out[k] = Float32Array.from(v.dataSync() as Float32Array);
    return out;
  }

  setWeights(weights: Record<string, Float32Array>): void {
    for (const [k, v] of [...this.params, ...this.buffers]) {
      const w = weights[k];
      if (!w) throw new Error(`ParamStore.setWeights: missing '${k}'`);
      if (w.length !== v.size) throw new Error(`ParamStore.setWeights: '${k}' has ${w.length} values, expected ${v.size}`);
      const t = tf.tensor(w, v.shape, 'float32');
      v.assign(t);
      t.dispose();
    }
  }

  dispose(): void {
    for (const v of [...this.params.values(), ...this.buffers.values()]) v.dispose();
    this.params.clear();
    this.buffers.clear();
  }
}

/** He (Kaiming) normal initialisation with std sqrt(2 / fan). */
export function heNormal(fan: number): (size: number, rng: Rng) => Float32Array {
  const std = Math.sqrt(2 / fan);
  return (size, rng) => {
    const a = new Float32Array(size);
    for (let i = 0; i < size; i++) a[i] = rng.normal() * std;
    return a;
  };
}

/** Uniform in [-bound, bound] (PyTorch's default for linear layers: bound = 1/sqrt(fan_in)). */
export function uniformInit(bound: number): (size: number, rng: Rng) => Float32Array {
  return (size, rng) => {
    const a = new Float32Array(size);
    for (let i = 0; i < size; i++) a[i] = rng.uniform(-bound, bound);
    return a;
  };
}

export const constantInit =
  (value: number) =>
  (size: number): Float32Array =>
    new Float32Array(size).fill(value);
