/**
 * The KITTI devkit's 2D rules, one hand-built case each. Every expected value is worked out in the comments from the
 * rules (docs/kitti-eval.md and evaluate_object.cpp):
 *   pass 1 collects the scores of valid-GT/valid-detection matches (each GT, in file order, takes the highest-scoring
 *   unassigned overlapping detection); the thresholds keep score i while cur <= (l + r) / 2, l = (i+1)/nGt,
 *   r = (i+2)/nGt, cur += 1/40 per kept score, and always keep the last; pass 2 counts TP/FP per threshold;
 *   precision is made non-increasing; AP11 = sum(p[0,4,..,40]) / 11 * 100, AP|R40 = sum(p[1..40]) / 40 * 100.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { KittiObject } from '../datasets/kitti/label-file.js';
import {
  evaluateKitti,
  evaluateKittiDetailed,
  selectThresholds,
  monotonePrecision,
  averagePrecision11,
  averagePrecisionR40,
  type KittiApDetail,
  type KittiEvalClass,
} from '../detection/kitti-eval/index.js';

type Box = [number, number, number, number];

function gt(type: string, bbox: Box, occluded = 0, truncated = 0): KittiObject {
  return { type, truncated, occluded, alpha: 0, bbox, dimensions: [1.5, 1.6, 3.9], location: [0, 1.7, 20], rotationY: 0 };
}

function det(type: string, bbox: Box, score: number): KittiObject {
  return { ...gt(type, bbox, -1, -1), alpha: -10, score };
}

/** Images given as [labels, detections | undefined] (undefined: no result file for that image). */
function run(images: [KittiObject[], KittiObject[] | undefined][], cls: KittiEvalClass = 'car'): Record<'easy' | 'moderate' | 'hard', KittiApDetail> {
  const groundTruth = new Map<string, KittiObject[]>();
  const detections = new Map<string, KittiObject[]>();
  images.forEach(([g, d], i) => {
    groundTruth.set(String(i), g);
    if (d !== undefined) detections.set(String(i), d);
  });
  return evaluateKittiDetailed({ groundTruth, detections, classes: [cls] })[cls]!;
}

const close = (a: number, b: number): void => assert.ok(Math.abs(a - b) < 1e-12, `${a} != ${b}`);

// A 100-px car, valid at every difficulty, and boxes beside it that do not overlap.
const A: Box = [0, 100, 100, 200];
const B: Box = [200, 100, 300, 200];
const C: Box = [400, 100, 500, 200];

test('one perfectly detected car: one threshold, AP11 = 1/11, AP|R40 = 0 (index is not recall with few GT)', () => {
  // nGt = 1, v = [0.9] -> thresholds [0.9]; precision [1, 0, ..., 0].
  // AP11 = (1 + 10 * 0) / 11 * 100 = 9.0909...; AP|R40 = 0 (slots 1..40 are 0).
  const r = run([[[gt('Car', A)], [det('Car', A, 0.9)]]]);
  for (const d of [r.easy, r.moderate, r.hard]) {
    assert.equal(d.thresholds, [0.9]);
    assert.equal([d.tp, d.fp, d.gt], [[1], [0], 1]);
    assert.is(d.precision.length, 41);
    assert.equal(d.precision.slice(0, 2), [1, 0]);
    assert.is(d.ap11, (1 / 11) * 100);
    assert.is(d.ap40, 0);
  }
});

test('a perfect detector on 400 cars selects 41 thresholds and scores 100 / 100', () => {
  // keep i iff cur <= (i + 1.5) / 400 with cur = k/40 = 10k/400 after k keeps: i = 0, 9, 19, ..., 389 (40 keeps,
  // cur reaches 1), then the last (i = 399) always: 41 thresholds, all with precision 1.
  const images: [KittiObject[], KittiObject[]][] = [];
  for (let i = 0; i < 400; i++) images.push([[gt('Car', A)], [det('Car', A, 1 - i / 1000)]]);
  const r = run(images).moderate;
  assert.is(r.gt, 400);
  assert.is(r.thresholds.length, 41);
  assert.equal(r.thresholds.slice(0, 3), [1, 1 - 9 / 1000, 1 - 19 / 1000]);
  assert.is(r.thresholds[40], 1 - 399 / 1000);
  assert.is(r.ap11, 100);
  assert.is(r.ap40, 100);
});

