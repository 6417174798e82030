/**
 * Building blocks written with tfjs ops on explicit variables (no tf.layers): every op used here has a gradient on the
 * cpu backend and on wasm with the project's training kernels.
 */
import * as tf from '@tensorflow/tfjs';
import type { ParamStore } from './params.js';

export interface ConvOptions {
  kernel: number;
  stride?: number;
  padding?: 'same' | 'valid';
  /** Dilation rate (implemented with spaceToBatchND → conv → batchToSpaceND: tfjs has no dilated-conv gradient). */
  dilation?: number;
  bias?: boolean;
  /** Weight init std; default He-normal. */
  std?: number;
}

export class Conv {
  readonly kernel: tf.Variable;
  readonly bias: tf.Variable | null;
  readonly stride: number;
  readonly padding: 'same' | 'valid';
  readonly dilation: number;

  constructor(store: ParamStore, name: string, cin: number, cout: number, o: ConvOptions) {
    const shape = [o.kernel, o.kernel, cin, cout];
    this.kernel = o.std === undefined ? store.heNormal(`${name}/kernel`, shape, o.kernel * o.kernel * cin) : store.normal(`${name}/kernel`, shape, o.std);
    this.bias = o.bias === false ? null : store.constant(`${name}/bias`, [cout], 0);
    this.stride = o.stride ?? 1;
    this.padding = o.padding ?? 'same';
    this.dilation = o.dilation ?? 1;
    if (this.dilation > 1 && (this.stride !== 1 || this.padding !== 'same')) {
      throw new Error(`${name}: dilated convolutions support stride 1 and 'same' padding only`);
    }
  }

  apply(x: tf.Tensor4D): tf.Tensor4D {
    const y = this.dilation > 1 ? dilatedConv(x, this.kernel as tf.Tensor4D, this.dilation) : tf.conv2d(x, this.kernel as tf.Tensor4D, this.stride, this.padding);
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
  const y = tf.conv2d(s as tf.Tensor4D, kernel, 1, 'valid');
  return tf.batchToSpaceND(y, [d, d], [
    [0, eh],
    [0, ew],
  ]) as tf.Tensor4D;
}

/**
 * Batch normalisation over N, H, W. Training uses the batch's statistics and records them so that the caller can
 * update the running averages after the step (outside the gradient tape); inference uses the running averages.
 */
export class BatchNorm {
  readonly gamma: tf.Variable;
  readonly beta: tf.Variable;
  readonly runningMean: tf.Variable;
  readonly runningVar: tf.Variable;
  /** Batch statistics of the last training forward pass, kept until `commit`. */
  private pending: [tf.Tensor, tf.Tensor] | null = null;
  private pendingCount = 0;

  constructor(
    store: ParamStore,
    name: string,
    channels: number,
    readonly momentum = 0.1,
    readonly epsilon = 1e-5,
  ) {
    this.gamma = store.constant(`${name}/gamma`, [channels], 1);
    this.beta = store.constant(`${name}/beta`, [channels], 0);
    this.runningMean = store.constant(`${name}/running_mean`, [channels], 0, false);
    this.runningVar = store.constant(`${name}/running_var`, [channels], 1, false);
  }

  apply(x: tf.Tensor4D, training: boolean): tf.Tensor4D {
    if (!training) {
      return tf.batchNorm4d(x, this.runningMean as tf.Tensor1D, this.runningVar as tf.Tensor1D, this.beta as tf.Tensor1D, this.gamma as tf.Tensor1D, this.epsilon);
    }
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    if (this.pending) tf.dispose(this.pending);
    this.pending = [tf.keep(mean.clone()), tf.keep(variance.clone())];
    this.pendingCount = x.shape[0] * x.shape[1] * x.shape[2];
    const inv = tf.rsqrt(tf.add(variance, this.epsilon));
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), inv), this.gamma), this.beta);
  }

  /** Folds the last training batch's statistics into the running averages (unbiased variance, as PyTorch). */
  commit(): void {
    if (!this.pending) return;
    const batchElements = this.pendingCount;
    const [mean, variance] = this.pending;
    const m = this.momentum;
    const unbias = batchElements > 1 ? batchElements / (batchElements - 1) : 1;
    const [nm, nv] = tf.tidy(() => [
      tf.add(tf.mul(this.runningMean, 1 - m), tf.mul(mean, m)),
      tf.add(tf.mul(this.runningVar, 1 - m), tf.mul(variance, m * unbias)),
    ]);
    this.runningMean.assign(nm!);
    this.runningVar.assign(nv!);
    tf.dispose([nm!, nv!, mean, variance]);
    this.pending = null;
  }

  discard(): void {
    if (this.pending) tf.dispose(this.pending);
    this.pending = null;
  }
}

/** SSD's L2Norm on conv4_3: unit L2 norm across channels, times a learnable per-channel scale (init 20). */
export class L2Norm {
  readonly scale: tf.Variable;
  constructor(store: ParamStore, name: string, channels: number, init = 20) {
    this.scale = store.constant(`${name}/scale`, [channels], init);
  }
  apply(x: tf.Tensor4D): tf.Tensor4D {
    const norm = tf.sqrt(tf.add(tf.sum(tf.square(x), -1, true), 1e-10));
    return tf.mul(tf.div(x, norm), this.scale);
  }
}
