import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/runtime/backend.js';
import { BatchNorm, Relu, Sequential } from '../src/nn/layers.js';
import { ParamStore } from '../src/nn/param-store.js';
import { batchNormTraining, fusedBatchNormApplies } from '../src/runtime/wasm-training/index.js';
import { Rng } from '../src/util/rng.js';
import { assertClose, assertStepLeavesNothing, compareGrads, randomInput, runOn } from './support/wasm-compare.js';

test.before(async () => {
  await initBackend('wasm', { log: null });
});
test.after(async () => {
  await initBackend('cpu', { log: null });
});

/** tfjs-core's composition (the reference on cpu): moments, batchNorm, relu. */
function composed(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, relu: boolean): tf.Tensor[] {
  const { mean, variance } = tf.moments(x, [...Array(x.rank - 1).keys()]);
  const y = tf.batchNorm(x, mean, variance, beta, gamma, 1e-3);
  return [relu ? tf.relu(y) : y, mean, variance];
}

const cases: { shape: number[]; lo: number; hi: number }[] = [
  { shape: [2, 5, 6, 8], lo: -2, hi: 3 },
  { shape: [37, 16], lo: -1, hi: 1 },
  { shape: [3, 4, 4], lo: 50, hi: 52 }, // mean far from zero against the spread
  { shape: [2, 64, 80, 32], lo: -3, hi: 5 }, // over 1 MB: blocked sums, split between the kernel pool's threads
  { shape: [1, 1, 1, 4], lo: -1, hi: 1 }, // one row: variance 0
];

for (const c of cases) {
  for (const relu of [false, true]) {
    const what = `fused batch norm${relu ? ' + ReLU' : ''} on [${c.shape}]`;
    test(`${what}: output and statistics match tfjs-core's composition on cpu`, async () => {
      const rng = new Rng(c.shape.reduce((a, b) => a * 7 + b, 3));
      const ch = c.shape[c.shape.length - 1]!;
      const inputs = [randomInput(rng, c.shape, c.lo, c.hi), randomInput(rng, [ch], 0.5, 1.5), randomInput(rng, [ch], -0.5, 0.5)];
      const fused = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Tensor[] => {
        const r = batchNormTraining(x, g as tf.Tensor1D, b as tf.Tensor1D, 1e-3, { relu });
        return [r.y, r.mean, r.variance];
      };
      await tf.setBackend('wasm');
      assert.ok(tf.tidy(() => fusedBatchNormApplies(tf.zeros(c.shape))), 'the wasm kernels take this input');
      assertClose(await runOn('wasm', inputs, fused), await runOn('cpu', inputs, (x, g, b) => composed(x, g, b, relu)), 2e-5, what);
    });
    if (c.shape[0] === 1) continue; // a one-row batch has a zero gradient in x through the statistics
    test(`${what}: gradients in x, gamma and beta match tfjs-core's on cpu`, async () => {
      const rng = new Rng(c.shape.reduce((a, b) => a * 5 + b, 1));
      const ch = c.shape[c.shape.length - 1]!;
      const inputs = [randomInput(rng, c.shape, c.lo, c.hi), randomInput(rng, [ch], 0.5, 1.5), randomInput(rng, [ch], -0.5, 0.5)];
      // On cpu batchNormTraining is the composition: its gradients are tfjs-core's autodiff of the same function.
      const f = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Tensor => batchNormTraining(x, g as tf.Tensor1D, b as tf.Tensor1D, 1e-3, { relu }).y;
      await compareGrads(what, inputs, c.shape, (x, g, b) => f(x, g, b), 11, 1e-4);
    });
  }
}

test('the gradient in x includes the statistics: it sums to zero per channel, and matches finite differences', async () => {
  await tf.setBackend('wasm');
  const rng = new Rng(5);
  const x = randomInput(rng, [3, 2, 2, 4], -1, 1);
  const w = randomInput(rng, [3, 2, 2, 4], -1, 1);
  const gamma = tf.tensor1d([1.5, 0.5, 1, 2]);
  const beta = tf.tensor1d([0.1, -0.2, 0, 0.3]);
  const loss = (t: tf.Tensor): tf.Scalar => tf.sum(tf.mul(batchNormTraining(t, gamma, beta, 1e-3).y, tf.tensor(w.data, w.shape)));
  const dx = tf.tidy(() => tf.grad(loss)(tf.tensor(x.data, x.shape)).dataSync().slice());
  for (let j = 0; j < 4; j++) {
    let s = 0;
    for (let i = j; i < dx.length; i += 4) s += dx[i]!;
    assert.ok(Math.abs(s) < 1e-4, `channel ${j}: Σ dx = ${s}`);
  }
  // Central differences in float64 of the same function (the batch-norm formula written out).
  const f64 = (data: Float64Array): number => {
    let total = 0;
    const g = [1.5, 0.5, 1, 2];
    const b = [0.1, -0.2, 0, 0.3];
    for (let j = 0; j < 4; j++) {
      let m = 0;
      for (let i = j; i < data.length; i += 4) m += data[i]!;
      m /= data.length / 4;
      let v = 0;
      for (let i = j; i < data.length; i += 4) v += (data[i]! - m) ** 2;
      v /= data.length / 4;
      for (let i = j; i < data.length; i += 4) total += ((data[i]! - m) / Math.sqrt(v + 1e-3) * g[j]! + b[j]!) * w.data[i]!;
    }
    return total;
  };
  const base = Float64Array.from(x.data);
  for (const i of [0, 5, 17, 46]) {
    const h = 1e-5;
    const up = Float64Array.from(base);
    const down = Float64Array.from(base);
    up[i]! += h;
    down[i]! -= h;
    const numeric = (f64(up) - f64(down)) / (2 * h);
    assert.ok(Math.abs(numeric - dx[i]!) < 1e-3 * Math.max(1, Math.abs(numeric)), `dx[${i}] ${dx[i]} vs finite difference ${numeric}`);
  }
  tf.dispose([gamma, beta]);
});

