#!/usr/bin/env node
/** `make-synthetic-kitti --out DIR --images N --seed S [--width W --height H]`: writes a synthetic KITTI object set. */
import { Command, InvalidArgumentError } from 'commander';
import { generateSyntheticKitti, KITTI_SCALE, SYNTHETIC_KITTI_DEFAULT_SIZE } from '../synthetic-kitti/generate.js';
import { ProgressBar } from '../../src/util/progress.js';

function int(name: string, min: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return n;
  };
}

function corruptFraction(v: string): number {
  const n = Number(v);
  if (!(n >= 0 && n < 1)) throw new InvalidArgumentError('must be a number in [0, 1)');
  return n;
}

function fraction(v: string): number {
  const n = Number(v);
  if (!(n > 0 && n < 1)) throw new InvalidArgumentError('must be a number in (0, 1)');
  return n;
}

interface CliOptions {
  out: string;
  images: number;
  seed: number;
  width: number;
  height: number;
  valFraction: number;
  valImages?: number;
  kittiScale?: boolean;
  corruptBoxes: number;
}

/** --kitti-scale fixes the size and split; asking for another size or split at the same time is an error. */
function resolveSize(cli: CliOptions): CliOptions {
  if (!cli.kittiScale) return cli;
  const given = ['images', 'width', 'height', 'valFraction', 'valImages'].filter((k) => program.getOptionValueSource(k) === 'cli');
  if (given.length > 0) {
    throw new Error(`--kitti-scale fixes the size and split; drop ${given.map((k) => '--' + k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())).join(', ')}`);
  }
  return { ...cli, images: KITTI_SCALE.images, width: KITTI_SCALE.width, height: KITTI_SCALE.height, valImages: KITTI_SCALE.valImages };
}

const program = new Command('make-synthetic-kitti')
  .description(
    'Write a synthetic KITTI object dataset (training/image_2/*.png, training/label_2/*.txt, ImageSets/) of road ' +
      'scenes with cars, vans, pedestrians, occluders and DontCare regions; labels are true to the rendering.',
  )
  .requiredOption('--out <dir>', 'output directory (created)')
  .option('--images <n>', 'number of images', int('--images', 2), 200)
  .option('--seed <s>', 'random seed (same seed, same files)', int('--seed', 0), 1)
  .option('--width <w>', 'image width in pixels', int('--width', 64), SYNTHETIC_KITTI_DEFAULT_SIZE.width)
  .option('--height <h>', 'image height in pixels', int('--height', 32), SYNTHETIC_KITTI_DEFAULT_SIZE.height)
  .option('--val-fraction <f>', 'share of images in ImageSets/val.txt', fraction, 0.5)
  .option('--val-images <n>', 'exact number of images in ImageSets/val.txt (instead of --val-fraction)', int('--val-images', 1))
  .option(
    '--kitti-scale',
    `real KITTI's size: ${KITTI_SCALE.images} images of ${KITTI_SCALE.width}x${KITTI_SCALE.height}, ` +
      `${KITTI_SCALE.images - KITTI_SCALE.valImages} train / ${KITTI_SCALE.valImages} val (not combinable with --images, --width, --height, --val-*)`,
  )
  .option(
    '--corrupt-boxes <f>',
    'corrupt each Car label with probability f (shifted or shrunk to IoU < 0.3 with the car, an extra box on background, ' +
      'or the car left unlabelled); training/corrupted_boxes.csv records which',
    corruptFraction,
    0,
  )
  .addHelpText(
    'after',
    `
Examples:
  make-synthetic-kitti --out data/synthetic-kitti --images 400 --seed 1
  make-synthetic-kitti --out /tmp/sk --images 20 --seed 7 --width 384 --height 116
  make-synthetic-kitti --out data/sk-noisy --images 400 --seed 1 --corrupt-boxes 0.2
  make-synthetic-kitti --out data/synthetic-kitti-full --kitti-scale      # 7481 images of 1242x375, ~3.2 GB

With --corrupt-boxes, training/corrupted_boxes.csv has one row per corrupted label:
  image,line,kind,x1,y1,x2,y2,true_x1,true_y1,true_x2,true_y2,iou
kind is shifted | resized | background | missing; line is the 1-based line in label_2/<image>.txt (empty for
missing); x1..y2 the written box, true_x1..true_y2 the car's true box (empty for background), iou between them.

Prints a summary (counts of cars by occlusion level and KITTI difficulty, generation speed in images/s, peak
resident memory).`,
  )
  .action(async (cli: CliOptions) => {
    const opts = resolveSize(cli);
    const bar = new ProgressBar({ total: opts.images, label: 'make-synthetic-kitti' });
    const s = await generateSyntheticKitti({ ...opts, onProgress: (k) => bar.update(k) });
    bar.done();
    const pct = (v: number, total: number): string => `${v} (${((100 * v) / Math.max(1, total)).toFixed(0)}%)`;
    const cars = s.byType['Car'] ?? 0;
    const lines = [
      `wrote ${s.images} images (${opts.width}x${opts.height}) to ${opts.out}: ${s.train} train / ${s.val} val`,
      `labels: ${Object.entries(s.byType)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
      `cars by occlusion: 0: ${pct(s.carsByOcclusion['0']!, cars)}, 1: ${pct(s.carsByOcclusion['1']!, cars)}, 2: ${pct(s.carsByOcclusion['2']!, cars)}`,
      `cars by difficulty: easy ${pct(s.carsByDifficulty.easy, cars)}, moderate-only ${pct(s.carsByDifficulty.moderate, cars)}, ` +
        `hard-only ${pct(s.carsByDifficulty.hard, cars)}, none ${pct(s.carsByDifficulty.none, cars)}; truncated ${s.carsTruncated}`,
      `speed: ${s.imagesPerSecond.toFixed(1)} images/s (${s.seconds.toFixed(2)} s); peak resident memory ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`,
    ];
    if (s.corrupted) {
      const total = Object.values(s.corrupted).reduce((a, b) => a + b, 0);
      lines.push(
        `corrupted labels: ${total} (${Object.entries(s.corrupted)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}), recorded in ${opts.out}/training/corrupted_boxes.csv`,
      );
    }
    process.stdout.write(lines.join('\n') + '\n');
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`make-synthetic-kitti: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
