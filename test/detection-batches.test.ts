import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../src/util/rng.js';
import { isTrainedBox, kittiDetectionItems, prepareSample, simpleAugmentation, SSD_AUGMENTATION, type LabelledBox } from '../datasets/pipeline/loader.js';
import type { DetectionTarget, RawImage } from '../datasets/pipeline/types.js';
import { DETECTOR_TRAIN_DEFAULTS, trainingAugmentation, type DetectorConfig } from '../detection/config.js';
import { detectorLoader, trainingBatch, type DetectionRecord } from '../detection/train/batches.js';
import type { KittiObject } from '../datasets/kitti/label-file.js';

const RAW = { mean: [0, 0, 0] as const, scale: 1 };

function noiseImage(width: number, height: number, seed: number): RawImage {
  const rng = new Rng(seed);
  return { data: Uint8Array.from({ length: width * height * 3 }, () => rng.int(256)), width, height };
}

function oneBox(): DetectionTarget {
  return { boxes: Float32Array.from([5, 2, 15, 8]), labels: Int32Array.from([0]), instanceIds: Int32Array.from([7]), ignore: Float32Array.from([30, 0, 40, 4]) };
}

test('simple preset: a flip mirrors boxes, ignore regions and pixels exactly; otherwise the image is untouched', () => {
  const W = 40, H = 10;
  const img = noiseImage(W, H, 1);
  const options = { width: W, height: H, augment: simpleAugmentation({ flip: true, brightness: 0, contrast: 0 }), normalise: RAW };
  let flips = 0;
  for (let seed = 0; seed < 32; seed++) {
    const out = new Float32Array(W * H * 3);
    const s = prepareSample(img, oneBox(), options, new Rng(seed), out, 0);
    assert.equal(Array.from(s.target.instanceIds), [7]);
    assert.is(s.dropped, 0);
    if (s.affine.sx < 0) {
      flips++;
      assert.equal(s.affine, { sx: -1, tx: W, sy: 1, ty: 0 });
      assert.equal(Array.from(s.target.boxes), Array.from(Float32Array.from([25 / W, 2 / H, 35 / W, 8 / H])));
      assert.equal(Array.from(s.target.ignore), Array.from(Float32Array.from([0, 0, 10 / W, 4 / H])));
      for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) for (let c = 0; c < 3; c++) assert.is(out[(i * W + j) * 3 + c], img.data[(i * W + (W - 1 - j)) * 3 + c]);
    } else {
      assert.equal(s.affine, { sx: 1, tx: 0, sy: 1, ty: 0 });
      assert.equal(Array.from(s.target.boxes), Array.from(Float32Array.from([5 / W, 2 / H, 15 / W, 8 / H])));
      assert.equal(Array.from(out), Array.from(img.data));
    }
  }
  assert.ok(flips > 8 && flips < 24, `${flips} flips in 32`);
  // flip: false never flips.
  for (let seed = 0; seed < 8; seed++) {
    const s = prepareSample(img, oneBox(), { ...options, augment: simpleAugmentation({ flip: false, brightness: 0, contrast: 0 }) }, new Rng(seed), new Float32Array(W * H * 3), 0);
    assert.is(s.affine.sx, 1);
  }
});