test('threshold selection with few detections: 10 of 120 cars found keeps scores 0, 2, 5, 8, 9', () => {
  // nGt = 120: keep i iff cur <= (i + 1.5) / 120, cur = 3k/120 after k keeps (never a near tie: i + 1.5 is no integer).
  // i=0: 1.5 >= 0 keep (k=1, 3); i=1: 2.5 < 3 skip; i=2: 3.5 keep (6); i=3: 4.5, i=4: 5.5 skip; i=5: 6.5 keep (9);
  // i=6: 7.5, i=7: 8.5 skip; i=8: 9.5 keep (12); i=9 last keep.
  const scores = [0.99, 0.98, 0.97, 0.96, 0.95, 0.94, 0.93, 0.92, 0.91, 0.9];
  assert.equal(selectThresholds(scores, 120), [0.99, 0.97, 0.94, 0.91, 0.9]);
  const images: [KittiObject[], KittiObject[]][] = [];
  for (let i = 0; i < 120; i++) images.push([[gt('Car', A)], i < 10 ? [det('Car', A, scores[i]!)] : []]);
  const r = run(images).easy;
  assert.equal(r.thresholds, [0.99, 0.97, 0.94, 0.91, 0.9]);
  assert.equal(r.tp, [1, 3, 6, 9, 10]);
  // precision [1, 1, 1, 1, 1, 0, ...]: AP11 = (p0 + p4) / 11 = 2/11; AP|R40 = (p1..p4) / 40 = 4/40.
  assert.is(r.ap11, (2 / 11) * 100);
  assert.is(r.ap40, (4 / 40) * 100);
});

test('monotone precision and the two APs from a precision curve', () => {
  // raw precision [1, 1/2, 3/4] -> running max from the right [1, 3/4, 3/4], zeros after.
  const p = monotonePrecision([1, 1, 3], [0, 1, 1]);
  assert.equal(p.slice(0, 4), [1, 0.75, 0.75, 0]);
  assert.is(p.length, 41);
  assert.is(averagePrecision11(p), (1 / 11) * 100);
  assert.is(averagePrecisionR40(p), (1.5 / 40) * 100);
});

test('a false positive between two true positives', () => {
  // v = [0.9, 0.7], nGt = 2: i=0 keep (cur 0 <= 0.75); i=1 last -> thresholds [0.9, 0.7].
  // t=0.9: TP 1, FP 0 -> 1. t=0.7: TP 2, FP 1 (0.8, no overlap) -> 2/3.
  // AP11 = 1/11 * 100; AP|R40 = (2/3) / 40 * 100.
  const r = run([[[gt('Car', A), gt('Car', B)], [det('Car', A, 0.9), det('Car', C, 0.8), det('Car', B, 0.7)]]]).easy;
  assert.equal(r.thresholds, [0.9, 0.7]);
  assert.equal([r.tp, r.fp], [[1, 2], [0, 1]]);
  close(r.ap11, (1 / 11) * 100);
  close(r.ap40, (2 / 3 / 40) * 100);
});

test('duplicate detections: the second box on the same car is a false positive', () => {
  // A: 0.9 and a duplicate 0.8; B: 0.7. Pass 1: A takes 0.9, B 0.7 -> thresholds [0.9, 0.7].
  // t=0.7: A keeps one of its two boxes, the other is FP -> TP 2, FP 1 (same numbers as a stray false positive).
  const r = run([[[gt('Car', A), gt('Car', B)], [det('Car', A, 0.9), det('Car', A, 0.8), det('Car', B, 0.7)]]]).hard;
  assert.equal([r.thresholds, r.tp, r.fp], [[0.9, 0.7], [1, 2], [0, 1]]);
});

