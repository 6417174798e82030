/**
 * The classifiers of the paper's experiments, composed from layers by constructor injection (torchvision style):
 * ResNet-18 for 224x224 ImageNet / WebVision, WideResNet-28-10 for CIFAR-100, and a small CNN for Fashion-MNIST.
 * Factories give the standard configurations; the classes take any composition (tests use narrow, shallow ones).
 */
import * as tf from '@tensorflow/tfjs';
import { ParamStore, heNormal } from '../../src/nn/param-store.js';
import { BatchNorm, Conv2d, Flatten, GlobalAvgPool, Linear, MaxPool, Relu, Sequential, type Layer } from '../../src/nn/layers.js';

/** torchvision's convolutions: no bias, Kaiming-normal fan-out weights, symmetric zero padding (kernel/2 by default). */
function conv(store: ParamStore, name: string, o: { inChannels: number; outChannels: number; kernel: number; stride?: number; pad?: number }): Conv2d {
  const { kernel, outChannels } = o;
  return new Conv2d(store, name, { ...o, pad: o.pad ?? Math.floor(kernel / 2), init: heNormal(kernel * kernel * outChannels), bias: false });
}

/** A classifier: NHWC float images in, logits [batch, numClasses] out. Owns its ParamStore. */
export interface ClassifierModel {
  readonly name: string;
  readonly store: ParamStore;
  readonly numClasses: number;
  /** [height, width, channels] the model is built for (convolutional models accept other sizes too). */
  readonly inputShape: [number, number, number];
  logits(x: tf.Tensor4D, training: boolean): tf.Tensor2D;
}

/** Body → head, with the parameter store they were built in. */
export class Classifier implements ClassifierModel {
  constructor(
    readonly name: string,
    readonly store: ParamStore,
    readonly numClasses: number,
    readonly inputShape: [number, number, number],
    readonly body: Layer,
    readonly head: Layer,
  ) {}
  logits(x: tf.Tensor4D, training: boolean): tf.Tensor2D {
    return this.head.forward(this.body.forward(x, training), training) as tf.Tensor2D;
  }
}

/** ResNet basic block: conv3x3-BN-ReLU-conv3x3-BN + shortcut (identity or 1x1 conv-BN), then ReLU. */
export class BasicBlock implements Layer {
  constructor(
    readonly main: Layer,
    readonly shortcut: Layer | null,
  ) {}
  forward(x: tf.Tensor, training: boolean): tf.Tensor {
    const y = this.main.forward(x, training);
    return tf.relu(tf.add(y, this.shortcut ? this.shortcut.forward(x, training) : x));
  }

  static build(store: ParamStore, name: string, inC: number, outC: number, stride: number): BasicBlock {
    const main = new Sequential([
      conv(store, `${name}/conv1`, { inChannels: inC, outChannels: outC, kernel: 3, stride }),
      new BatchNorm(store, `${name}/bn1`, outC),
      new Relu(),
      conv(store, `${name}/conv2`, { inChannels: outC, outChannels: outC, kernel: 3 }),
      new BatchNorm(store, `${name}/bn2`, outC),
    ]);
    const shortcut =
      stride !== 1 || inC !== outC
        ? new Sequential([
            conv(store, `${name}/down/conv`, { inChannels: inC, outChannels: outC, kernel: 1, stride, pad: 0 }),
            new BatchNorm(store, `${name}/down/bn`, outC),
          ])
        : null;
    return new BasicBlock(main, shortcut);
  }
}

export interface ResNetOptions {
  numClasses: number;
  /** Blocks per stage; ResNet-18: [2, 2, 2, 2]. */
  blocks?: number[];
  /** Channels of the first stage (doubled per stage); 64 in ResNet-18. */
  width?: number;
  inputShape?: [number, number, number];
  seed?: number;
}

/** ResNet with the ImageNet stem (7x7/2 conv, BN, ReLU, 3x3/2 max-pool) and basic blocks. */
export function resnet(options: ResNetOptions): Classifier {
  const store = new ParamStore(options.seed ?? 0);
  const blocks = options.blocks ?? [2, 2, 2, 2];
  const width = options.width ?? 64;
  const inputShape = options.inputShape ?? [224, 224, 3];
  const layers: Layer[] = [
    conv(store, 'stem/conv', { inChannels: inputShape[2], outChannels: width, kernel: 7, stride: 2, pad: 3 }),
    new BatchNorm(store, 'stem/bn', width),
    new Relu(),
    new MaxPool(3, 2, 1),
  ];
  let c = width;
  blocks.forEach((n, stage) => {
    const out = width * 2 ** stage;
    for (let b = 0; b < n; b++) {
      layers.push(BasicBlock.build(store, `layer${stage + 1}/${b}`, c, out, b === 0 && stage > 0 ? 2 : 1));
      c = out;
    }
  });
  layers.push(new GlobalAvgPool());
  const name = blocks.join(',') === '2,2,2,2' && width === 64 ? 'resnet18' : `resnet[${blocks.join(',')}]x${width}`;
  return new Classifier(name, store, options.numClasses, inputShape, new Sequential(layers), new Linear(store, 'fc', c, options.numClasses));
}

