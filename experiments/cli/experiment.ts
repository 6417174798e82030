#!/usr/bin/env node
/**
 * experiment NAME: runs every arm and seed of a named experiment (experiments/), each a train-classifier or
 * train-detector run directory under --out, then writes results.json and index.html there. Ctrl-C stops after the current step with a checkpoint;
 * rerunning the same command continues where it stopped and skips finished runs.
 */
import { Command, InvalidArgumentError } from 'commander';
import * as path from 'node:path';
import { initBackend, parseBackendName } from '../../src/runtime/backend.js';
import { stderrLogger } from '../../src/util/log.js';
import { watchForStop } from '../../src/util/interrupt.js';
import type { ConfigOverrides } from '../../classification/config.js';
import { collectResults, runExperiment } from '../classifier-experiment.js';
import { collectDetectionResults, detectionReportHtml, runDetectionExperiment, type DetectionOverrides } from '../detection-experiment.js';
import { EXPERIMENTS, findExperiment, isDetectionExperiment } from '../index.js';
import { writePage, writeReport } from '../report.js';

function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
    return n;
  };
}

const HELP = `
Experiments:
${EXPERIMENTS.map((e) => `  ${e.name.padEnd(28)} ${e.summary}`).join('\n')}

Examples:
  npm run experiment -- noisy-fashion-mnist                 # full run, 3 seeds, into runs/experiments/noisy-fashion-mnist
  npm run experiment -- noisy-fashion-mnist --quick         # a few minutes: tiny subset, few epochs
  npm run experiment -- random-labels --seeds 5 --out runs/rl5
  npm run experiment -- noisy-fashion-mnist --arms baseline,oracle   # some arms (e.g. in a second process)
  npm run experiment -- noisy-fashion-mnist --report-only   # results.json and index.html from the runs so far
  npm run experiment -- synthetic-kitti-curriculum --arms instance-corrupted,baseline-corrupted
Detector experiments take --epochs and --images (size of each generated set), not --data or the subsets.
Rerun the same command after a stop (Ctrl-C, crash) to continue where it stopped.
`;

interface Options {
  quick?: boolean;
  out?: string;
  seeds: number;
  arms?: string;
  data?: string;
  epochs?: number;
  trainSubset?: number;
  valSubset?: number;
  images?: number;
  backend: string;
  progress: boolean;
  reportOnly?: boolean;
}

async function main(): Promise<void> {
  const program = new Command()
    .name('experiment')
    .description('Run a named experiment (every arm, every seed) and write results.json and a report page.')
    .argument('<name>', `experiment: ${EXPERIMENTS.map((e) => e.name).join(' | ')}`)
    .option('--quick', 'a few minutes: tiny subset, few epochs (for a first look and for tests)')
    .option('--out <dir>', 'output folder (default runs/experiments/NAME, or NAME-quick)')
    .option('--seeds <n>', 'seeds 0 .. n-1 per arm', positiveInt('--seeds'), 3)
    .option('--arms <list>', 'comma-separated arms to train (default all)')
    .option('--data <dir>', 'dataset root (overrides the config)')
    .option('--epochs <n>', 'epochs per run (overrides the config and --quick)', positiveInt('--epochs'))
    .option('--train-subset <n>', 'training entries per run (stratified subset)', positiveInt('--train-subset'))
    .option('--val-subset <n>', 'test entries evaluated per epoch (stratified subset)', positiveInt('--val-subset'))
    .option('--images <n>', 'detector experiments: images of each generated synthetic KITTI set', positiveInt('--images'))
    .option('--backend <name>', 'auto | tensorflow-gpu | tensorflow | wasm | cpu', 'auto')
    .option('--report-only', 'write results.json and index.html from the runs so far, train nothing')
    .option('--no-progress', 'no progress bar')
    .addHelpText('after', HELP);
  program.parse();
  const o = program.opts<Options>();
  const exp = findExperiment(program.args[0]!);
  const quick = o.quick ?? false;
  const out = o.out ?? path.join('runs', 'experiments', quick ? `${exp.name}-quick` : exp.name);
  const arms = o.arms?.split(',').map((a) => a.trim()).filter((a) => a !== '');
  const stopWatch = async <T>(run: (shouldStop: () => boolean) => Promise<T>): Promise<T> => {
    await initBackend(parseBackendName(o.backend), { log: stderrLogger });
    const stop = watchForStop((signal) =>
      process.stderr.write(`\n${signal}: stopping after this step with a checkpoint (press Ctrl-C again to exit at once)\n`),
    );
    return run(() => stop.requested).finally(() => stop.dispose());
  };
  const t0 = Date.now();
  let complete = true;
  let claims: unknown;
  if (isDetectionExperiment(exp)) {
    const unsupported = (['data', 'trainSubset', 'valSubset'] as const).filter((k) => o[k] !== undefined);
    if (unsupported.length) throw new Error(`${exp.name} generates its data: --${unsupported.map((k) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)).join(', --')} does not apply (use --images, --epochs)`);
    const overrides: DetectionOverrides = {};
    if (o.epochs !== undefined) overrides.epochs = o.epochs;
    if (o.images !== undefined) overrides.images = o.images;
    if (!o.reportOnly) {
      complete = await stopWatch((shouldStop) =>
        runDetectionExperiment(exp, { out, quick, seeds: o.seeds, ...(arms ? { arms } : {}), overrides, log: stderrLogger, shouldStop }),
      );
    }
    const results = await collectDetectionResults(exp, { out, quick, seeds: o.seeds, overrides });
    const figures = exp.figures(results);
    await writePage(out, results, figures, detectionReportHtml(results, figures));
    claims = results.claims;
  } else {
    if (o.images !== undefined) throw new Error(`${exp.name}: --images applies to detector experiments only (use --train-subset)`);
    const overrides: ConfigOverrides = {};
    if (o.data !== undefined) overrides.data = o.data;
    if (o.epochs !== undefined) overrides.epochs = o.epochs;
    if (o.trainSubset !== undefined) overrides.trainSubset = o.trainSubset;
    if (o.valSubset !== undefined) overrides.valSubset = o.valSubset;
    if (!o.reportOnly) {
      complete = await stopWatch((shouldStop) =>
        runExperiment(exp, { out, quick, seeds: o.seeds, ...(arms ? { arms } : {}), overrides, log: stderrLogger, progress: o.progress, shouldStop }),
      );
    }
    const results = await collectResults(exp, { out, quick, seeds: o.seeds, overrides });
    await writeReport(out, results, exp.figures(results));
    claims = results.claims;
  }
  if (!o.reportOnly) stderrLogger(`${exp.name}: ${complete ? 'finished' : 'stopped'} after ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  stderrLogger(`${exp.name}: report ${path.join(out, 'index.html')}, results ${path.join(out, 'results.json')}`);
  process.stdout.write(JSON.stringify({ experiment: exp.name, out, complete, claims }) + '\n');
  if (!complete) {
    process.stderr.write(`experiment: stopped; rerun the same command to continue where it stopped.\n`);
    process.exit(130);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`experiment: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
