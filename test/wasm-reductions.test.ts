import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/runtime/backend.js';
import { broadcastKind } from '../src/runtime/wasm-training/binary-broadcast.js';
import { reductionLayout } from '../src/runtime/wasm-training/reductions.js';
import { assemble, simdKernels } from '../src/runtime/wasm-training/simd-kernels.js';
import type { BackendWasm } from '../src/runtime/wasm-training/wasm-kernel-utils.js';
import { Rng } from '../src/util/rng.js';
import { assertClose, assertStepLeavesNothing, compareGrads, randomInput, runOn } from './support/wasm-compare.js';

test.before(async () => {
  await initBackend('wasm', { log: null });
});
test.after(async () => {
  await initBackend('cpu', { log: null });
});

test('the SIMD module assembles and binds to the wasm backend memory', async () => {
  await tf.setBackend('wasm');
  assert.ok(simdKernels(tf.backend() as unknown as BackendWasm) !== null, 'SIMD kernels available under Node');
});

test('assembled modules name their functions (a name section), so that CPU profiles name the kernels', () => {
  const func = { name: 'addOne', params: 1, locals: [], body: [0x20, 0, 0x41, 1, 0x6a, 0x1a] };
  const wasm = (globalThis as unknown as { WebAssembly: { Module: { new (bytes: Uint8Array): object; customSections(m: object, name: string): ArrayBuffer[] } } }).WebAssembly;
  const [section] = wasm.Module.customSections(new wasm.Module(assemble([func], false)), 'name');
  assert.ok(section !== undefined, 'a name section');
  // subsection 1 (function names), its size, one entry: function 0, 'addOne'
  assert.equal([...new Uint8Array(section)], [1, 9, 1, 0, 6, ...[...'addOne'].map((c) => c.charCodeAt(0))]);
});

test('reduction layout: reduced axes as the middle of [outer, rows, inner], null when not contiguous', () => {
  assert.equal(reductionLayout([8, 4, 6, 32], [0, 1, 2]), [1, 192, 32]);
  assert.equal(reductionLayout([8, 4, 6, 32], [1, 2]), [8, 24, 32]);
  assert.equal(reductionLayout([8, 4, 6, 32], [-4]), [1, 8, 768]);
  assert.equal(reductionLayout([8, 4, 6, 32], [3]), [192, 32, 1]);
  assert.equal(reductionLayout([8, 4, 6, 32], [0, 2]), null);
});

const reductionCases: { shape: number[]; axis: number | number[] }[] = [
  { shape: [37, 8], axis: 0 }, // rank 2, leading
  { shape: [37, 8], axis: 1 }, // trailing: built-in
  { shape: [5, 7, 12], axis: [0, 1] },
  { shape: [5, 7, 12], axis: 1 }, // middle, blocks too small: built-in
  { shape: [3, 20, 16], axis: 1 }, // middle
  { shape: [5, 7, 6], axis: [0, 1] }, // 6 channels: built-in
  { shape: [3, 5, 6, 16], axis: [0, 1, 2] }, // batch statistics
  { shape: [3, 5, 6, 16], axis: [1, 2] }, // global average pooling
  { shape: [3, 5, 6, 16], axis: [0, 2] }, // not contiguous: built-in
  { shape: [3, 5, 6, 4], axis: [-4, -3] },
  { shape: [3, 5, 2, 3], axis: [0, 1] }, // inner 6: built-in
  { shape: [2, 3, 4, 5, 8], axis: [1, 2, 3] },
  { shape: [1, 1, 1, 8], axis: [0, 1, 2] }, // one row
  { shape: [2, 64, 80, 32], axis: [0, 1, 2] }, // 1.3 MB: in fixed row blocks (on the kernel pool with threads)
];