test('a Van under a car detection is ignored: the detection is neither TP nor FP', () => {
  // Van at A (neighbour class: ignored GT) with a car box 0.9; car at B with 0.8. nGt = 1.
  // Pass 1: the van takes 0.9 (consumed), B takes 0.8 -> thresholds [0.8]. t=0.8: TP 1, FP 0 (0.9 sits on the van).
  const withVan = run([[[gt('Van', A), gt('Car', B)], [det('Car', A, 0.9), det('Car', B, 0.8)]]]).moderate;
  assert.equal([withVan.gt, withVan.thresholds, withVan.tp, withVan.fp], [1, [0.8], [1], [0]]);
  // The same box on a Truck (no neighbour of Car: skipped) is a false positive: precision 1/2.
  const withTruck = run([[[gt('Truck', A), gt('Car', B)], [det('Car', A, 0.9), det('Car', B, 0.8)]]]).moderate;
  assert.equal([withTruck.tp, withTruck.fp], [[1], [1]]);
  close(withTruck.ap11, (0.5 / 11) * 100);
  // An ignored ground truth absorbs one detection only: a second car box on the van is a false positive.
  const dup = run([[[gt('Van', A), gt('Car', B)], [det('Car', A, 0.9), det('Car', A, 0.85), det('Car', B, 0.8)]]]).moderate;
  assert.equal([dup.tp, dup.fp], [[1], [1]]);
});

test('Person_sitting is the neighbour of Pedestrian; cyclists have none', () => {
  const P: Box = [0, 100, 40, 200];
  const Q: Box = [100, 100, 140, 200];
  // Pedestrian: the sitting person absorbs the 0.9 box -> TP 1, FP 0.
  const ped = run([[[gt('Person_sitting', P), gt('Pedestrian', Q)], [det('Pedestrian', P, 0.9), det('Pedestrian', Q, 0.8)]]], 'pedestrian').easy;
  assert.equal([ped.gt, ped.tp, ped.fp], [1, [1], [0]]);
  // Cyclist: a sitting person is skipped, so the cyclist box on it is a false positive.
  const cyc = run([[[gt('Person_sitting', P), gt('Cyclist', Q)], [det('Cyclist', P, 0.9), det('Cyclist', Q, 0.8)]]], 'cyclist').easy;
  assert.equal([cyc.gt, cyc.tp, cyc.fp], [1, [1], [1]]);
});

test('IoU must be strictly above 0.7 for cars and 0.5 for pedestrians (areas without +1)', () => {
  // Car [0,0,100,100]; box [0,0,100,70]: inter 7000, union 10000 + 7000 - 7000 = 10000 -> exactly 0.7: no match (FP).
  // Second image: box [0,0,100,71]: 0.71 -> TP. nGt = 2, v = [0.8] -> thresholds [0.8]; t=0.8: TP 1, FP 1 (0.9).
  const car = run([
    [[gt('Car', [0, 0, 100, 100])], [det('Car', [0, 0, 100, 70], 0.9)]],
    [[gt('Car', [0, 0, 100, 100])], [det('Car', [0, 0, 100, 71], 0.8)]],
  ]).easy;
  assert.equal([car.gt, car.thresholds, car.tp, car.fp], [2, [0.8], [1], [1]]);
  close(car.ap11, (0.5 / 11) * 100);
  // Pedestrian [0,0,50,100]; box [0,0,50,50] has IoU exactly 0.5: FP; [0,0,50,51]: 0.51 -> TP.
  const ped = run(
    [
      [[gt('Pedestrian', [0, 0, 50, 100])], [det('Pedestrian', [0, 0, 50, 50], 0.9)]],
      [[gt('Pedestrian', [0, 0, 50, 100])], [det('Pedestrian', [0, 0, 50, 51], 0.8)]],
    ],
    'pedestrian',
  ).easy;
  assert.equal([ped.tp, ped.fp], [[1], [1]]);
});