test('channels the kernels do not take (6) and other backends use the composition', async () => {
  await tf.setBackend('wasm');
  assert.not.ok(tf.tidy(() => fusedBatchNormApplies(tf.zeros([2, 3, 6]))));
  await tf.setBackend('cpu');
  assert.not.ok(tf.tidy(() => fusedBatchNormApplies(tf.zeros([2, 3, 8]))));
  const rng = new Rng(9);
  const inputs = [randomInput(rng, [4, 3, 6], -1, 2), randomInput(rng, [6], 0.5, 1.5), randomInput(rng, [6], -0.5, 0.5)];
  const fused = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Tensor[] => {
    const r = batchNormTraining(x, g as tf.Tensor1D, b as tf.Tensor1D, 1e-3, { relu: true });
    return [r.y, r.mean, r.variance];
  };
  assertClose(await runOn('wasm', inputs, fused), await runOn('cpu', inputs, (x, g, b) => composed(x, g, b, true)), 1e-5, 'composition on wasm');
});

for (const runningStats of ['forward', 'commit'] as const) {
  test(`the BatchNorm layer ('${runningStats}'): Sequential [BatchNorm, Relu] trains the same on wasm (fused) as on cpu`, async () => {
    const rng = new Rng(17);
    const x = randomInput(rng, [2, 6, 5, 8], -2, 3);
    const w = randomInput(rng, [2, 6, 5, 8], -1, 1);
    const run = async (backend: 'cpu' | 'wasm'): Promise<Float32Array[]> => {
      await tf.setBackend(backend);
      const store = new ParamStore();
      const bn = new BatchNorm(store, 'bn', 8, { runningStats });
      const net = new Sequential([bn, new Relu()]);
      tf.tidy(() => {
        bn.gamma.assign(tf.linspace(0.5, 1.5, 8));
        bn.beta.assign(tf.linspace(-0.3, 0.4, 8));
      });
      const xt = tf.tensor(x.data, x.shape);
      const wt = tf.tensor(w.data, w.shape);
      const out = tf.tidy(() => {
        const y = net.forward(xt, true);
        const { grads } = tf.variableGrads(() => tf.sum(tf.mul(net.forward(xt, true), wt)), [bn.gamma, bn.beta]);
        const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(net.forward(t, true), wt)))(xt);
        return [y, grads[bn.gamma.name]!, grads[bn.beta.name]!, dx].map((t) => Float32Array.from(t.dataSync()));
      });
      bn.commit();
      const stats = [bn.runningMean, bn.runningVar].map((t) => Float32Array.from(t.dataSync()));
      const evalOut = tf.tidy(() => Float32Array.from(net.forward(xt, false).dataSync()));
      tf.dispose([xt, wt]);
      store.dispose();
      return [...out, ...stats, evalOut];
    };
    assertClose(await run('wasm'), await run('cpu'), 2e-5, `BatchNorm '${runningStats}' + Relu`);
  });
}

test('a training step with the fused op leaves no tensors or wasm buffers behind', async () => {
  await tf.setBackend('wasm');
  const rng = new Rng(13);
  const x = tf.tensor(randomInput(rng, [2, 4, 5, 8]).data, [2, 4, 5, 8]);
  const gamma = tf.variable(tf.ones([8]));
  const beta = tf.variable(tf.zeros([8]));
  const step = (): void => {
    const { value, grads } = tf.variableGrads(() => {
      const r = batchNormTraining(x, gamma, beta, 1e-3, { relu: true });
      return tf.sum(tf.square(r.y));
    }, [gamma, beta]);
    tf.dispose([value, grads]);
  };
  assertStepLeavesNothing(step);
  tf.dispose([x, gamma, beta]);
});

test.run();
