/** The byte scanner must read exactly what the reference parser (parseKittiObjects) reads, and fail the same way. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TypeCode } from '../detection/kitti-eval/box-table.js';
import { jsScan as scan, referenceTable as reference, sameTable, TAIL, assertReferenceErrors, MALFORMED_LINES } from './support/kitti-eval-fixture.js';

test('plain files: types case-insensitively, CRLF, tabs, blank lines, 15 or 16 label columns', () => {
  const labels = [
    `Car 0.00 0 -1.58 587.01 173.33 614.12 200.12 ${TAIL}\r\nPERSON_SITTING 0.5 2 0 1 2 3 4 ${TAIL}\r\n`,
    `\n  \n\tpedestrian\t0.15  1 .5 +10. -0.00 123.456789012345 99999.9999999999 ${TAIL} 0.25\ncyclist 0 3 0 1 2 3 4 ${TAIL}`,
    '',
    `DontCare -1 -1 -10 1 2 3 4 -1 -1 -1 -1000 -1000 -1000 -10\nVan 0 0 0 1 2 3 4 ${TAIL}\nTruck 0 0 0 1 2 3 4 ${TAIL}\nVANS 0 0 0 1 2 3 4 ${TAIL}\n`,
  ];
  const t = scan(labels, 'label');
  sameTable(t, reference(labels, 'label'));
  assert.equal([...t.type], [
    TypeCode.CAR,
    TypeCode.PERSON_SITTING,
    TypeCode.PEDESTRIAN,
    TypeCode.CYCLIST,
    TypeCode.DONTCARE,
    TypeCode.VAN,
    TypeCode.OTHER,
    TypeCode.OTHER,
  ]);
  assert.equal([...t.start], [0, 2, 4, 4, 8]);
  assert.is(t.box[10], 123.456789012345);
  assert.ok(Object.is(t.box[9], -0));
  assert.is(t.box[11], 99999.9999999999);
  assert.is(t.score[2], 0.25);
});

test('numbers outside the fast path (exponents, hex, long digit strings, non-ASCII) go to the reference parser', () => {
  const results = [
    // The exponent comes on line 3, after two fast lines: those must not be counted twice.
    `Car -1 -1 -10 1 2 3 4 -1 -1 -1 -1000 -1000 -1000 -10 0.9\nCar -1 -1 -10 5 6 7 8 -1 -1 -1 -1000 -1000 -1000 -10 0.8\nCar -1 -1 -10 1e2 2 3 4 -1 -1 -1 -1000 -1000 -1000 -10 0.7\n`,
    `Car -1 -1 -10 0x10 2 3 4 -1 -1 -1 -1000 -1000 -1000 -10 0.1234567890123456789\n`,
    `Cär -1 -1 -10 1 2 3 4 -1 -1 -1 -1000 -1000 -1000 -10 0.5\n\u00a0Car -1 -1 -10 1 2 3 4 -1 -1 -1 -1000 -1000 -1000 -10 0.5\n`,
  ];
  const t = scan(results, 'result');
  sameTable(t, reference(results, 'result'));
  assert.equal([...t.start], [0, 3, 4, 6]);
  assert.is(t.box[8], 100);
  assert.is(t.box[12], 16);
  assert.equal([...t.type.slice(4)], [TypeCode.OTHER, TypeCode.CAR]);
});

test('malformed lines fail with the reference parser\'s error, naming file and line', () => {
  assertReferenceErrors(scan, MALFORMED_LINES);
});

test.run();
