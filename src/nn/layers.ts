/**
 * Layers written with tfjs ops on explicit variables from a ParamStore (no tf.layers), so that models train on every
 * backend that has the ops' gradients (cpu; wasm with the project's training kernels). Each layer takes its store
 * and a name at construction (its parameters) and implements `forward(x, training)`.
 */
import * as tf from '@tensorflow/tfjs';
import { batchNormTraining, fusedBatchNormApplies } from '../runtime/wasm-training/batch-norm-op.js';
import { constantInit, heNormal, uniformInit, type Init, type ParamStore } from './param-store.js';

export interface Layer {
  forward(x: tf.Tensor, training: boolean): tf.Tensor;
}

export interface Conv2dOptions {
  inChannels: number;
  outChannels: number;
  kernel: number;
  stride?: number;
  /** 'same' (default; TF's asymmetric padding at stride 2), 'valid', or symmetric zero padding on each side (0 = valid). */
  pad?: number | 'same' | 'valid';
  /** Dilation rate (spaceToBatchND → conv → batchToSpaceND: tfjs has no dilated-conv gradient); 'same' and stride 1 only. */
  dilation?: number;
  /** Weight initialisation; default He-normal with fan-in kernel²·inChannels. */
  init?: Init;
  /** Bias initialisation, or false for no bias; default zeros. */
  bias?: Init | false;
  /** Name of the weight parameter under the layer's name (the SSD's saved models say 'kernel'). */
  weightName?: string;
}

export class Conv2d implements Layer {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable | null;
  readonly stride: number;
  readonly pad: number | 'same' | 'valid';
  readonly dilation: number;

  constructor(store: ParamStore, name: string, o: Conv2dOptions) {
    const { inChannels, outChannels, kernel } = o;
    this.weight = store.param(`${name}/${o.weightName ?? 'weight'}`, [kernel, kernel, inChannels, outChannels], o.init ?? heNormal(kernel * kernel * inChannels));
    const bias = o.bias ?? constantInit(0);
    this.bias = bias === false ? null : store.param(`${name}/bias`, [outChannels], bias);
    this.stride = o.stride ?? 1;
    this.pad = o.pad ?? 'same';
    this.dilation = o.dilation ?? 1;
    if (this.dilation > 1 && (this.stride !== 1 || this.pad !== 'same')) {
      throw new Error(`${name}: dilated convolutions support stride 1 and 'same' padding only`);
    }
  }

  forward(x: tf.Tensor): tf.Tensor4D {
    const k = this.weight as tf.Tensor4D;
    const pad = this.pad === 0 ? 'valid' : this.pad;
    const y = this.dilation > 1 ? dilatedConv(x as tf.Tensor4D, k, this.dilation) : tf.conv2d(x as tf.Tensor4D, k, this.stride, pad);
    return this.bias ? tf.add(y, this.bias) : y;
  }
}

/**
 * 'same' dilated convolution (odd kernel k, rate d) as spaceToBatchND → valid conv → batchToSpaceND, whose gradients
 * tfjs has. Pads (k−1)/2·d on each side, plus what makes the padded size a multiple of d, cropped off afterwards.
 */
export function dilatedConv(x: tf.Tensor4D, kernel: tf.Tensor4D, d: number): tf.Tensor4D {
  const k = kernel.shape[0];
  const p = ((k - 1) / 2) * d;
  const [, h, w] = x.shape;
  const eh = (d - ((h + 2 * p) % d)) % d;
  const ew = (d - ((w + 2 * p) % d)) % d;
  const s = tf.spaceToBatchND(x, [d, d], [
    [p, p + eh],
    [p, p + ew],
  ]);
  const y = tf.conv2d(s, kernel, 1, 'valid');
  return tf.batchToSpaceND<tf.Tensor4D>(y, [d, d], [
    [0, eh],
    [0, ew],
  ]);
}

