/**
 * A small conv-BN-ReLU backbone that trains on a CPU in minutes: 4 stride-2 stages down to stride 8 (first feature
 * map), then one stride-2 conv per further feature map (strides 16, 32, 64 with the default 4 maps). ~0.1 GMAC per
 * 384x128 image with the default widths.
 */
import * as tf from '@tensorflow/tfjs';
import type { BatchNorm, Conv2d } from '../../../src/nn/layers.js';
import type { ParamStore } from '../../../src/nn/param-store.js';
import { ssdBatchNorm, ssdConv } from '../ssd-layers.js';
import type { Backbone } from './backbone.js';

export interface LightBackboneOptions {
  /** Widths of the stem stages (strides 2, 4, 8). Default [16, 32, 64]. */
  widths?: [number, number, number];
  /** Channels of the extra feature maps. Default 64. */
  extraChannels?: number;
  /** Number of feature maps (≥ 1). Default 4. */
  featureMaps?: number;
}

interface Block {
  conv: Conv2d;
  bn: BatchNorm;
}

export class LightBackbone implements Backbone {
  readonly channels: number[];
  private readonly stem: Block[];
  private readonly extras: Block[];

  constructor(
    readonly params: ParamStore,
    options: LightBackboneOptions = {},
  ) {
    const [w1, w2, w3] = options.widths ?? [16, 32, 64];
    const ex = options.extraChannels ?? 64;
    const maps = options.featureMaps ?? 4;
    if (!(maps >= 1)) throw new Error('LightBackbone: featureMaps must be ≥ 1');
    const block = (name: string, cin: number, cout: number, stride: number): Block => ({
      conv: ssdConv(params, `backbone/${name}`, cin, cout, { kernel: 3, stride, bias: false }),
      bn: ssdBatchNorm(params, `backbone/${name}/bn`, cout),
    });
    this.stem = [block('conv1', 3, w1, 2), block('conv2', w1, w2, 2), block('conv3', w2, w2, 1), block('conv4', w2, w3, 2), block('conv5', w3, w3, 1)];
    this.extras = [];
    for (let k = 1; k < maps; k++) this.extras.push(block(`extra${k}`, k === 1 ? w3 : ex, ex, 2));
    this.channels = [w3, ...this.extras.map(() => ex)];
  }

  features(x: tf.Tensor4D, training: boolean): tf.Tensor4D[] {
    const run = (b: Block, h: tf.Tensor4D): tf.Tensor4D => tf.relu(b.bn.forward(b.conv.forward(h), training) as tf.Tensor4D);
    let h = x;
    for (const b of this.stem) h = run(b, h);
    const out = [h];
    for (const b of this.extras) {
      h = run(b, h);
      out.push(h);
    }
    return out;
  }

  private blocks(): Block[] {
    return [...this.stem, ...this.extras];
  }

  commitStatistics(): void {
    for (const b of this.blocks()) b.bn.commit();
  }

  discardStatistics(): void {
    for (const b of this.blocks()) b.bn.discard();
  }
}