export function resnet18(numClasses: number, seed = 0): Classifier {
  return resnet({ numClasses, seed });
}

/** Wide-ResNet pre-activation block: BN-ReLU-conv3x3-BN-ReLU-conv3x3 + shortcut (1x1 conv of the activated input). */
export class WideBlock implements Layer {
  constructor(
    readonly bn1: BatchNorm,
    readonly conv1: Layer,
    readonly bn2: BatchNorm,
    readonly conv2: Layer,
    readonly shortcut: Layer | null,
  ) {}
  forward(x: tf.Tensor, training: boolean): tf.Tensor {
    const a = this.bn1.forwardRelu(x, training);
    const y = this.conv2.forward(this.bn2.forwardRelu(this.conv1.forward(a, training), training), training);
    return tf.add(y, this.shortcut ? this.shortcut.forward(a, training) : x);
  }

  static build(store: ParamStore, name: string, inC: number, outC: number, stride: number): WideBlock {
    return new WideBlock(
      new BatchNorm(store, `${name}/bn1`, inC),
      conv(store, `${name}/conv1`, { inChannels: inC, outChannels: outC, kernel: 3, stride }),
      new BatchNorm(store, `${name}/bn2`, outC),
      conv(store, `${name}/conv2`, { inChannels: outC, outChannels: outC, kernel: 3 }),
      inC !== outC || stride !== 1
        ? conv(store, `${name}/shortcut`, { inChannels: inC, outChannels: outC, kernel: 1, stride, pad: 0 })
        : null,
    );
  }
}

export interface WideResNetOptions {
  numClasses: number;
  /** 6n + 4; 28 in WRN-28-10. */
  depth?: number;
  widen?: number;
  inputShape?: [number, number, number];
  seed?: number;
}

/** WideResNet (Zagoruyko & Komodakis) for 32x32 inputs: WRN-28-10 by default. */
export function wideResNet(options: WideResNetOptions): Classifier {
  const depth = options.depth ?? 28;
  const widen = options.widen ?? 10;
  if ((depth - 4) % 6 !== 0 || depth < 10) throw new Error(`WideResNet depth must be 6n + 4 >= 10, got ${depth}`);
  const n = (depth - 4) / 6;
  const store = new ParamStore(options.seed ?? 0);
  const inputShape = options.inputShape ?? [32, 32, 3];
  const widths = [16, 16 * widen, 32 * widen, 64 * widen];
  const layers: Layer[] = [conv(store, 'stem/conv', { inChannels: inputShape[2], outChannels: widths[0]!, kernel: 3 })];
  let c = widths[0]!;
  for (let g = 0; g < 3; g++) {
    for (let b = 0; b < n; b++) {
      layers.push(WideBlock.build(store, `group${g + 1}/${b}`, c, widths[g + 1]!, b === 0 && g > 0 ? 2 : 1));
      c = widths[g + 1]!;
    }
  }
  layers.push(new BatchNorm(store, 'final/bn', c), new Relu(), new GlobalAvgPool());
  return new Classifier(`wrn-${depth}-${widen}`, store, options.numClasses, inputShape, new Sequential(layers), new Linear(store, 'fc', c, options.numClasses));
}

export interface SmallCnnOptions {
  numClasses: number;
  inputShape?: [number, number, number];
  /** Channels of the conv stages, each conv3x3-BN-ReLU-maxpool2. */
  widths?: number[];
  hidden?: number;
  seed?: number;
}

/** A small CNN for 28x28 grey images: [conv3x3-BN-ReLU-maxpool] x2, FC-BN-ReLU, FC. */
export function smallCnn(options: SmallCnnOptions): Classifier {
  const store = new ParamStore(options.seed ?? 0);
  const inputShape = options.inputShape ?? [28, 28, 1];
  const widths = options.widths ?? [32, 64];
  const hidden = options.hidden ?? 128;
  const layers: Layer[] = [];
  let c = inputShape[2];
  let h = inputShape[0];
  let w = inputShape[1];
  widths.forEach((out, i) => {
    layers.push(
      conv(store, `conv${i + 1}`, { inChannels: c, outChannels: out, kernel: 3 }),
      new BatchNorm(store, `bn${i + 1}`, out),
      new Relu(),
      new MaxPool(2, 2),
    );
    c = out;
    h = Math.floor(h / 2);
    w = Math.floor(w / 2);
  });
  layers.push(new Flatten(), new Linear(store, 'fc1', h * w * c, hidden), new BatchNorm(store, 'fc1/bn', hidden), new Relu());
  return new Classifier('small-cnn', store, options.numClasses, inputShape, new Sequential(layers), new Linear(store, 'fc2', hidden, options.numClasses));
}

export type ModelName = 'resnet18' | 'wrn-28-10' | 'small-cnn';
