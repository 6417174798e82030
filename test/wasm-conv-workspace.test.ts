import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/runtime/backend.js';
import { convGradientChoice } from '../src/runtime/wasm-training/conv2d-backprop.js';
import { setKernelPoolEnabled } from '../src/runtime/wasm-training/kernel-pool.js';
import { filterGradientSlices, setWinogradUse, tileChunks, winogradWorkspace } from '../src/runtime/wasm-training/winograd.js';
import { Rng } from '../src/util/rng.js';
import { assertClose, randomInput, runOn, type Input } from './support/wasm-compare.js';

type Pad = 'same' | 'valid' | tf.backend_util.ExplicitPadding;

test.before(async () => {
  await initBackend('wasm', { log: null });
  setWinogradUse('always');
});
test.after(async () => {
  setWinogradUse('where-faster');
  setKernelPoolEnabled(true);
  await initBackend('cpu', { log: null });
});

/** Runs `f` with the workspace cap (and slices) set, then restores them. */
async function withCap<T>(capBytes: number, f: () => Promise<T>, slices?: { sliceAboveBytes: number; sliceFloats: number }): Promise<T> {
  const saved = { cap: winogradWorkspace.capBytes, slices: { ...filterGradientSlices } };
  winogradWorkspace.capBytes = capBytes;
  if (slices !== undefined) Object.assign(filterGradientSlices, slices);
  try {
    return await f();
  } finally {
    winogradWorkspace.capBytes = saved.cap;
    Object.assign(filterGradientSlices, saved.slices);
  }
}

function assertSameBits(actual: Float32Array[], expected: Float32Array[], what: string): void {
  assert.is(actual.length, expected.length, what);
  actual.forEach((a, k) => {
    const e = expected[k]!;
    assert.is(a.length, e.length, `${what}: output ${k} size`);
    assert.ok(e.some((v) => v !== 0), `${what}: output ${k} is not all zeros`);
    const i = a.findIndex((v, j) => !Object.is(v, e[j]));
    assert.is(i, -1, `${what}: output ${k} differs at ${i}: ${a[i]} vs ${e[i]}`);
  });
}

test('tileChunks: one chunk when it fits, whole images, then tile rows in multiples; the cap holds', () => {
  const saved = winogradWorkspace.capBytes;
  try {
    winogradWorkspace.capBytes = 1000;
    assert.equal(tileChunks(2, 3, 4, 10), [{ image: 0, images: 2, row: 0, rows: 3 }]); // 24 tiles x 10 bytes
    winogradWorkspace.capBytes = 250;
    assert.equal(tileChunks(3, 3, 4, 10), [{ image: 0, images: 1, row: 0, rows: 3 }, { image: 1, images: 2, row: 0, rows: 3 }]);
    winogradWorkspace.capBytes = 90; // 9 tiles: 2 rows of 4
    assert.equal(tileChunks(2, 3, 4, 10), [
      { image: 0, images: 1, row: 0, rows: 2 }, { image: 0, images: 1, row: 2, rows: 1 },
      { image: 1, images: 1, row: 0, rows: 2 }, { image: 1, images: 1, row: 2, rows: 1 },
    ]);
    assert.equal(tileChunks(1, 5, 4, 10, 2).map((c) => [c.row, c.rows]), [[0, 2], [2, 2], [4, 1]]); // rows in pairs
    assert.equal(tileChunks(1, 5, 4, 10, 3).map((c) => [c.row, c.rows]), [[0, 3], [3, 2]]); // one group even over the cap
    winogradWorkspace.capBytes = 1; // under one tile: still one row per chunk
    assert.equal(tileChunks(1, 2, 4, 10).map((c) => [c.row, c.rows]), [[0, 1], [1, 1]]);
  } finally {
    winogradWorkspace.capBytes = saved;
  }
});

