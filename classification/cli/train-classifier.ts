#!/usr/bin/env node
/**
 * train-classifier: trains an image classifier with data parameters (curriculum none | class | instance | joint) from a
 * config in configs/, with command-line overrides. Writes run records (run.json, sigma.jsonl, metrics.jsonl) and a
 * checkpoint per epoch to --out; prints the final summary as one JSON line on stdout.
 */
import { Command, InvalidArgumentError } from 'commander';
import { initBackend, parseBackendName } from '../../src/runtime/backend.js';
import { CURRICULUM_MODES } from '../../src/data-parameters/data-parameters.js';
import { stderrLogger } from '../../src/util/log.js';
import { watchForStop } from '../../src/util/interrupt.js';
import { NonFiniteLossError, exitOnEscapedErrors, prepareRunDir } from '../../src/training/harness.js';
import { applyOverrides, buildRun, readConfig, trainerFor } from '../config.js';
import type { ConfigOverrides } from '../config.js';

function int(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer`);
    return n;
  };
}

function num(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number`);
    return n;
  };
}

const EXAMPLES = `
Examples:
  # Fashion-MNIST (apt-get install dataset-fashion-mnist), 40% uniform label noise, instance curriculum:
  train-classifier --config configs/fashion-mnist.json --out runs/fmnist-instance
  # the baseline on the same noisy labels, 3 epochs on a 10k subset:
  train-classifier --config configs/fashion-mnist.json --curriculum none --epochs 3 --train-subset 10000 --out runs/fmnist-none
  # ImageNet, class-level curriculum (paper settings), then continue after an interruption:
  train-classifier --config configs/imagenet.json --data /data/ILSVRC2012 --out runs/imagenet-class
  train-classifier --config configs/imagenet.json --data /data/ILSVRC2012 --out runs/imagenet-class --resume
  # WebVision, joint curriculum (instance init 0.001, lr 0.8, wd 1e-8 from the config):
  train-classifier --config configs/webvision.json --data /data/webvision --curriculum joint --out runs/webvision-joint
  # CIFAR-100 with 40% noise in the paper's model (uniform) instead of the reference code's (permute):
  train-classifier --config configs/cifar100.json --data /data/cifar --noise-model uniform --out runs/c100
`;

async function main(): Promise<void> {
  const program = new Command()
    .name('train-classifier')
    .description('Train an image classifier with data parameters (learned per-class / per-instance curriculum).')
    .requiredOption('--config <file>', 'run configuration (configs/imagenet.json, webvision.json, cifar100.json, fashion-mnist.json)')
    .option('--data <dir>', 'dataset root (overrides dataset.root)')
    .option('--epochs <n>', 'number of epochs', int('--epochs'))
    .option('--batch-size <n>', 'mini-batch size', int('--batch-size'))
    .option('--lr <x>', 'model learning rate (before the step schedule)', num('--lr'))
    .option('--curriculum <mode>', `data parameters: ${CURRICULUM_MODES.join(' | ')}`)
    .option('--noise-rate <p>', 'fraction of training labels to corrupt (0 = none)', num('--noise-rate'))
    .option('--noise-model <m>', "label noise: 'uniform' (paper) or 'permute' (reference code)")
    .option('--train-subset <n>', 'train on a stratified subset of n entries', int('--train-subset'))
    .option('--val-subset <n>', 'evaluate on a stratified subset of n validation entries', int('--val-subset'))
    .option('--calibrate', 'fit a temperature on half of the validation set after training; report ECE before/after')
    .option('--seed <n>', 'seed for initialisation, shuffling, augmentation and noise', int('--seed'))
    .option('--backend <name>', 'auto | tensorflow-gpu | tensorflow | wasm | cpu', 'auto')
    .option('--out <dir>', 'run directory: run.json, sigma.jsonl, metrics.jsonl, checkpoint.bin')
    .option('--resume', 'continue from <out>/checkpoint.bin (exactly where it stopped)')
    .option('--no-progress', 'no progress bar')
    .addHelpText('after', EXAMPLES);
  program.parse();
  const o = program.opts<ConfigOverrides & { config: string; backend: string; out?: string; resume?: boolean; progress: boolean }>();
  if (o.curriculum !== undefined && !(CURRICULUM_MODES as readonly string[]).includes(o.curriculum)) {
    throw new Error(`--curriculum must be one of ${CURRICULUM_MODES.join(', ')}, got '${o.curriculum}'`);
  }
  if (o.resume && !o.out) throw new Error('--resume needs --out (the run directory holding checkpoint.bin)');
  const overrides: ConfigOverrides = {};
  for (const k of ['data', 'epochs', 'batchSize', 'lr', 'curriculum', 'noiseRate', 'noiseModel', 'seed', 'trainSubset', 'valSubset', 'calibrate'] as const) {
    if (o[k] !== undefined) (overrides as Record<string, unknown>)[k] = o[k];
  }
  const config = applyOverrides(await readConfig(o.config), overrides);
  // Signals end the process at once until the training loop first polls (setup has no step to finish).
  const stop = watchForStop((signal) =>
    process.stderr.write(`\n${signal}: stopping after this step with a checkpoint (press Ctrl-C again to exit at once)\n`),
  );
  if (o.out) await prepareRunDir(o.out, { log: stderrLogger });
  await initBackend(parseBackendName(o.backend), { log: stderrLogger });
  const run = await buildRun(config, stderrLogger);
  const trainer = trainerFor(run, config, {
    outDir: o.out ?? null,
    log: stderrLogger,
    progress: o.progress,
    recordConfig: { ...config, configFile: o.config },
  });
  const result = await trainer.run({ resume: o.resume ?? false, shouldStop: () => stop.poll() }).finally(() => stop.dispose());
  if (result.interrupted) {
    process.stderr.write(
      trainer.checkpointFile
        ? `train-classifier: interrupted at step ${trainer.step}; checkpoint written to ${trainer.checkpointFile}. ` +
            'Rerun the same command with --resume to continue exactly where it stopped.\n'
        : `train-classifier: interrupted at step ${trainer.step}; nothing saved (no --out).\n`,
    );
    trainer.dispose();
    run.dispose();
    process.exit(130);
  }
  const last = result.final;
  process.stdout.write(
    JSON.stringify({
      epochs: trainer.epoch,
      step: trainer.step,
      curriculum: config.curriculum,
      valTop1: last?.valTop1 ?? null,
      valTop5: last?.valTop5 ?? null,
      noisyTopFraction: last?.noisyTopFraction ?? null,
      calibration: result.calibration,
      out: o.out ?? null,
      labelReview: result.reviewFile,
    }) + '\n',
  );
  trainer.dispose();
  run.dispose();
}

exitOnEscapedErrors('train-classifier');
main().catch((err: unknown) => {
  process.stderr.write(`train-classifier: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof NonFiniteLossError ? 2 : 1);
});
