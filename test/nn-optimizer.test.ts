import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/runtime/backend.js';
import { ParamStore } from '../src/nn/param-store.js';
import { ModelOptimizer } from '../src/nn/optimizer.js';
import { learningRate, scheduledLr } from '../src/nn/lr-schedule.js';

test.before(async () => {
  await initBackend('cpu', { log: null });
});

test('momentum SGD with weight decay: two hand-computed steps; slots round-trip', () => {
  const store = new ParamStore(0);
  const w = store.param('w', [1], () => new Float32Array([1]));
  const opt = new ModelOptimizer({ name: 'sgd', momentum: 0.9, weightDecay: 0.1 });
  const g = { [w.name]: tf.tensor1d([0.5]) };
  opt.apply(store.trainable, g, 0.1); // d = 0.5 + 0.1·1 = 0.6, buf 0.6, w = 0.94
  assert.ok(Math.abs(w.dataSync()[0]! - 0.94) < 1e-6);
  opt.apply(store.trainable, g, 0.1); // d = 0.5 + 0.094 = 0.594, buf = 0.54 + 0.594 = 1.134, w = 0.8266
  assert.ok(Math.abs(w.dataSync()[0]! - 0.8266) < 1e-6);
  const state = opt.getState();
  const slots = state.slots;
  assert.ok(Math.abs(slots['w#0']![0]! - 1.134) < 1e-6);
  const other = new ModelOptimizer({ name: 'sgd', momentum: 0.9, weightDecay: 0.1 });
  other.setState(state, store.trainable);
  assert.equal(other.getState(), state);
  assert.is(scheduledLr(0.1, { milestones: [80, 100], gamma: 0.1 }, 79), 0.1);
  assert.ok(Math.abs(scheduledLr(0.1, { milestones: [80, 100], gamma: 0.1 }, 80) - 0.01) < 1e-12);
  assert.ok(Math.abs(scheduledLr(0.1, { milestones: [80, 100], gamma: 0.1 }, 119) - 0.001) < 1e-12);
  assert.ok(Math.abs(scheduledLr(0.1, { every: 30, gamma: 0.1 }, 60) - 0.001) < 1e-12);
  assert.ok(Math.abs(scheduledLr(0.1, { every: 30, gamma: 0.1 }, 59) - 0.01) < 1e-12);
  tf.dispose(Object.values(g));
  opt.dispose();
  other.dispose();
  store.dispose();
});

test('adam: the first bias-corrected step moves each weight by lr·g/(|g|+ε); a gradient keyed by logical name works the same', () => {
  const store = new ParamStore(0);
  const w = store.param('w', [2], () => new Float32Array([1, -1]));
  const opt = new ModelOptimizer({ name: 'adam' });
  const g = tf.tensor1d([0.5, -2]);
  opt.apply(store.trainable, new Map([['w', g]]), 0.01); // m̂ = g, v̂ = g²: update g/(|g| + 1e-8)
  const v = Array.from(w.dataSync());
  assert.ok(Math.abs(v[0]! - 0.99) < 1e-6 && Math.abs(v[1]! + 0.99) < 1e-6, String(v));
  const s = opt.getState();
  assert.is(s.steps, 1);
  assert.equal(Object.keys(s.slots), ['w#0', 'w#1']);
  assert.throws(() => opt.setState({ steps: 1, slots: { 'x#0': new Float32Array(2) } }, store.trainable), /slot 'x#0' belongs to no parameter/);
  assert.throws(() => opt.setState({ steps: 1, slots: { 'w#0': new Float32Array(3) } }, store.trainable), /slot 'w#0' has 3 values, expected 2/);
  assert.throws(() => new ModelOptimizer({ name: 'rmsprop' as 'sgd' }), /unknown optimizer 'rmsprop'/);
  g.dispose();
  opt.dispose();
  store.dispose();
});

test('learning-rate schedule: linear warmup, then steps', () => {
  const s = { lr: 0.1, warmupSteps: 4, warmupFactor: 0.2, milestones: [10, 20], gamma: 0.1 };
  const lrs = [0, 2, 4, 10, 25].map((k) => Number(learningRate(k, s).toPrecision(6)));
  assert.equal(lrs, [0.02, 0.06, 0.1, 0.01, 0.001]);
});

test.run();