for (const c of reductionCases) {
  for (const keepDims of [false, true]) {
    const what = `sum/mean over [${c.axis}] of [${c.shape}] keepDims ${keepDims} match cpu (values and shapes)`;
    test(what, async () => {
      const x = randomInput(new Rng(c.shape.length * 31 + c.shape[0]!), c.shape, -3, 5);
      const f = (t: tf.Tensor): tf.Tensor[] => [tf.sum(t, c.axis, keepDims), tf.mean(t, c.axis, keepDims)];
      const shapes = async (backend: 'cpu' | 'wasm'): Promise<number[][]> => {
        await tf.setBackend(backend);
        return tf.tidy(() => f(tf.tensor(x.data, x.shape)).map((t) => t.shape.slice()));
      };
      assert.equal(await shapes('wasm'), await shapes('cpu'));
      assertClose(await runOn('wasm', [x], f), await runOn('cpu', [x], f), 1e-6, what);
      const out = tf.tidy(() => tf.sum(tf.zeros(c.shape), c.axis, keepDims).shape.slice());
      await compareGrads(`${what}: gradient`, [x], out, (t) => tf.mean(tf.mul(t, t), c.axis, keepDims));
    });
  }
}

test('leading-axis sums are accumulated in float64: exact where a float32 running sum drifts', async () => {
  // 2^18 rows of 4 channels with a large common offset: float32 running sums lose the low bits.
  const rows = 1 << 18;
  const rng = new Rng(3);
  const data = new Float32Array(rows * 4);
  const exact = new Float64Array(4);
  for (let i = 0; i < data.length; i++) {
    data[i] = 1000 + rng.uniform(0, 1);
    exact[i % 4]! += data[i]!;
  }
  const [sum, mean] = await runOn('wasm', [{ shape: [64, rows / 64, 4], data }], (t) => [tf.sum(t, [0, 1]), tf.mean(t, [0, 1])]);
  for (let j = 0; j < 4; j++) {
    assert.is(sum![j], Math.fround(exact[j]!), `sum channel ${j}`);
    assert.is(mean![j], Math.fround(exact[j]! / rows), `mean channel ${j}`);
  }
});

const batchNormCases: { shape: number[]; scale: boolean; offset: boolean }[] = [
  { shape: [2, 5, 3, 8], scale: true, offset: true },
  { shape: [2, 5, 3, 8], scale: false, offset: true },
  { shape: [2, 5, 3, 8], scale: true, offset: false },
  { shape: [7, 12], scale: true, offset: true },
  { shape: [2, 5, 3, 6], scale: true, offset: true }, // 6 channels: built-in
];

