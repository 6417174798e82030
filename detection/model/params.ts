/**
 * Trainable and state tensors of a model, keyed by stable logical names ("backbone/conv1/kernel"). tfjs requires
 * globally unique variable names, so each store prefixes its own id; checkpoints and saved models use the logical names,
 * which are the same in every process.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../src/util/rng.js';

let nextStoreId = 0;

export class ParamStore {
  /** Trainable weights, by logical name. */
  readonly trainable = new Map<string, tf.Variable>();
  /** Non-trainable state (batch-norm running statistics), by logical name. */
  readonly state = new Map<string, tf.Variable>();
  private readonly prefix = `ssd${nextStoreId++}`;

  constructor(readonly rng: Rng) {}

  private add(map: Map<string, tf.Variable>, name: string, values: Float32Array, shape: number[], trainable: boolean): tf.Variable {
    if (this.trainable.has(name) || this.state.has(name)) throw new Error(`parameter '${name}' defined twice`);
    const init = tf.tensor(values, shape);
    const v = tf.variable(init, trainable, `${this.prefix}/${name}`);
    init.dispose();
    map.set(name, v);
    return v;
  }

  /** He-normal weights (std √(2/fan_in)), drawn from the store's Rng so that a seed fixes the initial model. */
  heNormal(name: string, shape: number[], fanIn: number): tf.Variable {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    const std = Math.sqrt(2 / fanIn);
    for (let i = 0; i < n; i++) v[i] = this.rng.normal() * std;
    return this.add(this.trainable, name, v, shape, true);
  }

  /** Small-normal weights (std given), e.g. for prediction heads. */
  normal(name: string, shape: number[], std: number): tf.Variable {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = this.rng.normal() * std;
    return this.add(this.trainable, name, v, shape, true);
  }

  constant(name: string, shape: number[], value: number, trainable = true): tf.Variable {
    const n = shape.reduce((a, b) => a * b, 1);
    return this.add(trainable ? this.trainable : this.state, name, new Float32Array(n).fill(value), shape, trainable);
  }

  /** Logical name of a variable (inverse of the unique tfjs name). */
  logicalName(v: tf.Variable): string {
    return v.name.slice(this.prefix.length + 1);
  }

  get trainableList(): tf.Variable[] {
    return [...this.trainable.values()];
  }

  numParameters(): number {
    let n = 0;
    for (const v of this.trainable.values()) n += v.size;
    return n;
  }

  /** All values (weights and state) as typed arrays by logical name. */
  snapshot(): Record<string, Float32Array> {
    const out: Record<string, Float32Array> = {};
    for (const [k, v] of [...this.trainable, ...this.state]) out[k] = v.dataSync().slice() as Float32Array;
    return out;
  }

  /** Restores values saved by snapshot(); every parameter must be present with the right size. */
  restore(values: Record<string, ArrayLike<number>>, source = 'checkpoint'): void {
    for (const [k, v] of [...this.trainable, ...this.state]) {
      const a = values[k];
      if (!a) throw new Error(`${source}: missing parameter '${k}'`);
      if (a.length !== v.size) throw new Error(`${source}: parameter '${k}' has ${a.length} values, expected ${v.size}`);
      const t = tf.tensor(Float32Array.from(a), v.shape);
      v.assign(t);
      t.dispose();
    }
  }

  dispose(): void {
    for (const v of [...this.trainable.values(), ...this.state.values()]) v.dispose();
    this.trainable.clear();
    this.state.clear();
  }
}
