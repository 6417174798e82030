import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { rejects } from 'node:assert/strict';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KittiDataset, KittiInputError } from '../datasets/kitti/dataset.js';
import { KittiFormatError } from '../datasets/kitti/label-file.js';
import { writeKittiResults } from '../datasets/kitti/result-writer.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/kitti');
const STANDARD = path.join(FIXTURES, 'standard');
const quiet = { log: null };

const temps: string[] = [];
function copyOfStandard(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'kitti-fixture-'));
  temps.push(dir);
  cpSync(STANDARD, dir, { recursive: true });
  return dir;
}
test.after(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

test('reads the train split from ImageSets with all fields, sizes from the image headers', async () => {
  const ds = await KittiDataset.open(STANDARD, { split: 'train', classes: ['Car'], ...quiet });
  assert.is(ds.splitSource, 'imagesets');
  assert.equal(ds.classNames, ['car']);
  assert.equal(
    ds.records.map((r) => r.imageId),
    ['000000', '000002'],
  );
  assert.is(ds.numInstances, 5);
  const r = ds.records[1]!;
  assert.is(r.width, 124);
  assert.is(r.height, 38);
  assert.ok(r.imagePath.endsWith(path.join('training', 'image_2', '000002.png')));
  assert.equal(
    r.objects.map((o) => [o.className, o.classIndex, o.instanceId, o.ignore, o.occlusion, o.line]),
    [
      ['misc', -1, -1, false, 0, 1],
      ['car', 0, 1, false, 0, 2],
      ['van', -1, -1, true, 1, 3],
      ['car', 0, 2, false, 2, 5],
    ],
  );
  const big = r.objects[3]!;
  assert.equal(big.bbox, [0, 18.52, 9.62, 37.9]);
  assert.is(big.truncation, 0.3);
  assert.ok(Math.abs(big.height - 19.38) < 1e-9);
  assert.is(big.object.rotationY, -1.36);
  // Heights 1.52 and 19.38 px fail the devkit's 25 px minimum.
  assert.equal(
    r.objects.map((o) => o.difficulty),
    [null, null, null, null],
  );
  assert.is(ds.numBoxes, 2);
  const inst = ds.instances();
  assert.is(inst.length, 5);
  assert.equal(
    inst.map((x) => (x ? `${x.record.imageId}:${x.box.line}` : null)),
    [null, '000002:2', '000002:5', null, null],
  );
});

test('instance ids are dataset-wide: val continues where train left off, never colliding, same on rerun', async () => {
  const val = await KittiDataset.open(STANDARD, { split: 'val', ...quiet });
  const all = await KittiDataset.open(STANDARD, { split: 'all', ...quiet });
  const again = await KittiDataset.open(STANDARD, { split: 'val', ...quiet });
  const ids = (ds: KittiDataset): number[] => ds.records.flatMap((r) => r.objects.filter((o) => o.classIndex >= 0).map((o) => o.instanceId));
  assert.equal(ids(val), [0, 3, 4]);
  assert.equal(ids(again), ids(val));
  assert.equal(ids(all), [0, 1, 2, 3, 4]);
  assert.is(all.splitSource, 'all');
  // DontCare regions are kept as ignore regions; the easy car of 000003 (height 14.88 px) is still below 25 px.
  const r1 = val.records[0]!;
  assert.equal(
    r1.objects.filter((o) => o.ignore).map((o) => o.className),
    ['dontcare', 'dontcare'],
  );
  assert.is(r1.objects.find((o) => o.className === 'truck')!.ignore, false);
});

test('several classes: indices follow the classes option, neighbours of trained classes ignored', async () => {
  const ds = await KittiDataset.open(STANDARD, { split: 'all', classes: ['pedestrian', 'car'], ...quiet });
  const r3 = ds.records[3]!;
  assert.equal(
    r3.objects.map((o) => [o.className, o.classIndex, o.instanceId, o.ignore]),
    [
      ['car', 1, 4, false],
      ['car', 1, 5, false],
      ['pedestrian', 0, 6, false],
      ['person_sitting', -1, -1, true],
    ],
  );
  assert.is(ds.records[0]!.objects[0]!.instanceId, 0);
  assert.is(ds.numInstances, 7);
});

test('trainval falls back to train + val; without ImageSets a seeded split is made and logged', async () => {
  const tv = await KittiDataset.open(STANDARD, { split: 'trainval', ...quiet });
  assert.equal(
    tv.records.map((r) => r.imageId),
    ['000000', '000002', '000001', '000003'],
  );
  const logs: string[] = [];
  const dir = path.join(FIXTURES, 'no-imagesets');
  const train = await KittiDataset.open(dir, { split: 'train', log: (m) => logs.push(m) });
  const val = await KittiDataset.open(dir, { split: 'val', log: null });
  assert.is(train.splitSource, 'generated');
  assert.ok(/deterministic split \(seed 0, 3 train \/ 3 val of 6/.test(logs[0]!), logs[0]);
  const t = train.records.map((r) => r.imageId);
  const v = val.records.map((r) => r.imageId);
  assert.is(t.length + v.length, 6);
  assert.equal([...t, ...v].sort(), ['000000', '000001', '000002', '000003', '000004', '000005']);
  const again = await KittiDataset.open(dir, { split: 'train', log: null });
  assert.equal(
    again.records.map((r) => r.imageId),
    t,
  );
  const other = await KittiDataset.open(dir, { split: 'train', splitSeed: 5, log: null });
  assert.is(other.records.length, 3);
});

test('a malformed label line is an error naming file and line, or a counted skip', async () => {
  const dir = copyOfStandard();
  const bad = path.join(dir, 'training', 'label_2', '000002.txt');
  writeFileSync(bad, readFileSync(bad, 'utf8').replace('Van 0.00 1 -1.79', 'Van 0.00 1'));
  await rejects(
    () => KittiDataset.open(dir, { split: 'train', ...quiet }),
    (e: Error) => e instanceof KittiFormatError && e.message.startsWith(`${bad}:3: expected 15`),
  );
  const logs: string[] = [];
  const ds = await KittiDataset.open(dir, { split: 'all', onBadInput: 'skip', log: (m) => logs.push(m) });
  assert.equal(
    ds.records.map((r) => r.imageId),
    ['000000', '000001', '000003'],
  );
  assert.is(ds.skipped.length, 1);
  assert.ok(logs.some((l) => l.includes(`${bad}:3`)));
  assert.ok(logs[logs.length - 1]!.includes('skipped 1 bad input'));
  // The skipped file contributes no ids; later ids are assigned in order.
  assert.equal(
    ds.records[2]!.objects.filter((o) => o.classIndex >= 0).map((o) => o.instanceId),
    [1, 2],
  );
});

test('impossible label values are errors naming file and line, or counted skips', async () => {
  const line2 = 'car 0.00 0 -1.67 65.74 17.35 67.39 18.87 1.57 1.65 3.35 4.43 1.65 5.20 -1.59';
  const cases: [string, RegExp][] = [
    ['car 0.00 0 -1.67 -5000 17.35 67.39 18.87 1.57 1.65 3.35 4.43 1.65 5.20 -1.59', /:2: box -5000 17.35 67.39 18.87 is far outside the 124x38 image$/],
    ['car 0.00 0 -1.67 65.74 17.35 1e30 18.87 1.57 1.65 3.35 4.43 1.65 5.20 -1.59', /:2: box 65.74 17.35 1e30 18.87 has a coordinate beyond ±100000 pixels$/],
    ['car 0.00 0 -1.67 0x10 17.35 67.39 18.87 1.57 1.65 3.35 4.43 1.65 5.20 -1.59', /:2: column 5 is not a decimal number: '0x10'$/],
    ['car 0.00 0 -1.67 65.74 17.35 65.74 18.87 1.57 1.65 3.35 4.43 1.65 5.20 -1.59', /:2: box 65.74 17.35 65.74 18.87 has zero width$/],
    ['car -3 0 -1.67 65.74 17.35 67.39 18.87 1.57 1.65 3.35 4.43 1.65 5.20 -1.59', /:2: truncation -3 is outside \[0, 1\]$/],
    ['car -1 0 -1.67 65.74 17.35 67.39 18.87 1.57 1.65 3.35 4.43 1.65 5.20 -1.59', /:2: truncation -1 is outside \[0, 1\]$/],
    ['car 0.00 0 -1.67 200 17.35 210 18.87 1.57 1.65 3.35 4.43 1.65 5.20 -1.59', /:2: box 200 17.35 210 18.87 is outside the 124x38 image$/],
  ];
  for (const [replacement, message] of cases) {
    const dir = copyOfStandard();
    const f = path.join(dir, 'training', 'label_2', '000002.txt');
    writeFileSync(f, readFileSync(f, 'utf8').replace(line2, replacement));
    await rejects(
      () => KittiDataset.open(dir, { split: 'train', ...quiet }),
      (e: Error) => e instanceof KittiFormatError && e.message.startsWith(f) && message.test(e.message),
      replacement,
    );
    const ds = await KittiDataset.open(dir, { split: 'train', onBadInput: 'skip', log: null });
    assert.equal(ds.records.map((r) => r.imageId), ['000000'], replacement);
    assert.is(ds.skipped.length, 1);
  }
  // DontCare keeps KITTI's -1 truncation and may have an empty region.
  const dir = copyOfStandard();
  const f = path.join(dir, 'training', 'label_2', '000002.txt');
  writeFileSync(f, readFileSync(f, 'utf8').replace(line2, 'DontCare -1 -1 -10 30.00 10.00 30.00 12.00 -1 -1 -1 -1000 -1000 -1000 -10'));
  const ds = await KittiDataset.open(dir, { split: 'train', ...quiet });
  assert.is(ds.records[1]!.objects[1]!.truncation, -1);
});

test('an unknown class is an error naming file and line unless listed in extraClasses', async () => {
  const dir = copyOfStandard();
  const f = path.join(dir, 'training', 'label_2', '000003.txt');
  writeFileSync(f, readFileSync(f, 'utf8').replace('Pedestrian 0.00 0 0.21', 'Bus 0.00 0 0.21'));
  await rejects(
    () => KittiDataset.open(dir, { split: 'val', ...quiet }),
    (e: Error) => e instanceof KittiFormatError && e.message.startsWith(`${f}:3: unknown class 'Bus'`),
  );
  const ds = await KittiDataset.open(dir, { split: 'val', extraClasses: ['bus'], ...quiet });
  const bus = ds.records[1]!.objects[2]!;
  assert.equal([bus.className, bus.classIndex, bus.ignore], ['bus', -1, false]);
  await rejects(() => KittiDataset.open(dir, { classes: ['bicycle'], ...quiet }), /class 'bicycle' is not a KITTI class/);
});

test('a label without image, a split id without label, a truncated image, an empty split', async () => {
  const dir = copyOfStandard();
  unlinkSync(path.join(dir, 'training', 'image_2', '000002.png'));
  await rejects(
    () => KittiDataset.open(dir, { split: 'train', ...quiet }),
    (e: Error) => e instanceof KittiInputError && /000002\.txt: label without image/.test(e.message),
  );
  const ds = await KittiDataset.open(dir, { split: 'train', onBadInput: 'skip', ...quiet });
  assert.equal(
    ds.records.map((r) => r.imageId),
    ['000000'],
  );
  // The skipped image keeps its ids reserved: val's ids do not move.
  const val = await KittiDataset.open(dir, { split: 'val', onBadInput: 'skip', ...quiet });
  assert.equal(
    val.records.flatMap((r) => r.objects.filter((o) => o.classIndex >= 0).map((o) => o.instanceId)),
    [0, 3, 4],
  );

  const dir2 = copyOfStandard();
  writeFileSync(path.join(dir2, 'ImageSets', 'val.txt'), '000001\n000009\n000003\n');
  await rejects(
    () => KittiDataset.open(dir2, { split: 'val', ...quiet }),
    (e: Error) => e instanceof KittiFormatError && e.message.includes(`val.txt:2: image id '000009' has no label file`),
  );

  writeFileSync(path.join(dir2, 'ImageSets', 'val.txt'), '000001\n000003\n000001\n');
  await rejects(
    () => KittiDataset.open(dir2, { split: 'val', ...quiet }),
    (e: Error) => e instanceof KittiFormatError && /val\.txt:3: image id '000001' listed twice \(first at .*val\.txt:1\)/.test(e.message),
  );
  writeFileSync(path.join(dir2, 'ImageSets', 'train.txt'), '000000\n000001\n');
  await rejects(() => KittiDataset.open(dir2, { split: 'trainval', ...quiet }), /val\.txt:1: image id '000001' listed twice/);

  const dir3 = copyOfStandard();
  const png = path.join(dir3, 'training', 'image_2', '000003.png');
  writeFileSync(png, readFileSync(png).subarray(0, 80));
  await rejects(
    () => KittiDataset.open(dir3, { split: 'val', verify: 'decode', ...quiet }),
    (e: Error) => e instanceof KittiInputError && e.message.startsWith(`${png}: unreadable image`),
  );
  const skipped = await KittiDataset.open(dir3, { split: 'val', verify: 'decode', onBadInput: 'skip', ...quiet });
  assert.equal(
    skipped.records.map((r) => r.imageId),
    ['000001'],
  );
  writeFileSync(png, 'not a png');
  await rejects(() => KittiDataset.open(dir3, { split: 'val', ...quiet }), /000003\.png: unreadable image/);

  const dir5 = copyOfStandard();
  cpSync(path.join(dir5, 'training', 'image_2', '000000.png'), path.join(dir5, 'training', 'image_2', '000004.png'));
  const logs: string[] = [];
  const withExtra = await KittiDataset.open(dir5, { split: 'all', log: (m) => logs.push(m) });
  assert.is(withExtra.records.length, 4);
  assert.ok(logs.some((l) => l.includes('1 image(s)') && l.includes('have no label file')), logs.join('\n'));

  const dir4 = copyOfStandard();
  writeFileSync(path.join(dir4, 'ImageSets', 'train.txt'), '\n');
  await rejects(() => KittiDataset.open(dir4, { split: 'train', ...quiet }), /split 'train' is empty/);
  await rejects(() => KittiDataset.open(path.join(dir4, 'nothing'), quiet), /cannot read label directory/);
});

test('result writer: one 16-column file per image, empty file when there are no detections', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'kitti-results-'));
  temps.push(dir);
  await writeKittiResults(dir, '000007', [
    { className: 'Car', bbox: [10, 20.5, 30.25, 40], score: 0.875 },
    { className: 'Car', bbox: [1, 2, 3, 4], score: 0.1 },
  ]);
  await writeKittiResults(dir, '000008', []);
  assert.is(
    readFileSync(path.join(dir, '000007.txt'), 'utf8'),
    'Car -1.00 -1 -10.00 10.00 20.50 30.25 40.00 -1.00 -1.00 -1.00 -1000.00 -1000.00 -1000.00 -10.00 0.875000\n' +
      'Car -1.00 -1 -10.00 1.00 2.00 3.00 4.00 -1.00 -1.00 -1.00 -1000.00 -1000.00 -1000.00 -10.00 0.100000\n',
  );
  assert.is(readFileSync(path.join(dir, '000008.txt'), 'utf8'), '');
});

test.run();
