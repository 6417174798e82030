/**
 * `npm run bench -- --only vgg16-ssd-step [--batch 1] [--steps 2] [--config FILE] [--width W --height H]
 *   [--pytorch PYTHON] [--pytorch-threads N] [--profile]`
 *
 * Median milliseconds per training step of the SSD in configs/kitti-car-ssd.json (VGG16-reduced at 1248x384, the
 * config's anchors) on the chosen backend, and with `--pytorch PYTHON` the same network in PyTorch
 * (bench/reference/vgg16_ssd_step_pytorch.py), timed before and after ours so that both see the machine's load;
 * prints one line {"bench": "vgg16-ssd-step", "value": ours, "pytorch": theirs, "ratio": ours / theirs, ...}.
 *
 * The step is the network's (backbone, L2Norm on conv4_3, fc6 of rate 6, extra stages, one class and one box head per
 * feature map) with a fixed synthetic loss so that PyTorch can do the very same work: softmax cross-entropy over all
 * anchors against fixed random labels (~3% positive) plus smooth-L1 on the box outputs of the positives / (positives
 * + 1), momentum SGD (lr 1e-3, 0.9), fixed random input. The detector's own loss (matching, hard-negative mining, σ)
 * adds little to a step of this size: its cost is measured by `--only detector-step`.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend, parseBackendName } from '../src/runtime/backend.js';
import { wasmThreadsState } from '../src/runtime/wasm-training/index.js';
import { Rng } from '../src/util/rng.js';
import { readDetectorConfig } from '../detection/config.js';
import { buildSSD } from '../detection/model/build.js';
import type { SSD } from '../detection/model/ssd.js';
import type { BenchContext } from './run.js';
import { median, profileKernels, pytorchOption, timePytorch, type PytorchTiming } from './step-timing.js';

export const names = ['vgg16-ssd-step'];

const GOAL_RATIO = 1.5;

/** Fixed random input, labels and box targets for every anchor of `model`. */
class SyntheticBatch {
  readonly x: tf.Tensor4D;
  readonly labels: tf.Tensor2D;
  readonly positive: tf.Tensor2D;
  readonly boxTargets: tf.Tensor2D;
  readonly numPositive: number;

  constructor(model: SSD, batch: number, seed: number) {
    const rng = new Rng(seed);
    const { width, height } = model.inputSize;
    const px = new Float32Array(batch * height * width * 3);
    for (let i = 0; i < px.length; i++) px[i] = rng.uniform(-1, 1);
    this.x = tf.tensor4d(px, [batch, height, width, 3]);
    const n = batch * model.anchors.count;
    const labels = new Int32Array(n);
    const positive = new Float32Array(n);
    const box = new Float32Array(n * 4);
    let numPositive = 0;
    for (let i = 0; i < n; i++) {
      const label = rng.next() < 0.03 ? 1 + rng.int(model.numClasses - 1) : 0;
      labels[i] = label;
      positive[i] = label > 0 ? 1 : 0;
      if (label > 0) numPositive++;
      for (let k = 0; k < 4; k++) box[i * 4 + k] = rng.normal();
    }
    this.numPositive = numPositive;
    this.labels = tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), model.numClasses).toFloat()) as tf.Tensor2D;
    this.positive = tf.tensor2d(positive, [n, 1]);
    this.boxTargets = tf.tensor2d(box, [n, 4]);
  }

  loss(model: SSD): tf.Scalar {
    const p = model.forward(this.x, true);
    const logits = p.cls.reshape([-1, model.numClasses]);
    const boxes = p.loc.reshape([-1, 4]);
    const ce = tf.losses.softmaxCrossEntropy(this.labels, logits);
    const diff = tf.abs(tf.sub(boxes, this.boxTargets));
    // Huber with delta 1 without a comparison (tfjs-core has no gradient for Less): m = min(d, 1).
    const m = tf.minimum(diff, 1);
    const smoothL1 = tf.add(tf.mul(0.5, tf.square(m)), tf.sub(diff, m));
    return tf.add<tf.Scalar>(ce, tf.div(tf.sum(tf.mul(smoothL1, this.positive)), this.numPositive + 1));
  }

  dispose(): void {
    tf.dispose([this.x, this.labels, this.positive, this.boxTargets]);
  }
}

/**
 * This process's peak resident memory (PyTorch runs in a child process of its own) and, on wasm, the size the wasm
 * heap has grown to (it never shrinks: its peak).
 */
