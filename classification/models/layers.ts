/**
 * Hand-built layers on plain tf ops and tf.Variables (no tf.layers), so that the models train on every backend that
 * has the ops' gradients. Each layer takes its ParamStore and a name at construction (its parameters) and implements
 * `forward(x, training)`.
 */
import * as tf from '@tensorflow/tfjs';
import { ParamStore, heNormal, uniformInit, constantInit } from './params.js';

export interface Layer {
  forward(x: tf.Tensor, training: boolean): tf.Tensor;
}

export class Conv2d implements Layer {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable | null;
  constructor(
    store: ParamStore,
    name: string,
    readonly options: { inChannels: number; outChannels: number; kernel: number; stride?: number; pad?: number; bias?: boolean },
  ) {
    const { inChannels, outChannels, kernel } = options;
    // Kaiming normal, fan-out mode (torchvision's ResNet initialisation).
    this.weight = store.param(`${name}/weight`, [kernel, kernel, inChannels, outChannels], heNormal(kernel * kernel * outChannels));
    this.bias = options.bias
      ? store.param(`${name}/bias`, [outChannels], uniformInit(1 / Math.sqrt(kernel * kernel * inChannels)))
      : null;
  }
  forward(x: tf.Tensor): tf.Tensor4D {
    const s = this.options.stride ?? 1;
    const p = this.options.pad ?? Math.floor(this.options.kernel / 2);
    let y = tf.conv2d(x as tf.Tensor4D, this.weight as tf.Tensor4D, s, p === 0 ? 'valid' : p);
    if (this.bias) y = tf.add(y, this.bias);
    return y;
  }
}

/**
 * Batch normalisation over N, H, W (or N for 2-D input): batch statistics in training (and the running statistics
 * updated with momentum 0.1 and the unbiased batch variance, as PyTorch does), running statistics at evaluation.
 */
export class BatchNorm implements Layer {
  readonly gamma: tf.Variable;
  readonly beta: tf.Variable;
  readonly runningMean: tf.Variable;
  readonly runningVar: tf.Variable;
  constructor(
    store: ParamStore,
    name: string,
    readonly channels: number,
    readonly options: { momentum?: number; epsilon?: number } = {},
  ) {
    this.gamma = store.param(`${name}/gamma`, [channels], constantInit(1));
    this.beta = store.param(`${name}/beta`, [channels], constantInit(0));
    this.runningMean = store.buffer(`${name}/runningMean`, [channels], 0);
    this.runningVar = store.buffer(`${name}/runningVar`, [channels], 1);
  }
  forward(x: tf.Tensor, training: boolean): tf.Tensor {
    const eps = this.options.epsilon ?? 1e-5;
    if (!training) {
      return tf.add(tf.mul(tf.sub(x, this.runningMean), tf.mul(this.gamma, tf.rsqrt(tf.add(this.runningVar, eps)))), this.beta);
    }
    const axes = x.rank === 4 ? [0, 1, 2] : [0];
    const { mean, variance } = tf.moments(x, axes);
    const y = tf.add(tf.mul(tf.sub(x, mean), tf.mul(this.gamma, tf.rsqrt(tf.add(variance, eps)))), this.beta);
    const m = this.options.momentum ?? 0.1;
    const n = x.size / this.channels;
    // Running statistics are bookkeeping, not part of the loss: they are assigned outside the gradient's path.
    tf.tidy(() => {
      const unbiased = tf.mul(variance, n / Math.max(1, n - 1));
      this.runningMean.assign(tf.add(tf.mul(this.runningMean, 1 - m), tf.mul(mean, m)));
      this.runningVar.assign(tf.add(tf.mul(this.runningVar, 1 - m), tf.mul(unbiased, m)));
    });
    return y;
  }
}

export class Linear implements Layer {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;
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
    return tf.mean(x, [1, 2]) as tf.Tensor2D;
  }
}

export class Flatten implements Layer {
  forward(x: tf.Tensor): tf.Tensor2D {
    return tf.reshape(x, [x.shape[0]!, -1]) as tf.Tensor2D;
  }
}

export class Sequential implements Layer {
  constructor(readonly layers: Layer[]) {}
  forward(x: tf.Tensor, training: boolean): tf.Tensor {
    let y = x;
    for (const l of this.layers) y = l.forward(y, training);
    return y;
  }
}
