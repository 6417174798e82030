/**
 * `npm run bench -- --only train-step [--backend NAME] [--steps N] [--include-cpu] [--cpu-full-step] [--profile]
 *   [--pytorch PYTHON] [--pytorch-threads N] [--rounds R]` (wasm threads: one per core by default, at most 8, single-threaded when the load average
 * covers every core; DATA_PARAMS_WASM_THREADS=N chooses, 1 selects the single-threaded build)
 *
 * Median milliseconds per training step of a fixed reference network (so that the same work can be timed in other
 * frameworks): batch 8 of 128x384x3 NHWC; conv3x3 (no bias) + batch-norm (batch statistics, eps 1e-3) + ReLU with
 * 32 ch stride 2; 32 ch stride 1 then 2x2 max-pool; 64; 64 -> head A; 128 stride 2; 128 -> head B. Each head is a 3x3
 * conv with bias to 4 anchors x (4 classes + 4 box). Loss: softmax cross-entropy over all anchors against random labels
 * plus smooth-L1 on the box outputs of positive anchors / (positives + 1); momentum SGD (lr 0.01, 0.9); fixed random
 * input and targets.
 *
 * The pure-JS cpu backend (with `--backend cpu` or `--include-cpu`) needs ~20 minutes per step, so by default it
 * times only the forward pass and loss and reports that as a lower bound (`--cpu-full-step` times a whole step).
 *
 * `--pytorch PYTHON` also times the same network in PyTorch (bench/reference/train_step_pytorch.py, run by PYTHON,
 * e.g. python3 with Debian's python3-torch) before and after ours, with as many threads as cores (or N), and reports
 * the measured ratio; without it the ratio is to the fixed reference figure. `--rounds R` alternates the two R times
 * (PyTorch before and after each of our rounds of --steps steps) and reports the median of the rounds' ratios.
 */
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { initBackend, parseBackendName } from '../src/runtime/backend.js';
import { Rng } from '../src/util/rng.js';
import { batchNormTraining, wasmThreadsState } from '../src/runtime/wasm-training/index.js';
import type { BenchContext } from './run.js';
import { median, profileKernels, pytorchOption, timePytorch, type PytorchOption, type PytorchTiming } from './step-timing.js';

export const names = ['train-step'];

/** PyTorch 1.13 on a 2-core machine, 2 threads: a fixed reference figure (docs/wasm-training.md), not measured here. */
const PYTORCH_REFERENCE_MS = 250;
const BATCH = 8;
const HEIGHT = 128;
const WIDTH = 384;
const ANCHORS = 4;
const CLASSES = 4;

interface ConvBn {
  filter: tf.Variable;
  gamma: tf.Variable;
  beta: tf.Variable;
  stride: number;
}

interface Head {
  filter: tf.Variable;
  bias: tf.Variable;
}

/** The reference network's weights (He-initialised from a fixed seed) and fixed random data. */
export class ReferenceNetwork {
  readonly body: ConvBn[];
  readonly headA: Head;
  readonly headB: Head;
  readonly input: tf.Tensor4D;
  readonly labels: tf.Tensor2D; // one-hot, [anchors, CLASSES]
  readonly boxTargets: tf.Tensor2D; // [anchors, 4]
  readonly positive: tf.Tensor2D; // [anchors, 1], 1 where the label is not background (class 0)
  readonly numPositive: number;

