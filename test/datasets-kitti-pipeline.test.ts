import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rejects } from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../src/util/rng.js';
import { boxesToSource, cropTarget, flipBoxes, planGeometry } from '../datasets/pipeline/geometry.js';
import { hueMap, renderSample, saturationMap, samplePhotometric } from '../datasets/pipeline/render.js';
import { DetectionLoader, kittiDetectionItems, prepareSample, SSD_AUGMENTATION, type DetectionItem } from '../datasets/pipeline/loader.js';
import type { DetectionTarget, RawImage } from '../datasets/pipeline/types.js';
import { KittiDataset } from '../datasets/kitti/dataset.js';
import { decodeImage, ImageDecodeError } from '../datasets/pipeline/decode.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/kitti');

function target(boxes: number[], ids: number[], ignore: number[] = []): DetectionTarget {
  return {
    boxes: Float32Array.from(boxes),
    labels: Int32Array.from(ids.map(() => 0)),
    instanceIds: Int32Array.from(ids),
    ignore: Float32Array.from(ignore),
  };
}

function close(actual: ArrayLike<number>, expected: number[], eps = 1e-4): void {
  assert.is(actual.length, expected.length, 'length');
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(actual[i]! - expected[i]!) < eps, `[${i}] ${actual[i]} vs ${expected[i]}`);
}

test('flip maps x1 -> W - x2 and x2 -> W - x1', () => {
  close(flipBoxes(Float32Array.from([10, 5, 30, 20, 0, 0, 100, 50]), 100), [70, 5, 90, 20, 0, 0, 100, 50]);
});

test('crop keeps boxes whose centres stay inside, clips them, and their ids travel with them', () => {
  const t = target([10, 10, 30, 30, 80, 10, 120, 40, 0, 0, 10, 10], [7, 8, 9], [0, 0, 9, 9, 90, 0, 200, 60]);
  const a = cropTarget(t, [8, 4, 100, 50]);
  close(a.boxes, [2, 6, 22, 26]);
  assert.equal(Array.from(a.instanceIds), [7]);
  close(a.ignore, [0, 0, 1, 5, 82, 0, 92, 46]);
  const b = cropTarget(t, [50, 0, 110, 50]);
  close(b.boxes, [30, 10, 60, 40]);
  assert.equal(Array.from(b.instanceIds), [8]);
  close(b.ignore, [40, 0, 60, 50]);
});

test('plain resize: warp scales each axis, letterbox keeps the aspect and centres', () => {
  const t = target([20, 10, 60, 30], [3]);
  const w = planGeometry(200, 50, t, { width: 100, height: 50, resize: 'warp' }, null);
  assert.equal(w.affine, { sx: 0.5, tx: 0, sy: 1, ty: 0 });
  close(w.target.boxes, [10, 10, 30, 30]);
  const l = planGeometry(200, 50, t, { width: 100, height: 50, resize: 'letterbox' }, null);
  assert.equal(l.affine, { sx: 0.5, tx: 0, sy: 0.5, ty: 12.5 });
  close(l.target.boxes, [10, 17.5, 30, 27.5]);
  close(boxesToSource(l.target.boxes, l.affine), [20, 10, 60, 30]);
});

test('hue rotation keeps grey and turns red into green at 120°; saturation 0 gives luma', () => {
  const apply = (m: Float64Array, v: number[]): number[] => [0, 1, 2].map((r) => m[4 * r]! * v[0]! + m[4 * r + 1]! * v[1]! + m[4 * r + 2]! * v[2]! + m[4 * r + 3]!);
  close(apply(hueMap(37), [90, 90, 90]), [90, 90, 90]);
  close(apply(hueMap(120), [200, 0, 0]), [0, 200, 0]);
  close(apply(saturationMap(0), [100, 50, 10]), [60.39, 60.39, 60.39]); // 0.299·100 + 0.587·50 + 0.114·10
});

