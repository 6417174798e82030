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
import { tinyDetectorRun } from './support/detection-fixture.js';
import { KittiDataset } from '../datasets/kitti/dataset.js';
import { detectorLoader, trainingBatch, type DetectionRecord } from '../detection/train/batches.js';
import { SSD_AUGMENTATION } from '../datasets/pipeline/loader.js';
import { trainDetector } from '../detection/train/trainer.js';

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

test('detector configs are validated: unknown keys and wrong values are errors naming the file and the key', async () => {
  const cfg = await readConfig(DEFAULT_CONFIG);
  await readConfig(path.join(path.dirname(DEFAULT_CONFIG), 'kitti-car-ssd.json'));
  await readConfig(path.join(path.dirname(DEFAULT_CONFIG), 'kitti-car-cpu.json'));
  const dir = mkdtempSync(path.join(tmpdir(), 'cfg-'));
  /** The message for the default config with the value at a dotted path replaced (undefined: deleted). */
  const messageFor = async (key: string, value: unknown): Promise<string> => {
    const c = structuredClone(cfg) as unknown as Record<string, unknown>;
    const parts = key.split('.');
    let parent = c;
    for (const k of parts.slice(0, -1)) parent = parent[k] as Record<string, unknown>;
    if (value === undefined) delete parent[parts.at(-1)!];
    else parent[parts.at(-1)!] = value;
    const file = path.join(dir, 'c.json');
    writeFileSync(file, JSON.stringify(c));
    return readConfig(file).then(
      () => 'accepted',
      (e: Error) => e.message.replace(dir, 'DIR'),
    );
  };
  const cases: [string, unknown, string][] = [
    ['model.anchors.minScal', 0.1, 'DIR/c.json: "model.anchors.minScal" is not a known key (expected one of minScale, maxScale, aspectRatios, extraScale, clip)'],
    ['extra', 1, 'DIR/c.json: "extra" is not a known key (expected one of description, model, data, train, curriculum, out)'],
    ['train.lr', '0.1', `DIR/c.json: "train.lr" must be a number > 0, got '0.1'`],
    ['train.epochs', 1.5, 'DIR/c.json: "train.epochs" must be an integer >= 1, got 1.5'],
    ['train.batchSize', undefined, 'DIR/c.json: "train.batchSize" is required'],
    ['train.augment.contrast', 1.5, 'DIR/c.json: "train.augment.contrast" must be a number >= 0 and <= 1, got 1.5'],
    ['train.optimizer.name', 'rmsprop', `DIR/c.json: "train.optimizer.name" must be one of sgd, adam, got 'rmsprop'`],
    ['model.backbone.type', 'resnet', `DIR/c.json: "model.backbone.type" must be one of light, vgg16-reduced, got 'resnet'`],
    ['model.backbone.fc6Dilation', 6, 'DIR/c.json: "model.backbone.fc6Dilation" is not a known key (expected one of type, widths, extraChannels, featureMaps, repeats, patchStem)'],
    ['model.backbone.widths', [16, 32], 'DIR/c.json: "model.backbone.widths" must have 3 items, got 2'],
    ['model.anchors.aspectRatios', [[1, 2], 0], 'DIR/c.json: "model.anchors.aspectRatios" must be an array of ratios > 0, or one such array per feature map, got [[1,2],0]'],
    ['model.classNames', [], 'DIR/c.json: "model.classNames" must have at least 1 item(s), got 0'],
    ['data.split', 'test', `DIR/c.json: "data.split" must be one of train, val, trainval, all, got 'test'`],
    ['curriculum.clamp', { min: 0.05 }, 'DIR/c.json: "curriculum.clamp.max" is required'],
    ['curriculum.instance.int', 1, 'DIR/c.json: "curriculum.instance.int" is not a known key (expected one of init, lr, momentum, weightDecay, clamp)'],
    ['curriculum', null, 'DIR/c.json: "curriculum" must be an object, got null'],
    ['curriculum.clamp', null, 'accepted'],
    ['data.workers', 1.5, 'DIR/c.json: "data.workers" must be an integer >= 0, got 1.5'],
    ['data.workers', 1, 'DIR/c.json: data.workers decode in worker threads and cannot be combined with data.cacheImages (set one of them off)'],
    ['train.augment', undefined, 'accepted'],
  ];
  for (const [key, value, expected] of cases) assert.is(await messageFor(key, value), expected, key);
  writeFileSync(path.join(dir, 'array.json'), '[]');
  assert.is(await readConfig(path.join(dir, 'array.json')).catch((e: Error) => e.message.replace(dir, 'DIR')), 'DIR/array.json: "(root)" must be an object, got []');
  const missing = await readConfig(path.join(dir, 'missing.json')).then(
    () => 'accepted',
    (e: Error) => e.message,
  );
  assert.match(missing, /missing\.json: cannot read config/);
  // Command-line overrides are checked again.
  assert.throws(() => applyOverrides(cfg, { config: '', backend: 'cpu', split: 'test' }), /config after command-line overrides: "data.split" must be one of/);
  assert.throws(() => applyOverrides(cfg, { config: '', backend: 'cpu', seed: 'x' }), /"train.seed" must be an integer, got NaN/);
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
  const { dir, data, cfgFile, out } = await tinyDetectorRun({ prefix: 'det-cli-', images: 6, seed: 3, train: { epochs: 1, batchSize: 3 } });
  const logs: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string) => (logs.push(String(s)), true));
  try {
    await buildProgram().parseAsync(['node', 'train-detector', '--config', cfgFile, '--data', data, '--backend', 'cpu', '--out', out], { from: 'node' });
  } finally {
    process.stdout.write = write;
  }
  assert.match(logs.join(''), /AP\|R40[\s\S]*car/); // the evaluator's table
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

