/** Helpers for the wasm kernel tests: run the same computation on cpu (the reference) and on wasm, compare. */
import * as tf from '@tensorflow/tfjs';
import * as assert from 'uvu/assert';
import { Rng } from '../../src/util/rng.js';

export interface Input {
  shape: number[];
  data: Float32Array;
}

export function randomInput(rng: Rng, shape: number[], lo = -1, hi = 1): Input {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = rng.uniform(lo, hi);
  return { shape, data };
}

/** Runs `f` on the given tfjs backend with fresh tensors of `inputs`; returns copies of the outputs' values. */
export async function runOn(
  backend: 'cpu' | 'wasm',
  inputs: Input[],
  f: (...xs: tf.Tensor[]) => tf.Tensor[],
): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const xs = inputs.map((i) => tf.tensor(i.data, i.shape));
    return f(...xs).map((t) => Float32Array.from(t.dataSync()));
  });
}

/** Gradients of `sum(f(xs) * weights)` w.r.t. every input (weights random, so dy is not all ones). */
export async function gradsOn(backend: 'cpu' | 'wasm', inputs: Input[], weights: Input, f: (...xs: tf.Tensor[]) => tf.Tensor) {
  return runOn(backend, inputs, (...xs) => {
    const w = tf.tensor(weights.data, weights.shape);
    return tf.grads((...ys: tf.Tensor[]) => tf.sum(tf.mul(f(...ys), w)))(xs);
  });
}

/** Asserts max |a - b| <= tol * max(1, max |b|) per output, naming the case. */
export function assertClose(actual: Float32Array[], expected: Float32Array[], tol: number, what: string): number {
  assert.is(actual.length, expected.length, `${what}: number of outputs`);
  let worst = 0;
  actual.forEach((a, k) => {
    const e = expected[k]!;
    assert.is(a.length, e.length, `${what}: output ${k} size`);
    let maxAbs = 0;
    let maxErr = 0;
    for (let i = 0; i < e.length; i++) {
      maxAbs = Math.max(maxAbs, Math.abs(e[i]!));
      const err = Math.abs(a[i]! - e[i]!);
      if (!(err <= maxErr)) maxErr = err; // NaN-safe: a NaN error becomes the worst
    }
    const bound = tol * Math.max(1, maxAbs);
    assert.ok(maxErr <= bound, `${what}: output ${k} max error ${maxErr} > ${bound} (max |expected| ${maxAbs})`);
    worst = Math.max(worst, maxErr / Math.max(1, maxAbs));
  });
  return worst;
}

/** The cpu gradients vs the wasm gradients of one computation. */
export async function compareGrads(
  what: string,
  inputs: Input[],
  outShape: number[],
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  seed = 7,
  tol = 1e-4,
): Promise<number> {
  const weights = randomInput(new Rng(seed), outShape);
  const expected = await gradsOn('cpu', inputs, weights, f);
  const actual = await gradsOn('wasm', inputs, weights, f);
  return assertClose(actual, expected, tol, what);
}

/** Runs `step` once (modules compile, optimisers create their slots), then three times: no tensor or backend buffer stays. */
export function assertStepLeavesNothing(step: () => void): void {
  step();
  const tensors = tf.memory().numTensors;
  const buffers = tf.backend().numDataIds();
  for (let i = 0; i < 3; i++) step();
  assert.is(tf.memory().numTensors, tensors, 'tensors after the step');
  assert.is(tf.backend().numDataIds(), buffers, 'backend buffers after the step');
}
