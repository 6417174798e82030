/**
 * The parameters of one model, keyed by stable logical names (`<layer path>/<param>`, e.g. "backbone/conv1/kernel"):
 * every layer asks the store for its variables at construction, so a seed fixes the initial model (values are drawn
 * from the store's Rng in construction order) and weights can be read and written as plain typed arrays for
 * checkpoints and saved models. Buffers (batch-norm running statistics) are non-trainable variables.
 * tfjs requires globally unique variable names, so each store prefixes its own id; checkpoints use the logical names,
 * which are the same in every process.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../util/rng.js';

/** Initial values of a parameter of `size` scalars, drawn from the store's Rng. */
export type Init = (size: number, rng: Rng) => Float32Array;

let nextStoreId = 0;

export class ParamStore {
  /** Trainable weights, by logical name (insertion order = construction order). */
  readonly trainable = new Map<string, tf.Variable>();
  /** Non-trainable buffers (batch-norm running statistics), by logical name. */
  readonly buffers = new Map<string, tf.Variable>();
  /** Prefix that keeps tf variable names unique when several models live in one process. */
  readonly prefix = `params${nextStoreId++}`;
  readonly rng: Rng;

  /** @param rng the Rng of the initialisation, or a seed for a new one. */
  constructor(rng: Rng | number = 0) {
    this.rng = typeof rng === 'number' ? new Rng(rng) : rng;
  }

  /** A trainable variable initialised by `init`. */
  param(name: string, shape: number[], init: Init): tf.Variable {
    return this.add(this.trainable, name, shape, init(sizeOf(shape), this.rng), true);
  }

  /** A non-trainable variable filled with `fill`. */
  buffer(name: string, shape: number[], fill: number): tf.Variable {
    return this.add(this.buffers, name, shape, new Float32Array(sizeOf(shape)).fill(fill), false);
  }

  /** He-normal weights (std √(2/fan); fan-in or fan-out as the layer chooses). */
  heNormal(name: string, shape: number[], fan: number): tf.Variable {
    return this.param(name, shape, heNormal(fan));
  }

  /** Normal weights with the given std, e.g. for prediction heads. */
  normal(name: string, shape: number[], std: number): tf.Variable {
    return this.param(name, shape, normalInit(std));
  }

  /** A constant-filled trainable variable, or a buffer when `trainable` is false. */
  constant(name: string, shape: number[], value: number, trainable = true): tf.Variable {
    return trainable ? this.param(name, shape, constantInit(value)) : this.buffer(name, shape, value);
  }

  private add(map: Map<string, tf.Variable>, name: string, shape: number[], values: Float32Array, trainable: boolean): tf.Variable {
    if (this.trainable.has(name) || this.buffers.has(name)) throw new Error(`ParamStore: '${name}' defined twice`);
    const v = tf.tidy(() => tf.variable(tf.tensor(values, shape, 'float32'), trainable, `${this.prefix}/${name}`));
    map.set(name, v);
    return v;
  }

  /** Logical name of one of this store's variables (inverse of the unique tfjs name). */
  logicalName(v: tf.Variable): string {
    return v.name.slice(this.prefix.length + 1);
  }

  get trainableList(): tf.Variable[] {
    return [...this.trainable.values()];
  }

  /** Number of trainable scalars. */
  get parameterCount(): number {
    let n = 0;
    for (const v of this.trainable.values()) n += v.size;
    return n;
  }

  /** All values (weights and buffers) as typed arrays by logical name. */
  snapshot(): Record<string, Float32Array> {
    const out: Record<string, Float32Array> = {};
    for (const [k, v] of [...this.trainable, ...this.buffers]) out[k] = Float32Array.from(v.dataSync() as Float32Array);
    return out;
  }

  /** Restores values saved by snapshot(); every parameter must be present with the right size. */
  restore(values: Record<string, ArrayLike<number>>, source = 'checkpoint'): void {
    for (const [k, v] of [...this.trainable, ...this.buffers]) {
      const a = values[k];
      if (!a) throw new Error(`${source}: missing parameter '${k}'`);
      if (a.length !== v.size) throw new Error(`${source}: parameter '${k}' has ${a.length} values, expected ${v.size}`);
      const t = tf.tensor(Float32Array.from(a), v.shape, 'float32');
      v.assign(t);
      t.dispose();
    }
  }

  dispose(): void {
    for (const v of [...this.trainable.values(), ...this.buffers.values()]) v.dispose();
    this.trainable.clear();
    this.buffers.clear();
  }
}

function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** He (Kaiming) normal initialisation with std √(2/fan). */
export function heNormal(fan: number): Init {
  return normalInit(Math.sqrt(2 / fan));
}

/** Normal with mean 0 and the given std. */
export function normalInit(std: number): Init {
  return (size, rng) => {
    const a = new Float32Array(size);
    for (let i = 0; i < size; i++) a[i] = rng.normal() * std;
    return a;
  };
}

/** Uniform in [-bound, bound] (PyTorch's default for linear layers: bound = 1/√fan_in). */
export function uniformInit(bound: number): Init {
  return (size, rng) => {
    const a = new Float32Array(size);
    for (let i = 0; i < size; i++) a[i] = rng.uniform(-bound, bound);
    return a;
  };
}

export function constantInit(value: number): Init {
  return (size) => new Float32Array(size).fill(value);
}