const cases: { x: number[]; cout: number; pad: Pad }[] = [
  { x: [1, 13, 17, 32], cout: 32, pad: 'same' }, // odd sizes, partial last tile row and column
  { x: [3, 9, 11, 8], cout: 12, pad: 'same' }, // batch > 1: chunks of whole images, then rows
  { x: [1, 7, 13, 4], cout: 8, pad: 'valid' },
  { x: [2, 10, 6, 16], cout: 4, pad: [[0, 0], [2, 0], [1, 3], [0, 0]] },
  { x: [2, 5, 7, 8], cout: 8, pad: [[0, 0], [3, 1], [0, 4], [0, 0]] }, // a first tile row of zeros only
  { x: [1, 9, 8, 8], cout: 8, pad: [[0, 0], [6, 5], [1, 1], [0, 0]] }, // tile rows wholly in the padding
];

/** y, dx and dW of a conv at dy = `w` (the input gradient is a Winograd forward conv at stride 1). */
const convAndGrads = (pad: Pad) => (x?: tf.Tensor, f?: tf.Tensor, w?: tf.Tensor): tf.Tensor[] => {
  const conv = (a: tf.Tensor, b: tf.Tensor): tf.Tensor4D => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, pad);
  const y = conv(x!, f!);
  const [dx, dW] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(conv(a, b), tf.reshape(w!, y.shape))))([x!, f!]);
  return [y, dx!, dW!];
};

/** Caps (bytes) that force chunks of one tile row, of two tile rows and of whole images for a case. */
function capsFor(c: { x: number[]; cout: number }): number[] {
  const [n, cin] = [c.x[0]!, c.x[3]!];
  const tileBytes = 36 * (cin + Math.max(c.cout, cin)) * 4; // the larger of the forward's and the input gradient's
  const tilesW = Math.ceil(c.x[2]! / 4) + 1;
  const caps = [1, 2 * tilesW * tileBytes];
  if (n > 1) caps.push(Math.ceil(c.x[1]! / 4 + 1) * tilesW * tileBytes);
  return caps;
}

for (const pool of [true, false]) {
  test(`Winograd conv, input and filter gradients in chunks equal one pass bit for bit (kernel pool ${pool ? 'on' : 'off'})`, async () => {
    setKernelPoolEnabled(pool);
    const rng = new Rng(pool ? 41 : 42);
    for (const c of cases) {
      const x = randomInput(rng, c.x);
      const f = randomInput(rng, [3, 3, c.x[3]!, c.cout], -0.5, 0.5);
      const ySize = (await runOn('cpu', [x, f], (a, b) => [tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, c.pad)]))[0]!.length;
      const w: Input = randomInput(rng, [ySize]);
      const whole = await runOn('wasm', [x, f, w], convAndGrads(c.pad));
      for (const cap of capsFor(c)) {
        const [y, dx, dW] = await withCap(cap, () => runOn('wasm', [x, f, w], convAndGrads(c.pad)));
        assertSameBits([y!, dx!], whole.slice(0, 2), `${JSON.stringify(c)} cap ${cap}`);
        // Unsliced, one pass sums over all tiles at once and chunks add their sums: equal to float rounding.
        assertClose([dW!], whole.slice(2), 1e-5, `filter gradient ${JSON.stringify(c)} cap ${cap}`);
      }
      // The sums over tiles in slices of one tile row (as large layers run), chunked by one and two rows.
      const slices = { sliceAboveBytes: 0, sliceFloats: c.x[3]! * (Math.ceil(c.x[2]! / 4) + 1) };
      const sliced = await withCap(winogradWorkspace.capBytes, () => runOn('wasm', [x, f, w], convAndGrads(c.pad)), slices);
      for (const cap of capsFor(c)) {
        const chunked = await withCap(cap, () => runOn('wasm', [x, f, w], convAndGrads(c.pad)), slices);
        assertSameBits(chunked, sliced, `sliced ${JSON.stringify(c)} cap ${cap}`);
      }
    }
    setKernelPoolEnabled(true);
  });
}

