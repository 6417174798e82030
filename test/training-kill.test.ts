/**
 * Interruptions and bad input, tried as a user would, in child processes with time limits: kill -9 at several moments
 * then --resume (the same weights and records as an uninterrupted run), a finished run resumed, a truncated PNG, an
 * interrupted synthetic-data generation, and the classifier's CLI on divergence and changed options.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { tinyDetectorRun } from './support/detection-fixture.js';
import { readRun, type MetricsEntry } from '../src/records/run-records.js';
import { encodeIdxUint8 } from '../datasets/idx/idx-file.js';
import { ensureSyntheticKitti, generateSyntheticKitti } from '../datasets/synthetic-kitti/generate.js';
import { Rng } from '../src/util/rng.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, '..', '..');
const DETECTOR = path.join(here, '..', 'detection', 'cli', 'train-detector.js');
const CLASSIFIER = path.join(here, '..', 'classification', 'cli', 'train-classifier.js');
const LIMIT_MS = 120_000;

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs node with `args`; with `killWhen`, polls it every 20 ms and sends SIGKILL once it holds. Killed after LIMIT_MS. */
function node(args: string[], killWhen?: () => boolean): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], timeout: LIMIT_MS });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const poll = killWhen
      ? setInterval(() => {
          if (killWhen()) {
            clearInterval(poll);
            child.kill('SIGKILL');
          }
        }, 20)
      : undefined;
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearInterval(poll);
      resolve({ status, signal, stdout, stderr });
    });
  });
}

function lines(file: string): number {
  try {
    return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').length;
  } catch {
    return 0;
  }
}

/** Metrics without the wall-clock fields (which no two runs share). */
function comparable(metrics: readonly MetricsEntry[]): Record<string, unknown>[] {
  return metrics.map((m) => Object.fromEntries(Object.entries(m).filter(([k]) => k !== 'imagesPerSecond' && k !== 'dataWait')));
}

async function sameEnd(a: string, b: string, what: string): Promise<void> {
  assert.ok(readFileSync(path.join(a, 'model', 'weights.bin')).equals(readFileSync(path.join(b, 'model', 'weights.bin'))), `${what}: weights`);
  const ra = await readRun(a), rb = await readRun(b);
  assert.equal(comparable(rb.metrics), comparable(ra.metrics), `${what}: metrics.jsonl`);
  assert.equal(rb.sigma, ra.sigma, `${what}: sigma.jsonl`);
}

test('train-detector: kill -9 at several moments, then --resume, ends exactly as the uninterrupted run; a finished run resumed reports its AP', async () => {
  // 12 images: 6 train (3 steps of 2 per epoch) and 6 val; 3 epochs; a checkpoint every 2 steps and at epoch ends.
  const { dir, data, cfgFile } = await tinyDetectorRun({ prefix: 'det-kill-', images: 12, seed: 4, train: { epochs: 3, batchSize: 2, valEvery: 1, checkpointEvery: 2 } });
  const args = (out: string): string[] => [DETECTOR, '--config', cfgFile, '--data', data, '--backend', 'cpu', '--out', out];
  const ref = path.join(dir, 'ref');
  const straight = await node(args(ref));
  assert.is(straight.status, 0, straight.stderr);
  assert.match(straight.stdout, /KITTI 2D object detection, official devkit rules/);

  // 15 metrics lines in all (per epoch: 3 'train', 'epoch', 'val'). Kill after the first one (before any checkpoint:
  // --resume starts from scratch), inside epoch 2 (after the mid-epoch checkpoint of step 4), and during the last
  // validation.
  for (const after of [1, 7, 14]) {
    const out = path.join(dir, `kill-${after}`);
    const metrics = path.join(out, 'metrics.jsonl');
    const killed = await node(args(out), () => lines(metrics) >= after);
    assert.is(killed.signal, 'SIGKILL', `killed after ${after} metrics lines; ${killed.stderr}`);
    const resumed = await node([...args(out), '--resume']);
    assert.is(resumed.status, 0, resumed.stderr);
    assert.is(resumed.stdout, straight.stdout, 'the same AP table');
    await sameEnd(ref, out, `killed after ${after} metrics lines`);
  }

  // Nothing left to train: the final AP table again, no records added.
  const before = readFileSync(path.join(ref, 'metrics.jsonl'), 'utf8');
  const again = await node([...args(ref), '--resume']);
  assert.is(again.status, 0, again.stderr);
  assert.match(again.stderr, /at step 9: all 3 epochs are done; reporting the final results/);
  assert.is(again.stdout, straight.stdout);
  assert.is(readFileSync(path.join(ref, 'metrics.jsonl'), 'utf8'), before);
});

