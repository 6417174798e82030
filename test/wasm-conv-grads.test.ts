import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/runtime/backend.js';
import { registerWasmTrainingKernels } from '../src/runtime/wasm-training/index.js';
import { convGradientChoice } from '../src/runtime/wasm-training/conv2d-backprop.js';
import { tapConvChoice } from '../src/runtime/wasm-training/conv-taps.js';
import { patchConvChoice } from '../src/runtime/wasm-training/conv-patches.js';
import { Rng } from '../src/util/rng.js';
import { assertClose, compareGrads, randomInput, runOn } from './support/wasm-compare.js';

type Pad = 'same' | 'valid' | tf.backend_util.ExplicitPadding;

test.before(async () => {
  await initBackend('wasm', { log: null });
});
test.after(async () => {
  await initBackend('cpu', { log: null });
});

test('registration is idempotent and lists the kernels it registered', () => {
  const names = registerWasmTrainingKernels();
  assert.equal(registerWasmTrainingKernels(), names);
  for (const k of ['Conv2DBackpropFilter', 'Conv2DBackpropInput', 'DepthwiseConv2dNativeBackpropInput',
    'DepthwiseConv2dNativeBackpropFilter', 'MaxPoolGrad', 'UnsortedSegmentSum', 'Tile', 'SplitV', 'Conv2D', 'FusedConv2D',
    'DepthwiseConv2dNative', 'FusedDepthwiseConv2D']) {
    assert.ok(names.includes(k), k);
    assert.ok(tf.getKernel(k, 'wasm') !== undefined, `${k} registered for wasm`);
  }
});

/** The output shape of a conv-like op on the given input and filter shapes (run on cpu). */
async function outShapeOn(
  xShape: number[],
  fShape: number[],
  op: (x: tf.Tensor4D, f: tf.Tensor4D) => tf.Tensor4D,
): Promise<number[]> {
  await tf.setBackend('cpu');
  type Shape4 = [number, number, number, number];
  return tf.tidy(() => op(tf.zeros(xShape as Shape4), tf.zeros(fShape as Shape4)).shape.slice());
}

const convCases: { x: number[]; f: number[]; s: number | [number, number]; pad: Pad }[] = [
  { x: [2, 7, 9, 3], f: [3, 3, 3, 4], s: 1, pad: 'same' },
  { x: [2, 7, 9, 3], f: [3, 3, 3, 4], s: 1, pad: 'valid' },
  { x: [2, 8, 10, 3], f: [3, 3, 3, 5], s: 2, pad: 'same' },
  { x: [2, 9, 11, 3], f: [3, 3, 3, 5], s: 2, pad: 'same' },
  { x: [2, 9, 11, 3], f: [3, 3, 3, 5], s: 2, pad: 'valid' },
  { x: [1, 9, 10, 2], f: [3, 3, 2, 3], s: 2, pad: [[0, 0], [1, 2], [0, 1], [0, 0]] },
  { x: [1, 8, 8, 2], f: [3, 3, 2, 3], s: 1, pad: [[0, 0], [2, 0], [1, 1], [0, 0]] },
  { x: [2, 6, 7, 4], f: [1, 1, 4, 6], s: 1, pad: 'valid' },
  { x: [2, 7, 7, 4], f: [1, 1, 4, 6], s: 2, pad: 'valid' },
  { x: [1, 11, 12, 2], f: [5, 5, 2, 3], s: 2, pad: 'same' },
  { x: [1, 12, 12, 3], f: [2, 2, 3, 4], s: 2, pad: 'valid' },
  { x: [1, 10, 11, 2], f: [3, 3, 2, 3], s: 3, pad: 'valid' },
  { x: [1, 9, 10, 2], f: [3, 2, 2, 3], s: [1, 2], pad: 'same' },
  { x: [1, 9, 10, 2], f: [3, 3, 2, 3], s: [2, 1], pad: 'valid' },
  // Many channels: the planes' channel groups in a loop; 21: a remainder of 1 after 5 groups of 4.
  { x: [2, 7, 9, 24], f: [3, 3, 24, 8], s: 2, pad: 'same' },
  { x: [1, 6, 7, 21], f: [3, 3, 21, 4], s: 1, pad: 'valid' },
];

