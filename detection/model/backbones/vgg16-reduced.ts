/**
 * The SSD paper's VGG16-reduced backbone: VGG16 conv1_1..conv5_3, pool5 3x3 stride 1, fc6 as a 3x3 conv of rate 6
 * (1024), fc7 1x1 (1024), L2Norm (scale 20) on conv4_3, then extra layers (1x1 reduce, 3x3 stride 2). Feature maps:
 * conv4_3 (stride 8), fc7 (16), then one per extra stage (32, 64, ...).
 *
 * Differences from SSD300, for rectangular KITTI inputs of any size: pools use 'same' padding (ceil mode), and every
 * extra stage is a stride-2 'same' conv (SSD300's last two are 3x3 'valid', which only fits its 300x300 grid).
 * `widthDivisor` shrinks every width (for tests and small machines); 1 is the paper's network.
 */
import * as tf from '@tensorflow/tfjs';
import { L2Norm, type Conv2d } from '../../../src/nn/layers.js';
import type { ParamStore } from '../../../src/nn/param-store.js';
import { ssdConv } from '../ssd-layers.js';
import type { Backbone } from './backbone.js';

export interface Vgg16ReducedOptions {
  /** Divides every channel count (default 1). */
  widthDivisor?: number;
  /** Extra stages after fc7 (default 4: strides 32, 64, 128, 256). */
  extraStages?: number;
  /** fc6 dilation (default 6). */
  fc6Dilation?: number;
}

const VGG_STAGES: number[][] = [
  [64, 64],
  [128, 128],
  [256, 256, 256],
  [512, 512, 512],
  [512, 512, 512],
];

export class Vgg16ReducedBackbone implements Backbone {
  readonly channels: number[];
  private readonly stages: Conv2d[][];
  private readonly fc6: Conv2d;
  private readonly fc7: Conv2d;
  private readonly l2norm: L2Norm;
  private readonly extras: [Conv2d, Conv2d][];

  constructor(
    readonly params: ParamStore,
    options: Vgg16ReducedOptions = {},
  ) {
    const div = options.widthDivisor ?? 1;
    const c = (n: number): number => Math.max(1, Math.round(n / div));
    let cin = 3;
    this.stages = VGG_STAGES.map((stage, s) =>
      stage.map((cout, i) => {
        const conv = ssdConv(params, `backbone/conv${s + 1}_${i + 1}`, cin, c(cout), { kernel: 3 });
        cin = c(cout);
        return conv;
      }),
    );
    this.l2norm = new L2Norm(params, 'backbone/conv4_3_norm', c(512));
    this.fc6 = ssdConv(params, 'backbone/fc6', c(512), c(1024), { kernel: 3, dilation: options.fc6Dilation ?? 6 });
    this.fc7 = ssdConv(params, 'backbone/fc7', c(1024), c(1024), { kernel: 1 });
    const extraSpec: [number, number][] = [
      [256, 512],
      [128, 256],
      [128, 256],
      [128, 256],
    ];
    const n = options.extraStages ?? 4;
    this.extras = [];
    cin = c(1024);
    for (let k = 0; k < n; k++) {
      const [mid, out] = extraSpec[Math.min(k, extraSpec.length - 1)]!;
      this.extras.push([
        ssdConv(params, `backbone/conv${k + 8}_1`, cin, c(mid), { kernel: 1 }),
        ssdConv(params, `backbone/conv${k + 8}_2`, c(mid), c(out), { kernel: 3, stride: 2 }),
      ]);
      cin = c(out);
    }
    this.channels = [c(512), c(1024), ...this.extras.map(([, b]) => b.weight.shape[3]!)];
  }

  features(x: tf.Tensor4D): tf.Tensor4D[] {
    let h = x;
    const out: tf.Tensor4D[] = [];
    for (let s = 0; s < this.stages.length; s++) {
      for (const conv of this.stages[s]!) h = tf.relu(conv.forward(h));
      if (s === 3) out.push(this.l2norm.forward(h));
      // pool1..pool4: 2x2 stride 2; pool5: 3x3 stride 1 (the "reduced" part).
      h = s < 4 ? tf.maxPool(h, 2, 2, 'same') : tf.maxPool(h, 3, 1, 'same');
    }
    h = tf.relu(this.fc7.forward(tf.relu(this.fc6.forward(h))));
    out.push(h);
    for (const [a, b] of this.extras) {
      h = tf.relu(b.forward(tf.relu(a.forward(h))));
      out.push(h);
    }
    return out;
  }

  commitStatistics(): void {}
  discardStatistics(): void {}
}
