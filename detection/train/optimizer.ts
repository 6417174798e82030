/**
 * Model optimisers with state keyed by the parameters' logical names, so that a checkpoint stores every slot and a
 * resumed run continues bit for bit (tf.train optimisers key their slots by the process-specific variable names).
 * - SGD: PyTorch semantics (buf = μ·buf + g + wd·p; the first step sets buf = g + wd·p; p −= lr·buf).
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

  /** One update of `params` (logical name → variable) from `grads` (same keys) at learning rate `lr`. */
  apply(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, lr: number): void {
    this.steps++;
    for (const [name, p] of params) {
      const g0 = grads.get(name);
      if (!g0) continue;
      const old = this.slots.get(name);
      const [newP, ...newSlots] = tf.tidy(() => {
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
      p.assign(newP!);
      newP!.dispose();
      if (old) tf.dispose(old);
      if (newSlots.length > 0) this.slots.set(name, newSlots);
    }
  }

  getState(): { steps: number; slots: Record<string, Float32Array> } {
    const slots: Record<string, Float32Array> = {};
    for (const [name, ts] of this.slots) ts.forEach((t, i) => (slots[`${name}#${i}`] = t.dataSync().slice() as Float32Array));
    return { steps: this.steps, slots };
  }

  setState(state: { steps: number; slots: Record<string, ArrayLike<number>> }, params: Map<string, tf.Variable>): void {
    this.dispose();
    this.steps = state.steps;
    for (const [name, p] of params) {
      const ts: tf.Tensor[] = [];
      for (let i = 0; ; i++) {
        const a = state.slots[`${name}#${i}`];
        if (!a) break;
        ts.push(tf.tensor(Float32Array.from(a), p.shape));
      }
      if (ts.length > 0) this.slots.set(name, ts);
    }
  }

  dispose(): void {
    for (const ts of this.slots.values()) tf.dispose(ts);
    this.slots.clear();
  }
}

/** Learning rate at `step` (0-based): linear warmup from lr·warmupFactor, then steps ×gamma at the milestones. */
export function learningRate(
  step: number,
  s: { lr: number; warmupSteps?: number; warmupFactor?: number; milestones?: number[]; gamma?: number },
): number {
  let lr = s.lr;
  for (const m of s.milestones ?? []) if (step >= m) lr *= s.gamma ?? 0.1;
  const w = s.warmupSteps ?? 0;
  if (step < w) {
    const f = s.warmupFactor ?? 1 / 3;
    lr *= f + ((1 - f) * step) / w;
  }
  return lr;
}