// Each case with every formulation of the filter gradient (and of dX at stride > 1): the tap GEMMs over the planes
// in place, in chunks of the default size and of 3 positions (which rarely divide the positions, so the last chunk is
// shorter), on the cases with Co rounded up to a multiple of 4 (their requirement); the im2col GEMMs with the filter
// gradient in one chunk, in chunks of one output row, and of three rows; and (patch limit 0) the convs.
interface Formulation {
  via: string;
  taps: boolean;
  tapChunk: number; // dy floats per chunk of the tap GEMMs; negative: that many positions
  limit: number;
  chunk: number; // positions per chunk of the im2col GEMMs; negative: that many output rows
}
const defaults = { ...convGradientChoice };
const formulations: Formulation[] = [
  { via: 'tap GEMMs', taps: true, tapChunk: defaults.tapChunkFloats, limit: defaults.maxPatchElements, chunk: defaults.filterChunkPositions },
  { via: 'tap GEMMs, 3-position chunks', taps: true, tapChunk: -3, limit: defaults.maxPatchElements, chunk: defaults.filterChunkPositions },
  { via: 'im2col GEMMs', taps: false, tapChunk: 0, limit: defaults.maxPatchElements, chunk: defaults.filterChunkPositions },
  { via: 'im2col GEMMs, 1-row chunks', taps: false, tapChunk: 0, limit: defaults.maxPatchElements, chunk: 1 },
  { via: 'im2col GEMMs, 3-row chunks', taps: false, tapChunk: 0, limit: defaults.maxPatchElements, chunk: -3 },
  { via: 'conv formulations', taps: false, tapChunk: 0, limit: 0, chunk: defaults.filterChunkPositions },
];
for (const { via, taps, tapChunk, limit, chunk } of formulations) {
  const cases = taps ? convCases.map((c) => ({ ...c, f: [c.f[0]!, c.f[1]!, c.f[2]!, 4 * Math.ceil(c.f[3]! / 4)] })) : convCases;
  for (const c of cases) {
    const name = `conv2d gradients match cpu (${via}): x [${c.x}] filter [${c.f}] stride ${c.s} pad ${JSON.stringify(c.pad)}`;
    test(name, async () => {
      const rng = new Rng(c.x.reduce((a, b) => a * 31 + b, c.f[0]!));
      const x = randomInput(rng, c.x);
      const w = randomInput(rng, c.f);
      const shape = await outShapeOn(c.x, c.f, (xt, wt) => tf.conv2d(xt, wt, c.s, c.pad));
      Object.assign(convGradientChoice, {
        tapGemms: taps,
        tapChunkFloats: tapChunk > 0 ? tapChunk : -tapChunk * c.f[3]!,
        maxPatchElements: limit,
        filterChunkPositions: chunk > 0 ? chunk : -chunk * shape[2]!,
      });
      try {
        await compareGrads(name, [x, w], shape, (xt, wt) => tf.conv2d(xt as tf.Tensor4D, wt as tf.Tensor4D, c.s, c.pad));
      } finally {
        Object.assign(convGradientChoice, defaults);
      }
    });
  }
}

// Strided convs whose GEMMs take the tap path (conv-taps.ts): forward values and both gradients (dx and dW) against cpu, with
// channel counts it takes (k >= minChannels, the GEMM's n a multiple of 4), odd sizes, batches, paddings and strides.
const tapCases: { x: number[]; f: number[]; s: number | [number, number]; pad: Pad }[] = [
  { x: [3, 9, 11, 8], f: [3, 3, 8, 12], s: 2, pad: 'same' },
  { x: [2, 10, 13, 12], f: [3, 3, 12, 8], s: 2, pad: 'valid' },
  { x: [2, 11, 10, 8], f: [3, 3, 8, 8], s: 3, pad: 'same' },
  { x: [1, 9, 10, 16], f: [3, 3, 16, 8], s: 2, pad: [[0, 0], [1, 2], [0, 1], [0, 0]] },
  { x: [2, 7, 9, 8], f: [2, 2, 8, 4], s: [2, 3], pad: 'same' },
  { x: [2, 9, 7, 9], f: [3, 2, 9, 8], s: [3, 2], pad: 'valid' },
  { x: [1, 12, 12, 8], f: [5, 5, 8, 4], s: 2, pad: 'same' },
  { x: [1, 4, 4, 8], f: [3, 3, 8, 8], s: 4, pad: 'valid' },
];
for (const c of tapCases) {
  const name = `strided conv2d by tap GEMMs: values and gradients match cpu, x [${c.x}] filter [${c.f}] stride ${c.s} pad ${JSON.stringify(c.pad)}`;
  test(name, async () => {
    const rng = new Rng(c.x.reduce((a, b) => a * 37 + b, c.f[1]!));
    const x = randomInput(rng, c.x);
    const w = randomInput(rng, c.f);
    const shape = await outShapeOn(c.x, c.f, (xt, wt) => tf.conv2d(xt, wt, c.s, c.pad));
    const conv = (xt: tf.Tensor, wt: tf.Tensor): tf.Tensor4D => tf.conv2d(xt as tf.Tensor4D, wt as tf.Tensor4D, c.s, c.pad);
    const [expected, actual] = [await runOn('cpu', [x, w], (xt, wt) => [conv(xt, wt)]), await runOn('wasm', [x, w], (xt, wt) => [conv(xt, wt)])];
    assertClose(actual, expected, 1e-5, `${name}: forward`);
    await compareGrads(name, [x, w], shape, conv);
  });
}