  /**
   * `batchNorm`: 'fused' (default) is the toolkit's training batch norm + ReLU (`batchNormTraining`: one op, fused
   * wasm kernels); 'composed' writes the layer as tf.moments + tf.batchNorm + tf.relu, as plain tfjs code would.
   */
  constructor(seed = 1, batch = BATCH, height = HEIGHT, width = WIDTH, readonly batchNorm: 'fused' | 'composed' = 'fused') {
    const rng = new Rng(seed);
    const normal = (shape: number[], std: number): tf.Tensor => {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = rng.normal() * std;
      return tf.tensor(data, shape);
    };
    const convBn = (cin: number, cout: number, stride: number): ConvBn => ({
      filter: tf.variable(normal([3, 3, cin, cout], Math.sqrt(2 / (9 * cin)))),
      gamma: tf.variable(tf.ones([cout])),
      beta: tf.variable(tf.zeros([cout])),
      stride,
    });
    this.body = [convBn(3, 32, 2), convBn(32, 32, 1), convBn(32, 64, 1), convBn(64, 64, 1), convBn(64, 128, 2), convBn(128, 128, 1)];
    const head = (cin: number): Head => ({
      filter: tf.variable(normal([3, 3, cin, ANCHORS * (CLASSES + 4)], Math.sqrt(1 / (9 * cin)))),
      bias: tf.variable(tf.zeros([ANCHORS * (CLASSES + 4)])),
    });
    this.headA = head(64);
    this.headB = head(128);
    this.input = tf.tidy(() => normal([batch, height, width, 3], 1)) as tf.Tensor4D;
    const cellsA = (height / 4) * (width / 4);
    const cellsB = (height / 8) * (width / 8);
    const anchors = batch * (cellsA + cellsB) * ANCHORS;
    const labels = new Int32Array(anchors);
    const positive = new Float32Array(anchors);
    let numPositive = 0;
    for (let i = 0; i < anchors; i++) {
      // ~3% positives, like an SSD batch after matching.
      labels[i] = rng.next() < 0.03 ? 1 + rng.int(CLASSES - 1) : 0;
      positive[i] = labels[i]! > 0 ? 1 : 0;
      numPositive += positive[i]!;
    }
    this.numPositive = numPositive;
    this.labels = tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), CLASSES).toFloat()) as tf.Tensor2D;
    this.positive = tf.tensor2d(positive, [anchors, 1]);
    this.boxTargets = tf.tidy(() => normal([anchors, 4], 1)) as tf.Tensor2D;
  }

  get variables(): tf.Variable[] {
    return [
      ...this.body.flatMap((l) => [l.filter, l.gamma, l.beta]),
      this.headA.filter,
      this.headA.bias,
      this.headB.filter,
      this.headB.bias,
    ];
  }

  private convBnRelu(x: tf.Tensor4D, l: ConvBn): tf.Tensor4D {
    const y = tf.conv2d(x, l.filter as tf.Tensor4D, l.stride, 'same');
    if (this.batchNorm === 'fused') return batchNormTraining(y, l.gamma, l.beta, 1e-3, { relu: true }).y;
    const { mean, variance } = tf.moments(y, [0, 1, 2]);
    return tf.relu(tf.batchNorm(y, mean, variance, l.beta as tf.Tensor1D, l.gamma as tf.Tensor1D, 1e-3)) as tf.Tensor4D;
  }

  private static head(x: tf.Tensor4D, h: Head): tf.Tensor2D {
    const y = tf.conv2d(x, h.filter as tf.Tensor4D, 1, 'same').add<tf.Tensor4D>(h.bias);
    return y.reshape([-1, CLASSES + 4]);
  }

  /** The scalar loss of one forward pass. */
  loss(): tf.Scalar {
    const [l1, l2, l3, l4, l5, l6] = this.body as [ConvBn, ConvBn, ConvBn, ConvBn, ConvBn, ConvBn];
    let x = this.convBnRelu(this.input, l1);
    x = tf.maxPool<tf.Tensor4D>(this.convBnRelu(x, l2), 2, 2, 'valid');
    x = this.convBnRelu(x, l3);
    const a = this.convBnRelu(x, l4);
    x = this.convBnRelu(a, l5);
    const b = this.convBnRelu(x, l6);
    const out = tf.concat([ReferenceNetwork.head(a, this.headA), ReferenceNetwork.head(b, this.headB)], 0);
    const logits = out.slice([0, 0], [-1, CLASSES]);
    const boxes = out.slice([0, CLASSES], [-1, 4]);
    const ce = tf.losses.softmaxCrossEntropy(this.labels, logits);
    const diff = tf.abs(tf.sub(boxes, this.boxTargets));
    // Huber with delta 1 written without a comparison (tfjs-core has no gradient for Less): m = min(d, 1).
    const m = tf.minimum(diff, 1);
    const smoothL1 = tf.add(tf.mul(0.5, tf.square(m)), tf.sub(diff, m));
    const box = tf.div(tf.sum(tf.mul(smoothL1, this.positive)), this.numPositive + 1);
    return tf.add<tf.Scalar>(ce, box);
  }

  dispose(): void {
    tf.dispose([...this.variables, this.input, this.labels, this.boxTargets, this.positive]);
  }
}

/** One momentum-SGD step; returns the loss before the update. */
export function trainStep(net: ReferenceNetwork, optimizer: tf.Optimizer): number {
  const { value, grads } = tf.variableGrads(() => net.loss(), net.variables);
  optimizer.applyGradients(grads);
  const loss = value.dataSync()[0]!;
  tf.dispose([value, grads]);
  return loss;
}

/** Median ms per step of bench/reference/train_step_pytorch.py. */
function timeReference(python: PytorchOption, steps: number): PytorchTiming {
  return timePytorch(python.python, 'train_step_pytorch.py', ['--steps', String(steps)], python.threads);
}

