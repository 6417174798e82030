import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs';
import { initBackend, parseBackendName } from '../src/runtime/backend.js';

test('auto picks the first backend that loads and says why faster ones were skipped', async () => {
  const lines: string[] = [];
  const choice = await initBackend('auto', { log: (l) => lines.push(l) });
  assert.is(lines.length, 1);
  assert.is(tf.getBackend(), choice.tfBackend);
  assert.match(lines[0]!, `backend: ${choice.name}`);
  // On a machine without libtensorflow the native packages are absent: their failure is reported, not thrown.
  for (const s of choice.skipped) assert.match(lines[0]!, s.name);
  if (choice.name === 'wasm') {
    assert.equal(
      choice.skipped.map((s) => s.name),
      ['tensorflow-gpu', 'tensorflow'],
    );
  }
});

test('an explicit backend loads or fails with its reason', async () => {
  const cpu = await initBackend('cpu', { log: null });
  assert.is(cpu.tfBackend, 'cpu');
  assert.is(tf.getBackend(), 'cpu');
  const wasm = await initBackend('wasm', { log: null });
  assert.is(wasm.tfBackend, 'wasm');
  let nativeError: Error | null = null;
  let native: Awaited<ReturnType<typeof initBackend>> | null = null;
  try {
    native = await initBackend('tensorflow', { log: null });
  } catch (err) {
    nativeError = err as Error;
  }
  // Either the native package is installed (a user's machine) or the error names the reason.
  if (native === null) assert.match(nativeError!.message, /tensorflow: /);
  await initBackend('cpu', { log: null });
});

test('unknown backend names are rejected with the list of valid ones', () => {
  assert.throws(() => parseBackendName('webgpu'), /unknown backend 'webgpu'.*auto, tensorflow-gpu, tensorflow, wasm, cpu/);
  assert.is(parseBackendName('wasm'), 'wasm');
});

test.run();