for (const c of batchNormCases) {
  const what = `batchNorm forward on [${c.shape}] (scale ${c.scale}, offset ${c.offset}) matches cpu`;
  test(what, async () => {
    const rng = new Rng(c.shape.reduce((a, b) => a + b, 0));
    const ch = c.shape[c.shape.length - 1]!;
    const inputs = [randomInput(rng, c.shape, -2, 3), randomInput(rng, [ch]), randomInput(rng, [ch], 0.2, 2), randomInput(rng, [ch], 0.5, 1.5), randomInput(rng, [ch])];
    const f = (x: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Tensor[] => [
      tf.batchNorm(x, m, v, c.offset ? (b as tf.Tensor1D) : undefined, c.scale ? (g as tf.Tensor1D) : undefined, 1e-3),
    ];
    assertClose(await runOn('wasm', inputs, f), await runOn('cpu', inputs, f), 2e-6, what);
  });
}

for (const [ch, shape] of [[8, [2, 5, 3, 8]], [6, [2, 5, 3, 6]], [16, [4, 32, 66, 16]]] as [number, number[]][]) {
  const path = ch % 4 !== 0 ? 'JavaScript' : shape[1]! > 5 ? 'SIMD, sums in row blocks' : 'SIMD';
  const what = `batch-norm gradients w.r.t. every input of [${shape}] (${path} path) match cpu`;
  test(what, async () => {
    const rng = new Rng(50 + ch);
    const x = randomInput(rng, shape, -2, 3);
    const mean = randomInput(rng, [ch]);
    const variance = randomInput(rng, [ch], 0.2, 2);
    const gamma = randomInput(rng, [ch], 0.5, 1.5);
    const beta = randomInput(rng, [ch]);
    await compareGrads(what, [x, mean, variance, gamma, beta], shape, (xt, m, v, g, b) =>
      tf.batchNorm(xt, m, v, b, g, 1e-3),
    );
  });
}

test('a small conv + batch norm (both forms) + ReLU + global-average-pool net: every gradient matches cpu', async () => {
  const rng = new Rng(61);
  const x = randomInput(rng, [2, 9, 7, 3]);
  const w1 = randomInput(rng, [3, 3, 3, 8], -0.5, 0.5);
  const w2 = randomInput(rng, [3, 3, 8, 12], -0.3, 0.3);
  const g1 = randomInput(rng, [8], 0.5, 1.5);
  const b1 = randomInput(rng, [8]);
  const g2 = randomInput(rng, [12], 0.5, 1.5);
  const b2 = randomInput(rng, [12]);
  await compareGrads('conv-bn-relu net', [x, w1, w2, g1, b1, g2, b2], [2, 12], (xt, f1, f2, s1, o1, s2, o2) => {
    // tf.batchNorm with batch statistics (the reference network) ...
    let h = tf.conv2d(xt as tf.Tensor4D, f1 as tf.Tensor4D, 1, 'same');
    const m1 = tf.moments(h, [0, 1, 2]);
    h = tf.relu(tf.batchNorm(h, m1.mean, m1.variance, o1 as tf.Tensor1D, s1 as tf.Tensor1D, 1e-3)) as tf.Tensor4D;
    // ... and the element-wise form of src/nn's BatchNorm layer.
    let k = tf.conv2d(h, f2 as tf.Tensor4D, 2, 'same');
    const m2 = tf.moments(k, [0, 1, 2]);
    k = tf.add<tf.Tensor4D>(tf.mul(tf.sub(k, m2.mean), tf.mul(s2, tf.rsqrt(tf.add(m2.variance, 1e-5)))), o2);
    return tf.mean(tf.relu(k), [1, 2]);
  });
});

for (const shape of [[2, 3, 5, 4], [7], [3, 5], [1]]) {
  test(`relu and square gradients (one pass) on [${shape}] match cpu, including 0, infinities and NaN`, async () => {
    const rng = new Rng(shape.length * 13 + shape[0]!);
    const x = randomInput(rng, shape, -2, 2);
    const specials = [0, -0, Infinity, -Infinity, NaN, 1e-30, -1e-30];
    for (let i = 0; i < x.data.length && i < specials.length; i++) x.data[(i * 5) % x.data.length] = specials[i]!;
    const dy = randomInput(rng, shape, -3, 3);
    if (dy.data.length > 3) dy.data[3] = NaN;
    const f = (t: tf.Tensor, d: tf.Tensor): tf.Tensor[] => [
      ...tf.grads((u: tf.Tensor) => tf.relu(u))([t], d),
      ...tf.grads((u: tf.Tensor) => tf.square(u))([t], d),
    ];
    const wasm = await runOn('wasm', [x, dy], f);
    const cpu = await runOn('cpu', [x, dy], f);
    // Bit for bit: the same float32 products (NaN where cpu has NaN).
    wasm.forEach((out, k) => assert.equal(Array.from(out), Array.from(cpu[k]!), `output ${k}`));
  });
}

test('broadcast kinds: scalar, last-axis vector, column, or none', () => {
  assert.is(broadcastKind([5, 8], []), 'scalar');
  assert.is(broadcastKind([5, 6], [1, 1]), 'scalar');
  assert.is(broadcastKind([2, 3, 4, 8], [8]), 'vector');
  assert.is(broadcastKind([2, 3, 4, 8], [1, 1, 1, 8]), 'vector');
  assert.is(broadcastKind([2, 3, 4, 8], [2, 3, 4, 1]), 'column');
  assert.is(broadcastKind([5, 4], [5, 1]), 'column');
  assert.is(broadcastKind([2, 3, 4, 6], [6]), null); // 6 channels: built-in
  assert.is(broadcastKind([2, 3, 4, 8], [3, 1, 8]), null);
  assert.is(broadcastKind([2, 3, 4, 8], [1, 3, 4, 1]), null);
});

const binaryOps: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor][] = [
  ['add', tf.add], ['sub', tf.sub], ['mul', tf.mul], ['div', tf.div], ['minimum', tf.minimum], ['maximum', tf.maximum],
];
const broadcastPairs: [number[], number[]][] = [
  [[3, 4, 5, 8], [8]], [[3, 4, 5, 8], [1, 1, 1, 8]], [[7, 12], [12]], // per-channel vectors
  [[3, 4, 5, 8], [3, 4, 5, 1]], [[9, 4], [9, 1]], // columns
  [[6, 4], []], [[2, 3, 4], [1, 1]], // scalars
];
/** Left to the built-ins, whose minimum and maximum ignore a NaN operand (cpu's propagate it): no NaN in these. */
const builtInPairs: [number[], number[]][] = [[[5], [1]], [[3, 4, 5, 6], [6]], [[7, 3], [7, 1]], [[3, 5], []], [[4, 1, 8], [1, 3, 8]], [[2, 3], [2, 3]]];

