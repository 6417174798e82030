/**
 * evaluate-kitti as a process, on small directories in the KITTI layout (training/label_2, results/data).
 * Expected AP values are worked out by hand in the comments (rules in test/kitti-eval.test.ts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'detection', 'cli', 'evaluate-kitti.js');
const TAIL = '1.50 1.60 3.90 1.00 1.70 20.00 0.10'; // 3D fields of a label line
const DET_TAIL = '-1 -1 -1 -1000 -1000 -1000 -10'; // 3D fields of a 2D-only result line

const LABELS: Record<string, string> = {
  // Image 0: an easy car, an easy pedestrian, a sitting person, a DontCare area.
  '000000': [
    `Car 0.00 0 0.10 100.00 100.00 200.00 200.00 ${TAIL}`,
    `Pedestrian 0.00 0 0.10 300.00 100.00 340.00 200.00 ${TAIL}`,
    `Person_sitting 0.00 0 0.10 400.00 100.00 440.00 160.00 ${TAIL}`,
    'DontCare -1 -1 -10 600.00 0.00 900.00 300.00 -1 -1 -1 -1000 -1000 -1000 -10',
  ].join('\n'),
  // Image 1: a van, and a partly occluded car (valid at moderate and hard only).
  '000001': [`Van 0.00 0 0.10 100.00 100.00 200.00 200.00 ${TAIL}`, `Car 0.00 1 0.10 300.00 100.00 400.00 200.00 ${TAIL}`].join('\n'),
  // Image 2: nothing labelled (an empty file).
  '000002': '',
};
const RESULTS: Record<string, string> = {
  '000000': [
    `Car -1 -1 -10 100.00 100.00 200.00 200.00 ${DET_TAIL} 0.90`, // TP
    `Pedestrian -1 -1 -10 300.00 100.00 340.00 200.00 ${DET_TAIL} 0.80`, // TP for pedestrians
    `Pedestrian -1 -1 -10 400.00 100.00 440.00 160.00 ${DET_TAIL} 0.70`, // on the sitting person: ignored
    `Car -1 -1 -10 610.00 10.00 710.00 110.00 ${DET_TAIL} 0.95`, // inside DontCare: dropped
  ].join('\n'),
  '000001': [
    `Car -1 -1 -10 100.00 100.00 200.00 200.00 ${DET_TAIL} 0.85`, // on the van: ignored
    `Car -1 -1 -10 300.00 100.00 400.00 200.00 ${DET_TAIL} 0.60`, // TP at moderate/hard, absorbed by the ignored car at easy
  ].join('\n'),
  // 000002 has no result file.
};

// Car: easy nGt 1, v [0.9] -> thresholds [0.9], precision [1]: AP11 = 100/11, AP|R40 = 0.
// moderate/hard nGt 2, v [0.9, 0.6] -> both kept, precision [1, 1]: AP11 = 100/11, AP|R40 = 100/40 = 2.5.
// Pedestrian: nGt 1 everywhere, thresholds [0.8], precision [1]. Cyclist: nothing, zeros.
const ONE = (1 / 11) * 100;
const EXPECTED = {
  car: { easy: { ap11: ONE, ap40: 0, gt: 1 }, moderate: { ap11: ONE, ap40: 2.5, gt: 2 }, hard: { ap11: ONE, ap40: 2.5, gt: 2 } },
  pedestrian: { easy: { ap11: ONE, ap40: 0, gt: 1 }, moderate: { ap11: ONE, ap40: 0, gt: 1 }, hard: { ap11: ONE, ap40: 0, gt: 1 } },
  cyclist: { easy: { ap11: 0, ap40: 0, gt: 0 }, moderate: { ap11: 0, ap40: 0, gt: 0 }, hard: { ap11: 0, ap40: 0, gt: 0 } },
};

let root = '';
let labels = '';
let results = '';

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function writeDir(dir: string, files: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  for (const [id, text] of Object.entries(files)) writeFileSync(path.join(dir, id + '.txt'), text === '' ? '' : text + '\n');
}

test.before(() => {
  root = mkdtempSync(path.join(tmpdir(), 'kitti-eval-cli-'));
  labels = path.join(root, 'training', 'label_2');
  results = path.join(root, 'results');
  writeDir(labels, LABELS);
  writeDir(path.join(results, 'data'), RESULTS);
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test('json: one object keyed by class, AP11 / AP|R40 in percent and GT counts; a missing result file is warned once', () => {
  const r = cli('--labels', labels, '--results', results, '--format', 'json');
  assert.is(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n').length, 1);
  assert.equal(JSON.parse(r.stdout), EXPECTED);
  assert.match(r.stderr, /warning: 1 image\(s\) have no result file in .*results[/\\]data \(first: 000002\.txt\)/);
  assert.is(r.stderr.trim().split('\n').length, 1);
});

test('result files directly in DIR; --classes picks and orders classes', () => {
  const flat = path.join(root, 'flat-results');
  cpSync(path.join(results, 'data'), flat, { recursive: true });
  const r = cli('--labels', labels, '--results', flat, '--classes', 'Pedestrian,car', '--format', 'json');
  assert.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.equal(Object.keys(out), ['pedestrian', 'car']);
  assert.equal(out, { pedestrian: EXPECTED.pedestrian, car: EXPECTED.car });
});

test('--ids restricts the image set', () => {
  // Images 1 and 2 only: car easy nGt 0; moderate nGt 1 (the occluded car), v [0.6] -> precision [1].
  const ids = path.join(root, 'val.txt');
  writeFileSync(ids, '000001\n\n000002\n');
  const r = cli('--labels', labels, '--results', results, '--ids', ids, '--classes', 'car', '--format', 'json');
  assert.is(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout), {
    car: { easy: { ap11: 0, ap40: 0, gt: 0 }, moderate: { ap11: ONE, ap40: 0, gt: 1 }, hard: { ap11: ONE, ap40: 0, gt: 1 } },
  });
  writeFileSync(ids, '000001\n000009\n');
  const bad = cli('--labels', labels, '--results', results, '--ids', ids);
  assert.is(bad.status, 1);
  assert.match(bad.stderr, /val\.txt:2: no label file .*000009\.txt/);
});

test('table format for people', () => {
  const r = cli('--labels', labels, '--results', results);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /easy\s+moderate\s+hard\n/);
  assert.match(r.stdout, /class\s+IoU >\s+AP11\s+AP\|R40\s+GT\s+AP11/);
  assert.match(r.stdout, /\ncar\s+0\.7\s+9\.09\s+0\.00\s+1\s+9\.09\s+2\.50\s+2\s+9\.09\s+2\.50\s+2\n/);
  assert.match(r.stdout, /\ncyclist\s+0\.5\s+0\.00\s+0\.00\s+0\s/);
});

test('a malformed line is an error naming the file and the line', () => {
  const bad = path.join(root, 'bad-results');
  writeDir(path.join(bad, 'data'), { ...RESULTS, '000001': `Car -1 -1 -10 1 2 3 4 ${DET_TAIL} 0.5\nCar -1 -1 -10 1 2 3 4 ${DET_TAIL}` });
  const r = cli('--labels', labels, '--results', bad, '--format', 'json');
  assert.is(r.status, 1);
  assert.is(r.stdout, '');
  assert.match(r.stderr, /^evaluate-kitti: error: .*bad-results[/\\]data[/\\]000001\.txt:2: expected 16 columns, found 15\n$/);
  const badLabels = path.join(root, 'bad-labels');
  writeDir(badLabels, { ...LABELS, '000002': `\n\nCar 0.00 zero 0.10 1 2 3 4 ${TAIL}` });
  assert.match(cli('--labels', badLabels, '--results', results).stderr, /bad-labels[/\\]000002\.txt:3: column 3 \(occluded\)/);
});

test('usage errors exit non-zero with a clear message; --help has examples', () => {
  const unknown = cli('--labels', labels, '--results', results, '--classes', 'car,truck');
  assert.is(unknown.status, 1);
  assert.match(unknown.stderr, /unknown class 'truck' \(the KITTI devkit evaluates car, pedestrian, cyclist\)/);
  const missing = cli('--labels', labels);
  assert.is.not(missing.status, 0);
  assert.match(missing.stderr, /required option '--results <dir>'/);
  const noDir = cli('--labels', path.join(root, 'nope'), '--results', results);
  assert.is(noDir.status, 1);
  assert.match(noDir.stderr, /labels directory not found: .*nope/);
  const help = cli('--help');
  assert.is(help.status, 0);
  assert.match(help.stdout, /Examples:\n\s+\$ evaluate-kitti --labels/);
  assert.match(help.stdout, /--ids <file>/);
});

test.run();
