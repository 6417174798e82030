/**
 * SGD with momentum and weight decay for the model, with PyTorch's semantics (the reference trains with
 * torch.optim.SGD): g = grad + wd·w; buf = g on the first step, then μ·buf + g; w -= lr·buf. The momentum buffers
 * are plain named tensors so that checkpoints can save them and a resumed run continues exactly.
 */
import * as tf from '@tensorflow/tfjs';

export interface SgdOptions {
  momentum: number;
  weightDecay: number;
}

export class SgdMomentum {
  private readonly buffers = new Map<string, tf.Tensor>();

  /** @param variables keyed by a stable name (used for the slots in checkpoints). */
  constructor(
    private readonly byName: Map<string, tf.Variable>,
    readonly options: SgdOptions,
  ) {}

  /** Applies the gradients of this optimiser's variables (others in the map are ignored) with learning rate `lr`. */
  step(grads: tf.NamedTensorMap, lr: number): void {
    const { momentum: mu, weightDecay: wd } = this.options;
    for (const [name, v] of this.byName) {
      const g = grads[v.name];
      if (!g) continue;
      const prev = this.buffers.get(name);
      const [next, buf] = tf.tidy(() => {
        const d = wd > 0 ? tf.add(g, tf.mul(wd, v)) : g;
        const b = mu > 0 ? (prev ? tf.add(tf.mul(mu, prev), d) : d.clone()) : d;
        return [tf.sub(v, tf.mul(lr, b)), mu > 0 ? b : null];
      });
      v.assign(next);
      next.dispose();
      if (buf) {
        prev?.dispose();
        this.buffers.set(name, buf);
      }
    }
  }

  /** Momentum buffers keyed by variable name (variables never updated yet have none). */
  getSlots(): Record<string, Float32Array> {
    const out: Record<string, Float32Array> = {};
    for (const [k, t] of this.buffers) out[k] = Float32Array.from(t.dataSync() as Float32Array);
    return out;
  }

  setSlots(slots: Record<string, Float32Array>): void {
    for (const t of this.buffers.values()) t.dispose();
    this.buffers.clear();
    for (const [k, a] of Object.entries(slots)) {
      const v = this.byName.get(k);
      if (!v) throw new Error(`SgdMomentum.setSlots: no variable '${k}'`);
      if (a.length !== v.size) throw new Error(`SgdMomentum.setSlots: '${k}' has ${a.length} values, expected ${v.size}`);
      this.buffers.set(k, tf.keep(tf.tensor(a, v.shape, 'float32')));
    }
  }

  dispose(): void {
    for (const t of this.buffers.values()) t.dispose();
    this.buffers.clear();
  }
}

/** Step schedule: lr · gamma^(number of milestones ≤ epoch), milestones either listed or every `every` epochs. */
export interface StepSchedule {
  milestones?: number[];
  every?: number;
  gamma: number;
}

export function scheduledLr(baseLr: number, schedule: StepSchedule, epoch: number): number {
  let k = 0;
  if (schedule.milestones) k += schedule.milestones.filter((m) => epoch >= m).length;
  if (schedule.every && schedule.every > 0) k += Math.floor(epoch / schedule.every);
  return baseLr * schedule.gamma ** k;
}
