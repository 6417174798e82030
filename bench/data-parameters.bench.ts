/**
 * Cost of the data-parameter step at WebVision scale (2.4M instances, joint mode): loss + gradients + sparse
 * momentum update + clamp, on random logits. Prints ms per step and the memory the tables take.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend, parseBackendName } from '../src/runtime/backend.js';
import { DataParameters } from '../src/data-parameters/data-parameters.js';
import { Rng } from '../src/util/rng.js';
import type { BenchContext } from './run.js';

export const names = ['data-parameters-step'];

export async function run(ctx: BenchContext): Promise<void> {
  const backend = await initBackend(parseBackendName(ctx.backend), { log: null });
  const numInstances = Number(ctx.options['instances'] ?? 2_400_000);
  const numClasses = 1000;
  const batch = 256;
  const rng = new Rng(1);
  const bytesBefore = tf.memory().numBytes;
  const dp = new DataParameters({
    numClasses,
    numInstances,
    mode: 'joint',
    class: { init: 1, lr: 0.1, weightDecay: 1e-4 },
    instance: { init: 1, lr: 0.8, weightDecay: 1e-8 },
  });
  const logits = tf.randomNormal<tf.Rank.R2>([batch, numClasses], 0, 3, 'float32', 1);
  const step = () => {
    const y = Int32Array.from({ length: batch }, () => rng.int(numClasses));
    const ids = Int32Array.from({ length: batch }, () => rng.int(numInstances));
    const { value, grads } = tf.variableGrads(() => dp.loss(logits, y, ids));
    dp.applyGradients(grads);
    value.dataSync();
    tf.dispose([value, grads]);
  };
  for (let i = 0; i < 2; i++) step();
  const times: number[] = [];
  for (let i = 0; i < 10; i++) {
    const t0 = performance.now();
    step();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const stateBytes = tf.memory().numBytes - bytesBefore - logits.size * 4;
  ctx.emit({
    bench: 'data-parameters-step',
    backend: backend.name,
    value: times[Math.floor(times.length / 2)]!,
    unit: 'ms',
    instances: numInstances,
    batch,
    stateMiB: stateBytes / 2 ** 20,
  });
  logits.dispose();
  dp.dispose();
}