test('add/sub/mul/div/minimum/maximum with a broadcast operand (either side) equal cpu bit for bit', async () => {
  const rng = new Rng(81);
  for (const [fullShape, otherShape] of [...broadcastPairs, ...builtInPairs]) {
    const full = randomInput(rng, fullShape, -3, 3);
    const other = randomInput(rng, otherShape, -3, 3);
    const specials = builtInPairs.some(([s]) => s === fullShape) ? [0, -0, Infinity, -Infinity] : [0, -0, Infinity, -Infinity, NaN];
    specials.forEach((v, i) => { if (i < full.data.length) full.data[(i * 7) % full.data.length] = v; });
    if (other.data.length > 2 && specials.length === 5) [other.data[0], other.data[1]] = [0, NaN];
    const f = (x: tf.Tensor, y: tf.Tensor): tf.Tensor[] => binaryOps.flatMap(([, op]) => [op(x, y), op(y, x)]);
    const wasm = await runOn('wasm', [full, other], f);
    const cpu = await runOn('cpu', [full, other], f);
    wasm.forEach((out, k) => {
      const what = `${binaryOps[k >> 1]![0]} [${fullShape}] ${k % 2 === 0 ? 'with' : 'after'} [${otherShape}]`;
      assert.equal(Array.from(out), Array.from(cpu[k]!), what);
    });
  }
});

/** The distance between |v| and the next float32 up. */
function ulpF32(v: number): number {
  const bits = new Uint32Array(new Float32Array([Math.abs(v)]).buffer);
  return new Float32Array(new Uint32Array([bits[0]! + 1]).buffer)[0]! - Math.fround(Math.abs(v));
}

test('exp (SIMD polynomial) is within 2 ulp of e^x from -110 to 90; 0, infinities, NaN and denormals as cpu', async () => {
  const n = 1 << 16;
  const xs = new Float32Array(n + 3); // + 3: a scalar tail after the 4-wide groups
  for (let i = 0; i < xs.length; i++) xs[i] = -110 + (200 * i) / n;
  const specials = [0, -0, 1, -1, 88.72, 88.73, -87.3, -103.9, -104.5, Infinity, -Infinity, NaN, 1e-8, Math.LN2 / 2];
  specials.forEach((v, i) => (xs[i * 101] = v));
  const [wasm] = await runOn('wasm', [{ shape: [xs.length], data: xs }], (t) => [tf.exp(t)]);
  const [cpu] = await runOn('cpu', [{ shape: [xs.length], data: xs }], (t) => [tf.exp(t)]);
  for (let i = 0; i < xs.length; i++) {
    const exact = Math.exp(xs[i]!);
    const got = wasm![i]!;
    if (!Number.isFinite(cpu![i]!) || cpu![i]! < 1.2e-38) {
      // Overflow, underflow to denormals or 0, NaN: cpu's value (denormals to within the smallest one).
      assert.ok(Object.is(got, cpu![i]) || Math.abs(got - cpu![i]!) <= 1.5e-45, `exp(${xs[i]}) = ${got}, cpu ${cpu![i]}`);
    } else {
      assert.ok(Math.abs(got - exact) <= 2 * ulpF32(exact), `exp(${xs[i]}) = ${got}, e^x = ${exact}`);
    }
  }
});

const tiledPools: { x: [number, number, number, number]; size: [number, number]; pad: 'valid' | 'same' }[] = [
  { x: [2, 6, 8, 8], size: [2, 2], pad: 'valid' },
  { x: [1, 7, 9, 4], size: [3, 3], pad: 'valid' }, // a row and a column past the last window
  { x: [2, 4, 9, 12], size: [2, 3], pad: 'same' }, // exact: no padding
  { x: [1, 5, 5, 4], size: [1, 1], pad: 'valid' },
];

