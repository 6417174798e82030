/**
 * The threaded-SIMD wasm build (src/runtime/wasm-training/threads.ts): the default thread count, the log line, a trap
 * that must throw instead of hanging, processes that exit on their own, and the same numbers as the single-threaded
 * build. Everything that starts a threaded module runs in a child process with a time limit, so that a hang fails
 * the test instead of the test run.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describeWasmBuild, requestedWasmThreads, wasmThreadsChoice, wasmThreadsState } from '../src/runtime/wasm-training/threads.js';
import { assertClose } from './support/wasm-compare.js';
import { assertExitedOnItsOwn, runChild } from './support/child-process.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const backendUrl = pathToFileURL(path.join(here, '../src/runtime/backend.js')).href;
const threadsUrl = pathToFileURL(path.join(here, '../src/runtime/wasm-training/threads.js')).href;
const benchUrl = pathToFileURL(path.join(here, '../bench/train-step.bench.js')).href;
function withThreadsEnv<T>(value: string | undefined, f: () => T): T {
  const saved = process.env['DATA_PARAMS_WASM_THREADS'];
  if (value === undefined) delete process.env['DATA_PARAMS_WASM_THREADS'];
  else process.env['DATA_PARAMS_WASM_THREADS'] = value;
  try {
    return f();
  } finally {
    if (saved === undefined) delete process.env['DATA_PARAMS_WASM_THREADS'];
    else process.env['DATA_PARAMS_WASM_THREADS'] = saved;
  }
}

test('thread count: one per available core unless all are busy (at most 8), DATA_PARAMS_WASM_THREADS=N chooses', () => {
  const byDefault = withThreadsEnv(undefined, wasmThreadsChoice);
  const cores = os.availableParallelism();
  if (cores === 1) assert.equal(byDefault, { threads: 1, why: 'one core available' });
  else if (byDefault.threads === 1) assert.match(byDefault.why, /^load average [\d.]+ >= \d+ cores, threads would wait on each other/);
  else assert.equal(byDefault, { threads: Math.min(8, cores), why: `${cores} cores` });
  // Decided once per process.
  assert.equal(withThreadsEnv(undefined, wasmThreadsChoice), byDefault);
  assert.equal(withThreadsEnv('1', wasmThreadsChoice), { threads: 1, why: 'DATA_PARAMS_WASM_THREADS=1' });
  assert.is(withThreadsEnv('3', requestedWasmThreads), 3);
  assert.is(withThreadsEnv('64', requestedWasmThreads), 8);
  assert.throws(() => withThreadsEnv('two', requestedWasmThreads), /DATA_PARAMS_WASM_THREADS must be a positive integer, got 'two'/);
  assert.throws(() => withThreadsEnv('0', requestedWasmThreads), /positive integer/);
});

test('describeWasmBuild matches the state of this process', () => {
  const state = wasmThreadsState();
  if (state.fallback === null) assert.is(describeWasmBuild(), `threaded SIMD build, ${state.threads} threads`);
  else assert.is(describeWasmBuild(), `single-threaded SIMD build: ${state.fallback}`);
});

test('by default a child trains on the threaded build (unless all cores are busy), logs which, and exits on its own', async () => {
  const script = `
    import * as tf from '@tensorflow/tfjs';
    const { initBackend } = await import(${JSON.stringify(backendUrl)});
    const { wasmThreadsState } = await import(${JSON.stringify(threadsUrl)});
    const choice = await initBackend('wasm', { log: null });
    const w = tf.variable(tf.randomNormal([3, 3, 4, 8], 0, 0.3, 'float32', 1));
    const x = tf.randomNormal([4, 16, 16, 4], 0, 1, 'float32', 2);
    const opt = tf.train.sgd(0.05);
    const losses = [];
    for (let i = 0; i < 3; i++) {
      const loss = opt.minimize(() => tf.mean(tf.square(tf.sub(tf.relu(tf.conv2d(x, w, 1, 'same')), 0.5))), true);
      losses.push(loss.dataSync()[0]);
      loss.dispose();
    }
    process.stdout.write(JSON.stringify({ message: choice.message, state: wasmThreadsState(), losses }));
  `;
  const child = await runChild(script, { DATA_PARAMS_WASM_THREADS: null });
  assertExitedOnItsOwn(child);
  const out = JSON.parse(child.stdout) as { message: string; state: { threads: number; fallback: string | null }; losses: number[] };
  // The child decides from the load average at its own start: threaded, or single-threaded saying why.
  const cores = os.availableParallelism();
  if (out.state.fallback === null) {
    assert.is(out.state.threads, Math.min(8, cores));
    assert.is(out.message, `backend: wasm (requested), threaded SIMD build, ${out.state.threads} threads`);
  } else {
    assert.is(out.state.threads, 1);
    assert.match(out.message, cores === 1 ? /single-threaded SIMD build: one core available$/ : /single-threaded SIMD build: load average /);
  }
  assert.ok(out.losses[2]! < out.losses[0]!, `losses ${out.losses}`);
});

test('DATA_PARAMS_WASM_THREADS=1: the single-threaded build, and the log line says why', async () => {
  const script = `
    const { initBackend } = await import(${JSON.stringify(backendUrl)});
    const choice = await initBackend('wasm', { log: null });
    process.stdout.write(JSON.stringify({ message: choice.message }));
  `;
  const child = await runChild(script, { DATA_PARAMS_WASM_THREADS: '1' });
  assertExitedOnItsOwn(child);
  assert.is((JSON.parse(child.stdout) as { message: string }).message, 'backend: wasm (requested), single-threaded SIMD build: DATA_PARAMS_WASM_THREADS=1');
});

test('a trap in the threaded build throws WasmThreadsError, later ops throw it at once, and the process exits', async () => {
  // A tensor registered with a pointer that runs past the end of wasm memory by one row: the matMul traps in
  // whichever pool thread reads that row. Before the guard, the next op waited forever on the pool's mutex (the
  // trapped main thread still held it) or the crashed worker killed the process with exit code 7.
  const script = `
    import * as tf from '@tensorflow/tfjs';
    const { initBackend } = await import(${JSON.stringify(backendUrl)});
    const { wasmThreadsState } = await import(${JSON.stringify(threadsUrl)});
    await initBackend('wasm', { log: null });
    const backend = tf.backend();
    const M = 256, K = 64;
    const x = tf.ones([M, K]);
    const w = tf.ones([K, 64]);
    const id = backend.dataIdMap.get(x.dataId).id;
    backend.wasm.tfjs.disposeData(id);
    backend.wasm.tfjs.registerTensor(id, x.size, backend.wasm.HEAPU8.length - x.size * 4 + K * 4);
    const outcomes = [];
    for (const op of [() => tf.matMul(x, w), () => tf.matMul(tf.ones([M, K]), w), () => tf.add(tf.ones([4]), 1)]) {
      const t0 = Date.now();
      try {
        op().dataSync();
        outcomes.push({ threw: false });
      } catch (e) {
        outcomes.push({ threw: true, name: e.name, message: e.message, ms: Date.now() - t0 });
      }
    }
    // Give a crashed worker's error event the chance to arrive (it used to kill the process here).
    await new Promise((r) => setTimeout(r, 200));
    const threads = wasmThreadsState().threads;
    // Removing the broken backend must neither throw nor enter the module.
    tf.removeBackend('wasm');
    process.stdout.write(JSON.stringify({ threads, outcomes, removed: tf.engine().registry['wasm'] === undefined }));
  `;
  const child = await runChild(script, { DATA_PARAMS_WASM_THREADS: '2' });
  assertExitedOnItsOwn(child);
  const out = JSON.parse(child.stdout) as {
    threads: number;
    outcomes: { threw: boolean; name?: string; message?: string; ms?: number }[];
    removed: boolean;
  };
  assert.is(out.threads, 2);
  assert.ok(out.removed);
  for (const [k, o] of out.outcomes.entries()) {
    assert.ok(o.threw, `op ${k} did not throw`);
    assert.is(o.name, 'WasmThreadsError', `op ${k}: ${o.message}`);
    assert.match(o.message!, /^the threaded wasm build failed \((RuntimeError: memory access out of bounds|a thread of the pool crashed)/);
    assert.match(o.message!, /DATA_PARAMS_WASM_THREADS=1/);
  }
  // Later ops fail without entering the module.
  assert.ok(out.outcomes[2]!.ms! < 1000, `the third op took ${out.outcomes[2]!.ms} ms to fail`);
});

test('the threaded build computes exactly the loss and gradients of the single-threaded one', async () => {
  // Large enough that XNNPACK splits the convolutions and GEMMs between threads. At 2x64x128 the Winograd choice
  // once depended on the thread count (1 thread: from 2048 pixels; threads: from 100M multiply-adds), so the two
  // builds' numbers differed and a run resumed with another thread count did not continue exactly.
  const script = `
    import * as tf from '@tensorflow/tfjs';
    const { initBackend } = await import(${JSON.stringify(backendUrl)});
    const { wasmThreadsState } = await import(${JSON.stringify(threadsUrl)});
    const { ReferenceNetwork } = await import(${JSON.stringify(benchUrl)});
    await initBackend('wasm', { log: null });
    const net = new ReferenceNetwork(5, 2, 64, 128);
    const { value, grads } = tf.variableGrads(() => net.loss(), net.variables);
    const out = [[value.dataSync()[0]], ...net.variables.map((v) => Array.from(grads[v.name].dataSync()))];
    process.stdout.write(JSON.stringify({ threads: wasmThreadsState().threads, out }));
  `;
  const [single, threaded] = await Promise.all([runChild(script, { DATA_PARAMS_WASM_THREADS: '1' }), runChild(script, { DATA_PARAMS_WASM_THREADS: '2' })]);
  assertExitedOnItsOwn(single);
  assertExitedOnItsOwn(threaded);
  const a = JSON.parse(single.stdout) as { threads: number; out: number[][] };
  const b = JSON.parse(threaded.stdout) as { threads: number; out: number[][] };
  assert.is(a.threads, 1);
  assert.is(b.threads, 2);
  assertClose(
    b.out.map((o) => Float32Array.from(o)),
    a.out.map((o) => Float32Array.from(o)),
    0,
    'threaded vs single-threaded gradients',
  );
});

test.run();
