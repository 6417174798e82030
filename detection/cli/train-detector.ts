#!/usr/bin/env node
/**
 * train-detector: trains an SSD car detector with per-box data parameters (or the plain baseline), and `predict`
 * runs a saved model on a folder of images.
 */
import { Command, Option } from 'commander';
import { existsSync, promises as fs, realpathSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { initBackend, parseBackendName, BACKEND_NAMES } from '../../src/runtime/backend.js';
import { KittiDataset, type KittiSplit } from '../../datasets/kitti/dataset.js';
import { ensureSyntheticKitti } from '../../datasets/synthetic-kitti/generate.js';
import { formatKittiDetection } from '../../datasets/kitti/label-file.js';
import { writeFileAtomic } from '../../src/util/atomic-file.js';
import { watchForStop } from '../../src/util/interrupt.js';
import { exitOnEscapedErrors, prepareRunDir } from '../../src/training/harness.js';
import { evaluateKitti, formatKittiTable } from '../kitti-eval/index.js';
import { loadSSD } from '../model/io.js';
import { decodeImage } from '../../datasets/pipeline/decode.js';
import { detectImages } from '../inference.js';
import { serveModel } from '../web/serve.js';
import { CHECKPOINT_FILE, NonFiniteLossError, kittiType, trainDetector, type KittiEvaluator } from '../train/trainer.js';
import { readDetectorConfig, validateDetectorConfig, type DetectorConfig } from '../config.js';

const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const DEFAULT_CONFIG = path.join(PACKAGE_ROOT, 'configs', 'synthetic-kitti.json');

/** The config file, validated (see detection/config.ts). */
export const readConfig = readDetectorConfig;

interface TrainFlags {
  config: string;
  data?: string;
  split?: string;
  epochs?: string;
  batchSize?: string;
  lr?: string;
  curriculum?: string;
  backend: string;
  out?: string;
  resume?: boolean;
  seed?: string;
  valLimit?: string;
  images?: string;
}

function positiveInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer, got '${v}'`);
  return n;
}

/** The config after command-line overrides. */
export function applyOverrides(cfg: DetectorConfig, f: TrainFlags): DetectorConfig {
  const c = structuredClone(cfg);
  if (f.data !== undefined) {
    c.data.root = f.data;
    if (path.resolve(f.data) !== path.resolve(cfg.data.root)) delete c.data.synthetic;
  }
  if (f.split !== undefined) c.data.split = f.split as KittiSplit;
  if (f.epochs !== undefined) c.train.epochs = positiveInt(f.epochs, '--epochs');
  if (f.batchSize !== undefined) c.train.batchSize = positiveInt(f.batchSize, '--batch-size');
  if (f.lr !== undefined) {
    const lr = Number(f.lr);
    if (!(lr > 0)) throw new Error(`--lr must be a positive number, got '${f.lr}'`);
    c.train.lr = lr;
  }
  if (f.curriculum !== undefined) {
    if (f.curriculum !== 'none' && f.curriculum !== 'instance') throw new Error(`--curriculum must be none or instance, got '${f.curriculum}'`);
    c.curriculum.mode = f.curriculum;
  }
  if (f.seed !== undefined) c.train.seed = Number(f.seed);
  if (f.valLimit !== undefined) c.data.valLimit = Number(f.valLimit);
  if (f.images !== undefined && c.data.synthetic) c.data.synthetic.images = positiveInt(f.images, '--images');
  if (f.out !== undefined) c.out = f.out;
  return validateDetectorConfig(c, 'config after command-line overrides');
}

const evaluator: KittiEvaluator = (input) => evaluateKitti(input);

async function train(f: TrainFlags): Promise<void> {
  const cfg = applyOverrides(await readConfig(f.config), f);
  const out = cfg.out ?? path.join('runs', `detector-${cfg.curriculum.mode}`);
  // Signals end the process at once until the training loop first polls (setup has no step to finish).
  const stop = watchForStop((signal) =>
    process.stderr.write(`\n${signal}: stopping after this step with a checkpoint (press Ctrl-C again to exit at once)\n`),
  );
  await prepareRunDir(out, { log: (l) => process.stderr.write(l + '\n') });
  const backend = await initBackend(parseBackendName(f.backend));
  const root = cfg.data.root;
  if (cfg.data.synthetic) {
    // The set's manifest is written last: a set without it (an interrupted generation) is generated again.
    const s = cfg.data.synthetic;
    const had = existsSync(path.join(root, 'training', 'label_2'));
    const { generated, summary } = await ensureSyntheticKitti({
      out: root,
      images: s.images,
      seed: s.seed,
      width: s.width,
      height: s.height,
      onStart: () =>
        process.stderr.write(
          `${had ? `incomplete or different synthetic KITTI set in ${root}` : `no data in ${root}`}: generating a synthetic KITTI set (${s.images} images, seed ${s.seed})\n`,
        ),
    });
    if (generated) process.stderr.write(`generated ${summary.images} images in ${summary.seconds.toFixed(1)} s (${JSON.stringify(summary.carsByOcclusion)} cars by occlusion)\n`);
  }
  const trainSet = await KittiDataset.open(root, { split: cfg.data.split, classes: cfg.model.classNames });
  const valSet = await KittiDataset.open(root, { split: cfg.data.valSplit, classes: cfg.model.classNames });
  process.stderr.write(
    `data: ${root}: ${trainSet.records.length} training images (${cfg.data.split}), ${valSet.records.length} validation images (${cfg.data.valSplit}), ` +
      `curriculum ${cfg.curriculum.mode}, backend ${backend.name}, output ${out}\n`,
  );
  try {
    const result = await trainDetector({
      config: { ...cfg, out },
      out,
      train: trainSet.records,
      val: valSet.records,
      numInstances: Math.max(1, trainSet.numInstances),
      resume: f.resume === true,
      evaluate: evaluator,
      shouldStop: () => stop.poll(),
    });
    if (result.stoppedEarly) {
      process.stderr.write(
        `train-detector: interrupted at step ${result.steps}; checkpoint written to ${path.join(out, CHECKPOINT_FILE)}. ` +
          `Rerun the same command with --resume to continue exactly where it stopped.\n`,
      );
      result.model.dispose();
      result.dp?.dispose();
      process.exit(130);
    }
    if (result.finalAp) {
      process.stdout.write(`\n${formatKittiTable(result.finalAp)}\n`);
      if (result.initialAp?.['car'] && result.finalAp['car']) {
        process.stdout.write(
          `car moderate AP|R40: untrained ${result.initialAp['car'].moderate.ap40.toFixed(2)} -> trained ${result.finalAp['car'].moderate.ap40.toFixed(2)}\n`,
        );
      }
    }
    process.stderr.write(`model saved to ${path.join(out, 'model')} (model.json + weights.bin); run records in ${out}\n`);
    result.model.dispose();
    result.dp?.dispose();
  } catch (err) {
    if (err instanceof NonFiniteLossError) {
      process.stderr.write(`train-detector: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  } finally {
    stop.dispose();
  }
}