test('the tap path runs for strided convs: its sums differ from the built-in formulations, and turning it off restores them', async () => {
  const rng = new Rng(5);
  const x = randomInput(rng, [2, 16, 18, 16]);
  const w = randomInput(rng, [3, 3, 16, 32]);
  const dy = randomInput(rng, [2, 8, 9, 32]);
  const run = async (): Promise<Float32Array[]> =>
    runOn('wasm', [x, w, dy], (xt, wt, dyt) => [
      tf.conv2d(xt as tf.Tensor4D, wt as tf.Tensor4D, 2, 'same'),
      tf.conv2dTranspose(dyt as tf.Tensor4D, wt as tf.Tensor4D, [2, 16, 18, 16], 2, 'same'),
    ]);
  const taps = await run();
  tapConvChoice.enabled = false;
  let builtIn: Float32Array[];
  try {
    builtIn = await run();
  } finally {
    tapConvChoice.enabled = true;
  }
  assertClose(taps, builtIn, 1e-5, 'tap path against the built-in formulations');
  assert.ok(taps[0]!.some((v, i) => v !== builtIn[0]![i]), 'forward: the tap GEMMs round differently from XNNPACK');
  const again = await run();
  assert.ok(again.every((out, k) => out.every((v, i) => Object.is(v, taps[k]![i]))), 'the tap path is deterministic');
});

// Few-channel convs that take the patch GEMMs (conv-patches.ts: Ci below the tap GEMMs' minimum, fh·fw·Ci ≤ 64, Co a
// multiple of 4): forward values and both gradients against cpu, with chunks of patches smaller than the output.
const patchCases: { x: number[]; f: number[]; s: number | [number, number]; pad: Pad }[] = [
  { x: [2, 16, 20, 3], f: [3, 3, 3, 8], s: 2, pad: 'same' }, // an RGB stem
  { x: [2, 16, 20, 3], f: [4, 4, 3, 8], s: 4, pad: 'same' }, // a patch stem
  { x: [3, 9, 11, 1], f: [3, 3, 1, 4], s: 1, pad: 'same' },
  { x: [2, 10, 13, 3], f: [5, 5, 3, 4], s: [2, 3], pad: 'valid' },
  { x: [1, 9, 10, 2], f: [3, 3, 2, 12], s: 2, pad: [[0, 0], [1, 2], [0, 1], [0, 0]] },
  { x: [2, 7, 9, 7], f: [3, 3, 7, 4], s: 3, pad: 'same' },
];
for (const c of patchCases) {
  const name = `few-channel conv2d by patch GEMMs: values and gradients match cpu, x [${c.x}] filter [${c.f}] stride ${c.s} pad ${JSON.stringify(c.pad)}`;
  test(name, async () => {
    const rng = new Rng(c.x.reduce((a, b) => a * 31 + b, c.f[0]!));
    const x = randomInput(rng, c.x);
    const w = randomInput(rng, c.f);
    const shape = await outShapeOn(c.x, c.f, (xt, wt) => tf.conv2d(xt, wt, c.s, c.pad));
    const conv = (xt: tf.Tensor, wt: tf.Tensor): tf.Tensor4D => tf.conv2d(xt as tf.Tensor4D, wt as tf.Tensor4D, c.s, c.pad);
    const chunkBytes = patchConvChoice.chunkBytes;
    patchConvChoice.chunkBytes = 5 * shape[2]! * c.f[0]! * c.f[1]! * c.f[2]! * 4; // five output rows a chunk
    try {
      const [expected, actual] = [await runOn('cpu', [x, w], (xt, wt) => [conv(xt, wt)]), await runOn('wasm', [x, w], (xt, wt) => [conv(xt, wt)])];
      assertClose(actual, expected, 1e-5, `${name}: forward`);
      await compareGrads(name, [x, w], shape, conv);
    } finally {
      patchConvChoice.chunkBytes = chunkBytes;
    }
  });
}

