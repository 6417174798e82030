import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { initBackend } from '../src/runtime/backend.js';
import { Rng } from '../src/util/rng.js';
import { resnet, smallCnn, wideResNet } from '../classification/models/models.js';
import { expectedCalibrationError, fitTemperature, nllAt, topKCorrect } from '../classification/training/metrics.js';
import { FileImageData, InMemoryImageData, randomResizedCropBox, stratifiedSubset, IMAGENET_TRAIN_AUGMENT } from '../classification/input/image-data.js';
import { applyOverrides, buildRun, dataParameterSettings, readConfig, validateConfig } from '../classification/config.js';
import { encodeIdxUint8 } from '../datasets/idx/idx-file.js';

const CONFIGS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'configs');

test.before(async () => {
  await initBackend('cpu', { log: null });
});

test('model shapes and parameter counts (ResNet-18 = torchvision 11,689,512; WRN-10-1 hand-counted)', () => {
  const r18 = resnet({ numClasses: 1000 });
  assert.is(r18.name, 'resnet18');
  assert.is(r18.store.parameterCount, 11_689_512);
  r18.store.dispose();
  // stem 432 + block 4672 + block 14432 + block 57536 + final BN 128 + fc 650
  const wrn = wideResNet({ numClasses: 10, depth: 10, widen: 1 });
  assert.is(wrn.store.parameterCount, 77_850);
  const small = resnet({ numClasses: 5, blocks: [1, 1], width: 4, inputShape: [32, 32, 3] });
  const x = tf.randomNormal<tf.Rank.R4>([2, 32, 32, 3]);
  for (const m of [wrn, small]) {
    const y = m.logits(x, true);
    assert.equal(y.shape, [2, m.numClasses]);
    y.dispose();
    const e = m.logits(x, false);
    assert.equal(e.shape, [2, m.numClasses]);
    e.dispose();
    m.store.dispose();
  }
  const cnn = smallCnn({ numClasses: 10, widths: [2, 3], hidden: 4 });
  // conv 9·1·2 + BN 4 + conv 9·2·3 + BN 6 + fc 7·7·3·4 + 4 + BN 8 + fc 4·10 + 10
  assert.is(cnn.store.parameterCount, 18 + 4 + 54 + 6 + 588 + 4 + 8 + 50);
  cnn.store.dispose();
  x.dispose();
});

test('gradients through the hand-built layers match central finite differences', () => {
  const m = smallCnn({ numClasses: 3, inputShape: [6, 6, 1], widths: [2], hidden: 4, seed: 5 });
  const x = tf.randomNormal<tf.Rank.R4>([3, 6, 6, 1], 0, 1, 'float32', 9);
  const y = tf.oneHot(tf.tensor1d([0, 2, 1], 'int32'), 3);
  // Evaluation mode: a fixed function of the weights (training mode would also move the running statistics).
  const lossFn = (): tf.Scalar => tf.losses.softmaxCrossEntropy<tf.Tensor, tf.Scalar>(y, m.logits(x, false));
  const vars = m.store.trainable;
  const { grads } = tf.variableGrads(lossFn, [...vars.values()]);
  for (const name of ['conv1/weight', 'fc1/weight', 'fc2/bias']) {
    const v = vars.get(name)!;
    const g = grads[v.name]!.dataSync();
    const w = Float32Array.from(v.dataSync());
    for (const i of [0, Math.floor(w.length / 2)]) {
      const eps = 1e-2;
      const at = (delta: number): number => {
        const w2 = w.slice();
        w2[i]! += delta;
        v.assign(tf.tensor(w2, v.shape));
        return tf.tidy(() => lossFn().dataSync()[0]!);
      };
      const fd = (at(eps) - at(-eps)) / (2 * eps);
      v.assign(tf.tensor(w, v.shape));
      assert.ok(Math.abs(fd - g[i]!) < 2e-3 + 2e-2 * Math.abs(fd), `${name}[${i}]: autograd ${g[i]} vs finite difference ${fd}`);
    }
  }
  tf.dispose([x, y, grads]);
  m.store.dispose();
});