test('simple preset: brightness within ±b and contrast within [1 − c, 1 + c] about mid-grey, each about half the time; no saturation, hue or channel swap', () => {
  // A flat colour well inside [0, 255] under any jitter (no clamping): out_c = α (v_c + δ − 127.5) + 127.5.
  const v = [100, 130, 160] as const;
  const img: RawImage = { data: Uint8Array.from({ length: 4 * 2 * 3 }, (_, k) => v[k % 3]!), width: 4, height: 2 };
  const options = { width: 4, height: 2, augment: simpleAugmentation({ flip: false, brightness: 32, contrast: 0.3 }), normalise: RAW };
  const alphas: number[] = [];
  const deltas: number[] = [];
  for (let seed = 0; seed < 400; seed++) {
    const out = new Float32Array(4 * 2 * 3);
    prepareSample(img, oneBox(), options, new Rng(seed), out, 0);
    for (let k = 3; k < out.length; k++) assert.is(out[k], out[k % 3], 'every pixel the same colour map');
    const alpha = (out[2]! - out[0]!) / (v[2] - v[0]);
    const delta = (out[0]! - 127.5) / alpha + 127.5 - v[0];
    // The middle channel follows the same map: no saturation, hue or channel permutation.
    assert.ok(Math.abs(alpha * (v[1] + delta - 127.5) + 127.5 - out[1]!) < 1e-3, `seed ${seed}: ${Array.from(out.subarray(0, 3)).join(', ')}`);
    alphas.push(alpha);
    deltas.push(delta);
  }
  const jittered = (xs: number[], neutral: number): number => xs.filter((x) => Math.abs(x - neutral) > 1e-4).length / xs.length;
  assert.ok(Math.min(...alphas) >= 0.7 - 1e-5 && Math.max(...alphas) <= 1.3 + 1e-5, `α in [${Math.min(...alphas)}, ${Math.max(...alphas)}]`);
  assert.ok(Math.min(...alphas) < 0.75 && Math.max(...alphas) > 1.25, 'the whole contrast range is used');
  assert.ok(Math.min(...deltas) >= -32 - 1e-3 && Math.max(...deltas) <= 32 + 1e-3, `δ in [${Math.min(...deltas)}, ${Math.max(...deltas)}]`);
  assert.ok(Math.min(...deltas) < -28 && Math.max(...deltas) > 28, 'the whole brightness range is used');
  assert.ok(Math.abs(jittered(alphas, 1) - 0.5) < 0.1, `contrast applied to ${jittered(alphas, 1)}`);
  assert.ok(Math.abs(jittered(deltas, 0) - 0.5) < 0.1, `brightness applied to ${jittered(deltas, 0)}`);
  // Zero turns a jitter off: the image is unchanged.
  const out = new Float32Array(4 * 2 * 3);
  prepareSample(img, oneBox(), { ...options, augment: simpleAugmentation({ flip: false, brightness: 0, contrast: 0 }) }, new Rng(3), out, 0);
  assert.equal(Array.from(out), Array.from(img.data));
});

test('one box filter: an ignore box is an ignore region, never a target, even with a class index', () => {
  const box = (classIndex: number, ignore: boolean, instanceId: number, x: number): LabelledBox => ({ bbox: [x, 0, x + 10, 10], classIndex, ignore, instanceId });
  const boxes = [box(0, false, 3, 0), box(0, true, 4, 20), box(-1, true, -1, 40), box(-1, false, -1, 60)];
  assert.equal(boxes.map(isTrainedBox), [true, false, false, false]);
  const [item] = kittiDetectionItems([{ imageId: 'a', imagePath: 'a.png', objects: boxes }]);
  assert.equal(Array.from(item!.target.boxes), [0, 0, 10, 10]);
  assert.equal(Array.from(item!.target.instanceIds), [3]);
  assert.equal(Array.from(item!.target.ignore), [20, 0, 30, 10, 40, 0, 50, 10]);
  assert.equal(kittiDetectionItems([]), []);
});

const W = 48, H = 16;

/** Six in-memory images (one with a degenerate box) as detector records. */
function records(): { records: DetectionRecord[]; decode: (file: string) => Promise<RawImage> } {
  const images = new Map<string, RawImage>();
  const recs: DetectionRecord[] = [];
  const object = { type: 'Car', truncated: 0, occluded: 0, alpha: 0, bbox: [0, 0, 1, 1], dimensions: [1, 1, 1], location: [0, 0, 0], rotationY: 0 } as KittiObject;
  for (let k = 0; k < 6; k++) {
    const file = `/mem/${k}.png`;
    images.set(file, noiseImage(W * 2, H * 2, 10 + k));
    const bbox: [number, number, number, number] = [4 + k, 2, 40 + k, 20];
    const objects: DetectionRecord['objects'] = [{ bbox, classIndex: 0, ignore: false, instanceId: 2 * k, occlusion: 0, truncation: 0, difficulty: 'easy', object }];
    if (k === 3) objects.push({ bbox: [50, 5, 50, 9], classIndex: 0, ignore: false, instanceId: 2 * k + 1, occlusion: 0, truncation: 0, difficulty: 'easy', object });
    recs.push({ imageId: String(k), imagePath: file, objects });
  }
  const decode = (f: string): Promise<RawImage> => {
    const img = images.get(f);
    return img ? Promise.resolve(img) : Promise.reject(new Error(`${f}: no such image`));
  };
  return { records: recs, decode };
}