test('the patch path runs for few-channel convs: its sums differ from the other formulations, and turning it off restores them', async () => {
  const rng = new Rng(8);
  const x = randomInput(rng, [2, 32, 40, 3]);
  const w = randomInput(rng, [3, 3, 3, 16]);
  const dy = randomInput(rng, [2, 16, 20, 16]);
  const run = async (): Promise<Float32Array[]> =>
    runOn('wasm', [x, w, dy], (xt, wt, dyt) => [
      tf.conv2d(xt as tf.Tensor4D, wt as tf.Tensor4D, 2, 'same'),
      tf.grad((wv: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(xt as tf.Tensor4D, wv as tf.Tensor4D, 2, 'same'), dyt)))(wt),
    ]);
  const patches = await run();
  patchConvChoice.enabled = false;
  let other: Float32Array[];
  try {
    other = await run();
  } finally {
    patchConvChoice.enabled = true;
  }
  assertClose(patches, other, 1e-5, 'patch path against the other formulations');
  assert.ok(patches.some((out, k) => out.some((v, i) => v !== other[k]![i])), 'the patch GEMMs round differently');
  const again = await run();
  assert.ok(again.every((out, k) => out.every((v, i) => Object.is(v, patches[k]![i]))), 'the patch path is deterministic');
});

// 'same' padding where TensorFlow pads nothing on a dimension because the stride exceeds the filter and the last
// window ends inside the input: the built-in convs (XNNPACK's SAME flag) returned wrong values there (same-padding.ts).
// Each shape with 'same' (the previously wrong case), 'valid' and explicit padding; forward values of Conv2D,
// FusedConv2D, DepthwiseConv2dNative and FusedDepthwiseConv2D, and the conv's gradients, against cpu.
const samePadCases: { x: number[]; f: number[]; s: [number, number] }[] = [
  { x: [2, 9, 11, 1], f: [2, 2, 1, 1], s: [3, 2] },
  { x: [2, 9, 11, 3], f: [2, 3, 3, 5], s: [3, 1] },
  { x: [3, 10, 12, 5], f: [3, 2, 5, 3], s: [1, 3] },
  { x: [2, 7, 9, 3], f: [2, 2, 3, 6], s: [2, 3] },
  { x: [2, 8, 10, 5], f: [3, 3, 5, 7], s: [4, 4] },
  { x: [2, 8, 10, 3], f: [2, 1, 3, 5], s: [1, 2] },
  { x: [2, 9, 11, 8], f: [2, 2, 8, 4], s: [3, 2] }, // the tap GEMMs' channel counts: conv-taps.ts
];
for (const c of samePadCases) {
  for (const pad of ['same', 'valid', [[0, 0], [1, 0], [0, 2], [0, 0]]] as Pad[]) {
    const name = `strided conv2d, fused and depthwise match cpu: x [${c.x}] filter [${c.f}] stride ${c.s} pad ${JSON.stringify(pad)}`;
    test(name, async () => {
      const rng = new Rng(c.x.reduce((a, b) => a * 41 + b, c.f[0]! + c.s[1]));
      const x = randomInput(rng, c.x);
      const w = randomInput(rng, c.f);
      const dw = randomInput(rng, [c.f[0]!, c.f[1]!, c.f[2]!, 2]);
      const bias = randomInput(rng, [c.f[3]!]);
      const dwBias = randomInput(rng, [2 * c.f[2]!]);
      const conv = (xt: tf.Tensor, wt: tf.Tensor): tf.Tensor4D => tf.conv2d(xt as tf.Tensor4D, wt as tf.Tensor4D, c.s, pad);
      const all = (xt: tf.Tensor, wt: tf.Tensor, dwt: tf.Tensor, bt: tf.Tensor, dbt: tf.Tensor): tf.Tensor[] => [
        conv(xt, wt),
        tf.fused.conv2d({ x: xt as tf.Tensor4D, filter: wt as tf.Tensor4D, strides: c.s, pad, bias: bt, activation: 'relu' }),
        tf.depthwiseConv2d(xt as tf.Tensor4D, dwt as tf.Tensor4D, c.s, pad),
        // (its pad type takes no explicit padding)
        ...(typeof pad === 'string' ? [tf.fused.depthwiseConv2d({ x: xt as tf.Tensor4D, filter: dwt as tf.Tensor4D, strides: c.s, pad, bias: dbt, activation: 'relu' })] : []),
      ];
      const inputs = [x, w, dw, bias, dwBias];
      const expected = await runOn('cpu', inputs, all);
      assertClose(await runOn('wasm', inputs, all), expected, 1e-5, `${name}: forward`);
      assert.ok(expected.every((e) => e.some((v) => v !== 0)), 'outputs not all zero');
      await compareGrads(name, [x, w], await outShapeOn(c.x, c.f, conv), conv);
    });
  }
}

