/**
 * A small conv-BN-ReLU backbone that trains on a CPU in minutes: stride-2 convs down to stride 8 (first feature
 * map), each of the last two followed by stride-1 convs (one each by default), then one stride-2 conv per further
 * feature map (strides 16, 32, 64 with the default 4 maps). ~0.1 GMAC per 384x128 image with the default widths.
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
  /**
   * Stride-1 convs after the downsampling to stride 4 and to stride 8. Default [1, 1]. At high resolution the
   * stride-4 conv is the costliest layer (the full stride-4 map at the stem's second width); [0, 1] drops it.
   */
  repeats?: [number, number];
  /**
   * Reach stride 4 with one 4x4 stride-4 conv over non-overlapping patches (to widths[1] channels; widths[0] is
   * unused) instead of two 3x3 stride-2 convs. At high resolution the stride-2 map and its batch norm dominate the
   * step; the patch conv never makes it. Default false.
   */
  patchStem?: boolean;
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
    const block = (name: string, cin: number, cout: number, stride: number, kernel = 3): Block => ({
      conv: ssdConv(params, `backbone/${name}`, cin, cout, { kernel, stride, bias: false }),
      bn: ssdBatchNorm(params, `backbone/${name}/bn`, cout),
    });
    const [r4, r8] = options.repeats ?? [1, 1];
    if (!(Number.isInteger(r4) && r4 >= 0 && Number.isInteger(r8) && r8 >= 0)) throw new Error(`LightBackbone: repeats must be two integers ≥ 0, got [${r4}, ${r8}]`);
    // The first repeat keeps the name the fixed stem had (conv3, conv5), so default weights load as before.
    const repeat = (name: string, width: number, n: number): Block[] => Array.from({ length: n }, (_, k) => block(k === 0 ? name : `${name}_${k + 1}`, width, width, 1));
    const toStride4 = options.patchStem === true ? [block('patch', 3, w2, 4, 4)] : [block('conv1', 3, w1, 2), block('conv2', w1, w2, 2)];
    this.stem = [...toStride4, ...repeat('conv3', w2, r4), block('conv4', w2, w3, 2), ...repeat('conv5', w3, r8)];
    this.extras = [];
    for (let k = 1; k < maps; k++) this.extras.push(block(`extra${k}`, k === 1 ? w3 : ex, ex, 2));
    this.channels = [w3, ...this.extras.map(() => ex)];
  }

  features(x: tf.Tensor4D, training: boolean): tf.Tensor4D[] {
    const run = (b: Block, h: tf.Tensor4D): tf.Tensor4D => b.bn.forwardRelu(b.conv.forward(h), training) as tf.Tensor4D;
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
