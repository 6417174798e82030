/**
 * SSD composed by constructor injection: a backbone gives feature maps, the anchor generator lays anchors on exactly
 * those maps, one 3x3 conv head per map predicts class logits and box offsets per anchor, and the matcher, box coder,
 * loss and postprocessor turn predictions into a loss (training) or detections (inference).
 */
import * as tf from '@tensorflow/tfjs';
import { featureMapSizes, type AnchorGenerator, type Anchors, type InputSize } from '../anchors/anchor-generator.js';
import type { BoxCoder } from '../box-coder.js';
import type { Matcher } from '../matcher.js';
import type { LossParts, MultiBoxLoss } from '../loss.js';
import type { Detection, Postprocessor } from '../postprocess.js';
import { buildTargets, type BatchTargets, type ImageTargets } from '../targets.js';
import type { Conv2d } from '../../src/nn/layers.js';
import { ssdConv } from './ssd-layers.js';
import type { Backbone } from './backbones/backbone.js';
import type { ParamStore } from '../../src/nn/param-store.js';

export interface SSDParts {
  backbone: Backbone;
  anchorGenerator: AnchorGenerator;
  boxCoder: BoxCoder;
  matcher: Matcher;
  loss: MultiBoxLoss;
  postprocess: Postprocessor;
  /** Classes including background (class 0): 2 for car-only. */
  numClasses: number;
  inputSize: InputSize;
}

export interface Predictions {
  /** [B, anchors, classes] */
  cls: tf.Tensor3D;
  /** [B, anchors, 4] */
  loc: tf.Tensor3D;
}

export class SSD {
  readonly backbone: Backbone;
  readonly anchorGenerator: AnchorGenerator;
  readonly boxCoder: BoxCoder;
  readonly matcher: Matcher;
  readonly loss: MultiBoxLoss;
  readonly postprocess: Postprocessor;
  readonly numClasses: number;
  readonly inputSize: InputSize;
  readonly anchors: Anchors;
  private readonly heads: { cls: Conv2d; loc: Conv2d }[];

  constructor(parts: SSDParts) {
    this.backbone = parts.backbone;
    this.anchorGenerator = parts.anchorGenerator;
    this.boxCoder = parts.boxCoder;
    this.matcher = parts.matcher;
    this.loss = parts.loss;
    this.postprocess = parts.postprocess;
    this.numClasses = parts.numClasses;
    this.inputSize = parts.inputSize;
    if (!(this.numClasses >= 2)) throw new Error('SSD needs at least 2 classes (background + one)');
    const sizes = featureMapSizes((x) => this.backbone.features(x, false), this.inputSize);
    if (sizes.length !== this.backbone.channels.length) {
      throw new Error(`backbone produced ${sizes.length} feature maps but declares ${this.backbone.channels.length} channel counts`);
    }
    this.anchors = this.anchorGenerator.generate(sizes, this.inputSize);
    const store = this.backbone.params;
    this.heads = this.backbone.channels.map((c, k) => ({
      cls: ssdConv(store, `head${k}/cls`, c, this.anchors.perCell[k]! * this.numClasses, { kernel: 3, std: 0.01 }),
      loc: ssdConv(store, `head${k}/loc`, c, this.anchors.perCell[k]! * 4, { kernel: 3, std: 0.01 }),
    }));
  }

  get params(): ParamStore {
    return this.backbone.params;
  }

  /** Normalised images [B, H, W, 3] → per-anchor class logits and box offsets, in the anchors' order. */
  forward(x: tf.Tensor4D, training: boolean): Predictions {
    const [, h, w] = x.shape;
    if (h !== this.inputSize.height || w !== this.inputSize.width) {
      throw new Error(`SSD built for ${this.inputSize.width}x${this.inputSize.height} inputs, got ${w}x${h}`);
    }
    return tf.tidy(() => {
      const feats = this.backbone.features(x, training);
      const B = x.shape[0];
      const cls: tf.Tensor3D[] = [];
      const loc: tf.Tensor3D[] = [];
      feats.forEach((f, k) => {
        cls.push(this.heads[k]!.cls.forward(f).reshape([B, -1, this.numClasses]));
        loc.push(this.heads[k]!.loc.forward(f).reshape([B, -1, 4]));
      });
      return {
        cls: (cls.length === 1 ? cls[0]! : tf.concat(cls, 1)),
        loc: (loc.length === 1 ? loc[0]! : tf.concat(loc, 1)),
      };
    });
  }

  targets(images: ImageTargets[]): BatchTargets {
    return buildTargets(images, this.anchors, this.matcher, this.boxCoder);
  }

  /** Training loss of a batch. `boxSigma`: σ of the batch's boxes in target order, or null (no data parameters). */
  computeLoss(x: tf.Tensor4D, targets: BatchTargets, boxSigma: tf.Tensor1D | null): LossParts {
    const p = this.forward(x, true);
    const parts = this.loss.compute(p.cls, p.loc, targets, boxSigma);
    tf.dispose([p.cls, p.loc]);
    return parts;
  }

  /** Detections per image, boxes normalised to the input. */
  detect(x: tf.Tensor4D): Detection[][] {
    const p = this.forward(x, false);
    try {
      return this.postprocess.run(p.cls, p.loc, this.anchors.centre, this.boxCoder);
    } finally {
      tf.dispose([p.cls, p.loc]);
    }
  }

  /** As detect, reading the outputs back asynchronously (backends without synchronous reads, e.g. WebGPU). */
  async detectAsync(x: tf.Tensor4D): Promise<Detection[][]> {
    const p = this.forward(x, false);
    try {
      return await this.postprocess.runAsync(p.cls, p.loc, this.anchors.centre, this.boxCoder);
    } finally {
      tf.dispose([p.cls, p.loc]);
    }
  }

  dispose(): void {
    this.params.dispose();
  }
}
