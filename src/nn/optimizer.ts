/**
 * The model optimiser, with state keyed by the parameters' logical names (ParamStore names), so that a checkpoint
 * stores every slot and a resumed run continues bit for bit (tf.train optimisers key their slots by the
 * process-specific variable names).
 * - SGD: PyTorch semantics (g = grad + wd·p; buf = μ·buf + g, the first step sets buf = g; p −= lr·buf; μ = 0: p −= lr·g).
 * - Adam: PyTorch semantics with L2 weight decay added to the gradient, bias-corrected moments.
 */
import * as tf from '@tensorflow/tfjs';

export type OptimizerName = 'sgd' | 'adam';

export interface OptimizerOptions {
  name: OptimizerName;
  momentum?: number;
  weightDecay?: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
}

/** Slots as `<logical name>#<slot index>` → values (SGD: #0 momentum buffer; Adam: #0 m, #1 v), plus the step count. */
export interface OptimizerState {
  steps: number;
  slots: Record<string, ArrayLike<number>>;
}

export class ModelOptimizer {
  readonly name: OptimizerName;
  private readonly momentum: number;
  private readonly weightDecay: number;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;
  private readonly slots = new Map<string, tf.Tensor[]>();
  private steps = 0;

  constructor(options: OptimizerOptions) {
    this.name = options.name;
    if (this.name !== 'sgd' && this.name !== 'adam') throw new Error(`unknown optimizer '${String(this.name)}' (expected sgd or adam)`);
    this.momentum = options.momentum ?? 0.9;
    this.weightDecay = options.weightDecay ?? 0;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
  }

  /**
   * One update of `params` (logical name → variable) at learning rate `lr`. `grads` is keyed either by the logical
   * names (a Map) or by the variables' tf names (a NamedTensorMap, as tf.variableGrads returns); parameters without
   * a gradient are left alone, other entries are ignored.
   */
  apply(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor> | tf.NamedTensorMap, lr: number): void {
    this.steps++;
    for (const [name, p] of params) {
      const g0 = grads instanceof Map ? grads.get(name) : grads[p.name];
      if (!g0) continue;
      const old = this.slots.get(name);
      // The updated parameter first, then the new slots (none for plain sgd).
      const [newP, ...newSlots] = tf.tidy((): [tf.Tensor, ...tf.Tensor[]] => {
        const g = this.weightDecay > 0 ? tf.add(g0, tf.mul(p, this.weightDecay)) : g0;
        if (this.name === 'sgd') {
          if (this.momentum === 0) return [tf.sub(p, tf.mul(g, lr))];
          const buf = old ? tf.add(tf.mul(old[0]!, this.momentum), g) : g.clone();
          return [tf.sub(p, tf.mul(buf, lr)), buf];
        }
        const m = tf.add(tf.mul(old ? old[0]! : tf.zerosLike(g), this.beta1), tf.mul(g, 1 - this.beta1));
        const v = tf.add(tf.mul(old ? old[1]! : tf.zerosLike(g), this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
        const c1 = 1 - Math.pow(this.beta1, this.steps);
        const c2 = 1 - Math.pow(this.beta2, this.steps);
        const upd = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), this.epsilon));
        return [tf.sub(p, tf.mul(upd, lr)), m, v];
      });
      p.assign(newP);
      newP.dispose();
      if (old) tf.dispose(old);
      if (newSlots.length > 0) this.slots.set(name, newSlots);
    }
  }

  getState(): { steps: number; slots: Record<string, Float32Array> } {
    const slots: Record<string, Float32Array> = {};
    for (const [name, ts] of this.slots) ts.forEach((t, i) => (slots[`${name}#${i}`] = Float32Array.from(t.dataSync() as Float32Array)));
    return { steps: this.steps, slots };
  }

  /** Restores a getState(); every slot must belong to one of `params` and have its size. */
  setState(state: OptimizerState, params: Map<string, tf.Variable>): void {
    for (const [key, a] of Object.entries(state.slots)) {
      const hash = key.lastIndexOf('#');
      const p = hash > 0 && /^\d+$/.test(key.slice(hash + 1)) ? params.get(key.slice(0, hash)) : undefined;
      if (!p) throw new Error(`ModelOptimizer.setState: slot '${key}' belongs to no parameter`);
      if (a.length !== p.size) throw new Error(`ModelOptimizer.setState: slot '${key}' has ${a.length} values, expected ${p.size}`);
    }
    this.dispose();
    this.steps = state.steps;
    for (const [name, p] of params) {
      const ts: tf.Tensor[] = [];
      for (let i = 0; ; i++) {
        const a = state.slots[`${name}#${i}`];
        if (!a) break;
        ts.push(tf.tensor(Float32Array.from(a), p.shape, 'float32'));
      }
      if (ts.length > 0) this.slots.set(name, ts);
    }
  }

  dispose(): void {
    for (const ts of this.slots.values()) tf.dispose(ts);
    this.slots.clear();
  }
}
