/**
 * gemm.ts (exact float32 sums in k order, with or without fused multiply-adds) and the kernel pool (kernel-pool.ts): parallel parts give the same numbers
 * as one thread, a worker's error reaches the caller, the pool can be turned off, and processes still exit on their
 * own. Pool tests run in child processes on the threaded build with a time limit, so that a hang fails the test.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/runtime/backend.js';
import { gemmKernels } from '../src/runtime/wasm-training/gemm.js';
import { useFusedMultiplyAdd } from '../src/runtime/wasm-training/relaxed-simd.js';
import { heapOffset } from '../src/runtime/wasm-training/simd-kernels.js';
import type { BackendWasm } from '../src/runtime/wasm-training/wasm-kernel-utils.js';
import { Rng } from '../src/util/rng.js';
import { assertExitedOnItsOwn, runChild } from './support/child-process.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const url = (file: string): string => JSON.stringify(pathToFileURL(path.join(here, file)).href);
test.before(async () => {
  await initBackend('wasm', { log: null });
});
test.after(async () => {
  await initBackend('cpu', { log: null });
});

/**
 * float32 fma(a, b, c), correctly rounded: the double product of two floats is exact, and a double sum rounded to odd
 * and then to float32 rounds once (Boldo & Melquiond).
 */
function fma32(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const v = s - p;
  const error = p - (s - v) + (c - v); // the double sum's rounding error (Knuth's TwoSum)
  if (error === 0 || !Number.isFinite(s)) return Math.fround(s);
  const f = new Float64Array([s]);
  const bits = new BigUint64Array(f.buffer);
  if (error > 0 !== s > 0) bits[0]! -= 1n; // s is beyond the exact sum: truncate towards zero
  bits[0]! |= 1n;
  return Math.fround(f[0]!);
}

test('gemm.ts: every element of C is the float32 sum over k in order (exact), fused or not; any m, n = 8j or 8j + 4, both loop orders, accumulate', () => {
  const backend = tf.backend() as BackendWasm;
  const rng = new Rng(7);
  // [m, k, n, lda, ldb, ldc]: row strides wider than the rows too (A as a view of a wider matrix).
  const cases = [[1, 1, 4, 1, 4, 4], [3, 5, 8, 5, 8, 8], [5, 7, 12, 9, 12, 16], [8, 33, 32, 33, 40, 32], [13, 64, 20, 70, 20, 20]];
  const fmaSetting = process.env['DATA_PARAMS_WASM_FMA'];
  let fusedCases = 0;
  try {
    for (const fma of ['off', 'on']) {
      process.env['DATA_PARAMS_WASM_FMA'] = fma;
      for (const [[m, k, n, lda, ldb, ldc], columnMajor] of (cases as [number, number, number, number, number, number][]).flatMap(
        (c) => [[c, false], [c, true]] as [[number, number, number, number, number, number], boolean][],
      )) {
        const gemm = gemmKernels(backend, { lda, ldb, ldc, n, columnMajor });
        assert.ok(gemm !== null, 'the GEMM module instantiates');
        const A = Float32Array.from({ length: m * lda }, () => rng.normal());
        const B = Float32Array.from({ length: k * ldb }, () => rng.normal());
        const C0 = Float32Array.from({ length: m * ldc }, () => rng.normal());
        const [a, b] = [tf.tensor1d(A), tf.tensor1d(B)];
        for (const accumulate of [0, 1]) {
          // Each product rounded, then added (separate multiply and add), or rounded once with the sum (fused).
          const [unfused, fused] = [Float32Array.from(C0), Float32Array.from(C0)];
          for (let i = 0; i < m; i++) {
            for (let j = 0; j < n; j++) {
              let [sum, sumFused] = [0, 0];
              for (let s = 0; s < k; s++) {
                const [x, y] = [A[i * lda + s]!, B[s * ldb + j]!];
                sum = Math.fround(sum + Math.fround(x * y));
                sumFused = fma32(x, y, sumFused);
              }
              unfused[i * ldc + j] = accumulate ? Math.fround(C0[i * ldc + j]! + sum) : sum;
              fused[i * ldc + j] = accumulate ? Math.fround(C0[i * ldc + j]! + sumFused) : sumFused;
            }
          }
          const out = tf.tensor1d(C0); // a fresh copy of C0 to write into
          gemm.gemm(heapOffset(backend, a), heapOffset(backend, b), heapOffset(backend, out), m, k, accumulate);
          const got = out.dataSync();
          const equals = (expected: Float32Array): boolean => expected.every((v, i) => Object.is(got[i], v));
          const where = `m ${m} k ${k} n ${n} column-major ${columnMajor} accumulate ${accumulate} fma ${fma}`;
          if (fma === 'off' || !useFusedMultiplyAdd()) {
            assert.ok(equals(unfused), `${where}: the unfused sums`);
          } else {
            // V8 emits an FMA instruction where the CPU has one, else a multiply and an add.
            assert.ok(equals(fused) || equals(unfused), `${where}: the fused (or, without FMA instructions, unfused) sums`);
            if (equals(fused) && !equals(unfused)) fusedCases++;
          }
          out.dispose();
        }
        tf.dispose([a, b]);
      }
    }
  } finally {
    if (fmaSetting === undefined) delete process.env['DATA_PARAMS_WASM_FMA'];
    else process.env['DATA_PARAMS_WASM_FMA'] = fmaSetting;
  }
  // On this x64 development machine (FMA3), the fused sums differ from the unfused ones in most cases.
  if (useFusedMultiplyAdd() && process.arch === 'x64') assert.ok(fusedCases > 0, 'relaxed_madd runs as a fused multiply-add');
});

