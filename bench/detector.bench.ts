/**
 * detector-step: time of one SSD training step (light backbone, 384x128, batch 8 by default) with per-box σ and
 * without (plain SSD), measured alternately so that both see the same machine load. Emits ms/step with σ, the time
 * without, and their ratio (the paper's claim: σ is free; goal ≤ 1.03).
 * Options: --steps N (default 6 per variant), --batch N, --width W --height H, --config FILE (the model of a detector
 * config, at its input size and batch size unless given), --profile (kernel times of one step with σ, to stderr;
 * `--profile layers`: by kernel and input shapes, i.e. per layer).
 */
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { initBackend, parseBackendName } from '../src/runtime/backend.js';
import { DataParameters } from '../src/data-parameters/data-parameters.js';
import { Rng } from '../src/util/rng.js';
import { buildSSD, type SSDSpec } from '../detection/model/build.js';
import { ModelOptimizer } from '../src/nn/optimizer.js';
import { trainStep } from '../detection/train/trainer.js';
import { DETECTION_INSTANCE_DEFAULTS } from '../detection/config.js';
import type { Batch } from '../detection/train/batches.js';
import type { BenchContext } from './run.js';
import { readDetectorConfig } from '../detection/config.js';
import { median, profileKernels } from './step-timing.js';

export const names = ['detector-step'];

function randomBatch(rng: Rng, B: number, W: number, H: number): Batch {
  const x = new Float32Array(B * H * W * 3);
  for (let i = 0; i < x.length; i++) x[i] = rng.uniform(-1, 1);
  const images: Batch['images'] = [];
  const ids: number[] = [];
  let id = 0;
  for (let b = 0; b < B; b++) {
    const boxes: number[] = [];
    const n = 1 + rng.int(5);
    for (let k = 0; k < n; k++) {
      const h = rng.uniform(0.1, 0.6), w = (h * rng.uniform(1.2, 2.2) * H) / W;
      const x1 = rng.uniform(0, 1 - w), y1 = rng.uniform(0, 1 - h);
      boxes.push(x1, y1, x1 + w, y1 + h);
      ids.push(id++);
    }
    images.push({ boxes: Float32Array.from(boxes), labels: new Int32Array(n).fill(1), ignore: new Float32Array(0) });
  }
  return { x, images, instanceIds: Int32Array.from(ids) };
}

export async function run(ctx: BenchContext, _only: string | null): Promise<void> {
  const backend = await initBackend(parseBackendName(ctx.backend), { log: null });
  const steps = Number(ctx.options['steps'] ?? 6);
  const configFile = ctx.options['config'];
  const config = configFile === undefined ? null : await readDetectorConfig(configFile);
  const B = Number(ctx.options['batch'] ?? config?.train.batchSize ?? 8);
  const W = Number(ctx.options['width'] ?? config?.model.inputSize.width ?? 384);
  const H = Number(ctx.options['height'] ?? config?.model.inputSize.height ?? 128);
  const spec: SSDSpec = config
    ? { ...config.model, inputSize: { width: W, height: H } }
    : {
        backbone: { type: 'light' },
        inputSize: { width: W, height: H },
        classNames: ['car'],
        anchors: { minScale: 0.12, maxScale: 0.75, aspectRatios: [1, 1.6, 2.4] },
      };
  const rng = new Rng(1);
  const batches = Array.from({ length: 3 }, () => randomBatch(rng, B, W, H));
  const numInstances = Math.max(...batches.map((b) => Math.max(...b.instanceIds))) + 1;
  const variants = [false, true].map((withSigma) => ({
    withSigma,
    model: buildSSD(spec, 1),
    opt: new ModelOptimizer({ name: 'sgd', momentum: 0.9 }),
    dp: withSigma ? new DataParameters({ numClasses: 2, numInstances, mode: 'instance', instance: DETECTION_INSTANCE_DEFAULTS }) : null,
    times: [] as number[],
    cpuTimes: [] as number[],
  }));
  // One warm-up step each, then alternate.
  for (const v of variants) trainStep(v.model, v.opt, v.dp, batches[0]!, 1e-3);
  for (let s = 0; s < steps; s++) {
    for (const v of s % 2 === 0 ? variants : [...variants].reverse()) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      trainStep(v.model, v.opt, v.dp, batches[s % batches.length]!, 1e-3);
      const cpu = process.cpuUsage(c0);
      v.times.push(performance.now() - t0);
      v.cpuTimes.push((cpu.user + cpu.system) / 1000);
    }
  }
  const profile = ctx.options['profile'];
  if (profile === 'true' || profile === 'layers') {
    const v = variants[1]!;
    const rows = await profileKernels(() => trainStep(v.model, v.opt, v.dp, batches[0]!, 1e-3), profile === 'layers');
    const total = rows.reduce((a, r) => a + r[1], 0);
    process.stderr.write(`profile: ${total.toFixed(0)} ms in kernels\n`);
    for (const [name, ms, count] of rows.slice(0, profile === 'layers' ? 60 : 25)) {
      process.stderr.write(`${name.padEnd(32)} ${ms.toFixed(1).padStart(9)} ms ${((100 * ms) / total).toFixed(1).padStart(5)}%  x${count}\n`);
    }
  }
  const without = median(variants[0]!.times), withS = median(variants[1]!.times);
  ctx.emit({
    bench: 'detector-step',
    backend: backend.name,
    value: Math.round(withS),
    unit: 'ms/step (with σ, median)',
    withoutSigmaMs: Math.round(without),
    ratio: Number((withS / without).toFixed(3)),
    goal: '≤ 1.03',
    batch: B,
    input: `${W}x${H}`,
    steps,
    // CPU time of this process per step (with σ): less sensitive to other jobs on a shared machine than wall time.
    cpuMsMedian: Math.round(median(variants[1]!.cpuTimes)),
    ...(configFile === undefined ? {} : { config: configFile, backbone: spec.backbone }),
    loadAverage1m: Number(os.loadavg()[0]!.toFixed(2)),
  });
  for (const v of variants) {
    v.model.dispose();
    v.opt.dispose();
    v.dp?.dispose();
  }
  tf.disposeVariables();
}