const tapCases: { x: number[]; f: number[]; stride: number; pad: Pad }[] = [
  { x: [1, 11, 13, 3], f: [3, 3, 3, 8], stride: 1, pad: 'same' }, // RGB: channels padded to 4
  { x: [2, 9, 10, 8], f: [3, 3, 8, 12], stride: 2, pad: 'same' },
  { x: [3, 7, 9, 5], f: [3, 3, 5, 4], stride: 2, pad: [[0, 0], [1, 2], [0, 1], [0, 0]] },
  { x: [2, 6, 7, 16], f: [1, 1, 16, 8], stride: 1, pad: 'valid' },
  { x: [1, 12, 9, 4], f: [5, 5, 4, 16], stride: 1, pad: 'valid' },
];

for (const pool of [true, false]) {
  test(`conv filter gradients by tap GEMMs, dy's grid a block at a time, equal the whole grid's bit for bit (kernel pool ${pool ? 'on' : 'off'})`, async () => {
    setKernelPoolEnabled(pool);
    setWinogradUse('never');
    const saved = { ...convGradientChoice };
    try {
      const rng = new Rng(pool ? 43 : 44);
      for (const c of tapCases) {
        const x = randomInput(rng, c.x);
        const f = randomInput(rng, c.f, -0.5, 0.5);
        const conv = (a: tf.Tensor, b: tf.Tensor): tf.Tensor4D => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad);
        const ySize = (await runOn('cpu', [x, f], (a, b) => [conv(a, b)]))[0]!.length;
        const w = randomInput(rng, [ySize]);
        const dW = (a?: tf.Tensor, b?: tf.Tensor, dy?: tf.Tensor): tf.Tensor[] => [tf.grad((fv: tf.Tensor) => tf.sum(tf.mul(conv(a!, fv), tf.reshape(dy!, conv(a!, fv).shape))))(b!)];
        convGradientChoice.tapChunkFloats = 2 * c.f[3]!; // 2 positions per chunk: many chunks
        const whole = await runOn('wasm', [x, f, w], dW);
        const expected = await runOn('cpu', [x, f, w], dW);
        assertClose(whole, expected, 1e-5, `taps ${JSON.stringify(c)}`);
        for (const chunksPerBlock of [1, 3]) {
          convGradientChoice.workspaceBytes = chunksPerBlock * 2 * c.f[3]! * 4;
          assertSameBits(await runOn('wasm', [x, f, w], dW), whole, `${JSON.stringify(c)} ${chunksPerBlock} chunks per block`);
        }
        Object.assign(convGradientChoice, saved);
      }
    } finally {
      Object.assign(convGradientChoice, saved);
      setWinogradUse('always');
      setKernelPoolEnabled(true);
    }
  });
}

test('the im2col filter gradient takes fewer rows per chunk under the patch limit: the same as chunks of that many rows', async () => {
  setWinogradUse('never');
  const saved = { ...convGradientChoice };
  try {
    const rng = new Rng(45);
    const c = { x: [2, 9, 10, 6], f: [3, 3, 6, 6] }; // 6 output channels: not the tap GEMMs
    const x = randomInput(rng, c.x);
    const f = randomInput(rng, c.f, -0.5, 0.5);
    const w = randomInput(rng, [2 * 9 * 10 * 6]);
    const dW = (a?: tf.Tensor, b?: tf.Tensor, dy?: tf.Tensor): tf.Tensor[] => [tf.grad((fv: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, fv as tf.Tensor4D, 1, 'same'), tf.reshape(dy!, [2, 9, 10, 6]))))(b!)];
    const [k, rowWidth] = [3 * 3 * 6, 12]; // the planes' rows: 10 + 2 padding
    convGradientChoice.filterChunkPositions = 2 * rowWidth;
    const twoRows = await runOn('wasm', [x, f, w], dW);
    assertClose(twoRows, await runOn('cpu', [x, f, w], dW), 1e-5, 'two-row chunks vs cpu');
    Object.assign(convGradientChoice, { filterChunkPositions: saved.filterChunkPositions, maxPatchElements: 2 * k * rowWidth + k });
    assertSameBits(await runOn('wasm', [x, f, w], dW), twoRows, 'chunks capped at two rows');
  } finally {
    Object.assign(convGradientChoice, saved);
    setWinogradUse('always');
  }
});

test.run();