test('train-detector: a truncated PNG stops with a message naming the file (no stack trace) and a usable checkpoint', async () => {
  const { dir, data, cfgFile } = await tinyDetectorRun({ prefix: 'det-png-', images: 12, seed: 3, train: { epochs: 2, batchSize: 2 } });
  const trainIds = readFileSync(path.join(data, 'ImageSets', 'train.txt'), 'utf8').trim().split('\n');
  const broken = path.join(data, 'training', 'image_2', `${trainIds[0]}.png`);
  truncateSync(broken, 600);
  const out = path.join(dir, 'run');
  const r = await node([DETECTOR, '--config', cfgFile, '--data', data, '--backend', 'wasm', '--out', out]);
  assert.is(r.signal, null);
  assert.is(r.status, 1, r.stderr);
  assert.ok(r.stderr.includes(`train-detector: ${broken}: cannot read the image (`), r.stderr);
  assert.match(r.stderr, /training stopped at step \d+; the state before that step is in .*checkpoint\.dpckpt: replace the file, then rerun with --resume\.\n$/);
  assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
  assert.ok(existsSync(path.join(out, 'checkpoint.dpckpt')));
  // The checkpoint is usable: with the image restored, --resume finishes the run.
  await generateSyntheticKitti({ out: data, images: 12, seed: 3, width: 128, height: 48 });
  const resumed = await node([DETECTOR, '--config', cfgFile, '--data', data, '--backend', 'cpu', '--out', out, '--resume']);
  assert.is(resumed.status, 0, resumed.stderr);
  assert.ok(existsSync(path.join(out, 'model', 'weights.bin')));
});

test('make-synthetic-kitti killed mid-way: the set is not taken as complete and is generated again, identical', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'synth-kill-'));
  const partial = path.join(dir, 'partial');
  const images = path.join(partial, 'training', 'image_2');
  const count = (): number => (existsSync(images) ? readdirSync(images).length : 0);
  const killed = await node([path.join(here, '..', 'datasets', 'cli', 'make-synthetic-kitti.js'), '--out', partial, '--images', '120', '--seed', '2', '--width', '128', '--height', '48'], () => count() >= 10);
  assert.is(killed.signal, 'SIGKILL');
  assert.ok(count() < 120, `${count()} images written before the kill`);
  const { generated } = await ensureSyntheticKitti({ out: partial, images: 120, seed: 2, width: 128, height: 48 });
  assert.ok(generated, 'an interrupted set is generated again');
  const clean = path.join(dir, 'clean');
  await generateSyntheticKitti({ out: clean, images: 120, seed: 2, width: 128, height: 48 });
  for (const sub of ['training/label_2', 'training/image_2', 'ImageSets']) {
    const names = readdirSync(path.join(clean, sub)).sort();
    assert.equal(readdirSync(path.join(partial, sub)).sort(), names);
    for (const n of names) assert.ok(readFileSync(path.join(clean, sub, n)).equals(readFileSync(path.join(partial, sub, n))), `${sub}/${n}`);
  }
  assert.is((await ensureSyntheticKitti({ out: partial, images: 120, seed: 2, width: 128, height: 48 })).generated, false);
});

