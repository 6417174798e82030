import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/runtime/backend.js';
import { Rng } from '../src/util/rng.js';
import { ReferenceNetwork } from '../bench/train-step.bench.js';
import { assertClose } from './support/wasm-compare.js';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { requestedWasmThreads, wasmThreadsState } from '../src/runtime/wasm-training/index.js';

test.before(async () => {
  await initBackend('wasm', { log: null });
});
test.after(async () => {
  await initBackend('cpu', { log: null });
});

test('a scaled-down reference network: every gradient of a training step on wasm matches cpu', async () => {
  const gradsOf = async (backend: 'cpu' | 'wasm'): Promise<Float32Array[]> => {
    await tf.setBackend(backend);
    const net = new ReferenceNetwork(4, 2, 16, 48);
    const { value, grads } = tf.variableGrads(() => net.loss(), net.variables);
    const out = [Float32Array.of(value.dataSync()[0]!), ...net.variables.map((v) => Float32Array.from(grads[v.name]!.dataSync()))];
    tf.dispose([value, grads]);
    net.dispose();
    return out;
  };
  const expected = await gradsOf('cpu');
  const actual = await gradsOf('wasm');
  assertClose(actual, expected, 2e-4, 'reference network gradients');
});

/** A small hand-built conv net with batch norm, max-pool, resize, concat, slice and a gathered per-sample scale. */
function makeNet(rng: Rng) {
  const normal = (shape: number[], std: number) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = rng.normal() * std;
    return tf.variable(tf.tensor(data, shape));
  };
  const v = {
    w1: normal([3, 3, 3, 8], 0.3),
    g1: tf.variable(tf.ones([8])),
    b1: tf.variable(tf.zeros([8])),
    dw: normal([3, 3, 8, 1], 0.3),
    w2: normal([3, 3, 16, 16], 0.15),
    dense: normal([16, 3], 0.3),
    logScale: tf.variable(tf.zeros([6])),
  };
  const loss = (x: tf.Tensor4D, labels: tf.Tensor2D, ids: tf.Tensor1D): tf.Scalar => {
    let h = tf.conv2d(x, v.w1 as tf.Tensor4D, 2, 'same');
    const { mean, variance } = tf.moments(h, [0, 1, 2]);
    h = tf.relu(tf.batchNorm(h, mean, variance, v.b1 as tf.Tensor1D, v.g1 as tf.Tensor1D, 1e-3)) as tf.Tensor4D;
    const pooled = tf.maxPool(h, 2, 2, 'same');
    const up = tf.image.resizeBilinear(pooled, [8, 8], false, true);
    const dw = tf.depthwiseConv2d(h, v.dw as tf.Tensor4D, 1, 'same');
    const cat = tf.concat([up, dw], 3);
    const h2 = tf.relu(tf.conv2d(cat, v.w2 as tf.Tensor4D, 2, 'valid'));
    const feat = tf.mean<tf.Tensor2D>(tf.slice(h2, [0, 0, 0, 0], [-1, 3, 3, 16]), [1, 2]);
    const scale = tf.exp(tf.gather(v.logScale, ids)).reshape([-1, 1]);
    const logits = tf.div(tf.matMul(feat, v.dense as tf.Tensor2D), scale);
    return tf.losses.softmaxCrossEntropy<tf.Tensor, tf.Scalar>(labels, logits);
  };
  return { vars: Object.values(v), loss, dispose: () => tf.dispose(Object.values(v)) };
}

test('a hand-built conv net trains on wasm: loss falls, tensor count stays flat', async () => {
  await tf.setBackend('wasm');
  const rng = new Rng(1);
  const net = makeNet(rng);
  const n = 6;
  const xData = new Float32Array(n * 16 * 16 * 3);
  for (let i = 0; i < xData.length; i++) xData[i] = rng.normal();
  const x = tf.tensor4d(xData, [n, 16, 16, 3]);
  const labels = tf.tidy(() => tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2], 'int32'), 3).toFloat()) as tf.Tensor2D;
  const ids = tf.tensor1d([0, 1, 2, 3, 4, 5], 'int32');
  const opt: tf.Optimizer = tf.train.momentum(0.05, 0.9);
  const losses: number[] = [];
  const counts: number[] = [];
  const dataIds: number[] = [];
  for (let step = 0; step < 40; step++) {
    const { value, grads } = tf.variableGrads(() => net.loss(x, labels, ids), net.vars);
    opt.applyGradients(grads);
    losses.push(value.dataSync()[0]!);
    tf.dispose([value, grads]);
    counts.push(tf.memory().numTensors);
    // Buffers in wasm memory, including any the kernels make for themselves: none may be left behind.
    dataIds.push(tf.backend().numDataIds());
  }
  assert.ok(losses.every(Number.isFinite), 'finite losses');
  assert.ok(losses[39]! < 0.3 * losses[0]!, `loss ${losses[0]} -> ${losses[39]}`);
  // After the first step (momentum slots created) the count does not move.
  assert.equal(new Set(counts.slice(1)).size, 1, `tensor counts ${counts.join(',')}`);
  assert.equal(new Set(dataIds.slice(1)).size, 1, `wasm buffers ${dataIds.join(',')}`);
  tf.dispose([x, labels, ids]);
  opt.dispose();
  net.dispose();
});

