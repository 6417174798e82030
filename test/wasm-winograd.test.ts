import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/runtime/backend.js';
import { filterGradientSlices, setWinogradUse } from '../src/runtime/wasm-training/winograd.js';
import { Rng } from '../src/util/rng.js';
import { assertClose, assertStepLeavesNothing, compareGrads, randomInput, runOn } from './support/wasm-compare.js';
import type { Input } from './support/wasm-compare.js';

type Pad = 'same' | 'valid' | tf.backend_util.ExplicitPadding;

test.before(async () => {
  await initBackend('wasm', { log: null });
  setWinogradUse('always'); // every applicable shape, however small, takes the Winograd path
});
test.after(async () => {
  setWinogradUse('where-faster');
  await initBackend('cpu', { log: null });
});

const conv = (pad: Pad) => (x?: tf.Tensor, f?: tf.Tensor): tf.Tensor4D => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, pad);

const cases: { x: number[]; cout: number; pad: Pad }[] = [
  { x: [1, 8, 8, 4], cout: 4, pad: 'same' },
  { x: [3, 9, 11, 8], cout: 12, pad: 'same' }, // H, W not multiples of 4: partial tiles cropped
  { x: [1, 7, 13, 4], cout: 8, pad: 'valid' },
  { x: [3, 10, 6, 16], cout: 4, pad: [[0, 0], [2, 0], [1, 3], [0, 0]] },
  { x: [1, 3, 3, 8], cout: 8, pad: 'valid' }, // a single 1x1 output
  { x: [2, 5, 7, 8], cout: 8, pad: [[0, 0], [3, 1], [0, 4], [0, 0]] }, // a first tile row of zeros only
  { x: [1, 13, 17, 128], cout: 32, pad: 'same' },
  { x: [1, 6, 9, 32], cout: 128, pad: 'same' },
];

/**
 * Winograd's transforms amplify float32 rounding (coefficients up to 8 and 1/24), so the error grows with the
 * number of input channels summed; measured <= 1e-5 of max |y| here. The bound 1e-4 of max |y| leaves room, and is
 * still ~100x below what a wrong transform entry or a misplaced tile would give.
 */
test('Winograd Conv2D matches the cpu backend across shapes, paddings and channel counts', async () => {
  const rng = new Rng(31);
  for (const c of cases) {
    const x = randomInput(rng, c.x);
    const f = randomInput(rng, [3, 3, c.x[3]!, c.cout]);
    const expected = await runOn('cpu', [x, f], (a, b) => [conv(c.pad)(a, b)]);
    const actual = await runOn('wasm', [x, f], (a, b) => [conv(c.pad)(a, b)]);
    const maxAbs = expected[0]!.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    assertClose(actual, [expected[0]!], (1e-4 * maxAbs) / Math.max(1, maxAbs), `${JSON.stringify(c)}`);
  }
});

test('the Winograd path really runs, and by default shapes with few channels go to the built-in', async () => {
  const rng = new Rng(32);
  const x = randomInput(rng, [2, 12, 12, 16]);
  const f = randomInput(rng, [3, 3, 16, 8]);
  const winograd = await runOn('wasm', [x, f], (a, b) => [conv('same')(a, b)]);
  setWinogradUse('where-faster'); // 16 input channels: below where Winograd pays
  const builtIn = await runOn('wasm', [x, f], (a, b) => [conv('same')(a, b)]);
  setWinogradUse('always');
  // Different roundings: identical bits would mean the built-in ran both times.
  assert.ok(winograd[0]!.some((v, i) => v !== builtIn[0]![i]), 'Winograd and the built-in give bitwise different sums');
  assertClose(winograd, builtIn, 1e-4, 'Winograd vs built-in');
});

