import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/runtime/backend.js';
import { WasmHeapExhaustedError } from '../src/runtime/wasm-training/index.js';
import { assertExitedOnItsOwn, runChild } from './support/child-process.js';

test.before(async () => {
  await initBackend('wasm', { log: null });
});
test.after(async () => {
  await initBackend('cpu', { log: null });
});

/** The error `f` throws (fails the test when it throws none). */
function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (err) {
    return err;
  }
  assert.unreachable('no error thrown');
  return null;
}

test('a tensor the wasm heap cannot hold: a WasmHeapExhaustedError naming the bytes and the kernel, and the backend goes on', () => {
  const held = tf.fill([2 ** 20], 1); // 4 MiB
  const tensors = tf.memory().numTensors;
  // 2^30 - 1 floats: 4 GiB - 4 bytes, more than wasm32's heap can ever hold (malloc returns 0 without growing it).
  const err = thrown(() => tf.fill([2 ** 30 - 1], 0));
  assert.instance(err, WasmHeapExhaustedError);
  const e = err as WasmHeapExhaustedError;
  assert.is(e.bytes, 4294967292);
  assert.equal(e.kernels.map((k) => k.name), ['Fill']);
  assert.match(e.message, /^wasm heap exhausted: needed 4294967292 bytes \(4096 MB\) for Fill \(\); the heap has grown to \d+ MB of its 4096 MB limit, \d+\.\d MB of it held by tensors/);
  assert.ok(e.liveBytes >= 2 ** 22 && e.liveBytes < e.heapBytes, `${e.liveBytes} bytes held, heap ${e.heapBytes}`);
  assert.is(tf.memory().numTensors, tensors);
  // Nothing was written at address 0: the allocator and later kernels still work.
  const sum = tf.tidy(() => tf.add(tf.ones([1000]), tf.range(0, 1000)).sum().dataSync()[0]);
  assert.is(sum, 1000 + (999 * 1000) / 2);
  tf.dispose(held);
});

test('a kernel output that fails names the kernel and its inputs, leaving the allocator sound; 4 GiB or more no longer wraps around to a small block', () => {
  // A heap grown past 256 MB and freed (never written), where the allocator itself, asked for 4 GiB - 128 KiB, broke.
  const backend = tf.backend() as unknown as { makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo; disposeData(id: object): boolean };
  backend.disposeData(backend.makeOutput([2 ** 26], 'float32').dataId);
  const [a, b] = [tf.ones([2 ** 15, 1]), tf.ones([1, 2 ** 15 - 1])];
  const err = thrown(() => tf.add(a, b)); // 4 GiB - 128 KiB
  assert.instance(err, WasmHeapExhaustedError);
  assert.equal((err as WasmHeapExhaustedError).kernels, [{ name: 'Add', inputs: 'a 32768x1, b 1x32767' }]);
  assert.match((err as Error).message, /for Add \(a 32768x1, b 1x32767\);/);
  // 2^30 + 2 floats: 4 GiB + 8 bytes, which malloc's i32 argument would have read as 8 bytes.
  const big = thrown(() => tf.fill([2 ** 30 + 2], 1));
  assert.instance(big, WasmHeapExhaustedError);
  assert.is((big as WasmHeapExhaustedError).bytes, 2 ** 32 + 8);
  assert.is(tf.tidy(() => tf.add(a.reshape([-1]), 2).sum().dataSync()[0]), 3 * 2 ** 15, 'the allocator still works');
  tf.dispose([a, b]);
});

for (const threads of ['1', '2']) {
  test(`tensors above 2 GiB of wasm heap: Slice, Transpose and Tile copy them right (${threads} thread${threads === '1' ? '' : 's'})`, async () => {
    // A fresh process: its heap grows past 2 GiB (reserved, not written: the pages stay unused) and never shrinks.
    const child = await runChild(
      `
      import * as tf from '@tensorflow/tfjs';
      import { initBackend } from '../src/runtime/backend.js';
      await initBackend('wasm', { log: null });
      const backend = tf.backend();
      const reserve = backend.makeOutput([2 ** 29 + 2 ** 20], 'float32'); // 2 GiB + 4 MiB, never touched
      const values = Float32Array.from({ length: 2 * 3 * 5 * 4 }, (_, i) => i - 7.5);
      const ops = (x) => [tf.slice(x, [1, 1, 2, 1], [1, 2, 3, 2]), tf.transpose(x, [0, 2, 1, 3]), tf.transpose(x, [3, 1, 0, 2]), tf.tile(x, [1, 2, 1, 3])];
      const x = tf.tensor4d(values, [2, 3, 5, 4]);
      const offset = backend.getMemoryOffset(x.dataId);
      const onWasm = ops(x).map((t) => Array.from(t.dataSync()));
      await tf.setBackend('cpu');
      const onCpu = ops(tf.tensor4d(values, [2, 3, 5, 4])).map((t) => Array.from(t.dataSync()));
      console.log(JSON.stringify({ above: offset >= 2 ** 31, same: JSON.stringify(onWasm) === JSON.stringify(onCpu), reserve: reserve.shape }));
      `,
      { DATA_PARAMS_WASM_THREADS: threads },
    );
    assertExitedOnItsOwn(child);
    assert.equal(JSON.parse(child.stdout.trim()), { above: true, same: true, reserve: [2 ** 29 + 2 ** 20] });
  });
}

test.run();
