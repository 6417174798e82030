/** Builds small synthetic run directories (images made with sharp) for the visualize tests. */
import { mkdtempSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { Rng } from '../../src/util/rng.js';
import {
  RunRecorder,
  summariseSigma,
  sigmaGroups,
  noisyTopFraction,
  type TrackedInstance,
  type Difficulty,
} from '../../src/records/run-records.js';

/** The colour of the synthetic images: a dark green unlike any stroke colour or the grey placeholder. */
export const IMAGE_RGB = { r: 40, g: 110, b: 60 };

/** A flat-coloured PNG, so that drawn strokes are easy to find by colour. */
export async function solidPng(file: string, width: number, height: number): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await sharp({ create: { width, height, channels: 3, background: IMAGE_RGB } }).png().toFile(file);
}

export interface DetectionRunOptions {
  epochs?: number;
  imageWidth?: number;
  imageHeight?: number;
  /** Leave the second image out, to exercise the placeholder. */
  missingImage?: boolean;
}

/**
 * A detection run: two images with tracked boxes, and 30 boxes in all whose σ drifts by occlusion level
 * (occlusion 0 falls, 2 rises), as the paper's curriculum would. In image 1: box 0 (occlusion 0) ends at σ 0.5,
 * box 1 (occlusion 2) at σ 3.
 */
export async function makeDetectionRun(options: DetectionRunOptions = {}): Promise<string> {
  const epochs = options.epochs ?? 5;
  const W = options.imageWidth ?? 400;
  const H = options.imageHeight ?? 160;
  const dir = mkdtempSync(path.join(tmpdir(), 'dp-vis-'));
  await solidPng(path.join(dir, 'images', 'a.png'), W, H);
  if (!options.missingImage) await solidPng(path.join(dir, 'images', 'b.png'), W, H);

  const rng = new Rng(3);
  const occl = [0, 2, 1, 0, 2];
  const all: { occlusion: number; difficulty: Difficulty | null }[] = [];
  for (let i = 0; i < 30; i++) {
    const occlusion = i < occl.length ? occl[i]! : rng.int(3);
    const difficulty: Difficulty | null = (['easy', 'moderate', 'hard'] as const)[occlusion]!;
    all.push({ occlusion, difficulty: i === 29 ? null : difficulty });
  }
  const s = (x: number): number => (x * W) / 400;
  const t = (y: number): number => (y * H) / 160;
  const tracked: TrackedInstance[] = [
    { id: 0, image: '../images/a.png', box: [s(40), t(40), s(160), t(120)], occlusion: 0, difficulty: 'easy', className: 'car' },
    { id: 1, image: '../images/a.png', box: [s(230), t(40), s(350), t(120)], occlusion: 2, difficulty: 'hard', className: 'car' },
    { id: 2, image: '../images/b.png', box: [s(20), t(30), s(120), t(100)], occlusion: 1, difficulty: 'moderate', className: 'car' },
    { id: 3, image: '../images/b.png', box: [s(150), t(50), s(260), t(130)], occlusion: 0, difficulty: 'easy', className: 'car' },
    { id: 4, image: '../images/b.png', box: [s(280), t(20), s(380), t(90)], occlusion: 2, difficulty: 'hard', className: 'car' },
  ];
  const rec = new RunRecorder(path.join(dir, 'run'));
  await rec.writeManifest({ task: 'detection', createdAt: '2026-11-28T22:00:00.000Z', config: { epochs, lr: 0.001 }, classNames: ['car'], tracked });
  const groups = sigmaGroups(all);
  const stepsPerEpoch = 10;
  for (let e = 0; e <= epochs; e++) {
    const f = e / epochs;
    const sigma = new Float32Array(all.length);
    for (let i = 0; i < all.length; i++) {
      const target = [0.5, 1.5, 3][all[i]!.occlusion]!;
      sigma[i] = i < tracked.length ? 1 + (target - 1) * f : Math.max(0.05, 1 + (target - 1) * f + 0.2 * f * rng.normal());
    }
    await rec.appendSigma({ epoch: e, step: e * stepsPerEpoch, tracked: Array.from(sigma.subarray(0, tracked.length)), groups: summariseSigma(sigma, groups) });
    if (e === 0) continue;
    for (let k = 5; k <= stepsPerEpoch; k += 5) {
      const step = (e - 1) * stepsPerEpoch + k;
      await rec.appendMetrics({ kind: 'train', step, epoch: e, loss: 3 / (1 + step / 10), cls: 2 / (1 + step / 10), loc: 1 / (1 + step / 10), positives: 12, lr: e > 3 ? 1e-4 : 1e-3, imagesPerSecond: 4 });
    }
    await rec.appendMetrics({ kind: 'epoch', step: e * stepsPerEpoch, epoch: e, loss: 3 / (1 + e), sigma_all: 1 + f });
    await rec.appendMetrics({ kind: 'val', step: e * stepsPerEpoch, epoch: e, ap_car_easy_r40: 0.2 * f + 0.1, ap_car_moderate_r40: 0.15 * f + 0.05, ap_car_hard_r40: 0.1 * f });
  }
  return path.join(dir, 'run');
}