/** A tiny Fashion-MNIST-layout set (3 classes of 8x8... drawn at 28x28) and a small-CNN config over it. */
function tinyClassifierRun(): { dir: string; config: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'cls-cli-'));
  const data = path.join(dir, 'data');
  mkdirSync(data);
  const rng = new Rng(1);
  const write = (prefix: string, n: number): void => {
    const px = new Uint8Array(n * 28 * 28);
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      labels[i] = i % 3;
      for (let p = 0; p < 28 * 28; p++) px[i * 784 + p] = rng.int(60);
      for (let y = 0; y < 6; y++) for (let x = 0; x < 6; x++) px[i * 784 + (4 + 8 * (i % 3) + y) * 28 + 10 + x] = 250;
    }
    writeFileSync(path.join(data, `${prefix}-images-idx3-ubyte.gz`), gzipSync(encodeIdxUint8([n, 28, 28], px)));
    writeFileSync(path.join(data, `${prefix}-labels-idx1-ubyte.gz`), gzipSync(encodeIdxUint8([n], labels)));
  };
  write('train', 48);
  write('t10k', 12);
  const cfg = JSON.parse(readFileSync(path.join(ROOT, 'configs', 'fashion-mnist.json'), 'utf8')) as Record<string, Record<string, unknown>>;
  cfg['dataset']!['root'] = data;
  cfg['model'] = { name: 'small-cnn', widths: [4], hidden: 8 };
  cfg['train'] = { ...cfg['train'], epochs: 2, batchSize: 16, evalBatchSize: 12, logEvery: 1, trackCount: 8, schedule: { milestones: [1], gamma: 0.1 } };
  cfg['calibrate'] = false as unknown as Record<string, unknown>;
  const config = path.join(dir, 'tiny.json');
  writeFileSync(config, JSON.stringify(cfg));
  return { dir, config };
}

test('train-classifier: divergence stops with a checkpoint (status 2); changed options are refused; a finished run resumed reports its results', async () => {
  const { dir, config } = tinyClassifierRun();
  const args = (out: string, ...more: string[]): string[] => [CLASSIFIER, '--config', config, '--backend', 'cpu', '--no-progress', '--out', path.join(dir, out), ...more];
  const nan = await node(args('nan', '--lr', '1e38'));
  assert.is(nan.status, 2, nan.stderr);
  assert.match(nan.stderr, /train-classifier: non-finite loss at step \d+: training stopped\. The last finite state is in .*nan\/checkpoint\.bin/);
  assert.ok(existsSync(path.join(dir, 'nan', 'checkpoint.bin')));

  const ok = await node(args('ok'));
  assert.is(ok.status, 0, ok.stderr);
  const summary = JSON.parse(ok.stdout) as Record<string, unknown>;
  assert.is(summary['epochs'], 2);
  assert.ok(typeof summary['valTop1'] === 'number' && typeof summary['noisyTopFraction'] === 'number', ok.stdout);
  // Where the review is: in the summary line and in the log.
  const reviewFile = path.join(dir, 'ok', 'label-review.csv');
  assert.is(summary['labelReview'], reviewFile);
  assert.ok(existsSync(reviewFile));
  assert.match(ok.stderr, /label review \(\d+ training samples, by σ\): /);
  assert.ok(ok.stderr.includes(`): ${reviewFile}\n`), ok.stderr);
  const again = await node(args('ok', '--resume'));
  assert.is(again.status, 0, again.stderr);
  assert.is(again.stdout, ok.stdout, 'the same summary, no nulls');

  const changed = await node(args('ok', '--resume', '--noise-rate', '0.2', '--seed', '5'));
  assert.is(changed.status, 1);
  assert.match(changed.stderr, /noise\.rate: 0\.4 in the checkpoint, 0\.2 now\n {2}seed: 0 in the checkpoint, 5 now\n/);

  // kill -9 inside the second epoch, then --resume: the same records as the uninterrupted run.
  const metrics = path.join(dir, 'killed', 'metrics.jsonl');
  const killed = await node(args('killed'), () => lines(metrics) >= 5);
  assert.is(killed.signal, 'SIGKILL');
  const resumed = await node(args('killed', '--resume'));
  assert.is(resumed.status, 0, resumed.stderr);
  const ra = await readRun(path.join(dir, 'ok')), rb = await readRun(path.join(dir, 'killed'));
  const strip = (m: readonly MetricsEntry[]): Record<string, unknown>[] =>
    comparable(m).map((e) => Object.fromEntries(Object.entries(e).filter(([k]) => k !== 'seconds')));
  assert.equal(strip(rb.metrics), strip(ra.metrics));
  assert.equal(rb.sigma, ra.sigma);
  assert.is((JSON.parse(resumed.stdout) as Record<string, unknown>)['valTop1'], summary['valTop1']);
});

test.run();