test("'same' padding where the stride skips the input's last column: pinned values", async () => {
  // Width 9, a 1x2 filter [1, 10], stride 3: 3 windows at columns 0, 3, 6 and no padding (6 + 2 <= 9).
  const x = { shape: [1, 1, 9, 1], data: Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]) };
  const w = { shape: [1, 2, 1, 1], data: Float32Array.from([1, 10]) };
  const [conv, depthwise] = await runOn('wasm', [x, w], (xt, wt) => [
    tf.conv2d(xt as tf.Tensor4D, wt as tf.Tensor4D, [1, 3], 'same'),
    tf.depthwiseConv2d(xt as tf.Tensor4D, wt as tf.Tensor4D, [1, 3], 'same'),
  ]);
  assert.equal(Array.from(conv!), [21, 54, 87]);
  assert.equal(Array.from(depthwise!), [21, 54, 87]);
});

test('a conv whose filter does not fit the padded input is an error naming the shapes; an empty output is empty', async () => {
  await tf.setBackend('wasm');
  tf.tidy(() => {
    const ones = (shape: [number, number, number, number]): tf.Tensor4D => tf.ones(shape);
    const x = ones([2, 3, 3, 2]);
    assert.throws(() => tf.conv2d(x, ones([5, 5, 2, 4]), 1, 'valid').dataSync(), /Conv2D: the filter 5x5 .* padded input 3x3/);
    assert.throws(() => tf.depthwiseConv2d(x, ones([3, 3, 2, 1]), 1, 'valid', 'NHWC', 2), /DepthwiseConv2dNative: the filter 5x5/);
    const empty = tf.conv2d(x, ones([5, 5, 2, 4]), [3, 3], 'valid');
    assert.equal(empty.shape, [2, 0, 0, 4]);
    assert.is(empty.dataSync().length, 0);
    // The backend still works.
    assert.equal(Array.from(tf.conv2d(x, ones([3, 3, 2, 1]), 1, 'valid').dataSync()), [18, 18]);
  });
});

test('fused conv2d with bias and relu: gradients match cpu', async () => {
  const rng = new Rng(3);
  const x = randomInput(rng, [2, 8, 8, 3]);
  const w = randomInput(rng, [3, 3, 3, 4]);
  const b = randomInput(rng, [4]);
  await compareGrads('fused conv2d', [x, w, b], [2, 4, 4, 4], (xt, wt, bt) =>
    tf.fused.conv2d({ x: xt as tf.Tensor4D, filter: wt as tf.Tensor4D, bias: bt, strides: 2, pad: 'same', activation: 'relu' }),
  );
});

const depthwiseCases: { x: number[]; f: number[]; s: number; pad: Pad }[] = [
  { x: [2, 7, 8, 4], f: [3, 3, 4, 1], s: 1, pad: 'same' },
  { x: [2, 7, 8, 4], f: [3, 3, 4, 1], s: 2, pad: 'same' },
  { x: [2, 9, 8, 3], f: [3, 3, 3, 2], s: 2, pad: 'valid' },
  { x: [1, 8, 9, 3], f: [5, 5, 3, 1], s: 2, pad: [[0, 0], [2, 1], [1, 2], [0, 0]] },
  { x: [2, 6, 6, 5], f: [1, 1, 5, 2], s: 1, pad: 'valid' },
];

for (const c of depthwiseCases) {
  const name = `depthwise conv2d gradients match cpu: x [${c.x}] filter [${c.f}] stride ${c.s} pad ${JSON.stringify(c.pad)}`;
  test(name, async () => {
    const rng = new Rng(c.x.reduce((a, b) => a * 17 + b, 5));
    const x = randomInput(rng, c.x);
    const w = randomInput(rng, c.f);
    const shape = await outShapeOn(c.x, c.f, (xt, wt) => tf.depthwiseConv2d(xt, wt, c.s, c.pad));
    await compareGrads(name, [x, w], shape, (xt, wt) =>
      tf.depthwiseConv2d(xt as tf.Tensor4D, wt as tf.Tensor4D, c.s, c.pad),
    );
  });
}