async function benchBackend(ctx: BenchContext, requested: string): Promise<void> {
  const python = pytorchOption(ctx.options, requested);
  const steps = Number(ctx.options['steps'] ?? 5);
  const rounds = Number(ctx.options['rounds'] ?? 1);
  if (!(Number.isInteger(rounds) && rounds >= 1)) throw new Error(`--rounds must be a positive integer, got ${ctx.options['rounds']}`);
  const pytorchBefore = python === null ? null : timeReference(python, steps);
  const choice = await initBackend(parseBackendName(requested), { log: null });
  const net = new ReferenceNetwork();
  const optimizer = tf.train.momentum(0.01, 0.9);
  const common = {
    bench: 'train-step',
    backend: choice.name,
    unit: 'ms',
    pytorchReferenceMs: PYTORCH_REFERENCE_MS,
    pytorchReferenceNote:
      pytorchBefore === null
        ? 'PyTorch 1.13 CPU, 2 threads, a fixed reference figure; not measured in this run'
        : 'a fixed reference figure; pytorchMs is measured in this run',
    loadAverage1m: Number(os.loadavg()[0]!.toFixed(2)),
    ...(choice.name === 'wasm' ? { threads: wasmThreadsState().threads, threadsFallback: wasmThreadsState().fallback } : {}),
  };
  try {
    if (choice.name === 'cpu' && ctx.options['cpu-full-step'] !== 'true') {
      const t0 = performance.now();
      tf.tidy(() => net.loss().dataSync());
      const ms = performance.now() - t0;
      ctx.emit({ ...common, value: Math.round(ms), lowerBound: true, measured: 'forward pass and loss only; a step is longer' });
      return;
    }
    const stepsHere = choice.name === 'cpu' ? 1 : steps;
    const warmup = choice.name === 'cpu' ? 0 : 1;
    const times: number[] = [];
    const cpuTimes: number[] = [];
    const losses: number[] = [];
    let tensorsBefore = tf.memory().numTensors;
    // With --pytorch and --rounds R, ours and PyTorch alternate R times (PyTorch before and after each of our rounds),
    // and each round's ratio compares the minutes it ran in: on a shared machine both drift by up to 2x.
    const pytorchRuns = pytorchBefore === null ? [] : [pytorchBefore];
    const roundRatios: { wall: number; cpu: number }[] = [];
    for (let round = 0; round < rounds; round++) {
      const roundTimes: number[] = [];
      const roundCpu: number[] = [];
      for (let i = 0; i < (round === 0 ? warmup : 0) + stepsHere; i++) {
        // The optimiser creates its momentum accumulators in the first step: count tensors after it.
        if (round === 0 && i === 1) tensorsBefore = tf.memory().numTensors;
        const t0 = performance.now();
        const c0 = process.cpuUsage();
        losses.push(trainStep(net, optimizer));
        const cpu = process.cpuUsage(c0);
        if (round > 0 || i >= warmup) {
          roundTimes.push(performance.now() - t0);
          roundCpu.push((cpu.user + cpu.system) / 1000);
        }
      }
      times.push(...roundTimes);
      cpuTimes.push(...roundCpu);
      if (python !== null) {
        const before = pytorchRuns[pytorchRuns.length - 1]!;
        const after = timeReference(python, steps);
        pytorchRuns.push(after);
        roundRatios.push({
          wall: median(roundTimes) / ((before.value + after.value) / 2),
          cpu: median(roundCpu) / ((Number(before['cpuMsMedian']) + Number(after['cpuMsMedian'])) / 2),
        });
      }
    }
    if (ctx.options['profile'] === 'true') {
      for (const [name, ms, count] of (await profileKernels(() => trainStep(net, optimizer))).slice(0, 25)) {
        process.stderr.write(`${name.padEnd(32)} ${ms.toFixed(1).padStart(8)} CPU ms  x${count}\n`);
      }
    }
    const value = median(times);
    const measured: Record<string, unknown> = {};
    if (python !== null && roundRatios.length > 0) {
      const last = pytorchRuns[pytorchRuns.length - 1]!;
      const round2 = (x: number): number => Number(x.toFixed(2));
      Object.assign(measured, {
        pytorchMs: Number(median(pytorchRuns.map((r) => r.value)).toFixed(1)),
        pytorchRuns: pytorchRuns.map((r) => r.value),
        pytorchVersion: last.version,
        pytorchThreads: last.threads,
        // Medians over the rounds of (our median step) / (the mean of PyTorch's runs before and after it).
        ratioToPytorch: round2(median(roundRatios.map((r) => r.wall))),
        // Per-process CPU time (all threads): less sensitive to other jobs on a shared machine than wall time.
        pytorchCpuMs: Number(median(pytorchRuns.map((r) => Number(r['cpuMsMedian']))).toFixed(1)),
        ratioToPytorchCpu: round2(median(roundRatios.map((r) => r.cpu))),
        rounds: roundRatios.map((r) => ({ wall: round2(r.wall), cpu: round2(r.cpu) })),
      });
    }
    ctx.emit({
      ...common,
      value: Math.round(value),
      steps: stepsHere,
      minMs: Math.round(Math.min(...times)),
      maxMs: Math.round(Math.max(...times)),
      // CPU time of this process per step: less sensitive than wall time to other processes on the machine.
      cpuMsMedian: Math.round(median(cpuTimes)),
      ratioToPytorchReference: Number((value / PYTORCH_REFERENCE_MS).toFixed(2)),
      firstLoss: Number(losses[0]!.toFixed(4)),
      lastLoss: Number(losses[losses.length - 1]!.toFixed(4)),
      tensorsLeaked: tf.memory().numTensors - tensorsBefore,
      ...measured,
      ...(choice.name === 'cpu' ? { lowerBound: false } : {}),
    });
  } finally {
    net.dispose();
    optimizer.dispose();
  }
}

export async function run(ctx: BenchContext, only: string | null): Promise<void> {
  if (only !== null && !names.includes(only)) return;
  await benchBackend(ctx, ctx.backend);
  if (ctx.options['include-cpu'] === 'true' && ctx.backend !== 'cpu') await benchBackend(ctx, 'cpu');
}
