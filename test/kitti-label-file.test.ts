import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  parseKittiObjects,
  formatKittiDetection,
  formatKittiObject,
  kittiDifficulty,
  KittiFormatError,
} from '../datasets/kitti/label-file.js';

const LABEL = `Car 0.00 0 -1.58 587.01 173.33 614.12 200.12 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59
DontCare -1 -1 -10 388.00 181.00 423.00 203.00 -1 -1 -1 -1000 -1000 -1000 -10

Pedestrian 0.30 1 0.21 100.5 150.0 130.0 220.0 1.80 0.60 0.80 1.0 1.5 10.0 0.3
`;

test('parses all 15 columns, keeps DontCare, skips blank lines', () => {
  const objs = parseKittiObjects(LABEL, 'label_2/000000.txt');
  assert.is(objs.length, 3);
  assert.equal(objs[0], {
    type: 'Car',
    truncated: 0,
    occluded: 0,
    alpha: -1.58,
    bbox: [587.01, 173.33, 614.12, 200.12],
    dimensions: [1.65, 1.67, 3.64],
    location: [-0.65, 1.71, 46.7],
    rotationY: -1.59,
  });
  assert.is(objs[1]!.type, 'DontCare');
  assert.is(objs[2]!.occluded, 1);
});

test('a malformed line names the file and the line', () => {
  const bad = 'Car 0 0 0 1 2 3 4 1 1 1 1 1 1 1\nCar 0 0 0 1 2 3\n';
  assert.throws(() => parseKittiObjects(bad, 'x.txt'), (e: Error) => e instanceof KittiFormatError && /x\.txt:2: expected 15/.test(e.message));
  const nan = 'Car 0 zero 0 1 2 3 4 1 1 1 1 1 1 1\n';
  assert.throws(() => parseKittiObjects(nan, 'y.txt'), /y\.txt:1: column 3 \(occluded\)/);
  assert.throws(() => parseKittiObjects('Car 0 0 0 1 2 3 4 1 1 1 1 1 1 1\n', 'r.txt', { kind: 'result' }), /r\.txt:1: expected 16/);
});

test('result lines round-trip with the 2D-only fields', () => {
  const line = formatKittiDetection('Car', [10, 20, 110.5, 70.25], 0.875);
  assert.is(line, 'Car -1.00 -1 -10.00 10.00 20.00 110.50 70.25 -1.00 -1.00 -1.00 -1000.00 -1000.00 -1000.00 -10.00 0.875000');
  const [o] = parseKittiObjects(line, 'r.txt', { kind: 'result' });
  assert.is(o!.score, 0.875);
  assert.is(formatKittiObject(o!), line);
});

test('difficulty follows the devkit filters, heights strictly above the minimum', () => {
  const box = (h: number): [number, number, number, number] => [0, 100, 50, 100 + h];
  assert.is(kittiDifficulty({ bbox: box(41), occluded: 0, truncated: 0.1 }), 'easy');
  assert.is(kittiDifficulty({ bbox: box(40), occluded: 0, truncated: 0.1 }), 'moderate');
  assert.is(kittiDifficulty({ bbox: box(41), occluded: 1, truncated: 0 }), 'moderate');
  assert.is(kittiDifficulty({ bbox: box(30), occluded: 2, truncated: 0.4 }), 'hard');
  assert.is(kittiDifficulty({ bbox: box(25), occluded: 0, truncated: 0 }), null);
  assert.is(kittiDifficulty({ bbox: box(60), occluded: 3, truncated: 0 }), null);
  assert.is(kittiDifficulty({ bbox: box(60), occluded: 0, truncated: 0.51 }), null);
});

test.run();