test('detector batches: a pure function of (seed, epoch, index); another epoch differs; boxes keep their instance ids; degenerate boxes are dropped and counted', async () => {
  const { records: recs, decode } = records();
  const augment = simpleAugmentation(DETECTOR_TRAIN_DEFAULTS.augment);
  const mk = (): ReturnType<typeof detectorLoader> => detectorLoader(recs, { inputSize: { width: W, height: H }, batchSize: 2, seed: 4, augment, decode });
  const a = mk();
  await a.prepareBatch(0, 0);
  const x = await a.prepareBatch(2, 1);
  const y = await mk().prepareBatch(2, 1);
  assert.ok(Buffer.from(x.images.buffer).equals(Buffer.from(y.images.buffer)));
  assert.equal(x.targets, y.targets);
  assert.equal(x.imageIds, y.imageIds);
  const other = await mk().prepareBatch(3, 1);
  assert.not.ok(Buffer.from(x.images.buffer).equals(Buffer.from(other.images.buffer)));
  assert.is(a.batchesPerEpoch, 3);
  // Every epoch: each image once; the box of image k has id 2k; the zero-width box of image 3 is dropped and counted.
  for (const epoch of [0, 1]) {
    const batches = await Promise.all([0, 1, 2].map((i) => mk().prepareBatch(epoch, i)));
    const ids = batches.flatMap((b) => b.imageIds);
    assert.equal([...ids].sort(), ['0', '1', '2', '3', '4', '5']);
    for (const b of batches) {
      const t = trainingBatch(b);
      assert.equal(Array.from(t.instanceIds), b.imageIds.map((id) => 2 * Number(id)));
      assert.ok(t.images.every((im) => im.labels.length === 1 && im.labels[0] === 1));
      assert.is(b.droppedBoxes, b.imageIds.includes('3') ? 1 : 0);
    }
  }
});

test('evaluation batches (augment null): every image in order, the plain resize, the same in every epoch', async () => {
  const { records: recs, decode } = records();
  const loader = detectorLoader(recs, { inputSize: { width: W, height: H }, batchSize: 4, seed: 9, augment: null, decode });
  assert.is(loader.batchesPerEpoch, 2);
  const b0 = await loader.prepareBatch(0, 0);
  const b1 = await loader.prepareBatch(0, 1);
  assert.equal([...b0.imageIds, ...b1.imageIds], ['0', '1', '2', '3', '4', '5']);
  assert.is(b1.batchSize, 2, 'the last partial batch is kept');
  assert.equal(b0.sourceSizes[0], { width: 2 * W, height: 2 * H });
  for (const b of [b0, b1]) for (const a of b.transforms) assert.equal(a, { sx: 0.5, tx: 0, sy: 0.5, ty: 0 });
  // Boxes are the label boxes over the original size.
  assert.equal(Array.from(b0.targets[1]!.boxes), Array.from(Float32Array.from([5 / (2 * W), 2 / (2 * H), 41 / (2 * W), 20 / (2 * H)])));
  const again = await loader.prepareBatch(5, 0);
  assert.ok(Buffer.from(again.images.buffer).equals(Buffer.from(b0.images.buffer)));
});

test('config: the simple preset by default, train.augment merged over the defaults; "ssd" is SSD augmentation', () => {
  const base = { data: { root: '', split: 'train', valSplit: 'val' }, train: {} } as unknown as DetectorConfig;
  assert.equal(trainingAugmentation(base), simpleAugmentation({ flip: true, brightness: 32, contrast: 0.5 }));
  const tuned = { ...base, train: { augment: { contrast: 0.3 } } } as unknown as DetectorConfig;
  assert.equal(trainingAugmentation(tuned).photometric?.contrast, [0.7, 1.3]);
  assert.equal(trainingAugmentation(tuned).photometric?.brightness, 32);
  assert.equal(trainingAugmentation(tuned).geometric, { expandProb: 0, cropModes: [], flipProb: 0.5 });
  const ssd = { ...base, data: { ...base.data, pipeline: 'ssd' } } as unknown as DetectorConfig;
  assert.is(trainingAugmentation(ssd), SSD_AUGMENTATION);
});

test.run();