test('a detection inside DontCare is dropped when intersection / detection area > 0.7 (car)', () => {
  // DontCare [600,0,900,300]. Car B detected with 0.5 (thresholds [0.5]).
  // Boxes of 100 x 100: fully inside (1.0) x2 -> absorbed, one DontCare absorbs many; x from 830: 70/100 = 0.7 exactly
  // -> not absorbed (FP); x from 829: 0.71 -> absorbed. So FP = 1 at t = 0.5.
  const labels = [gt('Car', B), gt('DontCare', [600, 0, 900, 300], -1, -1)];
  const dets = [
    det('Car', B, 0.5),
    det('Car', [610, 10, 710, 110], 0.9),
    det('Car', [700, 100, 800, 200], 0.8),
    det('Car', [830, 0, 930, 100], 0.7),
    det('Car', [829, 150, 929, 250], 0.6),
  ];
  const r = run([[labels, dets]]).moderate;
  assert.equal([r.thresholds, r.tp, r.fp], [[0.5], [1], [1]]);
  // Pedestrians use their own overlap threshold, 0.5, for DontCare too (MIN_OVERLAP of the class in the devkit):
  // a pedestrian box 60% inside ([840, 940] against [600, 900]) is absorbed; the same box as a car is a false positive.
  const sixty: Box = [840, 100, 940, 200];
  const p = run(
    [[[gt('Pedestrian', [0, 100, 40, 200]), gt('DontCare', [600, 0, 900, 300], -1, -1)], [det('Pedestrian', [0, 100, 40, 200], 0.5), det('Pedestrian', sixty, 0.9)]]],
    'pedestrian',
  ).easy;
  assert.equal([p.tp, p.fp], [[1], [0]]);
  const c = run([[[gt('Car', B), gt('DontCare', [600, 0, 900, 300], -1, -1)], [det('Car', B, 0.5), det('Car', sixty, 0.9)]]]).easy;
  assert.equal([c.tp, c.fp], [[1], [1]]);
});

test('a 25-px box: ground truth needs height > 25 (> 40 easy); detections need (int)height >= 25 (>= 40 easy)', () => {
  // GT25 [600,100,650,125] is exactly 25 px: ignored at every level; its box 0.85 is absorbed by it.
  // D25 (25.0 px, 0.9) is a valid detection at moderate/hard (FP) but ignored at easy (25 < 40).
  // D24 (24.99 px -> (int) 24, 0.95) is ignored everywhere. Car B (0.8) is the one true positive: thresholds [0.8].
  const labels = [gt('Car', [600, 100, 650, 125]), gt('Car', B)];
  const dets = [det('Car', [800, 100, 850, 124.99], 0.95), det('Car', [900, 100, 950, 125], 0.9), det('Car', [600, 100, 650, 125], 0.85), det('Car', B, 0.8)];
  const r = run([[labels, dets]]);
  assert.equal([r.easy.gt, r.easy.tp, r.easy.fp], [1, [1], [0]]);
  assert.equal([r.moderate.gt, r.moderate.tp, r.moderate.fp], [1, [1], [1]]);
  assert.equal([r.hard.gt, r.hard.tp, r.hard.fp], [1, [1], [1]]);
  // A 26-px car is valid at moderate: nGt 2 there, still 1 at easy.
  const r26 = run([[[gt('Car', [600, 100, 650, 126]), gt('Car', B)], []]]);
  assert.equal([r26.easy.gt, r26.moderate.gt, r26.hard.gt], [1, 2, 2]);
});