for (const c of tiledPools) {
  test(`max-pool gradient, non-overlapping ${c.size} windows on [${c.x}] ${c.pad} (SIMD): ties, negatives, NaN as cpu`, async () => {
    const x = randomInput(new Rng(c.x[2] + c.size[1]), c.x, -2, 1);
    // Ties (first maximum wins), all-negative windows, and NaN (never the maximum).
    for (let i = 0; i < x.data.length; i += 7) x.data[i] = 0.5;
    for (let i = 3; i < x.data.length; i += 29) x.data[i] = NaN;
    const out = tf.tidy(() => tf.maxPool(tf.zeros<tf.Rank.R4>(c.x), c.size, c.size, c.pad).shape.slice());
    const w = randomInput(new Rng(5), out);
    const f = (t: tf.Tensor, d: tf.Tensor): tf.Tensor[] => tf.grads((u: tf.Tensor) => tf.maxPool(u as tf.Tensor4D, c.size, c.size, c.pad))([t], d);
    const wasm = await runOn('wasm', [x, w], f);
    const cpu = await runOn('cpu', [x, w], f);
    assert.equal(Array.from(wasm[0]!), Array.from(cpu[0]!));
  });
}

test('max-pool gradient of a window of -infinity and NaN only is zero (SIMD path)', async () => {
  const x = { shape: [1, 2, 2, 4], data: new Float32Array([-Infinity, NaN, -Infinity, 1, NaN, -Infinity, -1, 1, -Infinity, NaN, -2, 1, NaN, NaN, -3, 2]) };
  const [dx] = await runOn('wasm', [x], (t) => tf.grads((u: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(u as tf.Tensor4D, 2, 2, 'valid'), 3)))([t]));
  assert.equal(Array.from(dx!), [0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 3]);
});

test('slice and pad of the last axis only (SIMD row copies) match cpu for float32 and int32; their gradients too', async () => {
  const rng = new Rng(91);
  const x = randomInput(rng, [37, 12], -5, 5);
  const x4 = randomInput(rng, [2, 3, 5, 8], -5, 5);
  const f = (t: tf.Tensor, u: tf.Tensor): tf.Tensor[] => {
    const ti = tf.cast(t, 'int32');
    return [
      tf.slice(t, [0, 4], [-1, 4]), tf.slice(t, [0, 0], [-1, 8]), tf.slice(t, [0, 1], [-1, 8]), tf.slice(t, [0, 3], [-1, 6]),
      tf.slice(t, [2, 4], [30, 4]), tf.cast(tf.slice(ti, [0, 8], [-1, 4]), 'float32'), tf.slice(u, [0, 0, 0, 4], [-1, -1, -1, 4]),
      tf.pad(t, [[0, 0], [4, 0]]), tf.pad(t, [[0, 0], [1, 3]], 2.5), tf.pad(t, [[1, 0], [0, 4]]), tf.cast(tf.pad(ti, [[0, 0], [0, 4]], 7), 'float32'),
      tf.pad(u, [[0, 0], [0, 0], [0, 0], [3, 1]]),
      ...tf.grads((v: tf.Tensor) => tf.mul(tf.slice(v, [0, 4], [-1, 8]), 3))([t]),
    ];
  };
  assertClose(await runOn('wasm', [x, x4], f), await runOn('cpu', [x, x4], f), 0, 'last-axis slice and pad');
});

test('the fast paths leave no tensors or wasm buffers behind', async () => {
  await tf.setBackend('wasm');
  const rng = new Rng(71);
  const x = tf.tensor(randomInput(rng, [2, 4, 5, 8]).data, [2, 4, 5, 8]);
  const params = [0, 1, 2, 3].map(() => tf.tensor(randomInput(rng, [8], 0.5, 1.5).data, [8]));
  const [m, v, g, b] = params as [tf.Tensor1D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D];
  const step = (): void => {
    const grads = tf.grads((t: tf.Tensor, s: tf.Tensor) => {
      const mom = tf.moments(t, [0, 1, 2]);
      const y = tf.relu(tf.batchNorm(t, mom.mean, mom.variance, b, s as tf.Tensor1D, 1e-3));
      return tf.add(tf.sum(y), tf.sum(tf.batchNorm(t, m, v, b, s as tf.Tensor1D)));
    })([x, g]);
    tf.dispose(grads);
  };
  assertStepLeavesNothing(step);
  tf.dispose([x, ...params]);
});

test.run();
