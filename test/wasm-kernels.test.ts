import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/runtime/backend.js';
import { Rng } from '../src/util/rng.js';
import { assertClose, compareGrads, gradsOn, randomInput, runOn, type Input } from './support/wasm-compare.js';

test.before(async () => {
  await initBackend('wasm', { log: null });
});
test.after(async () => {
  await initBackend('cpu', { log: null });
});

test('max-pool gradient goes to the window maximum when every value is negative (hand-computed)', async () => {
  // One 2x2 window per output; maxima -1 (position 1) and -0.5 (position 2).
  const x = { shape: [1, 2, 4, 1], data: new Float32Array([-3, -1, -7, -9, -2, -4, -0.5, -8]) };
  const [dx] = await runOn('wasm', [x], (xt) => tf.grads((t: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(t as tf.Tensor4D, 2, 2, 'valid'), tf.tensor([[[[2], [5]]]]))))([xt]));
  assert.equal(Array.from(dx!), [0, 2, 0, 0, 0, 0, 5, 0]);
});

const poolCases: { x: [number, number, number, number]; size: number; s: number; pad: 'same' | 'valid' }[] = [
  { x: [2, 6, 8, 3], size: 2, s: 2, pad: 'valid' },
  { x: [2, 7, 9, 3], size: 3, s: 2, pad: 'same' },
  { x: [1, 7, 6, 4], size: 3, s: 1, pad: 'same' },
  { x: [1, 7, 7, 2], size: 3, s: 2, pad: 'valid' },
  // Non-overlapping windows with channels a multiple of 4: the SIMD path, whole (all window rows in one call, split
  // between the kernel pool's threads when large) and with a trailing row and column outside every window.
  { x: [2, 6, 8, 8], size: 2, s: 2, pad: 'valid' },
  { x: [2, 7, 9, 8], size: 2, s: 2, pad: 'valid' },
  { x: [4, 64, 64, 16], size: 2, s: 2, pad: 'valid' },
  // 'same' on odd sizes: the last window overhangs the input's end (VGG16's pool4 at 312x96: 12x39 -> 6x20); the tiles
  // read and wrote past the rows' ends there.
  { x: [2, 7, 9, 8], size: 2, s: 2, pad: 'same' },
  { x: [1, 12, 39, 16], size: 2, s: 2, pad: 'same' },
];

for (const c of poolCases) {
  for (const sign of ['negative', 'mixed'] as const) {
    const name = `max-pool gradient matches cpu on ${sign} inputs: x [${c.x}] ${c.size}x${c.size} stride ${c.s} ${c.pad}`;
    test(name, async () => {
      const x = randomInput(new Rng(c.x[1] * 7 + c.size), c.x, sign === 'negative' ? -2 : -1, sign === 'negative' ? -0.01 : 1);
      const out = tf.tidy(() => tf.maxPool(tf.zeros<tf.Rank.R4>(c.x), c.size, c.s, c.pad).shape.slice());
      await compareGrads(name, [x], out, (t) => tf.maxPool(t as tf.Tensor4D, c.size, c.s, c.pad));
    });
  }
  const avg = `avg-pool gradient matches cpu: x [${c.x}] ${c.size}x${c.size} stride ${c.s} ${c.pad}`;
  test(avg, async () => {
    const x = randomInput(new Rng(c.x[2] * 5 + c.s), c.x);
    const out = tf.tidy(() => tf.avgPool(tf.zeros<tf.Rank.R4>(c.x), c.size, c.s, c.pad).shape.slice());
    await compareGrads(avg, [x], out, (t) => tf.avgPool(t as tf.Tensor4D, c.size, c.s, c.pad));
  });
}

test('gather gradient (UnsortedSegmentSum) sums duplicate indices, axis 0 and 1, matches cpu', async () => {
  const rng = new Rng(5);
  const params = randomInput(rng, [5, 3]);
  const idx = [0, 2, 2, 4, 0, 1, 2];
  await compareGrads('gather axis 0', [params], [7, 3], (p) => tf.gather(p, tf.tensor1d(idx, 'int32')));
  await compareGrads('gather axis 1', [params], [5, 4], (p) => tf.gather(p, tf.tensor1d([2, 0, 2, 2], 'int32'), 1));
  // Hand-computed: d/dp sum(gather(p, [1, 1, 3])) over a 1-D p of 4 entries.
  const [g] = await runOn('wasm', [{ shape: [4], data: new Float32Array(4) }], (p) =>
    tf.grads((t: tf.Tensor) => tf.sum(tf.gather(t, tf.tensor1d([1, 1, 3], 'int32'))))([p]),
  );
  assert.equal(Array.from(g!), [0, 2, 0, 1]);
});