/** A grey image with coloured rectangles (one colour per box): lets a test find boxes in rendered pixels. */
function paintedImage(w: number, h: number, rects: [number, number, number, number][], colours: number[][]): RawImage {
  const data = new Uint8Array(w * h * 3).fill(128);
  rects.forEach(([x1, y1, x2, y2], k) => {
    for (let y = y1; y < y2; y++) for (let x = x1; x < x2; x++) data.set(colours[k]!, 3 * (y * w + x));
  });
  return { data, width: w, height: h };
}

test('augmented boxes stay on their objects: the pixel at each kept box centre has the box colour', () => {
  const rects: [number, number, number, number][] = [
    [20, 10, 60, 40],
    [100, 30, 180, 58],
    [170, 5, 196, 25],
  ];
  const colours = [
    [250, 0, 0],
    [0, 250, 0],
    [0, 0, 250],
  ];
  const img = paintedImage(200, 60, rects, colours);
  const t = target(rects.flat(), [11, 12, 13]);
  const W = 96;
  const H = 32;
  const out = new Float32Array(W * H * 3);
  let flips = 0;
  let dropped = 0;
  let kept = 0;
  for (let seed = 0; seed < 40; seed++) {
    const rng = new Rng(seed);
    const s = prepareSample(img, t, { width: W, height: H, resize: 'warp', augment: { geometric: {} }, normalise: { mean: [0, 0, 0] } }, rng, out, 0);
    if (s.affine.sx < 0) flips++;
    dropped += 3 - s.target.labels.length;
    for (let i = 0; i < s.target.labels.length; i++) {
      const id = s.target.instanceIds[i]!;
      const [x1, y1, x2, y2] = Array.from(s.target.boxes.subarray(4 * i, 4 * i + 4));
      assert.ok(x1! >= 0 && y1! >= 0 && x2! <= 1 && y2! <= 1 && x2! > x1! && y2! > y1!, `seed ${seed}: box inside [0,1]`);
      const u = Math.floor(((x1! + x2!) / 2) * W);
      const v = Math.floor(((y1! + y2!) / 2) * H);
      if ((x2! - x1!) * W < 3 || (y2! - y1!) * H < 3) continue; // too small to hold a clean centre pixel
      const px = Array.from(out.subarray(3 * (v * W + u), 3 * (v * W + u) + 3));
      close(px, colours[id - 11]!, 40);
      // The box maps back to its rectangle in the original image (clipped by the crop).
      const back = boxesToSource(s.target.boxes.subarray(4 * i, 4 * i + 4).map((c, k) => c * (k % 2 === 0 ? W : H)), s.affine);
      const r = rects[id - 11]!;
      assert.ok(back[0]! >= r[0] - 1e-3 && back[2]! <= r[2] + 1e-3 && back[1]! >= r[1] - 1e-3 && back[3]! <= r[3] + 1e-3, `seed ${seed} id ${id}`);
      kept++;
    }
  }
  assert.ok(flips > 5 && flips < 35, `flips ${flips}`);
  assert.ok(dropped > 0, 'some crops drop boxes');
  assert.ok(kept > 40, `kept ${kept}`);
});

test('no augmentation: a mean-coloured image normalises to zero; scale applies; expand fill is the mean', () => {
  const img: RawImage = { data: new Uint8Array(8 * 4 * 3), width: 8, height: 4 };
  for (let p = 0; p < 32; p++) img.data.set([123, 117, 104], 3 * p);
  const out = new Float32Array(4 * 2 * 3);
  renderSample(img, { sx: 0.5, tx: 0, sy: 0.5, ty: 0 }, null, {}, 4, 2, out, 0);
  close(out, new Array<number>(24).fill(0));
  img.data.fill(255);
  renderSample(img, { sx: 0.5, tx: 0, sy: 0.5, ty: 0 }, null, { mean: [0, 0, 0], scale: 1 / 255 }, 4, 2, out, 0);
  close(out, new Array<number>(24).fill(1));
  // Left half of the output lies outside the source (as after an expand): fill colour = mean -> 0.
  renderSample(img, { sx: 1, tx: 2, sy: 1, ty: 0 }, null, {}, 4, 2, out, 0);
  close(Array.from(out.subarray(0, 6)), [0, 0, 0, 0, 0, 0]);
  close(Array.from(out.subarray(6, 9)), [132, 138, 151]);
});