test('gemm.ts: A read with a k step (its transpose in place) gives the same sums as A row-major', () => {
  const backend = tf.backend() as BackendWasm;
  const rng = new Rng(11);
  for (const [m, k, n] of [[4, 9, 8], [12, 5, 12], [7, 16, 4]] as [number, number, number][]) {
    const A = Float32Array.from({ length: m * k }, () => rng.normal()); // row-major [m, k]
    const B = Float32Array.from({ length: k * n }, () => rng.normal());
    const AT = new Float32Array(k * m); // [k, m]: A's transpose
    for (let i = 0; i < m; i++) {
      for (let s = 0; s < k; s++) {
        AT[s * m + i] = A[i * k + s]!;
      }
    }
    const layouts: [string, Float32Array, { lda: number; aStep?: number }][] = [
      ['row-major', A, { lda: k }],
      ['transposed (aStep)', AT, { lda: 1, aStep: m }],
    ];
    const results = layouts.map(([, data, layout]) => {
      const gemm = gemmKernels(backend, { ...layout, ldb: n, ldc: n, n });
      assert.ok(gemm !== null);
      const [a, b, c] = [tf.tensor1d(data), tf.tensor1d(B), tf.zeros([m * n])];
      gemm.gemm(heapOffset(backend, a), heapOffset(backend, b), heapOffset(backend, c), m, k, 0);
      const out = c.dataSync().slice();
      tf.dispose([a, b, c]);
      return out as Float32Array;
    });
    for (let l = 1; l < layouts.length; l++) {
      assert.ok(results[l]!.every((v, i) => Object.is(v, results[0]![i])), `m ${m} k ${k} n ${n}: ${layouts[l]![0]} equals row-major`);
    }
  }
});

test('kernel pool: parts run on the threads, a worker error reaches the caller, -e scripts and processes exit', async () => {
  const script = `
    import * as tf from '@tensorflow/tfjs';
    const { initBackend } = await import(${url('../src/runtime/backend.js')});
    const { kernelPool } = await import(${url('../src/runtime/wasm-training/kernel-pool.js')});
    const { simdKernels, heapOffset } = await import(${url('../src/runtime/wasm-training/simd-kernels.js')});
    await initBackend('wasm', { log: null });
    const backend = tf.backend();
    const pool = kernelPool(backend);
    const kernels = simdKernels(backend);
    const n = 1 << 16;
    const src = tf.range(0, n, 1, 'float32');
    const dst = tf.zeros([n]);
    const [s, d] = [heapOffset(backend, src), heapOffset(backend, dst)];
    // Two halves, one per participant.
    pool.run(kernels, 'copyRows', [[s, d, 1, n / 2, 0, 0], [s + n * 2, d + n * 2, 1, n / 2, 0, 0]]);
    const copied = Array.from(dst.dataSync()).every((v, i) => v === i);
    let error = null;
    try {
      pool.run(kernels, 'copyRows', [[s, d, 1, 4, 0, 0], [0x7ffffff0, d, 1, 1024, 0, 0]]);
    } catch (e) {
      error = e.message;
    }
    pool.run(kernels, 'copyRows', [[s, d, 1, 4, 0, 0], [s, d + 64, 1, 4, 0, 0]]);
    process.stdout.write(JSON.stringify({ size: pool.size, copied, error, after: Array.from(dst.dataSync().slice(16, 20)) }));
  `;
  const child = await runChild(script, { DATA_PARAMS_WASM_THREADS: '2' });
  assertExitedOnItsOwn(child);
  const out = JSON.parse(child.stdout) as { size: number; copied: boolean; error: string | null; after: number[] };
  assert.is(out.size, 2);
  assert.ok(out.copied, 'both halves copied');
  assert.match(out.error ?? '', /^wasm kernel pool: 'copyRows' failed on a worker: RuntimeError: memory access out of bounds/);
  assert.equal(out.after, [0, 1, 2, 3], 'the pool still works after the error');
});