/** The colour of tracked sample i's image in a classification run made `withImages`. */
export function sampleColor(i: number): { r: number; g: number; b: number } {
  return { r: 20 * i, g: 255 - 20 * i, b: 128 };
}

/**
 * A classification run with corrupted labels: 40 samples, 10 classes, 25% noisy (every 4th); noisy samples' σ rises
 * to 3 + 0.01·(i mod 3), clean ones fall to 0.7 + 0.01·(i mod 3). The first 12 are tracked; `withImages` gives each a
 * 24×16 PNG of colour `sampleColor(i)`.
 */
export async function makeClassificationRun(epochs = 4, options: { withImages?: boolean } = {}): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'dp-vis-cls-'));
  const n = 40;
  const k = 10;
  const noisy = Array.from({ length: n }, (_, i) => i % 4 === 0);
  const tracked: TrackedInstance[] = Array.from({ length: 12 }, (_, i) => ({ id: i, classIndex: i % k, noisy: noisy[i]! }));
  if (options.withImages) {
    for (const t of tracked) {
      const file = path.join(dir, 'samples', `${t.id}.png`);
      await mkdir(path.dirname(file), { recursive: true });
      await sharp({ create: { width: 24, height: 16, channels: 3, background: sampleColor(Number(t.id)) } }).png().toFile(file);
      t.image = `samples/${t.id}.png`;
    }
  }
  const rec = new RunRecorder(dir);
  await rec.writeManifest({
    task: 'classification',
    createdAt: '2026-11-28T22:00:00.000Z',
    config: { epochs },
    classNames: Array.from({ length: k }, (_, c) => `class-${c}`),
    tracked,
  });
  const groups = sigmaGroups(noisy.map((v) => ({ noisy: v })));
  for (let e = 0; e <= epochs; e++) {
    const f = e / epochs;
    const sigma = Float32Array.from({ length: n }, (_, i) => (noisy[i] ? 1 + 2 * f : 1 - 0.3 * f) + 0.01 * (i % 3));
    await rec.appendSigma({
      epoch: e,
      step: e * 20,
      tracked: Array.from(sigma.subarray(0, tracked.length)),
      groups: summariseSigma(sigma, groups),
      classSigma: Array.from({ length: k }, (_, c) => 1 + (c - 4.5) * 0.1 * f),
      noisyTopFraction: noisyTopFraction(sigma, noisy, 0.2),
      noisyTopRatio: 0.2,
    });
    if (e > 0) {
      await rec.appendMetrics({ kind: 'train', step: e * 20, epoch: e, loss: 2 / e, lr: 0.1 });
      await rec.appendMetrics({ kind: 'val', step: e * 20, epoch: e, top1: 0.2 + 0.1 * e, top5: 0.5 + 0.1 * e });
    }
  }
  return dir;
}