interface PredictFlags {
  model: string;
  images: string;
  out: string;
  score: string;
  batchSize: string;
  backend: string;
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg']);

async function predict(f: PredictFlags): Promise<void> {
  await initBackend(parseBackendName(f.backend));
  const { model, spec } = await loadSSD(f.model);
  const files = (await fs.readdir(f.images)).filter((n) => IMAGE_EXT.has(path.extname(n).toLowerCase())).sort();
  if (files.length === 0) throw new Error(`${f.images}: no .png or .jpg images`);
  const drawScore = Number(f.score);
  const resultDir = path.join(f.out, 'data');
  const imageDir = path.join(f.out, 'images');
  await fs.mkdir(resultDir, { recursive: true });
  await fs.mkdir(imageDir, { recursive: true });
  const B = positiveInt(f.batchSize, '--batch-size');
  let count = 0;
  for (let s = 0; s < files.length; s += B) {
    const chunk = files.slice(s, s + B);
    const images = await Promise.all(chunk.map((n) => decodeImage(path.join(f.images, n))));
    const dets = await detectImages(model, spec.classNames, images);
    for (let b = 0; b < chunk.length; b++) {
      const name = chunk[b]!;
      const id = name.slice(0, -path.extname(name).length);
      const size = images[b]!;
      const objs = dets[b]!.map((d) => ({ type: kittiType(d.className), bbox: d.box, score: d.score }));
      await writeFileAtomic(path.join(resultDir, `${id}.txt`), objs.map((o) => formatKittiDetection(o.type, o.bbox, o.score) + '\n').join(''));
      const shown = objs.filter((o) => o.score >= drawScore);
      const rects = shown
        .map((o) => {
          const [x1, y1, x2, y2] = o.bbox;
          return `<rect x="${x1}" y="${y1}" width="${x2 - x1}" height="${y2 - y1}" fill="none" stroke="#00ff66" stroke-width="2"/>` +
            `<text x="${x1 + 2}" y="${Math.max(10, y1 - 3)}" font-family="sans-serif" font-size="11" fill="#00ff66">${o.type} ${o.score.toFixed(2)}</text>`;
        })
        .join('');
      const svg = Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${size.width}" height="${size.height}">${rects}</svg>`);
      await sharp(path.join(f.images, name)).composite([{ input: svg, top: 0, left: 0 }]).png().toFile(path.join(imageDir, `${id}.png`));
      count++;
    }
  }
  model.dispose();
  process.stderr.write(`predict: ${count} images: KITTI result files in ${resultDir}, annotated images (score ≥ ${drawScore}) in ${imageDir}\n`);
}

interface ServeFlags {
  model: string;
  port: string;
}

async function serve(f: ServeFlags): Promise<void> {
  const port = Number(f.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0-65535, got '${f.port}'`);
  const server = await serveModel({ model: f.model, port });
  process.stdout.write(
    `serving ${server.root} on ${server.url} (this machine only)\n  demo page:         ${server.demo}\n` +
      (server.report
        ? `  curriculum report: ${server.report}\n`
        : `  no curriculum report in this run yet (visualize-curriculum --run ${server.root} writes one)\n`) +
      'Ctrl-C stops the server.\n',
  );
  await new Promise<void>((done) => process.once('SIGINT', () => void server.close().then(done)));
}

export function buildProgram(): Command {
  const program = new Command('train-detector');
  program.description('Train an SSD car detector with a per-box curriculum (data parameters), or run a trained one.');
  program.addHelpText(
    'after',
    `
Examples:
  train-detector                                   # embedded default: synthetic KITTI, light SSD, σ per box
  train-detector --curriculum none --out runs/b    # the same run without data parameters
  train-detector train --help                      # all training options
  train-detector predict --model runs/synthetic-kitti/model --images photos/ --out preds
  train-detector serve --model runs/synthetic-kitti/model   # the model's demo page in a browser`,
  );
  const backendOption = (): Option => new Option('--backend <name>', 'auto | tensorflow-gpu | tensorflow | wasm | cpu').choices([...BACKEND_NAMES]).default('auto');
  program
    .command('train', { isDefault: true })
    .description('train (the default command)')
    .option('--config <file>', 'JSON config (configs/synthetic-kitti.json or configs/kitti-car-ssd.json)', DEFAULT_CONFIG)
    .option('--data <dir>', 'KITTI-layout dataset root (training/image_2, training/label_2, ImageSets/)')
    .option('--split <name>', 'training split: train | trainval | all')
    .option('--epochs <n>', 'epochs')
    .option('--batch-size <n>', 'images per batch')
    .option('--lr <x>', 'model learning rate (after warmup)')
    .option('--curriculum <mode>', 'none (plain SSD) | instance (a σ per box)')
    .addOption(backendOption())
    .option('--out <dir>', 'output directory: run records, checkpoint, model/')
    .option('--resume', 'continue from <out>/checkpoint.dpckpt exactly where it stopped')
    .option('--seed <n>', 'seed of initialisation, order and augmentation')
    .option('--val-limit <n>', 'validate on at most n images (0: all)')
    .option('--images <n>', 'images of the synthetic set generated when --data has none')
    .addHelpText(
      'after',
      `
Examples:
  train-detector                                          # embedded default: synthetic KITTI, light SSD, σ per box
  train-detector --curriculum none --out runs/baseline    # the same run without data parameters
  train-detector --config configs/kitti-car-ssd.json --data /data/kitti --backend tensorflow-gpu
  train-detector --out runs/baseline --resume             # continue an interrupted run exactly
  train-detector predict --model runs/synthetic-kitti/model --images data/synthetic-kitti/training/image_2 --out preds`,
    )
    .action(async (flags: TrainFlags) => train(flags));
  program
    .command('predict')
    .description('run a saved model on a folder of images: KITTI result files and annotated images')
    .requiredOption('--model <dir>', 'saved model folder (model.json + weights.bin)')
    .requiredOption('--images <dir>', 'folder of .png/.jpg images')
    .requiredOption('--out <dir>', 'output: <out>/data/<id>.txt (KITTI results), <out>/images/<id>.png (annotated)')
    .option('--score <x>', 'minimum score of the boxes drawn on the images', '0.3')
    .option('--batch-size <n>', 'images per forward pass', '8')
    .addOption(backendOption())
    .addHelpText('after', '\nExample:\n  train-detector predict --model runs/synthetic-kitti/model --images photos/ --out preds --score 0.5')
    .action(async (flags: PredictFlags) => predict(flags));
  program
    .command('serve')
    .description("serve a saved model's demo page (detection in the browser) and its run's curriculum report on 127.0.0.1")
    .requiredOption('--model <dir>', 'saved model folder (model.json + weights.bin), or the run directory holding it in model/')
    .option('--port <n>', 'port on 127.0.0.1 (0: any free port)', '8080')
    .addHelpText('after', '\nExample:\n  train-detector serve --model runs/synthetic-kitti/model   # then open http://127.0.0.1:8080/')
    .action(async (flags: ServeFlags) => serve(flags));
  return program;
}

// npm links bins through node_modules/.bin: compare real paths.
const isMain = process.argv[1] !== undefined && existsSync(process.argv[1]) && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
if (isMain) {
  exitOnEscapedErrors('train-detector');
  buildProgram()
    .parseAsync(process.argv)
    .then(
      () => process.exit(0),
      (err: unknown) => {
        // The wasm heap cannot grow past 4 GB; running out shows as this trap (full-resolution inputs, large batches).
        const hint =
          err instanceof Error && err.name === 'RuntimeError' && err.message.includes('memory access out of bounds')
            ? ' (probably the wasm backend running out of its 4 GB of memory: a smaller --batch-size needs less)'
            : '';
        process.stderr.write(`train-detector: ${err instanceof Error ? err.message : String(err)}${hint}\n`);
        process.exit(1);
      },
    );
}
