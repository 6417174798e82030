import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/runtime/backend.js';
import { ParamStore, heNormal } from '../src/nn/param-store.js';
import { Rng } from '../src/util/rng.js';

test.before(async () => {
  await initBackend('cpu', { log: null });
});

test('param store: seeded initialisation in construction order, logical names, snapshot/restore with clear errors', () => {
  const a = new ParamStore(7);
  const b = new ParamStore(new Rng(7));
  for (const s of [a, b]) {
    s.heNormal('conv/kernel', [3, 3, 2, 4], 18);
    s.constant('conv/bias', [4], 0);
    s.normal('head/kernel', [2, 5], 0.01);
    s.buffer('bn/running_var', [4], 1);
  }
  // the same draws as a fresh Rng(7): 72 normals · √(2/18), then 10 normals · 0.01
  const rng = new Rng(7);
  const kernel = heNormal(18)(72, rng);
  const head = Array.from({ length: 10 }, () => rng.normal() * 0.01);
  assert.equal(Array.from(a.trainable.get('conv/kernel')!.dataSync()), Array.from(kernel));
  assert.equal(Array.from(b.trainable.get('head/kernel')!.dataSync()), Array.from(Float32Array.from(head)));
  assert.equal(a.snapshot(), b.snapshot());
  assert.equal([...a.trainable.keys()], ['conv/kernel', 'conv/bias', 'head/kernel']);
  assert.equal([...a.buffers.keys()], ['bn/running_var']);
  assert.is(a.parameterCount, 72 + 4 + 10);
  assert.is(a.logicalName(a.trainable.get('head/kernel')!), 'head/kernel');
  assert.is(a.trainableList.length, 3);
  assert.throws(() => a.param('conv/bias', [1], () => new Float32Array(1)), /'conv\/bias' defined twice/);
  const snap = a.snapshot();
  snap['bn/running_var'] = new Float32Array([2, 3, 4, 5]);
  b.restore(snap);
  assert.equal(Array.from(b.buffers.get('bn/running_var')!.dataSync()), [2, 3, 4, 5]);
  delete snap['conv/bias'];
  assert.throws(() => b.restore(snap, 'ck.bin'), /ck\.bin: missing parameter 'conv\/bias'/);
  assert.throws(() => b.restore({ ...a.snapshot(), 'conv/bias': new Float32Array(3) }, 'ck.bin'), /'conv\/bias' has 3 values, expected 4/);
  const n = tf.memory().numTensors;
  a.dispose();
  b.dispose();
  assert.is(tf.memory().numTensors, n - 8);
});

test.run();