test('small detections are ignored before the class check: a small pedestrian box can take a car in pass 1', () => {
  // Car K [0,100,50,130] (30 px: valid at moderate) has a Pedestrian box of 24 px (IoU 1200/1500 = 0.8, ignored
  // detection as (int)24 < 25) scored 0.95 and a car box 0.9 on it; car B has 0.8. nGt = 2.
  // Pass 1: K takes the highest-scoring candidate, the small pedestrian box (ignored): no score; B gives 0.8.
  // thresholds [0.8]. Pass 2 at 0.8: K takes the pedestrian box first (ignored), then prefers the valid car box: TP.
  const r = run([
    [
      [gt('Car', [0, 100, 50, 130]), gt('Car', B)],
      [det('Pedestrian', [0, 100, 50, 124], 0.95), det('Car', [0, 100, 50, 130], 0.9), det('Car', B, 0.8)],
    ],
  ]).moderate;
  assert.equal([r.gt, r.thresholds, r.tp, r.fp], [2, [0.8], [2], [0]]);
  // Were the pedestrian box 40 px tall (not small), it would be skipped for cars: pass 1 then keeps 0.9 as well.
  const r2 = run([
    [
      [gt('Car', [0, 100, 50, 130]), gt('Car', B)],
      [det('Pedestrian', [0, 140, 50, 180], 0.95), det('Car', [0, 100, 50, 130], 0.9), det('Car', B, 0.8)],
    ],
  ]).moderate;
  assert.equal(r2.thresholds, [0.9, 0.8]);
});

test('valid detections are preferred over ignored ones; pass 2 matches by IoU', () => {
  // Easy. Car K [0,100,100,145] (45 px, valid). S [0,100,100,139.5]: 39.5 px -> (int)39 < 40, ignored, IoU 0.878,
  // score 0.95, first in the file; V = K's box, 0.8. Car B 0.7.
  // Pass 1: K takes S (highest score), an ignored detection: no score; B: 0.7 -> thresholds [0.7].
  // Pass 2 at 0.7: K takes S, then V replaces it (valid beats ignored): TP; B TP. TP 2, FP 0 (not 1 and 1).
  const r = run([
    [
      [gt('Car', [0, 100, 100, 145]), gt('Car', B)],
      [det('Car', [0, 100, 100, 139.5], 0.95), det('Car', [0, 100, 100, 145], 0.8), det('Car', B, 0.7)],
    ],
  ]).easy;
  assert.equal([r.thresholds, r.tp, r.fp], [[0.7], [2], [0]]);
});

test('greedy matching in ground-truth file order', () => {
  // G1 [0,0,100,100] and G2 [0,5,100,105] overlap; box X [0,4,100,104] fits G2 better (IoU 0.980 vs 0.923).
  // G1 is occluded 3 (ignored everywhere). G1 listed first takes X: consumed, no TP, and G2 gets nothing (no thresholds).
  const X = det('Car', [0, 4, 100, 104], 0.9);
  const first = run([[[gt('Car', [0, 0, 100, 100], 3), gt('Car', [0, 5, 100, 105])], [X]]]).hard;
  assert.equal([first.gt, first.thresholds, first.ap11], [1, [], 0]);
  // Listed the other way round, G2 takes X: TP at 0.9.
  const second = run([[[gt('Car', [0, 5, 100, 105]), gt('Car', [0, 0, 100, 100], 3)], [X]]]).hard;
  assert.equal([second.thresholds, second.tp, second.fp], [[0.9], [1], [0]]);
});

test('truncation and occlusion filters are cumulative; boundary values pass', () => {
  // Side by side, no overlaps. (occluded, truncated, height) -> valid at:
  // A (0, 0.15, 40): not easy (40 <= 40), moderate, hard;  B (0, 0.15, 41): all three (0.15 is not > 0.15);
  // C (1, 0, 100): moderate, hard;  D (2, 0.3, 100): hard;  E (0, 0.31, 100): hard;  F (3, 0, 100): none;
  // G (0, 0.51, 100): none;  H (0, 0.5, 26): hard only (0.5 > 0.3, height 26 > 25).
  const spec: [number, number, number][] = [
    [0, 0.15, 40],
    [0, 0.15, 41],
    [1, 0, 100],
    [2, 0.3, 100],
    [0, 0.31, 100],
    [3, 0, 100],
    [0, 0.51, 100],
    [0, 0.5, 26],
  ];
  const labels = spec.map(([occ, trunc, h], k) => gt('Car', [k * 110, 100, k * 110 + 100, 100 + h], occ, trunc));
  const dets = labels.map((l, k) => det('Car', l.bbox, 0.9 - k * 0.05));
  const r = run([[labels, dets]]);
  assert.equal([r.easy.gt, r.moderate.gt, r.hard.gt], [1, 3, 6]);
  // Every box is on its own car: no false positives; boxes on ignored cars are absorbed.
  // moderate: v = [0.9, 0.85, 0.8] (A, B, C), nGt 3 -> all kept; hard: six scores, nGt 6 -> all kept.
  assert.equal([r.easy.tp, r.easy.fp], [[1], [0]]);
  assert.equal([r.moderate.tp, r.moderate.fp], [[1, 2, 3], [0, 0, 0]]);
  assert.equal(r.hard.thresholds.length, 6);
  assert.equal(r.hard.fp, [0, 0, 0, 0, 0, 0]);
});