test('SSD-augmentation source (input pipeline): deterministic batches, normalised boxes with their ids, trains', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'det-pipe-'));
  await generateSyntheticKitti({ out: dir, images: 8, seed: 5, width: 128, height: 48 });
  const ds = await KittiDataset.open(dir, { split: 'all', classes: ['car'], log: null });
  const records = ds.records as DetectionRecord[];
  const mk = (): ReturnType<typeof detectorLoader> => detectorLoader(records, { inputSize: { width: 96, height: 32 }, batchSize: 4, seed: 2, augment: SSD_AUGMENTATION });
  const a = trainingBatch(await mk().prepareBatch(1, 1));
  const b = trainingBatch(await mk().prepareBatch(1, 1));
  assert.equal(Array.from(a.x), Array.from(b.x));
  assert.equal(Array.from(a.instanceIds), Array.from(b.instanceIds));
  assert.is(a.x.length, 4 * 32 * 96 * 3);
  assert.ok(a.x.every((v) => v >= -1.0001 && v <= 1.0001));
  const n = a.images.reduce((s, im) => s + im.labels.length, 0);
  assert.is(a.instanceIds.length, n);
  for (const im of a.images) {
    assert.ok(im.labels.every((l) => l === 1));
    assert.ok(im.boxes.every((v) => v >= 0 && v <= 1));
  }
  const cfg = await readConfig(DEFAULT_CONFIG);
  cfg.model.backbone = { type: 'light', widths: [4, 8, 8], extraChannels: 8, featureMaps: 2 };
  cfg.model.inputSize = { width: 96, height: 32 };
  cfg.data.pipeline = 'ssd';
  cfg.train = { ...cfg.train, epochs: 1, batchSize: 4, logEvery: 1, valAtStart: false, warmupSteps: 0 };
  const r = await trainDetector({ config: cfg, out: path.join(dir, 'run'), train: records, val: [], numInstances: ds.numInstances, progress: null, log: () => {} });
  assert.is(r.steps, 2);
  r.model.dispose();
  r.dp?.dispose();
});

test.run();
