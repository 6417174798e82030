import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { camera, occlusionLevel, projectBox, renderScene, type SceneObject, type SceneSpec } from '../datasets/synthetic-kitti/scene.js';
import { ensureSyntheticKitti, generateSyntheticKitti, KITTI_SCALE } from '../datasets/synthetic-kitti/generate.js';
import { KittiDataset } from '../datasets/kitti/dataset.js';

const W = 480;
const H = 145;
const temps: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'synthetic-kitti-'));
  temps.push(d);
  return d;
}
test.after(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

function car(x: number, z: number): SceneObject {
  return { kind: 'car', x, z, h: 1.5, w: 1.7, l: 4, rotY: Math.PI / 2, color: [150, 20, 25] };
}

function scene(objects: SceneObject[]): SceneSpec {
  return { width: W, height: H, noiseSeed: 3, roadOffset: 0, roadHalfWidth: 7, skyTint: 0, objects };
}

/** A hedge in front of `target` (1 m closer) covering the given horizontal pixel range, 4 m tall. */
function hedge(target: SceneObject, u1: number, u2: number): SceneObject {
  const z = target.z - 1;
  const cam = camera(W, H);
  const toX = (u: number): number => ((u - cam.cx) * z) / cam.f;
  return { kind: 'bush', x: (toX(u1) + toX(u2)) / 2, z, h: 4, w: toX(u2) - toX(u1), l: 1, rotY: 0, color: [40, 120, 40] };
}

test('occlusion levels: >= 90% visible is 0, 50-90% is 1, below 50% is 2', () => {
  assert.equal([1, 0.9, 0.899, 0.5, 0.499, 0.1].map(occlusionLevel), [0, 0, 1, 1, 2, 2]);
});

test('a lone car is fully visible, untruncated, with its projected box and plausible 3D fields', () => {
  const c = car(0, 8);
  const { labels } = renderScene(scene([c]));
  assert.is(labels.length, 1);
  const l = labels[0]!;
  assert.is(l.visibleFraction, 1);
  const o = l.object;
  assert.equal([o.type, o.occluded, o.truncated], ['Car', 0, 0]);
  // f = 0.58 * 480 = 278.4, horizon 0.44 * 145 = 63.8; width 1.7 m (seen from behind), height 1.5 m at 8 m.
  const expected = [240 - (278.4 * 1.7) / 16, 63.8 + (278.4 * 0.15) / 8, 240 + (278.4 * 1.7) / 16, 63.8 + (278.4 * 1.65) / 8];
  o.bbox.forEach((v, k) => assert.ok(Math.abs(v - expected[k]!) < 0.006, `bbox[${k}] ${v} vs ${expected[k]}`));
  assert.equal(o.dimensions, [1.5, 1.7, 4]);
  assert.equal(o.location, [0, 1.65, 8]);
  assert.is(o.rotationY, 1.57);
});

test('a car behind a hedge gets the occlusion level of its visible share', () => {
  const c = car(0, 10);
  const [u1, , u2] = projectBox({ width: W, height: H }, c);
  const bw = u2 - u1;
  const cases: [number, number][] = [
    [0.05, 0],
    [0.3, 1],
    [0.75, 2],
  ];
  for (const [share, level] of cases) {
    const { labels } = renderScene(scene([c, hedge(c, u1 - 5, u1 + share * bw)]));
    const l = labels.find((x) => x.object.type === 'Car')!;
    assert.is(l.object.occluded, level, `hedge over ${share} of the width: visible ${l.visibleFraction}`);
    // The silhouette is wider at the bottom than at the roof: the visible share is near (1 - share).
    assert.ok(Math.abs(l.visibleFraction - (1 - share)) < 0.12, `${share}: ${l.visibleFraction}`);
    // The 2D box is amodal: the hidden part still counts.
    assert.ok(Math.abs(l.object.bbox[0] - u1) < 0.006);
  }
});

test('a car in front of another occludes it; the front car stays at level 0', () => {
  const back = car(0, 14);
  const front = car(0.6, 8); // covers pixels 231..290 of the back car's 223..257
  const { labels } = renderScene(scene([back, front]));
  const byZ = new Map(labels.map((l) => [l.object.location[2], l]));
  assert.is(byZ.get(8)!.object.occluded, 0);
  assert.ok(byZ.get(14)!.visibleFraction < 0.9);
  assert.ok(byZ.get(14)!.object.occluded >= 1);
});

test('truncation is the share of the projected box outside the image', () => {
  const cam = camera(W, H);
  // Centre exactly on the left border: half the box is outside.
  const c = car((-cam.cx * 9) / cam.f, 9);
  const { labels } = renderScene(scene([c]));
  const o = labels[0]!.object;
  assert.is(o.truncated, 0.5);
  assert.is(o.bbox[0], 0);
  assert.is(o.occluded, 0);
  const c2 = car((-cam.cx * 9) / cam.f + 0.5, 9);
  const [u1, , u2] = projectBox({ width: W, height: H }, c2);
  assert.is(renderScene(scene([c2])).labels[0]!.object.truncated, Math.round((100 * -u1) / (u2 - u1)) / 100);
  // A car whose box starts 0.93 px before the right border shows one pixel column: no label, never a box with
  // right < left (a regression: 479.07 .. 479 was written once).
  const half = (cam.f * 1.7) / (2 * 9);
  const sliver = car(((W - 0.93 + half - cam.cx) * 9) / cam.f, 9);
  const [s1] = projectBox({ width: W, height: H }, sliver);
  assert.ok(Math.abs(s1 - (W - 0.93)) < 1e-9);
  assert.equal(renderScene(scene([sliver])).labels, []);
});

test('far cars and almost hidden cars become DontCare regions', () => {
  const far = car(2, 40);
  const near = car(-3, 10);
  const [u1, , u2] = projectBox({ width: W, height: H }, near);
  const { labels } = renderScene(scene([far, near, hedge(near, u1 - 10, u2 + 10)]));
  assert.equal(
    labels.map((l) => [l.object.type, l.object.truncated, l.object.occluded]),
    [
      ['DontCare', -1, -1],
      ['DontCare', -1, -1],
    ],
  );
});

test('generator: same seed gives identical files, another seed differs; labels read back; all levels present', async () => {
  const a = tempDir();
  const b = tempDir();
  const c = tempDir();
  const sa = await generateSyntheticKitti({ out: a, images: 24, seed: 3 });
  await generateSyntheticKitti({ out: b, images: 24, seed: 3 });
  await generateSyntheticKitti({ out: c, images: 4, seed: 4 });
  const files = (d: string): string[] =>
    ['training/image_2', 'training/label_2', 'ImageSets'].flatMap((s) => readdirSync(path.join(d, s)).map((f) => path.join(s, f)));
  assert.equal(files(a), files(b));
  assert.is(files(a).length, 51); // 24 images, 24 labels, 3 ImageSets files
  for (const f of files(a)) assert.ok(readFileSync(path.join(a, f)).equals(readFileSync(path.join(b, f))), f);
  assert.not.ok(readFileSync(path.join(a, 'training/image_2/000000.png')).equals(readFileSync(path.join(c, 'training/image_2/000000.png'))));

  assert.is(sa.train + sa.val, 24);
  assert.is(sa.val, 12);
  for (const k of ['0', '1', '2']) assert.ok(sa.carsByOcclusion[k]! >= 6, `occlusion ${k}: ${sa.carsByOcclusion[k]}`);
  for (const k of ['easy', 'moderate', 'hard'] as const) assert.ok(sa.carsByDifficulty[k] >= 6, `${k}: ${sa.carsByDifficulty[k]}`);
  assert.ok(sa.carsTruncated > 0);
  assert.ok((sa.byType['DontCare'] ?? 0) > 0 && (sa.byType['Van'] ?? 0) > 0 && (sa.byType['Pedestrian'] ?? 0) > 0);

  const train = await KittiDataset.open(a, { split: 'train', log: null });
  const val = await KittiDataset.open(a, { split: 'val', log: null });
  assert.is(train.splitSource, 'imagesets');
  assert.is(train.records.length + val.records.length, 24);
  assert.is(train.records[0]!.width, W);
  assert.is(train.records[0]!.height, H);
  assert.is(train.numBoxes + val.numBoxes, sa.byType['Car']);
  assert.is(train.numInstances, sa.byType['Car']);

  // ensure: a complete set with the same parameters is reused, other parameters regenerate.
  const again = await ensureSyntheticKitti({ out: a, images: 24, seed: 3 });
  assert.is(again.generated, false);
  assert.equal(again.summary.carsByOcclusion, sa.carsByOcclusion);
  const other = await ensureSyntheticKitti({ out: a, images: 5, seed: 4 });
  assert.is(other.generated, true);
  // Regenerating a smaller set in place removes the earlier run's extra images and labels.
  assert.equal(files(a).filter((f) => f.startsWith('training')).length, 10);
});

test('valImages: an exact split (KITTI-scale sets use 3769 of 7481); out-of-range counts are errors', async () => {
  const d = tempDir();
  const s = await generateSyntheticKitti({ out: d, images: 7, seed: 5, width: 64, height: 32, valImages: 2 });
  assert.is(s.val, 2);
  assert.is(s.train, 5);
  const lines = (f: string): string[] => readFileSync(path.join(d, 'ImageSets', f), 'utf8').trim().split('\n');
  assert.is(lines('val.txt').length, 2);
  assert.is(lines('train.txt').length, 5);
  assert.equal([...lines('train.txt'), ...lines('val.txt')].sort(), ['000000', '000001', '000002', '000003', '000004', '000005', '000006']);
  // The manifest records the exact split: the same request reuses the set, a fractional split regenerates it.
  assert.is((await ensureSyntheticKitti({ out: d, images: 7, seed: 5, width: 64, height: 32, valImages: 2 })).generated, false);
  assert.is((await ensureSyntheticKitti({ out: d, images: 7, seed: 5, width: 64, height: 32 })).generated, true);
  for (const bad of [0, 7, 2.5]) {
    await generateSyntheticKitti({ out: tempDir(), images: 7, seed: 5, width: 64, height: 32, valImages: bad }).then(
      () => assert.unreachable(`valImages ${bad} accepted`),
      (e: Error) => assert.match(e.message, /--val-images must be an integer in \[1, 6\] for 7 images/),
    );
  }
  assert.equal(KITTI_SCALE, { images: 7481, width: 1242, height: 375, valImages: 3769 });
});

test('make-synthetic-kitti --kitti-scale refuses another size or split before writing anything', () => {
  const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'datasets', 'cli', 'make-synthetic-kitti.js');
  const out = path.join(tempDir(), 'never');
  const r = spawnSync(process.execPath, [cli, '--out', out, '--kitti-scale', '--images', '20', '--val-fraction', '0.3'], { encoding: 'utf8', timeout: 60_000 });
  assert.is(r.status, 1, r.stderr);
  assert.match(r.stderr, /--kitti-scale fixes the size and split; drop --images, --val-fraction/);
  assert.not.ok(existsSync(out));
  const help = spawnSync(process.execPath, [cli, '--help'], { encoding: 'utf8', timeout: 60_000 });
  assert.match(help.stdout, /--kitti-scale\s+real KITTI's size: 7481 images of 1242x375, 3712 train \/\s+3769 val/);
});

test.run();
