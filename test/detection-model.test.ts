import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../src/runtime/backend.js';
import { buildSSD, type SSDSpec } from '../detection/model/build.js';
import { loadSSD, saveSSD } from '../detection/model/io.js';
import { ModelOptimizer } from '../src/nn/optimizer.js';
import type { ImageTargets } from '../detection/targets.js';

test.before(async () => {
  await initBackend('cpu', { log: null });
});

const LIGHT: SSDSpec = {
  backbone: { type: 'light', widths: [4, 8, 8], extraChannels: 8, featureMaps: 3 },
  inputSize: { width: 96, height: 32 },
  classNames: ['car'],
  anchors: { minScale: 0.2, maxScale: 0.8, aspectRatios: [1, 2] },
};

function tinyBatch(): { x: tf.Tensor4D; images: ImageTargets[] } {
  const data = new Float32Array(2 * 32 * 96 * 3);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37) * 0.5;
  return {
    x: tf.tensor4d(data, [2, 32, 96, 3]),
    images: [
      { boxes: new Float32Array([0.1, 0.3, 0.35, 0.9]), labels: new Int32Array([1]) },
      { boxes: new Float32Array([0.5, 0.2, 0.7, 0.8, 0.05, 0.5, 0.15, 0.9]), labels: new Int32Array([1, 1]), ignore: new Float32Array([0.8, 0, 1, 1]) },
    ],
  };
}

test('light SSD: feature maps of a rectangular input give the anchor grid, predictions line up with anchors', () => {
  const ssd = buildSSD(LIGHT, 1);
  // 96x32 → stride 8: 4x12, then 2x6, 1x3; 3 anchors per cell (2 ratios + extra).
  assert.equal(ssd.anchors.featureMapSizes, [
    [4, 12],
    [2, 6],
    [1, 3],
  ]);
  assert.is(ssd.anchors.count, (48 + 12 + 3) * 3);
  const { x } = tinyBatch();
  const p = ssd.forward(x, false);
  assert.equal(p.cls.shape, [2, ssd.anchors.count, 2]);
  assert.equal(p.loc.shape, [2, ssd.anchors.count, 4]);
  assert.throws(() => ssd.forward(tf.zeros([1, 96, 32, 3]), false), /built for 96x32 inputs, got 32x96/);
  tf.dispose([p.cls, p.loc, x]);
  ssd.dispose();
});

test('light backbone: repeats set the stride-1 convs, patchStem reaches stride 4 in one 4x4 conv; the anchor grid is unchanged', () => {
  const convs = (ssd: ReturnType<typeof buildSSD>): string[] =>
    [...ssd.params.trainable.keys()].filter((k) => k.startsWith('backbone/') && k.endsWith('/kernel')).map((k) => k.slice('backbone/'.length, -'/kernel'.length));
  const defaults = buildSSD(LIGHT, 1);
  assert.equal(convs(defaults), ['conv1', 'conv2', 'conv3', 'conv4', 'conv5', 'extra1', 'extra2']);
  defaults.dispose();
  const light = { type: 'light', widths: [4, 8, 8], extraChannels: 8, featureMaps: 3 } as const satisfies SSDSpec['backbone'];
  const patch = buildSSD({ ...LIGHT, backbone: { ...light, widths: [4, 8, 8], repeats: [0, 2], patchStem: true } }, 1);
  assert.equal(convs(patch), ['patch', 'conv4', 'conv5', 'conv5_2', 'extra1', 'extra2']);
  // One 4x4 conv from RGB to the second width (8), without bias: its batch norm follows.
  assert.equal(patch.params.trainable.get('backbone/patch/kernel')!.shape, [4, 4, 3, 8]);
  assert.equal(patch.anchors.featureMapSizes, [
    [4, 12],
    [2, 6],
    [1, 3],
  ]);
  const p = patch.forward(tf.zeros([1, 32, 96, 3]), false);
  assert.equal(p.cls.shape, [1, patch.anchors.count, 2]);
  tf.dispose([p.cls, p.loc]);
  patch.dispose();
  assert.throws(() => buildSSD({ ...LIGHT, backbone: { ...light, widths: [4, 8, 8], repeats: [-1, 1] } }, 1), /repeats must be two integers ≥ 0, got \[-1, 1\]/);
});