test('images without labels or without results', () => {
  // Image 0: car at A with 0.9 (TP). Image 1: no labels, a car box 0.95 (FP). Image 2: car, no result entry (FN).
  // nGt = 2, v = [0.9] -> thresholds [0.9]; t=0.9: TP 1, FP 1 -> precision 1/2.
  const r = run([
    [[gt('Car', A)], [det('Car', A, 0.9)]],
    [[], [det('Car', A, 0.95)]],
    [[gt('Car', A)], undefined],
  ]).easy;
  assert.equal([r.gt, r.thresholds, r.tp, r.fp], [2, [0.9], [1], [1]]);
  close(r.ap11, (0.5 / 11) * 100);
  // No ground truth at all: nothing to recall, AP 0 (not NaN).
  const empty = run([[[], [det('Car', A, 0.9)]]]).easy;
  assert.equal([empty.gt, empty.thresholds, empty.ap11, empty.ap40], [0, [], 0, 0]);
});

test('score ties: equal scores give equal thresholds, counted together', () => {
  // A and B found with 0.5, a stray box also 0.5. v = [0.5, 0.5], nGt 2 -> thresholds [0.5, 0.5]; at 0.5 every box
  // counts: TP 2, FP 1 -> precision [2/3, 2/3, 0, ...]. AP11 = (2/3) / 11 * 100, AP|R40 = (2/3) / 40 * 100.
  const r = run([[[gt('Car', A), gt('Car', B)], [det('Car', A, 0.5), det('Car', C, 0.5), det('Car', B, 0.5)]]]).easy;
  assert.equal([r.thresholds, r.tp, r.fp], [[0.5, 0.5], [2, 2], [1, 1]]);
  close(r.ap11, (2 / 3 / 11) * 100);
  close(r.ap40, (2 / 3 / 40) * 100);
});

test('class names compare case-insensitively; evaluateKitti returns AP and GT per class and difficulty', () => {
  const groundTruth = new Map([['000000', [gt('CAR', A), gt('pedestrian', [300, 100, 340, 200])]]]);
  const detections = new Map([['000000', [det('car', A, 0.9), det('PEDESTRIAN', [300, 100, 340, 200], 0.8)]]]);
  const r = evaluateKitti({ groundTruth, detections });
  assert.equal(Object.keys(r), ['car', 'pedestrian', 'cyclist']);
  assert.equal(r.car!.easy, { ap11: (1 / 11) * 100, ap40: 0, gt: 1 });
  assert.equal(r.pedestrian!.hard, { ap11: (1 / 11) * 100, ap40: 0, gt: 1 });
  assert.equal(r.cyclist!.moderate, { ap11: 0, ap40: 0, gt: 0 });
});

test('bad in-memory input is rejected clearly', () => {
  const groundTruth = new Map([['a', [gt('Car', A)]]]);
  assert.throws(() => evaluateKitti({ groundTruth, detections: new Map([['b', []]]) }), /image 'b', which has no ground truth/);
  const noScore = { ...gt('Car', A) };
  assert.throws(() => evaluateKitti({ groundTruth, detections: new Map([['a', [noScore]]]) }), /detection 1 \(Car\) of image 'a' has no finite score/);
});

test.run();
