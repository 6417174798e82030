/**
 * `npm run bench -- --only depthwise-step [--backend NAME] [--shape N,H,W,C] [--steps 3]`: whether a MobileNet-style
 * (depthwise-separable) backbone would train faster than plain 3x3 convs on this backend. Median CPU milliseconds of
 * one forward + weight-gradient pass of a 3x3 conv C→C against a 3x3 depthwise conv followed by a 1x1 conv C→C (7x
 * fewer multiply-adds at C = 32), the depthwise conv alone, and its input gradient, at the stride-4 feature size of a
 * 1248x384 batch of 8 by default. CPU time of this process, so that other jobs on the machine matter less.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend, parseBackendName } from '../src/runtime/backend.js';
import { median } from './step-timing.js';
import type { BenchContext } from './run.js';

export const names = ['depthwise-step'];

export async function run(ctx: BenchContext, _only: string | null): Promise<void> {
  const choice = await initBackend(parseBackendName(ctx.backend), { log: null });
  const shape = (ctx.options['shape'] ?? '8,96,312,32').split(',').map(Number);
  if (shape.length !== 4 || shape.some((v) => !(Number.isInteger(v) && v > 0))) throw new Error(`--shape must be N,H,W,C, got '${ctx.options['shape']}'`);
  const [n, h, w, c] = shape as [number, number, number, number];
  const steps = Number(ctx.options['steps'] ?? 3);
  const x = tf.randomNormal<tf.Rank.R4>([n, h, w, c], 0, 1, 'float32', 1);
  const full = tf.variable<tf.Rank.R4>(tf.randomNormal<tf.Rank.R4>([3, 3, c, c], 0, 0.1, 'float32', 2));
  const dw = tf.variable<tf.Rank.R4>(tf.randomNormal<tf.Rank.R4>([3, 3, c, 1], 0, 0.1, 'float32', 3));
  const pw = tf.variable<tf.Rank.R4>(tf.randomNormal<tf.Rank.R4>([1, 1, c, c], 0, 0.1, 'float32', 4));
  const variants: [string, () => void][] = [
    ['conv 3x3', () => tf.dispose(tf.variableGrads(() => tf.conv2d(x, full, 1, 'same').square().mean(), [full]))],
    ['depthwise 3x3 + conv 1x1', () => tf.dispose(tf.variableGrads(() => tf.conv2d(tf.depthwiseConv2d(x, dw, 1, 'same'), pw, 1, 'same').square().mean(), [dw, pw]))],
    ['depthwise 3x3', () => tf.dispose(tf.variableGrads(() => tf.depthwiseConv2d(x, dw, 1, 'same').square().mean(), [dw]))],
    ['depthwise 3x3, input gradient', () => tf.dispose(tf.grad((v: tf.Tensor) => tf.depthwiseConv2d(v as tf.Tensor4D, dw, 1, 'same').square().mean())(x))],
  ];
  try {
    for (const [what, f] of variants) {
      f(); // warm-up
      const cpu: number[] = [];
      for (let i = 0; i < steps; i++) {
        const c0 = process.cpuUsage();
        f();
        const d = process.cpuUsage(c0);
        cpu.push((d.user + d.system) / 1000);
      }
      ctx.emit({ bench: 'depthwise-step', backend: choice.name, value: Math.round(median(cpu)), unit: 'CPU ms (forward + gradient)', what, shape: `${n}x${h}x${w}x${c}`, steps });
    }
  } finally {
    tf.dispose([x, full, dw, pw]);
  }
}