test('top-k, ECE and temperature fitting on hand-made logits', () => {
  const logits = new Float32Array([3, 1, 2, 0, 0, 5, 1, 1, 1]);
  assert.is(topKCorrect(logits, [0, 2, 1], 3, 1), 2); // row 2 ties: class 0 wins over 1
  assert.is(topKCorrect(logits, [2, 0, 1], 3, 2), 3);
  assert.is(topKCorrect(logits, [1, 0, 2], 3, 2), 1); // row 0: class 1 is third; row 1: 0 ties 1 and wins; row 2: class 2 is third
  // Two rows with confidence 0.5 (one right, one wrong) and one row with confidence ~1 (right): ECE = (2/3)·0 + (1/3)·|1 - c|
  const l2 = new Float32Array([0, 0, 20, 0, 0, 0, 0, 40]);
  const ece = expectedCalibrationError(l2, [0, 1, 1, 1], 2, 1, 10);
  const c = 1 / (1 + Math.exp(-20));
  assert.ok(Math.abs(ece - (0.25 * 0 + 0.25 * 0 + 0.25 * Math.abs(0 - c) + 0.25 * Math.abs(1 - 1 / (1 + Math.exp(-40))))) < 1e-9);
  // Temperature: over-confident logits (×4) are best rescaled by T ≈ 4 when labels follow softmax(z).
  const rng = new Rng(3);
  const n = 4000;
  const z = new Float32Array(n * 3);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const base = [rng.normal(), rng.normal(), rng.normal()];
    const p = base.map(Math.exp);
    const s = p.reduce((a, b) => a + b, 0);
    const u = rng.next() * s;
    y[i] = u < p[0]! ? 0 : u < p[0]! + p[1]! ? 1 : 2;
    base.forEach((b, j) => (z[3 * i + j] = 4 * b));
  }
  const t = fitTemperature(z, y, 3);
  let best = Infinity;
  let bestT = 0;
  for (let tt = 2; tt <= 6; tt += 0.01) {
    const v = nllAt(z, y, 3, tt);
    if (v < best) [best, bestT] = [v, tt];
  }
  assert.ok(Math.abs(t - bestT) < 0.02, `golden section ${t} vs grid ${bestT}`);
  assert.ok(Math.abs(t - 4) < 0.4, `T ${t}`);
  assert.ok(expectedCalibrationError(z, y, 3, t) < expectedCalibrationError(z, y, 3, 1));
});

class ScriptedRng extends Rng {
  constructor(
    private readonly ints: number[],
    private readonly uniforms: number[],
  ) {
    super(1);
  }
  override int(): number {
    return this.ints.shift()!;
  }
  override next(): number {
    return this.uniforms.shift()!;
  }
}

test('pad-crop-flip augmentation: hand-computed 2x3 image', async () => {
  // pixels 10 20 30 / 40 50 60, normalised with mean 0 std 1/255 → the raw values
  const data = new InMemoryImageData(
    { pixels: new Uint8Array([10, 20, 30, 40, 50, 60]), height: 2, width: 3, channels: 1 },
    new Int32Array([0]),
    new Int32Array([0]),
    2,
    ['a', 'b'],
    { mean: [0], std: [1 / 255] },
    { pad: 1, flip: true },
  );
  const plain = await data.loadBatch([0], null);
  assert.equal(Array.from(plain, Math.round), [10, 20, 30, 40, 50, 60]);
  // dy = 0, dx = 0 (shift down-right by the pad), no flip
  const shifted = await data.loadBatch([0], new ScriptedRng([0, 0], [0.9]));
  assert.equal(Array.from(shifted, Math.round), [0, 0, 0, 0, 10, 20]);
  // dy = 1, dx = 2 (shift left by 1), then flip
  const flipped = await data.loadBatch([0], new ScriptedRng([1, 2], [0.1]));
  assert.equal(Array.from(flipped, Math.round), [0, 30, 20, 0, 60, 50]);
});