test('photometric jitter is drawn from the rng: same seed, same map; it changes colours within [0, 255]', () => {
  const a = samplePhotometric({}, new Rng(5));
  const b = samplePhotometric({}, new Rng(5));
  assert.equal(Array.from(a), Array.from(b));
  const img = paintedImage(20, 10, [[0, 0, 10, 10]], [[250, 10, 10]]);
  const out = new Float32Array(20 * 10 * 3);
  let changed = 0;
  for (let seed = 0; seed < 10; seed++) {
    prepareSample(img, target([], []), { width: 20, height: 10, augment: { photometric: {} }, normalise: { mean: [0, 0, 0] } }, new Rng(seed), out, 0);
    for (const v of out) assert.ok(v >= 0 && v <= 255);
    if (Math.abs(out[0]! - 250) > 1 || Math.abs(out[1]! - 10) > 1) changed++;
  }
  assert.ok(changed >= 5, `changed ${changed}`);
});

function memoryItems(n: number): { items: DetectionItem[]; images: Map<string, RawImage> } {
  const images = new Map<string, RawImage>();
  const items: DetectionItem[] = [];
  for (let k = 0; k < n; k++) {
    const img = paintedImage(40, 16, [[2 + k, 2, 20 + k, 12]], [[200, 20 + 10 * k, 30]]);
    images.set(`mem/${k}.png`, img);
    items.push({ imageId: String(k), imagePath: `mem/${k}.png`, target: target([2 + k, 2, 20 + k, 12], [100 + k]) });
  }
  return { items, images };
}

test('loader: batches in epoch order, prefetch reads ahead, resume gives exactly the same batches', async () => {
  const { items, images } = memoryItems(10);
  const decoded: string[] = [];
  const decode = async (f: string): Promise<RawImage> => {
    decoded.push(f);
    return images.get(f)!;
  };
  const opts = { batchSize: 3, width: 20, height: 8, seed: 9, augment: SSD_AUGMENTATION, decode };
  const a = new DetectionLoader(items, { ...opts, prefetch: 2 });
  assert.is(a.batchesPerEpoch, 3);
  const first = await a.next();
  // While batch 0 is being used, batches 1 and 2 (prefetch 2) are being prepared, no more.
  await new Promise((r) => setImmediate(r));
  assert.is(decoded.length, 9);
  const seen = [first];
  for (let k = 0; k < 6; k++) seen.push(await a.next());
  assert.equal(
    seen.map((b) => [b.epoch, b.batchIndex]),
    [
      [0, 0],
      [0, 1],
      [0, 2],
      [1, 0],
      [1, 1],
      [1, 2],
      [2, 0],
    ],
  );
  assert.equal(Array.from(seen[1]!.itemIndices), Array.from(a.order(0).subarray(3, 6)));
  assert.not.equal(Array.from(a.order(0)), Array.from(a.order(1)));
  // Every item once per epoch (one dropped: 10 = 3·3 + 1).
  assert.is(new Set(seen.slice(0, 3).flatMap((b) => Array.from(b.itemIndices))).size, 9);
  // Ids travel with the boxes: each target's id is its item's.
  for (const b of seen) b.targets.forEach((t, i) => t.instanceIds.forEach((id) => assert.is(id, 100 + b.itemIndices[i]!)));

  // Resume from the state saved after batch (0, 2); without prefetch; results bit-identical.
  const b = new DetectionLoader(items, { ...opts, prefetch: 0 });
  b.setState({ seed: 9, epoch: 0, batch: 2 });
  for (let k = 2; k < 7; k++) {
    const got = await b.next();
    assert.equal([got.epoch, got.batchIndex], [seen[k]!.epoch, seen[k]!.batchIndex]);
    assert.ok(Buffer.from(got.images.buffer).equals(Buffer.from(seen[k]!.images.buffer)), `batch ${k} images`);
    assert.equal(got.targets.map((t) => Array.from(t.boxes)), seen[k]!.targets.map((t) => Array.from(t.boxes)));
  }
  assert.equal(b.getState(), { seed: 9, epoch: 2, batch: 1 });
  await a.close();
  await b.close();
  assert.throws(() => b.setState({ seed: 8, epoch: 0, batch: 0 }), /seed 8/);
});