export interface BatchNormOptions {
  momentum?: number;
  epsilon?: number;
  /**
   * When the running statistics move: 'forward' (default) in the training forward pass; 'commit' keeps the batch's
   * statistics until the caller's commit() after the step, or discard() (the SSD trainer skips steps with
   * non-finite gradients). Where training does not use the fused op (backends other than wasm), each mode also
   * keeps the op order its models were trained with (fused batchNorm at inference and the scale applied after
   * normalising, for 'commit'), so that seeded runs reproduce bit for bit; on wasm both train with batchNormTraining.
   */
  runningStats?: 'forward' | 'commit';
  /** Buffer names under the layer's name; default runningMean / runningVar (the SSD's: running_mean / running_var). */
  bufferNames?: [mean: string, variance: string];
}

/**
 * Batch normalisation over N, H, W (or N for 2-D input): batch statistics in training, with PyTorch's running
 * statistics update (momentum 0.1, unbiased batch variance); running statistics at evaluation.
 */
export class BatchNorm implements Layer {
  readonly gamma: tf.Variable;
  readonly beta: tf.Variable;
  readonly runningMean: tf.Variable;
  readonly runningVar: tf.Variable;
  readonly momentum: number;
  readonly epsilon: number;
  private readonly deferred: boolean;
  /** 'commit' mode: batch statistics of the last training forward pass and their element count, kept until commit. */
  private pending: [tf.Tensor, tf.Tensor] | null = null;
  private pendingCount = 0;

  constructor(
    store: ParamStore,
    name: string,
    readonly channels: number,
    options: BatchNormOptions = {},
  ) {
    this.momentum = options.momentum ?? 0.1;
    this.epsilon = options.epsilon ?? 1e-5;
    this.deferred = options.runningStats === 'commit';
    const [meanName, varName] = options.bufferNames ?? ['runningMean', 'runningVar'];
    this.gamma = store.param(`${name}/gamma`, [channels], constantInit(1));
    this.beta = store.param(`${name}/beta`, [channels], constantInit(0));
    this.runningMean = store.buffer(`${name}/${meanName}`, [channels], 0);
    this.runningVar = store.buffer(`${name}/${varName}`, [channels], 1);
  }

  forward(x: tf.Tensor, training: boolean): tf.Tensor {
    return this.normalise(x, training, false);
  }

  /** relu(forward(x)): in training on wasm one fused op (batch norm and ReLU in one pass, and one gradient). */
  forwardRelu(x: tf.Tensor, training: boolean): tf.Tensor {
    return this.normalise(x, training, true);
  }

  private normalise(x: tf.Tensor, training: boolean, relu: boolean): tf.Tensor {
    const eps = this.epsilon;
    const activate = (y: tf.Tensor): tf.Tensor => (relu ? tf.relu(y) : y);
    if (!training) {
      if (this.deferred) {
        return activate(tf.batchNorm(x, this.runningMean, this.runningVar, this.beta, this.gamma, eps));
      }
      return activate(tf.add(tf.mul(tf.sub(x, this.runningMean), tf.mul(this.gamma, tf.rsqrt(tf.add(this.runningVar, eps)))), this.beta));
    }
    const n = x.size / this.channels;
    let y: tf.Tensor;
    let mean: tf.Tensor;
    let variance: tf.Tensor;
    if (fusedBatchNormApplies(x)) {
      ({ y, mean, variance } = batchNormTraining(x, this.gamma, this.beta, eps, { relu }));
    } else {
      ({ mean, variance } = tf.moments(x, x.rank === 4 ? [0, 1, 2] : [0]));
      y = this.deferred
        ? tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), this.gamma), this.beta)
        : tf.add(tf.mul(tf.sub(x, mean), tf.mul(this.gamma, tf.rsqrt(tf.add(variance, eps)))), this.beta);
      y = activate(y);
    }
    if (this.deferred) {
      if (this.pending) tf.dispose(this.pending);
      this.pending = [tf.keep(mean.clone()), tf.keep(variance.clone())];
      this.pendingCount = n;
      return y;
    }
    const m = this.momentum;
    // Running statistics are bookkeeping, not part of the loss: they are assigned outside the gradient's path.
    tf.tidy(() => {
      const unbiased = tf.mul(variance, n / Math.max(1, n - 1));
      this.runningMean.assign(tf.add(tf.mul(this.runningMean, 1 - m), tf.mul(mean, m)));
      this.runningVar.assign(tf.add(tf.mul(this.runningVar, 1 - m), tf.mul(unbiased, m)));
    });
    return y;
  }

  /** 'commit' mode: folds the last training batch's statistics into the running averages. */
  commit(): void {
    if (!this.pending) return;
    const n = this.pendingCount;
    const [mean, variance] = this.pending;
    const m = this.momentum;
    const unbias = n > 1 ? n / (n - 1) : 1;
    const [nm, nv] = tf.tidy((): [tf.Tensor, tf.Tensor] => [
      tf.add(tf.mul(this.runningMean, 1 - m), tf.mul(mean, m)),
      tf.add(tf.mul(this.runningVar, 1 - m), tf.mul(variance, m * unbias)),
    ]);
    this.runningMean.assign(nm);
    this.runningVar.assign(nv);
    tf.dispose([nm, nv, mean, variance]);
    this.pending = null;
  }

  /** 'commit' mode: forgets the last training batch's statistics. */
  discard(): void {
    if (this.pending) tf.dispose(this.pending);
    this.pending = null;
  }
}