/** A dilated filter as the equivalent undilated one with zeros between the taps. */
function inflate(w: Float32Array, shape: number[], d: number): { data: Float32Array; shape: number[] } {
  const [fh, fw, c, m] = shape as [number, number, number, number];
  const [eh, ew] = [(fh - 1) * d + 1, (fw - 1) * d + 1];
  const out = new Float32Array(eh * ew * c * m);
  for (let a = 0; a < fh; a++)
    for (let b = 0; b < fw; b++)
      for (let k = 0; k < c * m; k++) out[((a * d) * ew + b * d) * c * m + k] = w[(a * fw + b) * c * m + k]!;
  return { data: out, shape: [eh, ew, c, m] };
}

test('dilated depthwise backprops equal the undilated ones of the zero-inflated filter (cpu)', async () => {
  const rng = new Rng(11);
  const xShape = [2, 9, 10, 3];
  const fShape = [3, 3, 3, 2];
  const x = randomInput(rng, xShape);
  const w = randomInput(rng, fShape);
  const big = inflate(w.data, fShape, 2);
  const pad = 'same';
  const dyShape = [2, 9, 10, 6];
  const dy = randomInput(rng, dyShape);
  const run = (filter: { data: Float32Array; shape: number[] }, dilations: number) => (): tf.Tensor[] => {
    const xt = tf.tensor(x.data, xShape);
    const dyt = tf.tensor(dy.data, dyShape);
    const ft = tf.tensor(filter.data, filter.shape);
    const dx = tf.engine().runKernel<tf.Tensor>('DepthwiseConv2dNativeBackpropInput', { dy: dyt, filter: ft },
      { strides: 1, dilations, pad, inputShape: xShape });
    const dw = tf.engine().runKernel<tf.Tensor>('DepthwiseConv2dNativeBackpropFilter', { x: xt, dy: dyt },
      { strides: 1, dilations, pad, filterShape: filter.shape });
    return [dx, dw];
  };
  const expected = await runOn('cpu', [], run(big, 1));
  const actual = await runOn('wasm', [], run(w, 2));
  // Keep only the taps of the inflated filter gradient that the dilated filter has.
  const [fh, fw, c, m] = fShape as [number, number, number, number];
  const ew = (fw - 1) * 2 + 1;
  const taps = new Float32Array(fh * fw * c * m);
  for (let a = 0; a < fh; a++)
    for (let b = 0; b < fw; b++)
      for (let k = 0; k < c * m; k++) taps[(a * fw + b) * c * m + k] = expected[1]![(a * 2 * ew + b * 2) * c * m + k]!;
  assertClose(actual, [expected[0]!, taps], 1e-4, 'dilated depthwise');
});

test('space-to-batch / batch-to-space and a dilated conv built from them: values and gradients match cpu', async () => {
  const rng = new Rng(13);
  const x = randomInput(rng, [2, 10, 12, 3]);
  const w = randomInput(rng, [3, 3, 3, 4]);
  const f = (xt: tf.Tensor, wt: tf.Tensor) => [
    tf.spaceToBatchND(xt, [2, 3], [[1, 1], [0, 3]]),
    tf.batchToSpaceND(tf.reshape(xt, [24, 5, 2, 3]), [2, 3], [[1, 0], [0, 2]]),
    tf.conv2d(xt as tf.Tensor4D, wt as tf.Tensor4D, 1, 'same', 'NHWC', 3),
  ];
  assertClose(await runOn('wasm', [x, w], f), await runOn('cpu', [x, w], f), 1e-5, 'space/batch and dilated conv values');
  // Dilation 3 as spaceToBatch -> conv -> batchToSpace (tfjs-core has no gradient for a dilated conv2d itself).
  const dilated = (xt: tf.Tensor, wt: tf.Tensor) => {
    const s = tf.spaceToBatchND(xt, [3, 3], [[3, 5], [3, 3]]) as tf.Tensor4D;
    return tf.batchToSpaceND(tf.conv2d(s, wt as tf.Tensor4D, 1, 'valid'), [3, 3], [[0, 2], [0, 0]]);
  };
  await compareGrads('dilated conv via space-to-batch', [x, w], [2, 10, 12, 4], dilated);
});

test.run();
