import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(ROOT, 'dist', 'classification', 'cli', 'train-classifier.js');

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('train-classifier --help lists the overrides and examples', () => {
  const r = cli(['--help']);
  assert.is(r.status, 0);
  for (const flag of ['--config', '--data', '--epochs', '--batch-size', '--lr', '--curriculum', '--noise-rate', '--noise-model', '--backend', '--out', '--resume', '--seed']) {
    assert.ok(r.stdout.includes(flag), flag);
  }
  assert.match(r.stdout, /Examples:\n/);
  assert.match(r.stdout, /train-classifier --config configs\/imagenet\.json --data \/data\/ILSVRC2012 --out runs\/imagenet-class --resume/);
});

test('train-classifier rejects bad input with a clear message before training', () => {
  const bad = cli(['--config', 'configs/fashion-mnist.json', '--curriculum', 'sometimes']);
  assert.is(bad.status, 1);
  assert.match(bad.stderr, /--curriculum must be one of none, class, instance, joint, got 'sometimes'/);
  const missing = cli(['--config', 'configs/nope.json']);
  assert.is(missing.status, 1);
  assert.match(missing.stderr, /configs\/nope\.json: cannot read config/);
  const noData = cli(['--config', 'configs/fashion-mnist.json', '--data', '/nonexistent-dir', '--backend', 'cpu', '--no-progress']);
  assert.is(noData.status, 1);
  assert.match(noData.stderr, /\/nonexistent-dir\/train-images-idx3-ubyte: missing/);
});

test.run();