/** L2 normalisation across channels times a learnable per-channel scale (ParseNet; SSD's conv4_3, init 20). */
export class L2Norm implements Layer {
  readonly scale: tf.Variable;
  constructor(store: ParamStore, name: string, channels: number, init = 20) {
    this.scale = store.param(`${name}/scale`, [channels], constantInit(init));
  }
  forward(x: tf.Tensor): tf.Tensor4D {
    const norm = tf.sqrt(tf.add(tf.sum(tf.square(x), -1, true), 1e-10));
    return tf.mul<tf.Tensor4D>(tf.div(x, norm), this.scale);
  }
}

export class Linear implements Layer {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;
  /** PyTorch's default initialisation: weight and bias uniform in ±1/√inFeatures. */
  constructor(store: ParamStore, name: string, inFeatures: number, outFeatures: number) {
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = store.param(`${name}/weight`, [inFeatures, outFeatures], uniformInit(bound));
    this.bias = store.param(`${name}/bias`, [outFeatures], uniformInit(bound));
  }
  forward(x: tf.Tensor): tf.Tensor2D {
    return tf.add(tf.matMul(x as tf.Tensor2D, this.weight as tf.Tensor2D), this.bias);
  }
}

export class Relu implements Layer {
  forward(x: tf.Tensor): tf.Tensor {
    return tf.relu(x);
  }
}

export class MaxPool implements Layer {
  constructor(
    readonly size: number,
    readonly stride: number,
    readonly pad: number | 'valid' = 'valid',
  ) {}
  forward(x: tf.Tensor): tf.Tensor {
    return tf.maxPool(x as tf.Tensor4D, this.size, this.stride, this.pad);
  }
}

export class GlobalAvgPool implements Layer {
  forward(x: tf.Tensor): tf.Tensor2D {
    return tf.mean<tf.Tensor2D>(x, [1, 2]);
  }
}

export class Flatten implements Layer {
  forward(x: tf.Tensor): tf.Tensor2D {
    return tf.reshape<tf.Rank.R2>(x, [x.shape[0], -1]);
  }
}

export class Sequential implements Layer {
  constructor(readonly layers: Layer[]) {}
  forward(x: tf.Tensor, training: boolean): tf.Tensor {
    let y = x;
    for (let i = 0; i < this.layers.length; i++) {
      const l = this.layers[i]!;
      if (l instanceof BatchNorm && this.layers[i + 1] instanceof Relu) {
        y = l.forwardRelu(y, training);
        i++;
      } else {
        y = l.forward(y, training);
      }
    }
    return y;
  }
}