test('kernel pool worker: a job runs once, even when a notify arrives after it has run (no job without a new sequence number)', async () => {
  // The main thread publishes a job (SEQ) and then notifies; descheduled in between, its notify can reach a worker
  // that has already run the job and gone back to sleep. Here the worker is driven directly and woken by stray
  // notifies with SEQ unchanged: each would have rerun the job (its part computed twice, racing the main thread's
  // next kernels, and an extra DONE releasing a later job early).
  const script = `
    import { MessageChannel, Worker } from 'node:worker_threads';
    const protocol = await import(${url('../src/runtime/wasm-training/kernel-pool-protocol.js')});
    const { assemble, i32c, get, I32_ADD, I32_LOAD } = await import(${url('../src/runtime/wasm-training/simd-kernels.js')});
    const { SEQ, DONE, FAILED, STARTED, SLOTS, SLOT_INTS, controlInts } = protocol;
    // inc(p): memory[p] += 1 (i32)
    const I32_STORE = [0x36, 2, 0];
    const bytes = assemble([{ name: 'inc', params: 1, locals: [], body: [...get(0), ...get(0), ...I32_LOAD(0), ...i32c(1), ...I32_ADD, ...I32_STORE] }], true);
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const control = new SharedArrayBuffer(controlInts(1) * 4);
    const ctrl = new Int32Array(control);
    const { port1, port2 } = new MessageChannel();
    const worker = new Worker(new URL(${url('../src/runtime/wasm-training/kernel-pool-worker.js')}), { workerData: { memory, control, port: port2, index: 1 }, transferList: [port2], execArgv: [] });
    port1.postMessage({ id: 1, module: new WebAssembly.Module(bytes) });
    const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
    const waitDone = (n) => {
      for (const t0 = Date.now(); Atomics.load(ctrl, DONE) < n; ) {
        if (Date.now() - t0 > 20000) throw new Error('the worker did not answer');
        Atomics.wait(ctrl, DONE, Atomics.load(ctrl, DONE), 50);
      }
    };
    const slot = SLOTS + SLOT_INTS;
    const post = (seq) => {
      ctrl.set([1, 0, 1, 64], slot + 1); // module 1, function 0, one argument: byte 64
      Atomics.store(ctrl, slot, seq);
      Atomics.store(ctrl, DONE, 0);
      Atomics.store(ctrl, SEQ, seq);
      Atomics.notify(ctrl, SEQ);
    };
    const counter = () => new Int32Array(memory.buffer)[16];
    post(1);
    waitDone(1);
    const afterFirst = counter();
    // Late notifies, with the worker asleep between them (its spin lasts well under 100 ms).
    for (let i = 0; i < 5; i++) {
      sleep(100);
      Atomics.notify(ctrl, SEQ);
    }
    sleep(200);
    const afterStray = counter();
    const doneAfterStray = Atomics.load(ctrl, DONE);
    post(2);
    waitDone(1);
    const afterSecond = counter();
    const started = Atomics.load(ctrl, STARTED);
    const failed = Atomics.load(ctrl, FAILED);
    await worker.terminate();
    process.stdout.write(JSON.stringify({ afterFirst, afterStray, doneAfterStray, afterSecond, started, failed }));
  `;
  const child = await runChild(script, {});
  assertExitedOnItsOwn(child);
  const out = JSON.parse(child.stdout) as Record<string, number>;
  assert.equal(out, { afterFirst: 1, afterStray: 1, doneAfterStray: 1, afterSecond: 2, started: 1, failed: 0 });
});

