/**
 * `npm run bench -- --only classifier-step [--backend NAME] [--batch 128] [--steps 10]`: the training step time of the
 * small Fashion-MNIST CNN without data parameters (curriculum none) and with instance + class σ (joint, the most
 * work), and their ratio (goal: ≤ 1.03). Medians over `steps` steps after two warm-up steps; the two variants are
 * interleaved so that load from other processes hits both alike. Because that noise is larger than the difference,
 * it also times the data-parameter work alone (joint loss on fixed logits + σ update, 60k instances) and reports
 * `dpOnlyRatio` = (step without σ + that time) / step without σ.
 */
import * as tf from '@tensorflow/tfjs';
import type { BenchContext } from './run.js';
import { initBackend, parseBackendName } from '../src/runtime/backend.js';
import { DataParameters } from '../src/data-parameters/data-parameters.js';
import type { CurriculumMode } from '../src/data-parameters/data-parameters.js';
import { Rng } from '../src/util/rng.js';
import { smallCnn } from '../classification/models/models.js';
import { InMemoryImageData } from '../classification/input/image-data.js';
import { ClassifierTrainer, DEFAULT_TRAINER_CONFIG } from '../classification/training/trainer.js';

export const names = ['classifier-step'];

const N = 2048;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function run(ctx: BenchContext, _only: string | null): Promise<void> {
  const choice = await initBackend(parseBackendName(ctx.backend), { log: null });
  const batch = Number(ctx.options['batch'] ?? 128);
  const steps = Number(ctx.options['steps'] ?? 10);
  const rng = new Rng(1);
  const pixels = new Uint8Array(N * 28 * 28).map(() => rng.int(256));
  const labels = Int32Array.from({ length: N }, () => rng.int(10));
  const data = new InMemoryImageData(
    { pixels, height: 28, width: 28, channels: 1 },
    Int32Array.from({ length: N }, (_, i) => i),
    labels,
    10,
    Array.from({ length: 10 }, (_, i) => String(i)),
    { mean: [0.286], std: [0.353] },
    { pad: 2, flip: true },
  );
  const setups = (['none', 'joint'] as CurriculumMode[]).map((mode) => {
    const model = smallCnn({ numClasses: 10, seed: 0 });
    const dp = new DataParameters({ numClasses: 10, numInstances: N, mode, instance: { lr: 0.2 }, class: { weightDecay: 5e-4 } });
    const trainer = new ClassifierTrainer(
      { model, dp, train: data, val: null, noise: null, outDir: null, log: () => {}, progress: false, recordConfig: {} },
      { ...DEFAULT_TRAINER_CONFIG, batchSize: batch },
    );
    return { mode, model, dp, trainer, times: [] as number[] };
  });
  const x = await data.loadBatch(Int32Array.from({ length: batch }, (_, i) => i), rng);
  for (let s = 0; s < steps + 2; s++) {
    const ids = Int32Array.from({ length: batch }, () => rng.int(N));
    for (const setup of setups) {
      const t0 = performance.now();
      setup.trainer.trainStep(x, ids, 0.05);
      const dt = performance.now() - t0;
      if (s >= 2) setup.times.push(dt);
    }
  }
  const [base, withDp] = setups.map((s) => median(s.times)) as [number, number];
  // The data parameters' own share, measured alone so that it is not lost in the noise of the conv step: the joint
  // loss on fixed logits, its gradient and the σ update, for Fashion-MNIST's 60k instances.
  const dpAlone = new DataParameters({ numClasses: 10, numInstances: 60000, mode: 'joint', instance: { lr: 0.2 }, class: { weightDecay: 5e-4 } });
  const fixedLogits = tf.randomNormal<tf.Rank.R2>([batch, 10]);
  const dpTimes: number[] = [];
  for (let s = 0; s < steps + 2; s++) {
    const ids = Int32Array.from({ length: batch }, () => rng.int(60000));
    const ys = Int32Array.from(ids, (i) => labels[i % N]!);
    const t0 = performance.now();
    const { value, grads } = tf.variableGrads(() => dpAlone.loss(fixedLogits, ys, ids));
    value.dataSync();
    dpAlone.applyGradients(grads);
    tf.dispose([value, grads]);
    if (s >= 2) dpTimes.push(performance.now() - t0);
  }
  const dpMs = median(dpTimes);
  fixedLogits.dispose();
  dpAlone.dispose();
  const tensors = tf.memory().numTensors;
  ctx.emit({ bench: 'classifier-step', backend: choice.name, value: base, unit: 'ms/step', curriculum: 'none', batch, steps });
  ctx.emit({
    bench: 'classifier-step',
    backend: choice.name,
    value: withDp,
    unit: 'ms/step',
    curriculum: 'joint',
    batch,
    steps,
    ratio: withDp / base,
    goal: 1.03,
    dpOnlyMs: dpMs,
    dpOnlyRatio: (base + dpMs) / base,
    tensors,
  });
  for (const s of setups) {
    s.trainer.dispose();
    s.dp.dispose();
    s.model.store.dispose();
  }
}