test('unsortedSegmentSum drops out-of-range ids and keeps int32', async () => {
  await tf.setBackend('wasm');
  const out = tf.tidy(() =>
    tf.unsortedSegmentSum(tf.tensor2d([[1, 2], [3, 4], [5, 6], [7, 8]], [4, 2], 'int32'), tf.tensor1d([2, 0, 2, 5], 'int32'), 3),
  );
  assert.is(out.dtype, 'int32');
  assert.equal(await out.array(), [[3, 4], [0, 0], [6, 8]]);
  out.dispose();
});

test('tile matches cpu for float32, int32 and bool, any rank; its gradient too', async () => {
  const rng = new Rng(9);
  const cases: { shape: number[]; reps: number[] }[] = [
    { shape: [3], reps: [4] },
    { shape: [2, 3], reps: [3, 2] },
    { shape: [1, 1, 1, 5], reps: [2, 3, 4, 1] },
    { shape: [2, 1, 3, 2], reps: [1, 4, 1, 3] },
    { shape: [2, 2, 1, 2, 3], reps: [2, 1, 3, 1, 2] },
    // One vector along the leading axes (a per-channel mean's gradient): SIMD row stores; large enough to be split
    // between the kernel pool's threads where there are threads.
    { shape: [1, 1, 1, 8], reps: [2, 3, 4, 1] },
    { shape: [1, 1, 16], reps: [64, 128, 1] },
  ];
  for (const c of cases) {
    const x = randomInput(rng, c.shape, -5, 5);
    const f = (t: tf.Tensor) => [tf.tile(t, c.reps), tf.cast(tf.tile(tf.cast(t, 'int32'), c.reps), 'float32'),
      tf.cast(tf.tile(tf.greater(t, 0), c.reps), 'float32')];
    assertClose(await runOn('wasm', [x], f), await runOn('cpu', [x], f), 0, `tile [${c.shape}] x [${c.reps}]`);
    const out = c.shape.map((d, i) => d * c.reps[i]!);
    if (c.shape.length > 4) continue; // tfjs-core has no Tile gradient above rank 4
    await compareGrads(`tile grad [${c.shape}]`, [x], out, (t) => tf.tile(t, c.reps));
  }
});

test('batch norm with batch statistics, softmax cross-entropy, concat, slice, resize: gradients match cpu', async () => {
  const rng = new Rng(21);
  const x = randomInput(rng, [2, 6, 5, 4], -2, 3);
  const gamma = randomInput(rng, [4], 0.5, 1.5);
  const beta = randomInput(rng, [4]);
  await compareGrads('batch norm', [x, gamma, beta], [2, 6, 5, 4], (xt, g, b) => {
    const { mean, variance } = tf.moments(xt, [0, 1, 2]);
    return tf.relu(tf.batchNorm(xt, mean, variance, b as tf.Tensor1D, g as tf.Tensor1D, 1e-3));
  });
  const logits = randomInput(rng, [6, 5], -3, 3);
  const labels = tf.tidy(() => tf.oneHot(tf.tensor1d([0, 4, 2, 2, 1, 3], 'int32'), 5));
  const labelData = { shape: [6, 5], data: Float32Array.from(labels.dataSync()) };
  labels.dispose();
  await compareGrads('softmax cross-entropy', [logits, labelData], [], (l, y) => tf.losses.softmaxCrossEntropy(y, l));
  const a = randomInput(rng, [2, 3, 4, 2]);
  const b = randomInput(rng, [2, 3, 4, 3]);
  await compareGrads('concat + slice', [a, b], [2, 2, 3, 4], (at, bt) =>
    tf.slice(tf.concat([at, bt], 3), [0, 1, 1, 1], [2, 2, 3, 4]),
  );
});