test('pooled Relu, Square, Add, Sub and Multiply equal the built-ins bit for bit, with -0, infinities and both NaNs', async () => {
  const script = `
    import * as tf from '@tensorflow/tfjs';
    const { initBackend } = await import(${url('../src/runtime/backend.js')});
    const { setKernelPoolEnabled } = await import(${url('../src/runtime/wasm-training/kernel-pool.js')});
    await initBackend('wasm', { log: null });
    const n = 1 << 18; // large enough for the pooled paths
    const special = [-0, NaN, -1, 1, Infinity, -Infinity, 0, 2.5];
    const make = (seed) => {
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = i < 256 ? special[(i * seed) % 8] : Math.sin(i * seed) * 3;
      new Uint32Array(data.buffer)[7 * seed] = 0xffc00000; // a NaN with the sign bit set
      return tf.tensor1d(data);
    };
    const [a, b] = [make(1), make(3)];
    const ops = { relu: () => tf.relu(a), square: () => tf.square(a), add: () => tf.add(a, b), sub: () => tf.sub(a, b), mul: () => tf.mul(a, b) };
    const differences = {};
    for (const [name, op] of Object.entries(ops)) {
      setKernelPoolEnabled(false);
      const builtIn = new Uint32Array(op().dataSync().buffer.slice(0));
      setKernelPoolEnabled(true);
      const pooled = new Uint32Array(op().dataSync().buffer.slice(0));
      differences[name] = builtIn.reduce((d, v, i) => d + (v === pooled[i] ? 0 : 1), 0);
    }
    process.stdout.write(JSON.stringify(differences));
  `;
  const child = await runChild(script, { DATA_PARAMS_WASM_THREADS: '2' });
  assertExitedOnItsOwn(child);
  assert.equal(JSON.parse(child.stdout), { relu: 0, square: 0, add: 0, sub: 0, mul: 0 });
});

test('kernel pool: strided convs by tap GEMMs (forward split by rows, gradients by images and taps) give the same numbers on 2 threads as on one, batch 1 and 3', async () => {
  const script = `
    import * as tf from '@tensorflow/tfjs';
    const { initBackend } = await import(${url('../src/runtime/backend.js')});
    const { kernelPool, setKernelPoolEnabled } = await import(${url('../src/runtime/wasm-training/kernel-pool.js')});
    await initBackend('wasm', { log: null });
    const run = (batch) => tf.tidy(() => {
      const x = tf.randomNormal([batch, 21, 34, 16], 0, 1, 'float32', 1);
      const w = tf.randomNormal([3, 3, 16, 24], 0, 1, 'float32', 2);
      const f = (a, b) => tf.conv2d(a, b, 2, 'same');
      const dy = tf.randomNormal(f(x, w).shape, 0, 1, 'float32', 3);
      const [dx, dw] = tf.grads((a, b) => tf.sum(tf.mul(f(a, b), dy)))([x, w]);
      return [f(x, w), dx, dw].map((t) => Array.from(t.dataSync()));
    });
    const size = kernelPool(tf.backend())?.size ?? 1;
    const on = [run(1), run(3)];
    setKernelPoolEnabled(false);
    const off = [run(1), run(3)];
    process.stdout.write(JSON.stringify({ size, on, off }));
  `;
  const child = await runChild(script, { DATA_PARAMS_WASM_THREADS: '2' });
  assertExitedOnItsOwn(child);
  const { size, on, off } = JSON.parse(child.stdout) as { size: number; on: number[][][]; off: number[][][] };
  assert.is(size, 2);
  on.forEach((outputs, b) =>
    outputs.forEach((values, k) => {
      const [x, y] = [Float32Array.from(values), Float32Array.from(off[b]![k]!)];
      assert.ok(x.length > 0 && x.every((v, j) => Object.is(v, y[j])), `batch ${b === 0 ? 1 : 3}: output ${k} differs with the pool off`);
    }),
  );
});