test('a tf.layers model (conv, batch norm, max-pool, depthwise, dense) fits on wasm', async () => {
  await tf.setBackend('wasm');
  const rng = new Rng(2);
  const n = 8;
  const xData = new Float32Array(n * 12 * 12 * 2);
  for (let i = 0; i < xData.length; i++) xData[i] = rng.normal();
  const x = tf.tensor4d(xData, [n, 12, 12, 2]);
  const y = tf.tidy(() => tf.oneHot(tf.tensor1d([0, 1, 2, 3, 0, 1, 2, 3], 'int32'), 4).toFloat());
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [12, 12, 2], filters: 8, kernelSize: 3, strides: 2, padding: 'same', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
      tf.layers.batchNormalization(),
      tf.layers.activation({ activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', depthwiseInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 4, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
    ],
  });
  const adam = tf.train.adam(0.03);
  model.compile({ optimizer: adam, loss: 'categoricalCrossentropy' });
  const before = tf.memory().numTensors;
  const history = await model.fit(x, y, { epochs: 25, batchSize: n, verbose: 0, shuffle: false });
  const loss = history.history['loss'] as number[];
  assert.ok(loss[loss.length - 1]! < 0.3 * loss[0]!, `loss ${loss[0]} -> ${loss[loss.length - 1]}`);
  model.dispose();
  adam.dispose();
  tf.dispose([x, y]);
  // Nothing of the fit is left behind.
  assert.ok(tf.memory().numTensors <= before, `${tf.memory().numTensors} tensors after fit vs ${before} before`);
});

test('the wasm backend runs on the threads asked for (or says why not)', () => {
  const state = wasmThreadsState();
  assert.is(state.requested, requestedWasmThreads());
  if (state.fallback === null) assert.is(state.threads, state.requested);
  else assert.is(state.threads, 1);
});

test('a child process that trains on threaded wasm (DATA_PARAMS_WASM_THREADS=2) exits on its own', () => {
  const backendUrl = pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), '../src/runtime/backend.js')).href;
  const indexUrl = backendUrl.replace('backend.js', 'wasm-training/index.js');
  const script = `
    import * as tf from '@tensorflow/tfjs';
    const { initBackend } = await import(${JSON.stringify(backendUrl)});
    const { wasmThreadsState } = await import(${JSON.stringify(indexUrl)});
    await initBackend('wasm', { log: null });
    const w = tf.variable(tf.randomNormal([3, 3, 2, 4], 0, 0.3, 'float32', 1));
    const x = tf.randomNormal([2, 8, 8, 2], 0, 1, 'float32', 2);
    const opt = tf.train.sgd(0.1);
    const losses = [];
    for (let i = 0; i < 3; i++) {
      const loss = opt.minimize(() => tf.mean(tf.square(tf.sub(tf.conv2d(x, w, 2, 'same'), 1))), true);
      losses.push(loss.dataSync()[0]);
      loss.dispose();
    }
    process.stdout.write(JSON.stringify({ threads: wasmThreadsState().threads, losses }));
  `;
  const t0 = Date.now();
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: path.dirname(fileURLToPath(import.meta.url)),
    encoding: 'utf8',
    timeout: 90_000,
    env: { ...process.env, DATA_PARAMS_WASM_THREADS: '2' },
  });
  assert.is(child.signal, null, `child was killed after ${Date.now() - t0} ms (it did not exit on its own)`);
  assert.is(child.status, 0, child.stderr);
  const out = JSON.parse(child.stdout) as { threads: number; losses: number[] };
  assert.is(out.threads, 2);
  assert.ok(out.losses[2]! < out.losses[0]!, `losses ${out.losses}`);
});

test.run();
