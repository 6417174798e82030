import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, existsSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/runtime/backend.js';
import { readRun } from '../src/records/run-records.js';
import { parseKittiObjects } from '../datasets/kitti/label-file.js';
import { generateSyntheticKitti } from '../datasets/synthetic-kitti/generate.js';
import { applyOverrides, buildProgram, readConfig, DEFAULT_CONFIG } from '../detection/cli/train-detector.js';
import { buildSSD } from '../detection/model/build.js';

test.before(async () => {
  await initBackend('cpu', { log: null });
});

test('configs parse; overrides replace exactly the fields named; bad values are refused', async () => {
  const cfg = await readConfig(DEFAULT_CONFIG);
  assert.is(cfg.model.backbone.type, 'light');
  const c = applyOverrides(cfg, { config: DEFAULT_CONFIG, backend: 'cpu', epochs: '3', batchSize: '4', lr: '0.01', curriculum: 'none', seed: '9', out: 'x' });
  assert.equal([c.train.epochs, c.train.batchSize, c.train.lr, c.curriculum.mode, c.train.seed, c.out], [3, 4, 0.01, 'none', 9, 'x']);
  assert.is(cfg.train.epochs, 6, 'the loaded config is not mutated');
  assert.ok(applyOverrides(cfg, { config: '', backend: 'cpu', data: '/elsewhere' }).data.synthetic === undefined, 'no generation into a user folder');
  assert.throws(() => applyOverrides(cfg, { config: '', backend: 'cpu', curriculum: 'class' }), /--curriculum must be none or instance/);
  assert.throws(() => applyOverrides(cfg, { config: '', backend: 'cpu', epochs: '0' }), /--epochs must be a positive integer/);
  const bad = path.join(mkdtempSync(path.join(tmpdir(), 'cfg-')), 'bad.json');
  writeFileSync(bad, '{"model": {}');
  let message = '';
  await readConfig(bad).catch((e: Error) => (message = e.message));
  assert.match(message, /bad\.json: not valid JSON/);
});

test('kitti-car-ssd config: VGG16-reduced at 1248x384 gives 6 feature maps that match its 6 anchor levels', async () => {
  const cfg = await readConfig(path.join(path.dirname(DEFAULT_CONFIG), 'kitti-car-ssd.json'));
  const spec = { ...cfg.model, backbone: { ...cfg.model.backbone, widthDivisor: 64 } };
  const ssd = buildSSD(spec, 1);
  assert.equal(ssd.anchors.featureMapSizes, [
    [48, 156],
    [24, 78],
    [12, 39],
    [6, 20],
    [3, 10],
    [2, 5],
  ]);
  ssd.dispose();
});

test('train-detector end to end on a tiny synthetic KITTI set (cpu), then predict writes KITTI results and images', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'det-cli-'));
  const data = path.join(dir, 'data');
  await generateSyntheticKitti({ out: data, images: 6, seed: 3, width: 128, height: 48 });
  const cfg = await readConfig(DEFAULT_CONFIG);
  cfg.model.backbone = { type: 'light', widths: [4, 8, 8], extraChannels: 8, featureMaps: 2 };
  cfg.model.inputSize = { width: 96, height: 32 };
  cfg.train = { ...cfg.train, epochs: 1, batchSize: 3, logEvery: 1, valAtStart: false, warmupSteps: 0 };
  delete cfg.data.synthetic;
  const cfgFile = path.join(dir, 'tiny.json');
  writeFileSync(cfgFile, JSON.stringify(cfg));
  const out = path.join(dir, 'run');
  const logs: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string) => (logs.push(String(s)), true)) as typeof process.stdout.write;
  try {
    await buildProgram().parseAsync(['node', 'train-detector', '--config', cfgFile, '--data', data, '--backend', 'cpu', '--out', out], { from: 'node' });
  } finally {
    process.stdout.write = write;
  }
  assert.match(logs.join(''), /KITTI 2D object detection, official devkit rules \(AP in %\)/);
  const run = await readRun(out);
  assert.is(run.manifest.task, 'detection');
  assert.ok(run.metrics.some((m) => m.kind === 'val' && typeof m['ap_car_moderate_r40'] === 'number'));
  assert.is(run.sigma.length, 2);
  assert.ok(existsSync(path.join(out, 'model', 'model.json')) && existsSync(path.join(out, 'checkpoint.dpckpt')));

  const preds = path.join(dir, 'preds');
  await buildProgram().parseAsync(['node', 'train-detector', 'predict', '--model', path.join(out, 'model'), '--images', path.join(data, 'training', 'image_2'), '--out', preds, '--backend', 'cpu', '--score', '0'], { from: 'node' });
  const results = readdirSync(path.join(preds, 'data')).sort();
  assert.is(results.length, 6);
  const file = path.join(preds, 'data', results[0]!);
  const dets = parseKittiObjects(readFileSync(file, 'utf8'), file, { kind: 'result' });
  for (const d of dets) assert.ok(d.bbox[0] >= 0 && d.bbox[2] <= 128 && d.bbox[3] <= 48 && d.score! > 0);
  assert.is(readdirSync(path.join(preds, 'images')).filter((f) => f.endsWith('.png')).length, 6);
  tf.disposeVariables();
});

test.run();