test("2 threads: convs whose 'same' padding skips the input's end match cpu, and equal the pool-off numbers bit for bit", async () => {
  const script = `
    import * as tf from '@tensorflow/tfjs';
    const { initBackend } = await import(${url('../src/runtime/backend.js')});
    const { kernelPool, setKernelPoolEnabled } = await import(${url('../src/runtime/wasm-training/kernel-pool.js')});
    await initBackend('wasm', { log: null });
    // [x, filter, strides]: 3 and 5 channels (the built-in conv) and 8 -> 4 (the tap GEMMs), batch 2 and 3.
    const cases = [[[2, 9, 11, 3], [2, 3, 3, 5], [3, 1]], [[3, 10, 12, 5], [3, 2, 5, 3], [1, 3]], [[2, 9, 11, 8], [2, 2, 8, 4], [3, 2]]];
    const run = () => cases.map(([xs, fs, s]) => tf.tidy(() => {
      const x = tf.randomNormal(xs, 0, 1, 'float32', 1);
      const w = tf.randomNormal(fs, 0, 1, 'float32', 2);
      const f = (a, b) => tf.conv2d(a, b, s, 'same');
      const dy = tf.randomNormal(f(x, w).shape, 0, 1, 'float32', 3);
      const [dx, dw] = tf.grads((a, b) => tf.sum(tf.mul(f(a, b), dy)))([x, w]);
      const dwConv = tf.depthwiseConv2d(x, tf.slice(w, [0, 0, 0, 0], [fs[0], fs[1], fs[2], 1]), s, 'same');
      return [f(x, w), dx, dw, dwConv].map((t) => Array.from(t.dataSync()));
    }));
    const size = kernelPool(tf.backend())?.size ?? 1;
    const on = run();
    setKernelPoolEnabled(false);
    const off = run();
    await tf.setBackend('cpu');
    const cpu = run();
    process.stdout.write(JSON.stringify({ size, on, off, cpu }));
  `;
  const child = await runChild(script, { DATA_PARAMS_WASM_THREADS: '2' });
  assertExitedOnItsOwn(child);
  const { size, on, off, cpu } = JSON.parse(child.stdout) as { size: number; on: number[][][]; off: number[][][]; cpu: number[][][] };
  assert.is(size, 2);
  on.forEach((outputs, c) =>
    outputs.forEach((values, k) => {
      const [x, y, z] = [values, off[c]![k]!, cpu[c]![k]!];
      assert.ok(x.length > 0 && x.every((v, j) => Object.is(v, y[j])), `case ${c}: output ${k} differs with the pool off`);
      const scale = Math.max(1, ...z.map(Math.abs));
      const worst = Math.max(...x.map((v, j) => Math.abs(v - z[j]!)));
      assert.ok(worst <= 1e-4 * scale, `case ${c}: output ${k} differs from cpu by ${worst}`);
    }),
  );
});

test('kernel pool: a training step gives the same loss and gradients bit for bit with the pool on, off, and =off', async () => {
  const script = `
    import * as tf from '@tensorflow/tfjs';
    const { initBackend } = await import(${url('../src/runtime/backend.js')});
    const { kernelPool, setKernelPoolEnabled } = await import(${url('../src/runtime/wasm-training/kernel-pool.js')});
    const { ReferenceNetwork } = await import(${url('../bench/train-step.bench.js')});
    await initBackend('wasm', { log: null });
    const net = new ReferenceNetwork(3, 2, 64, 128);
    const step = () => {
      const { value, grads } = tf.variableGrads(() => net.loss(), net.variables);
      const out = [[value.dataSync()[0]], ...net.variables.map((v) => Array.from(grads[v.name].dataSync()))];
      tf.dispose([value, grads]);
      return out;
    };
    const on = step();
    const size = kernelPool(tf.backend())?.size ?? 1;
    setKernelPoolEnabled(false);
    const off = step();
    process.stdout.write(JSON.stringify({ size, on, off }));
  `;
  const [pooled, envOff] = await Promise.all([
    runChild(script, { DATA_PARAMS_WASM_THREADS: '2' }),
    runChild(script, { DATA_PARAMS_WASM_THREADS: '2', DATA_PARAMS_WASM_POOL: 'off' }),
  ]);
  assertExitedOnItsOwn(pooled);
  assertExitedOnItsOwn(envOff);
  const a = JSON.parse(pooled.stdout) as { size: number; on: number[][]; off: number[][] };
  const b = JSON.parse(envOff.stdout) as { size: number; on: number[][]; off: number[][] };
  assert.is(a.size, 2);
  assert.is(b.size, 1, 'DATA_PARAMS_WASM_POOL=off: no pool');
  for (const [what, other] of [['pool off', a.off], ['DATA_PARAMS_WASM_POOL=off', b.on]] as [string, number[][]][]) {
    assert.is(other.length, a.on.length);
    for (let i = 0; i < a.on.length; i++) {
      const [x, y] = [Float32Array.from(a.on[i]!), Float32Array.from(other[i]!)];
      assert.ok(x.every((v, j) => Object.is(v, y[j])), `${what}: output ${i} differs`);
    }
  }
});

test.run();
