import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { initBackend } from '../src/runtime/backend.js';
import { readRun } from '../src/records/run-records.js';
import { buildRun, trainerConfig, validateConfig } from '../classification/config.js';
import type { ClassifierRunConfig } from '../classification/config.js';
import { ClassifierTrainer, describeClassSigma } from '../classification/training/trainer.js';

test.before(async () => {
  await initBackend('cpu', { log: null });
});

const WNIDS = ['n01440764', 'n01443537'];
const COLOURS = [
  { r: 220, g: 30, b: 30 },
  { r: 30, g: 30, b: 220 },
];

async function jpeg(file: string, colour: { r: number; g: number; b: number }, w: number, h: number): Promise<void> {
  await sharp({ create: { width: w, height: h, channels: 3, background: colour } }).jpeg().toFile(file);
}

test('ImageNet layout end to end: JPEG folders + VOC XML val labels -> tiny ResNet, class curriculum, records', async () => {
  const root = mkdtempSync(path.join(tmpdir(), 'dp-cls-imagenet-e2e-'));
  writeFileSync(path.join(root, 'LOC_synset_mapping.txt'), `${WNIDS[0]} tench, Tinca tinca\n${WNIDS[1]} goldfish, Carassius auratus\n`);
  for (let c = 0; c < 2; c++) {
    mkdirSync(path.join(root, 'train', WNIDS[c]!), { recursive: true });
    for (let i = 0; i < 3; i++) await jpeg(path.join(root, 'train', WNIDS[c]!, `${WNIDS[c]}_${i}.JPEG`), COLOURS[c]!, 40 + 7 * i, 30);
  }
  mkdirSync(path.join(root, 'val'));
  for (let i = 1; i <= 2; i++) {
    const id = `ILSVRC2012_val_0000000${i}`;
    await jpeg(path.join(root, 'val', `${id}.JPEG`), COLOURS[i - 1]!, 32, 48);
    writeFileSync(
      path.join(root, 'val', `${id}.xml`),
      `<annotation><folder>val</folder><filename>${id}</filename><object><name>${WNIDS[i - 1]}</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>`,
    );
  }
  const config: ClassifierRunConfig = validateConfig({
    dataset: { kind: 'imagenet', root, imageSize: 16 },
    model: { name: 'resnet18', blocks: [1], width: 2 },
    train: { epochs: 1, batchSize: 4, lr: 0.1, momentum: 0.9, weightDecay: 1e-4, schedule: { every: 30, gamma: 0.1 }, augment: true, logEvery: 1, evalBatchSize: 2, trackCount: 3 },
    curriculum: 'class',
    dataParameters: { class: { lr: 0.1, weightDecay: 1e-4 } },
    seed: 1,
  });
  const run = await buildRun(config, () => {});
  assert.is(run.train.count, 6);
  assert.equal(Array.from(run.val!.labels), [0, 1]);
  const out = mkdtempSync(path.join(tmpdir(), 'dp-cls-imagenet-run-'));
  const lines: string[] = [];
  const trainer = new ClassifierTrainer(
    { ...run, outDir: out, log: (l) => lines.push(l), progress: false, recordConfig: config as unknown as Record<string, unknown> },
    trainerConfig(config),
  );
  const res = await trainer.run();
  assert.is(res.epochs.length, 1);
  assert.is(trainer.step, 2);
  assert.ok(lines.some((l) => /^class σ \(all\): n0144\d+ [\d.]+, n0144\d+ [\d.]+$/.test(l)), lines.join('\n'));
  const rec = await readRun(out);
  assert.equal(rec.manifest.classNames, WNIDS);
  assert.ok(rec.manifest.tracked.every((t) => typeof t.image === 'string' && t.image.endsWith('.JPEG')));
  assert.is(rec.sigma.at(-1)!.classSigma!.length, 2);
  assert.ok(rec.sigma.at(-1)!.classSigma!.some((s) => Math.abs(s - 1) > 1e-6), 'class σ moved');
  assert.equal(rec.metrics.map((m) => m.kind), ['train', 'train', 'val', 'epoch']);
  trainer.dispose();
  run.dispose();
});

test('describeClassSigma: all classes when few, else the 4 highest and 4 lowest', () => {
  assert.is(describeClassSigma(new Float32Array([1, 2]), ['a', 'b']), 'class σ (all): b 2.000, a 1.000');
  const many = describeClassSigma(Float32Array.from({ length: 10 }, (_, i) => i), []);
  assert.is(many, 'class σ (4 highest, 4 lowest): 9 9.000, 8 8.000, 7 7.000, 6 6.000, 3 3.000, 2 2.000, 1 1.000, 0 0.000');
});

test.run();