test('random-resized-crop box (torchvision rule) and file decoding with sharp', async () => {
  const half = new Float64Array(41).fill(0.5);
  assert.equal(randomResizedCropBox(100, 100, IMAGENET_TRAIN_AUGMENT, half), { left: 14, top: 14, width: 73, height: 73 });
  const tooBig = new Float64Array(41).fill(0.999); // area ~1 at ratio 4/3 never fits a square: centre crop
  assert.equal(randomResizedCropBox(50, 100, IMAGENET_TRAIN_AUGMENT, tooBig), { left: 0, top: 16, width: 50, height: 67 });

  const dir = mkdtempSync(path.join(tmpdir(), 'dp-cls-img-'));
  const red = path.join(dir, 'red.png');
  await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 255, g: 0, b: 0 } } }).png().toFile(red);
  const broken = path.join(dir, 'broken.JPEG');
  writeFileSync(broken, 'not a jpeg');
  const files = [red, broken];
  const data = new FileImageData({ count: 2, path: (i) => files[i]! }, new Int32Array([0, 1]), 2, ['a', 'b'], 16, IMAGENET_TRAIN_AUGMENT);
  const x = await data.loadBatch([0], new Rng(4));
  assert.is(x.length, 16 * 16 * 3);
  const expected = [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (0 - 0.406) / 0.225];
  for (let p = 0; p < 16 * 16; p++) for (let k = 0; k < 3; k++) assert.ok(Math.abs(x[3 * p + k]! - expected[k]!) < 1e-5);
  const evalData = new FileImageData({ count: 1, path: () => red }, new Int32Array([0]), 2, ['a', 'b'], 16, null);
  assert.ok(Math.abs((await evalData.loadBatch([0], null))[3 * 100]! - expected[0]!) < 1e-5);
  try {
    await data.loadBatch([1], null);
    assert.unreachable();
  } catch (err) {
    assert.match((err as Error).message, /broken\.JPEG: unreadable image/);
  }
});

test('stratified subset: balanced, sorted, reproducible', () => {
  const labels = Int32Array.from({ length: 100 }, (_, i) => (i < 70 ? 0 : i < 90 ? 1 : 2));
  const s = stratifiedSubset(labels, 3, 30, 1);
  assert.is(s.length, 30);
  assert.equal(Array.from(s), Array.from(stratifiedSubset(labels, 3, 30, 1)));
  assert.ok(s.every((v, i) => i === 0 || v > s[i - 1]!));
  const per = [0, 0, 0];
  s.forEach((i) => per[labels[i]!]!++);
  assert.equal(per, [10, 10, 10]);
});