test('VGG16-reduced (narrow): conv4_3, fc7 and extras at strides 8, 16, 32...; L2Norm scale starts at 20', () => {
  const ssd = buildSSD(
    {
      backbone: { type: 'vgg16-reduced', widthDivisor: 32, extraStages: 2 },
      inputSize: { width: 128, height: 48 },
      classNames: ['car'],
      anchors: { minScale: 0.1, maxScale: 0.9, aspectRatios: [1, 2] },
    },
    3,
  );
  assert.equal(ssd.anchors.featureMapSizes, [
    [6, 16],
    [3, 8],
    [2, 4],
    [1, 2],
  ]);
  assert.equal(Array.from(ssd.params.trainable.get('backbone/conv4_3_norm/scale')!.dataSync().slice(0, 2)), [20, 20]);
  const p = ssd.forward(tf.zeros([1, 48, 128, 3]), false);
  assert.equal(p.cls.shape, [1, ssd.anchors.count, 2]);
  tf.dispose([p.cls, p.loc]);
  ssd.dispose();
});

test('training steps lower the loss on a fixed batch and keep the tensor count flat (sgd and adam)', () => {
  for (const name of ['sgd', 'adam'] as const) {
    const ssd = buildSSD(LIGHT, 2);
    const { x, images } = tinyBatch();
    const targets = ssd.targets(images);
    const opt = new ModelOptimizer({ name, momentum: 0.9 });
    const losses: number[] = [];
    let count = 0;
    for (let i = 0; i < 6; i++) {
      const { value, grads } = tf.variableGrads(() => {
        const parts = ssd.computeLoss(x, targets, null);
        tf.dispose([parts.cls, parts.loc]);
        return parts.total;
      }, ssd.params.trainableList);
      const byName = new Map<string, tf.Tensor>();
      for (const v of ssd.params.trainableList) byName.set(ssd.params.logicalName(v), grads[v.name]!);
      opt.apply(ssd.params.trainable, byName, name === 'sgd' ? 0.05 : 0.01);
      ssd.backbone.commitStatistics();
      losses.push(value.dataSync()[0]!);
      tf.dispose([value, grads]);
      if (i === 1) count = tf.memory().numTensors;
      if (i > 1) assert.is(tf.memory().numTensors, count, `${name} step ${i}`);
    }
    assert.ok(losses[5]! < losses[0]!, `${name}: ${losses.join(', ')}`);
    // batch-norm running statistics moved away from their initial values
    assert.ok(ssd.params.buffers.get('backbone/conv1/bn/running_var')!.dataSync()[0] !== 1);
    opt.dispose();
    x.dispose();
    ssd.dispose();
  }
});

test('saved model (model.json + weights.bin) reloads with identical predictions', async () => {
  const ssd = buildSSD(LIGHT, 5);
  const dir = mkdtempSync(path.join(tmpdir(), 'ssd-save-'));
  await saveSSD(ssd, LIGHT, dir, { note: 'test' });
  assert.ok(existsSync(path.join(dir, 'model.json')) && existsSync(path.join(dir, 'weights.bin')));
  const { model } = await loadSSD(dir);
  const { x } = tinyBatch();
  const a = ssd.forward(x, false), b = model.forward(x, false);
  assert.equal(Array.from(a.cls.dataSync()), Array.from(b.cls.dataSync()));
  assert.equal(Array.from(a.loc.dataSync()), Array.from(b.loc.dataSync()));
  tf.dispose([a.cls, a.loc, b.cls, b.loc, x]);
  ssd.dispose();
  model.dispose();
});

test.run();