function memoryFigures(): { peakRssMB: number; wasmHeapMB?: number } {
  const peakRssMB = Math.round(process.resourceUsage().maxRSS / 1024);
  if (tf.getBackend() !== 'wasm') return { peakRssMB };
  const wasm = (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm;
  return { peakRssMB, wasmHeapMB: Math.round(wasm.HEAPU8.buffer.byteLength / 2 ** 20) };
}

function step(model: SSD, data: SyntheticBatch, optimizer: tf.Optimizer): number {
  const { value, grads } = tf.variableGrads(() => data.loss(model), model.params.trainableList);
  optimizer.applyGradients(grads);
  const loss = value.dataSync()[0] ?? NaN;
  tf.dispose([value, grads]);
  return loss;
}

export async function run(ctx: BenchContext, only: string | null): Promise<void> {
  if (only !== null && !names.includes(only)) return;
  const here = path.dirname(fileURLToPath(import.meta.url));
  const configFile = ctx.options['config'] ?? path.join(here, '..', '..', 'configs', 'kitti-car-ssd.json');
  const configured = (await readDetectorConfig(configFile)).model;
  // --width/--height: the same network at another input size (e.g. where the full size does not fit in memory).
  const spec = {
    ...configured,
    inputSize: { width: Number(ctx.options['width'] ?? configured.inputSize.width), height: Number(ctx.options['height'] ?? configured.inputSize.height) },
  };
  if (spec.backbone.type !== 'vgg16-reduced' || (spec.backbone.widthDivisor ?? 1) !== 1) {
    throw new Error(`${configFile}: vgg16-ssd-step needs a full-width vgg16-reduced backbone`);
  }
  const batch = Number(ctx.options['batch'] ?? 1);
  const steps = Number(ctx.options['steps'] ?? 2);
  const python = pytorchOption(ctx.options, ctx.backend);
  const choice = await initBackend(parseBackendName(ctx.backend), { log: null });
  const model = buildSSD(spec, 1);
  const referenceArgs = [
    '--steps', String(steps),
    '--batch', String(batch),
    '--width', String(spec.inputSize.width),
    '--height', String(spec.inputSize.height),
    '--per-cell', model.anchors.perCell.join(','),
    '--extra-stages', String(spec.backbone.extraStages ?? 4),
    '--fc6-dilation', String(spec.backbone.fc6Dilation ?? 6),
    '--classes', String(model.numClasses),
  ];
  const reference = python === null ? null : (): PytorchTiming => timePytorch(python.python, 'vgg16_ssd_step_pytorch.py', referenceArgs, python.threads);
  const data = new SyntheticBatch(model, batch, 1);
  const optimizer = tf.train.momentum(1e-3, 0.9);
  try {
    const before = reference === null ? null : reference();
    const times: number[] = [];
    const cpuTimes: number[] = [];
    const losses: number[] = [];
    let tensorsBefore = tf.memory().numTensors;
    try {
      for (let i = 0; i < 1 + steps; i++) {
        // The first step (warm-up) creates the optimiser's momentum accumulators: count tensors after it.
        if (i === 1) tensorsBefore = tf.memory().numTensors;
        const t0 = performance.now();
        const c0 = process.cpuUsage();
        losses.push(step(model, data, optimizer));
        const cpu = process.cpuUsage(c0);
        if (i >= 1) {
          times.push(performance.now() - t0);
          cpuTimes.push((cpu.user + cpu.system) / 1000);
        }
      }
    } catch (err) {
      // E.g. the wasm heap's 4 GB limit (a WasmHeapExhaustedError): the line still reports PyTorch's time.
      ctx.emit({
        bench: 'vgg16-ssd-step',
        backend: choice.name,
        value: null,
        unit: 'ms',
        error: `step ${losses.length + 1} failed: ${err instanceof Error ? err.message : String(err)}`,
        tensorBytes: tf.memory().numBytes,
        ...memoryFigures(),
        ...(before === null ? {} : { pytorch: before.value, pytorchCpuMs: before['cpuMsMedian'], pytorchVersion: before.version, pytorchThreads: before.threads }),
        batch,
        input: `${spec.inputSize.width}x${spec.inputSize.height}`,
        loadAverage1m: Number(os.loadavg()[0]?.toFixed(2)),
      });
      throw err;
    }
    const tensorsLeaked = tf.memory().numTensors - tensorsBefore;
    if (ctx.options['profile'] === 'true') {
      for (const [name, ms, count] of (await profileKernels(() => step(model, data, optimizer))).slice(0, 25)) {
        process.stderr.write(`${name.padEnd(32)} ${ms.toFixed(1).padStart(9)} ms  x${count}\n`);
      }
    }
    const value = median(times);
    const measured: Record<string, unknown> = {};
    if (reference !== null && before !== null) {
      const after = reference();
      const pytorch = (before.value + after.value) / 2;
      Object.assign(measured, {
        pytorch: Number(pytorch.toFixed(1)),
        ratio: Number((value / pytorch).toFixed(2)),
        goal: `≤ ${GOAL_RATIO}`,
        pytorchRuns: [before.value, after.value],
        pytorchVersion: after.version,
        pytorchThreads: after.threads,
        // Per-process CPU time (all threads): less sensitive to other jobs on a shared machine than wall time.
        pytorchCpuMs: after['cpuMsMedian'],
        pytorchAnchors: after['anchors'],
        pytorchParameters: after['parameters'],
      });
    }
    ctx.emit({
      bench: 'vgg16-ssd-step',
      backend: choice.name,
      value: Math.round(value),
      unit: 'ms',
      ...measured,
      batch,
      input: `${spec.inputSize.width}x${spec.inputSize.height}`,
      anchors: model.anchors.count,
      parameters: model.params.parameterCount,
      steps,
      minMs: Math.round(Math.min(...times)),
      maxMs: Math.round(Math.max(...times)),
      cpuMsMedian: Math.round(median(cpuTimes)),
      ...memoryFigures(),
      firstLoss: Number(losses[0]?.toFixed(4)),
      lastLoss: Number(losses.at(-1)?.toFixed(4)),
      tensorsLeaked,
      loadAverage1m: Number(os.loadavg()[0]?.toFixed(2)),
      ...(choice.name === 'wasm' ? { threads: wasmThreadsState().threads } : {}),
    });
  } finally {
    data.dispose();
    model.dispose();
    optimizer.dispose();
  }
}