test('batch norm gradient w.r.t. x, mean, variance, scale, offset (one-kernel wasm path) matches cpu', async () => {
  const rng = new Rng(22);
  const x = randomInput(rng, [2, 5, 3, 6], -2, 3);
  const mean = randomInput(rng, [6]);
  const variance = randomInput(rng, [6], 0.2, 2);
  const gamma = randomInput(rng, [6], 0.5, 1.5);
  const beta = randomInput(rng, [6]);
  await compareGrads('batch norm, all inputs', [x, mean, variance, gamma, beta], [2, 5, 3, 6], (xt, m, v, g, b) =>
    tf.batchNorm(xt, m, v, b, g, 1e-3),
  );
  // (Without a scale tfjs-core cannot take the gradient on any backend: it saves the missing input.)
  // The wasm gradient really runs as the one kernel (and tfjs-core's full-size Tile is gone).
  await tf.setBackend('wasm');
  const profile = await tf.profile(() => {
    const xs = [x, mean, variance, gamma, beta].map((i) => tf.tensor(i.data, i.shape));
    const dy = tf.onesLike(xs[0]!); // given directly: no Sum (whose gradient may Tile) in the backward pass
    const grads = tf.grads((xt: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
      tf.batchNorm(xt, m, v, b, g, 1e-3))(xs, dy);
    tf.dispose([...xs, dy, ...grads]);
  });
  const names = profile.kernels.map((k) => k.name);
  assert.ok(names.includes('DataParamsWasmBatchNormGrad'), names.join(','));
  assert.not.ok(names.includes('Tile'), names.join(','));
});

/**
 * Ground truth for the resize gradient: the resize is linear in the image, so d/dx sum(resize(x) * w) = A^T w, with
 * the columns of A read off the forward resize (cpu) of every basis image. (The cpu gradient itself swaps height and
 * width for non-square images and ignores halfPixelCenters, so it cannot be the reference here.)
 */
async function resizeGradTruth(x: Input, w: Input, size: [number, number], align: boolean, half: boolean): Promise<Float32Array> {
  const [n, h, wd, c] = x.shape as [number, number, number, number];
  const basis = new Float32Array(h * wd * h * wd);
  for (let j = 0; j < h * wd; j++) basis[j * h * wd + j] = 1;
  const [cols] = await runOn('cpu', [{ shape: [h * wd, h, wd, 1], data: basis }], (b) => [
    tf.image.resizeBilinear(b as tf.Tensor4D, size, align, half),
  ]);
  const outPix = size[0] * size[1];
  const g = new Float32Array(n * h * wd * c);
  for (let b = 0; b < n; b++)
    for (let j = 0; j < h * wd; j++)
      for (let p = 0; p < outPix; p++) {
        const a = cols![j * outPix + p]!;
        if (a === 0) continue;
        for (let k = 0; k < c; k++) g[(b * h * wd + j) * c + k]! += a * w.data[(b * outPix + p) * c + k]!;
      }
  return g;
}

test('resize-bilinear gradient equals the transpose of the forward resize (align corners, half-pixel centres)', async () => {
  const rng = new Rng(23);
  const im = randomInput(rng, [2, 5, 6, 3]);
  for (const size of [[9, 13], [3, 4], [5, 6]] as [number, number][]) {
    for (const [align, half] of [[false, false], [true, false], [false, true]] as [boolean, boolean][]) {
      const w = randomInput(rng, [2, size[0], size[1], 3]);
      const truth = await resizeGradTruth(im, w, size, align, half);
      const got = await gradsOn('wasm', [im], w, (t) => tf.image.resizeBilinear(t as tf.Tensor4D, size, align, half));
      assertClose(got, [truth], 1e-5, `resize to [${size}] align ${align} half ${half}`);
    }
  }
});

test('Sum/Mean, per-channel broadcasts, Slice of any rank, Cast and clone match cpu', async () => {
  const rng = new Rng(31);
  const x = randomInput(rng, [3, 4, 5, 6], -2, 2);
  const v = randomInput(rng, [6], 0.5, 2);
  const v4 = { shape: [1, 1, 1, 6], data: v.data };
  const s = randomInput(rng, [1], 0.5, 2);
  const five = randomInput(rng, [2, 3, 4, 3, 5]);
  const f = (xt: tf.Tensor, vt: tf.Tensor, v4t: tf.Tensor, st: tf.Tensor, ft: tf.Tensor): tf.Tensor[] => [
    tf.sum(xt, [0, 1, 2]), tf.mean(xt, [0, 1, 2], true), tf.sum(xt, [0]), tf.mean(xt), tf.sum(xt, [1, 2]),
    tf.sum(xt, [0, 1, 2, 3], true), tf.mean(xt, [0, 2]),
    tf.add(xt, vt), tf.sub(v4t, xt), tf.mul(v4t, xt), tf.div(xt, v4t), tf.div(vt, xt), tf.sub(xt, st), tf.mul(st, xt),
    tf.slice(xt, [1, 0, 2, 1], [2, 4, 2, 3]), tf.slice(xt, [0, 1, 0, 0], [3, 2, 5, 6]), tf.slice(xt, [2, 3, 4, 5], [1, 1, 1, 1]),
    tf.slice(ft, [1, 0, 1, 0, 2], [1, 3, 2, 3, 3]), tf.slice(ft, [0, 1, 0, 0, 0], [2, 1, 4, 3, 5]),
    tf.cast(tf.slice(tf.cast(xt, 'int32'), [0, 1, 1, 1], [2, 2, 2, 2]), 'float32'),
    tf.cast(xt, 'float32'), tf.clone(xt),
  ];
  const inputs = [x, v, v4, s, five];
  assertClose(await runOn('wasm', inputs, f), await runOn('cpu', inputs, f), 1e-6, 'fast paths');
  // Reductions over leading axes of a larger tensor (batch statistics).
  const big = randomInput(rng, [4, 16, 16, 8], -2, 3);
  const g = (t: tf.Tensor) => [tf.sum(t, [0, 1, 2]), tf.mean(t, [0, 1, 2], true), tf.sum(t, [0, 1]), tf.mean(t, [0]),
    tf.sum(t), tf.mean(t, [1, 2])];
  assertClose(await runOn('wasm', [big], g), await runOn('cpu', [big], g), 2e-6, 'leading-axis reductions');
});

test('SplitV (concat gradient) matches cpu on every axis, with uneven parts, int32 and through the concat gradient', async () => {
  const rng = new Rng(37);
  const x = randomInput(rng, [4, 5, 6, 8], -2, 2);
  const f = (xt: tf.Tensor): tf.Tensor[] => [
    ...tf.split(xt, [1, 3], 0),
    ...tf.split(xt, 5, 1),
    ...tf.split(xt, [2, 0, 4], 2),
    ...tf.split(xt, [4, -1], 3),
    ...tf.split(tf.cast(xt, 'int32'), [3, 1], 0).map((t) => tf.cast(t, 'float32')),
  ];
  const wasmOut = await runOn('wasm', [x], f);
  assert.is(wasmOut.length, 2 + 5 + 3 + 2 + 2);
  assertClose(wasmOut, await runOn('cpu', [x], f), 0, 'split');
  const a = randomInput(rng, [6, 8]);
  const b = randomInput(rng, [3, 8]);
  await compareGrads('concat gradient', [a, b], [9, 8], (at, bt) => tf.concat([at, bt], 0));
});

test('Sum and Mean gradients (broadcast on wasm) match cpu for any axes and keepDims', async () => {
  const x = randomInput(new Rng(41), [2, 3, 4, 5]);
  for (const [axis, keep] of [[[0, 1, 2], false], [[0, 1, 2], true], [1, false], [[1, 3], true], [[0, 1, 2, 3], false]] as [number | number[], boolean][]) {
    const out = tf.tidy(() => tf.sum(tf.zeros([2, 3, 4, 5]), axis, keep).shape.slice());
    await compareGrads(`sum grad axis ${axis} keep ${keep}`, [x], out, (t) => tf.sum(t, axis, keep));
    await compareGrads(`mean grad axis ${axis} keep ${keep}`, [x], out, (t) => tf.mean(t, axis, keep));
  }
});

test('transpose matches cpu for any permutation, rank, size-1 dimensions and dtype', async () => {
  const rng = new Rng(43);
  const cases: [number[], number[]][] = [
    [[2, 3, 4, 5], [3, 1, 2, 0]], [[2, 3, 4, 5], [1, 2, 0, 3]], [[2, 3, 4, 5], [0, 1, 2, 3]], [[2, 3, 4, 5], [3, 2, 1, 0]],
    [[6, 7], [1, 0]], [[1, 4, 1, 3], [3, 0, 1, 2]], [[2, 1, 3, 1, 4], [4, 2, 0, 3, 1]], [[2, 3, 2, 2, 3, 2], [0, 1, 3, 2, 4, 5]],
    [[40, 3], [1, 0]], [[3, 40], [1, 0]], [[5], [0]],
  ];
  for (const [shape, perm] of cases) {
    const x = randomInput(rng, shape, -9, 9);
    const f = (t: tf.Tensor) => [tf.transpose(t, perm), tf.cast(tf.transpose(tf.cast(t, 'int32'), perm), 'float32'),
      tf.cast(tf.transpose(tf.greater(t, 0), perm), 'float32')];
    assertClose(await runOn('wasm', [x], f), await runOn('cpu', [x], f), 0, `transpose [${shape}] by [${perm}]`);
  }
});

test('a shared clone or cast stays valid after the original is disposed', async () => {
  await tf.setBackend('wasm');
  const a = tf.tensor1d([1, 2, 3]);
  const b = tf.clone(a);
  const c = tf.cast(a, 'float32');
  a.dispose();
  assert.equal(Array.from(b.dataSync()), [1, 2, 3]);
  assert.equal(Array.from(c.dataSync()), [1, 2, 3]);
  tf.dispose([b, c]);
});

test.run();
