#!/usr/bin/env node
/** visualize-curriculum: turn a training run's records (run.json, sigma.jsonl, metrics.jsonl) into pictures. */
import { realpathSync } from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { readRun } from '../records/run-records.js';
import { renderCurriculum } from '../visualize/curriculum-report.js';

function wholeNumber(min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected a whole number ≥ ${min}`);
    return n;
  };
}

export function buildProgram(): Command {
  return new Command('visualize-curriculum')
    .description(
      'Draw the curriculum that data parameters learned in a training run: per-box σ strips on the training ' +
        'images (stroke width ∝ σ, colour = occlusion), σ curves per occlusion level, difficulty, class and ' +
        'clean/corrupted group, loss and AP/accuracy curves, and an index.html that shows them all.',
    )
    .requiredOption('--run <dir>', 'run directory written by a trainer (run.json, sigma.jsonl, metrics.jsonl)')
    .option('--out <dir>', 'output folder for the PNGs, SVGs and index.html (default: <run>/curriculum)')
    .option('--images <n>', 'how many tracked training images get a per-box strip', wholeNumber(0), 6)
    .option('--snapshots <n>', 'epochs shown per strip, spread from first to last', wholeNumber(1), 4)
    .option('--top <k>', 'review gallery: the k samples (boxes) with the highest and the k with the lowest σ in label-review.csv (default 16; 0: none)', wholeNumber(0))
    .option('--allow-partial', 'a run still being written: skip a cut-short last record, accept a missing metrics.jsonl', false)
    .addHelpText(
      'after',
      `
Examples:
  visualize-curriculum --run runs/synthetic-kitti
      writes runs/synthetic-kitti/curriculum/index.html and its pictures
  visualize-curriculum --run runs/kitti-car --out /tmp/curriculum --images 3 --snapshots 5
  visualize-curriculum --run runs/cifar100-noisy --allow-partial   # while the run is still training
  visualize-curriculum --run runs/fmnist-instance --top 32          # the 32 most suspect labels and the 32 easiest

Open the printed index.html in a browser (it uses relative paths; no server needed).
Image paths in run.json are looked up relative to the run directory, then the current directory;
an image that is not found is drawn as a grey placeholder and reported as a warning.
The review gallery reads label-review.csv (written by the trainers when training completes); images that moved since
are named and skipped. A run without σ (curriculum none) gets a note instead of a gallery.`,
    );
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.parse(argv);
  const opts = program.opts<{ run: string; out?: string; images: number; snapshots: number; top?: number; allowPartial: boolean }>();
  const out = opts.out ?? path.join(opts.run, 'curriculum');
  try {
    const run = await readRun(opts.run, {
      truncatedTail: opts.allowPartial ? 'skip' : 'error',
      missingMetrics: opts.allowPartial ? 'empty' : 'error',
      onSkip: (m) => console.warn(`warning: ${m}`),
    });
    const result = await renderCurriculum(run, {
      out,
      images: opts.images,
      snapshots: opts.snapshots,
      ...(opts.top !== undefined ? { top: opts.top } : {}),
      onWarning: (m) => console.warn(`warning: ${m}`),
    });
    console.log(
      `visualize-curriculum: ${result.figures.length} pictures` +
        (result.warnings.length ? `, ${result.warnings.length} warning(s)` : '') +
        `; open ${result.indexFile}`,
    );
    return 0;
  } catch (err) {
    console.error(`visualize-curriculum: ${(err as Error).message}`);
    return 1;
  }
}

// Run only when executed (also through npm's bin symlink), not when imported by a test.
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  process.exitCode = await main(process.argv);
}