test('loader: epochBatches covers one epoch; evaluation order keeps the last partial batch', async () => {
  const { items, images } = memoryItems(5);
  const loader = new DetectionLoader(items, { batchSize: 2, width: 20, height: 8, seed: 1, shuffle: false, decode: async (f) => images.get(f)! });
  const got: string[][] = [];
  for await (const b of loader.epochBatches()) got.push(b.imageIds);
  assert.equal(got, [['0', '1'], ['2', '3'], ['4']]);
  assert.equal(loader.getState(), { seed: 1, epoch: 1, batch: 0 });
  await loader.close();
});

test('loader on the KITTI fixture with sharp decoding; a bad image fails naming the file', async () => {
  const ds = await KittiDataset.open(path.join(FIXTURES, 'standard'), { split: 'all', log: null });
  const items = kittiDetectionItems(ds.records);
  assert.equal(Array.from(items[2]!.target.instanceIds), [1, 2]);
  assert.is(items[2]!.target.ignore.length, 4); // the Van
  const loader = new DetectionLoader(items, { batchSize: 4, width: 62, height: 19, seed: 2, shuffle: false });
  const b = await loader.next();
  assert.is(b.images.length, 4 * 19 * 62 * 3);
  close(Array.from(b.targets[3]!.boxes.subarray(0, 4)), [56.12 / 124, 17.3 / 38, 74.03 / 124, 32.18 / 38]);
  await loader.close();
  const bad = new DetectionLoader([{ ...items[0]!, imagePath: '/nonexistent/000000.png' }], { batchSize: 1, width: 8, height: 8, seed: 0, prefetch: 3 });
  await rejects(() => bad.next(), /\/nonexistent\/000000\.png: cannot read the image/);
  await bad.close();
  // A truncated PNG (header intact, data cut) fails at decode rather than giving a partly grey image.
  const dir = mkdtempSync(path.join(tmpdir(), 'kitti-truncated-'));
  const truncated = path.join(dir, '000000.png');
  const full = readFileSync(items[0]!.imagePath);
  writeFileSync(truncated, full.subarray(0, Math.floor(full.length * 0.6)));
  try {
    await rejects(() => decodeImage(truncated), (e: Error) => e instanceof ImageDecodeError && e.message.startsWith(`${truncated}: cannot read the image`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('worker threads give bit-identical batches and report bad files by name', async () => {
  const ds = await KittiDataset.open(path.join(FIXTURES, 'standard'), { split: 'all', log: null });
  const items = kittiDetectionItems(ds.records);
  const opts = { batchSize: 2, width: 62, height: 19, seed: 4, augment: SSD_AUGMENTATION };
  const inThread = new DetectionLoader(items, opts);
  const threaded = new DetectionLoader(items, { ...opts, workers: 2 });
  for (let k = 0; k < 3; k++) {
    const a = await inThread.next();
    const b = await threaded.next();
    assert.equal([b.epoch, b.batchIndex, b.imageIds], [a.epoch, a.batchIndex, a.imageIds]);
    assert.ok(Buffer.from(a.images.buffer).equals(Buffer.from(b.images.buffer)), `batch ${k}`);
    assert.equal(b.targets.map((t) => [Array.from(t.boxes), Array.from(t.instanceIds), Array.from(t.ignore)]), a.targets.map((t) => [Array.from(t.boxes), Array.from(t.instanceIds), Array.from(t.ignore)]));
    assert.equal(b.transforms, a.transforms);
  }
  await inThread.close();
  await threaded.close();
  const bad = new DetectionLoader([{ ...items[0]!, imagePath: '/nonexistent/000001.png' }], { batchSize: 1, width: 8, height: 8, seed: 0, workers: 1 });
  await rejects(() => bad.next(), /\/nonexistent\/000001\.png: cannot read the image/);
  await bad.close();
});

test.run();