test('shapes Winograd does not cover (stride 2, 5x5, 3 channels, dilation) still match cpu', async () => {
  const rng = new Rng(33);
  const other: { x: number[]; f: number[]; op: (a?: tf.Tensor, b?: tf.Tensor) => tf.Tensor }[] = [
    { x: [1, 9, 9, 8], f: [3, 3, 8, 4], op: (a, b) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same') },
    { x: [1, 9, 9, 8], f: [5, 5, 8, 4], op: (a, b) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same') },
    { x: [1, 9, 9, 3], f: [3, 3, 3, 4], op: (a, b) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same') },
    { x: [1, 9, 9, 4], f: [3, 3, 4, 4], op: (a, b) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same', 'NHWC', 2) },
  ];
  for (const c of other) {
    const inputs: Input[] = [randomInput(rng, c.x), randomInput(rng, c.f)];
    const expected = await runOn('cpu', inputs, (a, b) => [c.op(a, b)]);
    const actual = await runOn('wasm', inputs, (a, b) => [c.op(a, b)]);
    assertClose(actual, expected, 1e-5, JSON.stringify(c.f));
  }
});

test('gradients of a small conv net (stride-1 input gradients run as Winograd convs) match cpu', async () => {
  const rng = new Rng(34);
  const x = randomInput(rng, [2, 9, 10, 8]);
  const f1 = randomInput(rng, [3, 3, 8, 12], -0.5, 0.5);
  const f2 = randomInput(rng, [3, 3, 12, 8], -0.5, 0.5);
  await compareGrads('conv same -> relu -> conv valid', [x, f1, f2], [2, 7, 8, 8], (xt, a, b) =>
    tf.conv2d(tf.relu(tf.conv2d(xt as tf.Tensor4D, a as tf.Tensor4D, 1, 'same')), b as tf.Tensor4D, 1, 'valid'),
  );
});

test('Winograd filter gradients match cpu across shapes and paddings', async () => {
  const rng = new Rng(35);
  for (const c of cases) {
    const x = randomInput(rng, c.x);
    const f = randomInput(rng, [3, 3, c.x[3]!, c.cout], -0.5, 0.5);
    const outShape = (await runOn('cpu', [x, f], (a, b) => [conv(c.pad)(a, b)]))[0]!.length;
    const dy = randomInput(rng, [outShape]);
    const grad = (xt?: tf.Tensor, ft?: tf.Tensor, dyt?: tf.Tensor): tf.Tensor[] => {
      const x4 = xt as tf.Tensor4D;
      return [tf.grad((fv: tf.Tensor) => tf.sum(tf.mul(conv(c.pad)(x4, fv), tf.reshape(dyt!, conv(c.pad)(x4, fv).shape))))(ft!)];
    };
    const expected = await runOn('cpu', [x, f, dy], grad);
    const actual = await runOn('wasm', [x, f, dy], grad);
    const maxAbs = expected[0]!.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    assertClose(actual, expected, (1e-4 * maxAbs) / Math.max(1, maxAbs), `filter gradient ${JSON.stringify(c)}`);
  }
});

test('Winograd filter gradients in slices of the tiles (as large shapes run) match cpu', async () => {
  const saved = { ...filterGradientSlices };
  Object.assign(filterGradientSlices, { sliceAboveBytes: 0, sliceFloats: 3 * 32 }); // 3 tiles per slice at 32 channels
  try {
    const rng = new Rng(36);
    const x = randomInput(rng, [2, 9, 11, 32]);
    const f = randomInput(rng, [3, 3, 32, 8], -0.5, 0.5);
    const outShape = (await runOn('cpu', [x, f], (a, b) => [conv('same')(a, b)]))[0]!.length;
    const dy = randomInput(rng, [outShape]);
    const grad = (xt?: tf.Tensor, ft?: tf.Tensor, dyt?: tf.Tensor): tf.Tensor[] => {
      const x4 = xt as tf.Tensor4D;
      return [tf.grad((fv: tf.Tensor) => tf.sum(tf.mul(conv('same')(x4, fv), tf.reshape(dyt!, conv('same')(x4, fv).shape))))(ft!)];
    };
    const previous = setWinogradUse('always');
    try {
      const expected = await runOn('cpu', [x, f, dy], grad);
      const actual = await runOn('wasm', [x, f, dy], grad);
      const maxAbs = expected[0]!.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      assertClose(actual, expected, (1e-4 * maxAbs) / Math.max(1, maxAbs), 'sliced filter gradient');
    } finally {
      setWinogradUse(previous);
    }
  } finally {
    Object.assign(filterGradientSlices, saved);
  }
});

test('no tensors or wasm buffers are left behind', async () => {
  await tf.setBackend('wasm');
  const x = tf.randomNormal<tf.Rank.R4>([2, 9, 7, 8]);
  const f = tf.randomNormal<tf.Rank.R4>([3, 3, 8, 12]);
  // Forward, input gradient (a forward conv) and filter gradient.
  const step = (): void => tf.dispose(tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same')))([x, f]));
  assertStepLeavesNothing(step);
  tf.dispose([x, f]);
});

test.run();
