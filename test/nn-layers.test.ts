import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/runtime/backend.js';
import { ParamStore } from '../src/nn/param-store.js';
import { BatchNorm, dilatedConv } from '../src/nn/layers.js';

test.before(async () => {
  await initBackend('cpu', { log: null });
});

test('batch norm: batch statistics and PyTorch running-statistics update in training, running statistics at eval', () => {
  const store = new ParamStore(0);
  const bn = new BatchNorm(store, 'bn', 2);
  // channel 0: 1, 2, 3, 6 (mean 3, biased var 3.5, unbiased 14/3); channel 1: all 5
  const x = tf.tensor4d([1, 5, 2, 5, 3, 5, 6, 5], [4, 1, 1, 2]);
  const y = bn.forward(x, true);
  const v = Array.from(y.dataSync());
  const s = Math.sqrt(3.5 + 1e-5);
  [1, 2, 3, 6].forEach((xi, i) => assert.ok(Math.abs(v[2 * i]! - (xi - 3) / s) < 1e-5));
  assert.ok(v.filter((_, i) => i % 2 === 1).every((c) => Math.abs(c) < 1e-5));
  const rm = Array.from(bn.runningMean.dataSync());
  const rv = Array.from(bn.runningVar.dataSync());
  assert.ok(Math.abs(rm[0]! - 0.3) < 1e-6 && Math.abs(rm[1]! - 0.5) < 1e-6);
  assert.ok(Math.abs(rv[0]! - (0.9 + 0.1 * (14 / 3))) < 1e-6 && Math.abs(rv[1]! - 0.9) < 1e-6);
  const e = bn.forward(tf.tensor4d([1.3, 0.5], [1, 1, 1, 2]), false).dataSync();
  assert.ok(Math.abs(e[0]! - (1.3 - 0.3) / Math.sqrt(rv[0]! + 1e-5)) < 1e-5);
  assert.ok(Math.abs(e[1]! - 0 / Math.sqrt(0.9 + 1e-5)) < 1e-5);
  tf.dispose([x, y]);
  store.dispose();
});

test('dilated conv via spaceToBatchND equals tf.conv2d with dilations, and has a gradient', () => {
  const x = tf.tensor4d(Array.from({ length: 1 * 7 * 10 * 2 }, (_, i) => Math.cos(i)), [1, 7, 10, 2]);
  const k = tf.tensor4d(Array.from({ length: 3 * 3 * 2 * 3 }, (_, i) => Math.sin(i + 1)), [3, 3, 2, 3]);
  for (const d of [2, 3]) {
    const ref = tf.conv2d(x, k, 1, 'same', 'NHWC', d);
    const ours = dilatedConv(x, k, d);
    assert.equal(ours.shape, ref.shape);
    assert.ok(tf.max(tf.abs(tf.sub(ours, ref))).dataSync()[0]! < 1e-4, `rate ${d}`);
  }
  const g = tf.grad((kk: tf.Tensor) => tf.sum(dilatedConv(x, kk as tf.Tensor4D, 2)))(k);
  assert.equal(g.shape, [3, 3, 2, 3]);
  assert.ok(tf.sum(tf.abs(g)).dataSync()[0]! > 0);
});

test("batch norm, 'commit' mode: running statistics move only on commit (same values as the in-forward update), not after discard", () => {
  const store = new ParamStore(0);
  const now = new BatchNorm(store, 'now', 2);
  const later = new BatchNorm(store, 'later', 2, { runningStats: 'commit', bufferNames: ['running_mean', 'running_var'] });
  assert.ok(store.buffers.has('later/running_mean') && store.buffers.has('later/running_var') && store.buffers.has('now/runningMean'));
  const x = tf.tensor4d([1, 5, 2, 5, 3, 5, 6, 5], [4, 1, 1, 2]);
  const a = now.forward(x, true);
  const b = later.forward(x, true);
  assert.ok(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]! < 1e-6);
  assert.equal(Array.from(later.runningMean.dataSync()), [0, 0]);
  later.discard();
  later.commit();
  assert.equal(Array.from(later.runningVar.dataSync()), [1, 1]);
  tf.dispose(later.forward(x, true));
  later.commit();
  const rm = Array.from(later.runningMean.dataSync());
  const rv = Array.from(later.runningVar.dataSync());
  assert.ok(Math.abs(rm[0]! - 0.3) < 1e-6 && Math.abs(rm[1]! - 0.5) < 1e-6);
  assert.ok(Math.abs(rv[0]! - (0.9 + 0.1 * (14 / 3))) < 1e-6 && Math.abs(rv[1]! - 0.9) < 1e-6);
  const e = tf.tensor4d([1.3, 0.5], [1, 1, 1, 2]);
  const ea = now.forward(e, false), eb = later.forward(e, false);
  assert.ok(tf.max(tf.abs(tf.sub(ea, eb))).dataSync()[0]! < 1e-5);
  tf.dispose([x, a, b, e, ea, eb]);
  store.dispose();
});

test.run();
