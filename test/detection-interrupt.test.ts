import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tinyDetectorRun } from './support/detection-fixture.js';
import { readRun } from '../src/records/run-records.js';

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'detection', 'cli', 'train-detector.js');

/** Runs the CLI; when `interruptOn` matches stderr, sends SIGINT once. */
function runCli(args: string[], interruptOn?: RegExp): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (interruptOn && !sent && interruptOn.test(stderr)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    child.stdout.resume();
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

test('Ctrl-C stops train-detector after the current step with a checkpoint; --resume finishes the run', async () => {
  const { data, cfgFile, out } = await tinyDetectorRun({ prefix: 'det-int-', images: 8, seed: 5, train: { epochs: 15, batchSize: 2, valEvery: 0 } });
  const args = ['--config', cfgFile, '--data', data, '--backend', 'cpu', '--out', out];

  // Interrupt once the progress bar drew the first step (plain lines when stderr is not a terminal): a signal before
  // the loop's first step ends the process at once, without a checkpoint.
  const first = await runCli(args, /train σ \[/);
  assert.is(first.code, 130, first.stderr);
  assert.match(first.stderr, /SIGINT: stopping after this step with a checkpoint/);
  assert.match(first.stderr, /interrupted at step \d+; checkpoint written to .*checkpoint\.dpckpt/);
  assert.ok(existsSync(path.join(out, 'checkpoint.dpckpt')));
  assert.not.ok(existsSync(path.join(out, 'model', 'model.json')), 'an interrupted run saves no final model');
  const stoppedAt = Number(/interrupted at step (\d+)/.exec(first.stderr)![1]);
  assert.ok(stoppedAt < 30, `stopped at ${stoppedAt} of 30 steps`);

  const second = await runCli([...args, '--resume']);
  assert.is(second.code, 0, second.stderr);
  assert.match(second.stderr, new RegExp(`resumed from .* at step ${stoppedAt}`));
  assert.ok(existsSync(path.join(out, 'model', 'model.json')));
  // The completed run says where its review is.
  assert.match(second.stderr, /label review \(\d+ training boxes, by σ\): /);
  assert.ok(second.stderr.includes(`): ${path.join(out, 'label-review.csv')}\n`), second.stderr);
  assert.ok(existsSync(path.join(out, 'label-review.csv')));
  const run = await readRun(out);
  assert.is(run.sigma[run.sigma.length - 1]!.epoch, 15);
});

test.run();
