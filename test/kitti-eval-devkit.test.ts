/**
 * evaluate-kitti held to the official devkit's own figures: test/fixtures/kitti-devkit holds 42 label and result
 * files and the precision curves (stats_<class>_detection.txt: easy, moderate, hard, 41 values each, printed with
 * %f) that the devkit's evaluate_object.cpp wrote for them (see the fixture's README). AP11 and AP|R40 are
 * computed from those printed curves with the devkit readme's formulas.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseKittiObjects, type KittiObject, type KittiDifficulty } from '../datasets/kitti/label-file.js';
import {
  evaluateKittiDetailed,
  evaluateKittiDirs,
  readKittiDirs,
  KITTI_EVAL_CLASSES,
  type KittiApDetail,
  type KittiEvalResult,
} from '../detection/kitti-eval/index.js';
import { evaluateKittiTables } from '../detection/kitti-eval/evaluate.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FIXTURE = path.resolve(HERE, '../../test/fixtures/kitti-devkit');
const LABELS = path.join(FIXTURE, 'label_2');
const RESULTS = path.join(FIXTURE, 'results');
const CLI_DIR = path.join(HERE, '..', 'detection', 'cli');
const DIFFICULTIES: KittiDifficulty[] = ['easy', 'moderate', 'hard'];
/** AP in percent from 6-decimal precision values: each is off by at most 5e-7, so the mean by at most 5e-5 %. */
const AP_TOLERANCE = 5e-5 + 1e-9;

type Curves = Record<KittiDifficulty, string[]>;

/** The devkit's printed curves per class, as the strings it wrote. */
function devkitCurves(): Record<string, Curves> {
  const out: Record<string, Curves> = {};
  for (const cls of KITTI_EVAL_CLASSES) {
    const file = path.join(FIXTURE, 'devkit', `stats_${cls}_detection.txt`);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    assert.is(lines.length, 3, file);
    const curves = lines.map((l) => l.trim().split(' '));
    for (const c of curves) assert.is(c.length, 41, file);
    out[cls] = { easy: curves[0]!, moderate: curves[1]!, hard: curves[2]! };
  }
  return out;
}

const DEVKIT = devkitCurves();

/** AP11 and AP|R40 (percent) of the devkit's printed curve: the devkit readme's pseudocode. */
function devkitAp(curve: readonly string[]): { ap11: number; ap40: number } {
  const p = curve.map(Number);
  let sum11 = 0;
  for (let i = 0; i <= 40; i += 4) sum11 += p[i]!;
  let sum40 = 0;
  for (let i = 1; i <= 40; i++) sum40 += p[i]!;
  return { ap11: (sum11 / 11) * 100, ap40: (sum40 / 40) * 100 };
}

function assertApMatches(result: KittiEvalResult, what: string): void {
  assert.equal(Object.keys(result), [...KITTI_EVAL_CLASSES], what);
  for (const cls of KITTI_EVAL_CLASSES) {
    for (const d of DIFFICULTIES) {
      const ours = result[cls]![d];
      const theirs = devkitAp(DEVKIT[cls]![d]);
      const where = `${what}: ${cls} ${d}`;
      assert.ok(Math.abs(ours.ap11 - theirs.ap11) <= AP_TOLERANCE, `${where} AP11 ${ours.ap11} vs devkit ${theirs.ap11}`);
      assert.ok(Math.abs(ours.ap40 - theirs.ap40) <= AP_TOLERANCE, `${where} AP|R40 ${ours.ap40} vs devkit ${theirs.ap40}`);
    }
  }
}

function assertCurvesMatch(result: KittiEvalResult<KittiApDetail>, what: string): void {
  for (const cls of KITTI_EVAL_CLASSES) {
    for (const d of DIFFICULTIES) {
      const printed = result[cls]![d].precision.map((v) => v.toFixed(6));
      assert.equal(printed, DEVKIT[cls]![d], `${what}: ${cls} ${d}`);
    }
  }
}

test('the fixture is what its README says: 42 label and 42 result files, the three classes in the devkit output', () => {
  assert.is(readdirSync(LABELS).filter((f) => f.endsWith('.txt')).length, 42);
  assert.is(readdirSync(path.join(RESULTS, 'data')).filter((f) => f.endsWith('.txt')).length, 42);
  // Spot values: the curves start where the devkit's do (a regression in reading them would show here).
  assert.equal(DEVKIT.car!.moderate.slice(0, 4), ['1.000000', '1.000000', '1.000000', '0.800000']);
  assert.equal(DEVKIT.cyclist!.easy.slice(0, 4), ['0.200000', '0.200000', '0.200000', '0.000000']);
});

test('library, JavaScript and wasm engines: the 41-point precision curves print as the devkit printed them', () => {
  const data = readKittiDirs({ labels: LABELS, results: RESULTS });
  assert.equal(data.missingResults, []);
  for (const engine of ['js', 'wasm'] as const) {
    const r = evaluateKittiTables({ groundTruth: data.groundTruth, detections: data.detections, engine });
    assertCurvesMatch(r, engine);
    assertApMatches(r, engine);
  }
});

test('library, parsed objects (evaluateKittiDetailed): the devkit curves and AP', () => {
  const groundTruth = new Map<string, KittiObject[]>();
  const detections = new Map<string, KittiObject[]>();
  for (const f of readdirSync(LABELS).sort()) {
    const id = f.slice(0, -4);
    const labelFile = path.join(LABELS, f);
    const resultFile = path.join(RESULTS, 'data', f);
    groundTruth.set(id, parseKittiObjects(readFileSync(labelFile, 'utf8'), labelFile));
    detections.set(id, parseKittiObjects(readFileSync(resultFile, 'utf8'), resultFile, { kind: 'result' }));
  }
  const r = evaluateKittiDetailed({ groundTruth, detections });
  assertCurvesMatch(r, 'evaluateKittiDetailed');
  assertApMatches(r, 'evaluateKittiDetailed');
});

test('evaluateKittiDirs: the devkit AP', async () => {
  assertApMatches(await evaluateKittiDirs({ labels: LABELS, results: RESULTS }), 'evaluateKittiDirs');
});

for (const entry of ['evaluate-kitti.js', 'evaluate-kitti.cjs']) {
  test(`evaluate-kitti (${entry}) --format json: the devkit AP`, () => {
    const r = spawnSync(process.execPath, [path.join(CLI_DIR, entry), '--labels', LABELS, '--results', RESULTS, '--format', 'json'], {
      encoding: 'utf8',
    });
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stderr, '');
    assertApMatches(JSON.parse(r.stdout) as KittiEvalResult, entry);
  });
}

test.run();