test('configs: the four shipped configs validate; joint on ImageNet gets instance init 0.001; bad fields are named', async () => {
  for (const name of ['imagenet', 'webvision', 'cifar100', 'fashion-mnist']) await readConfig(path.join(CONFIGS, `${name}.json`));
  const imagenet = await readConfig(path.join(CONFIGS, 'imagenet.json'));
  assert.equal(imagenet.train.schedule, { every: 30, gamma: 0.1 });
  const joint = dataParameterSettings(applyOverrides(imagenet, { curriculum: 'joint' }));
  assert.equal([joint.instance!.init, joint.instance!.lr, joint.instance!.weightDecay], [0.001, 0.8, 1e-8]);
  assert.equal([joint.class!.lr, joint.class!.weightDecay], [0.1, 1e-4]);
  const cifar = await readConfig(path.join(CONFIGS, 'cifar100.json'));
  assert.equal(cifar.train.schedule.milestones, [80, 100]);
  assert.equal(dataParameterSettings(cifar).instance, { init: 1, lr: 0.2, momentum: 0.9, weightDecay: 0 });
  // The label-review settings: σ without momentum, with weight decay, so the recent epochs weigh most.
  const review = await readConfig(path.join(CONFIGS, 'experiments', 'label-review-fashion-mnist.json'));
  assert.equal(dataParameterSettings(review).instance, { init: 1, lr: 2, momentum: 0, weightDecay: 0.1 });
  assert.equal([review.train.epochs, review.train.augment, review.noise?.rate], [12, true, 0.4]);
  assert.throws(() => applyOverrides(imagenet, { curriculum: 'sometimes' }), /"curriculum" must be one of none, class, instance, joint/);
  assert.throws(() => validateConfig({ ...imagenet, train: { ...imagenet.train, lr: -1 } }, 'x.json'), /x\.json: "train\.lr" must be a number >= 0/);
  assert.throws(() => applyOverrides(imagenet, { noiseModel: 'flip' }), /unknown noise model 'flip'/);
  // Unknown keys and wrong values anywhere are named with their path.
  const message = (c: unknown): string => {
    try {
      validateConfig(c, 'x.json');
      return 'accepted';
    } catch (e) {
      return (e as Error).message;
    }
  };
  assert.is(message({ ...imagenet, model: { name: 'resnet18', depht: 3 } }), 'x.json: "model.depht" is not a known key (expected one of name, depth, widen, widths, hidden, blocks, width)');
  assert.is(message({ ...imagenet, extra: true }), 'x.json: "extra" is not a known key (expected one of description, dataset, model, train, curriculum, dataParameters, dataParametersByCurriculum, noise, seed, calibrate)');
  assert.is(message({ ...imagenet, dataParameters: { class: { momentum: 1 } } }), 'x.json: "dataParameters.class.momentum" must be a number >= 0 and < 1, got 1');
  assert.is(message({ ...imagenet, dataParametersByCurriculum: { joint: { instanc: {} } } }), 'x.json: "dataParametersByCurriculum.joint.instanc" is not a known key (expected one of class, instance, clamp)');
  assert.is(message({ ...imagenet, dataset: { ...imagenet.dataset, validation: { kind: 'xml' } } }), 'x.json: "dataset.validation.dir" is required');
  assert.is(message({ ...imagenet, train: { ...imagenet.train, augment: 'yes' } }), `x.json: "train.augment" must be true or false, got 'yes'`);
  assert.is(message({ ...imagenet, noise: { rate: 1.5, model: 'uniform' } }), 'x.json: "noise.rate" must be a number >= 0 and <= 1, got 1.5');
  assert.is(message({ ...imagenet, dataset: { ...imagenet.dataset, validation: { kind: 'folders' } } }), 'accepted');
});

test('buildRun on an MNIST-layout folder: subset, label noise on the subset, σ per entry', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dp-cls-fm-'));
  const n = 40;
  const rng = new Rng(2);
  const px = new Uint8Array(n * 28 * 28).map(() => rng.int(256));
  const labels = Uint8Array.from({ length: n }, (_, i) => i % 10);
  writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), encodeIdxUint8([n, 28, 28], px));
  writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), encodeIdxUint8([n], labels));
  writeFileSync(path.join(dir, 't10k-images-idx3-ubyte'), encodeIdxUint8([10, 28, 28], px.subarray(0, 10 * 784)));
  writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte'), encodeIdxUint8([10], labels.subarray(0, 10)));
  const base = await readConfig(path.join(CONFIGS, 'fashion-mnist.json'));
  const config = applyOverrides({ ...base, model: { name: 'small-cnn', widths: [2], hidden: 4 } }, { data: dir, trainSubset: 20, valSubset: 5, noiseRate: 0.5, noiseModel: 'permute' });
  const run = await buildRun(config, () => {});
  assert.is(run.train.count, 20);
  assert.is(run.val!.count, 5);
  assert.is(run.dp.numInstances, 20);
  assert.is(run.noise!.selected.reduce((a, b) => a + b, 0), 10);
  assert.equal(run.train.inputShape, [28, 28, 1]);
  const x = await run.train.loadBatch([0, 1], null);
  assert.is(x.length, 2 * 784);
  run.dispose();
});

test.run();
