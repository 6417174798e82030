import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/runtime/backend.js';
import { AnchorGenerator, featureMapSizes } from '../detection/anchors/anchor-generator.js';
import { BoxCoder } from '../detection/box-coder.js';
import { Matcher } from '../detection/matcher.js';
import { MultiBoxLoss } from '../detection/loss.js';
import { Postprocessor } from '../detection/postprocess.js';
import { buildTargets, type BatchTargets } from '../detection/targets.js';

test.before(async () => {
  await initBackend('cpu', { log: null });
});

function close(actual: ArrayLike<number>, expected: number[], tol = 1e-5, what = ''): void {
  assert.is(actual.length, expected.length, `${what} length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

test('anchors on a rectangular 300x100 input: literal centres and sizes, width/height not swapped', () => {
  const gen = new AnchorGenerator({ minScale: 0.2, maxScale: 0.6, aspectRatios: [1, 2], extraScale: true });
  const a = gen.generate(
    [
      [2, 3],
      [1, 1],
    ],
    { width: 300, height: 100 },
  );
  assert.is(a.count, 2 * 3 * 3 + 3);
  assert.equal(a.perCell, [3, 3]);
  // anchor 0: row 0, col 0, ratio 1: 20 px tall, 20 px wide.
  close(a.centre.subarray(0, 4), [1 / 6, 0.25, 20 / 300, 0.2], 1e-6, 'anchor 0');
  // anchor 16: row 1, col 2, ratio 2: 20 px tall, 40 px wide.
  close(a.centre.subarray(64, 68), [5 / 6, 0.75, 40 / 300, 0.2], 1e-6, 'anchor 16');
  // anchor 2: the extra box of scale sqrt(0.2*0.6), ratio 1.
  close(a.centre.subarray(8, 12), [1 / 6, 0.25, (Math.sqrt(0.12) * 100) / 300, Math.sqrt(0.12)], 1e-6, 'anchor 2');
  // last level: one cell at the centre, 60 px tall.
  close(a.centre.subarray(72, 80), [0.5, 0.5, 0.2, 0.6, 0.5, 0.5, 0.4, 0.6], 1e-6, 'level 1');
  close(a.corner.subarray(64, 68), [5 / 6 - 20 / 300, 0.65, 5 / 6 + 20 / 300, 0.85], 1e-6, 'corner 16');
});

test('feature-map sizes come from the backbone itself: [rows, cols] of a stride-2 conv on 300x100', () => {
  const w = tf.ones<tf.Rank.R4>([3, 3, 3, 2]);
  const sizes = featureMapSizes((x) => {
    const f1 = tf.conv2d(x, w, 2, 'same');
    return [f1, tf.maxPool(f1, 3, 2, 'valid')];
  }, { width: 300, height: 100 });
  assert.equal(sizes, [
    [50, 150],
    [24, 74],
  ]);
  w.dispose();
});

test('anchor generator rejects per-level ratios that do not match the levels', () => {
  const gen = new AnchorGenerator({ minScale: 0.1, maxScale: 0.5, aspectRatios: [[1], [1, 2]] });
  assert.throws(() => gen.generate([[2, 2]], { width: 10, height: 10 }), /2 levels but the backbone produces 1/);
});

test('box coder: literal encoding with variances 0.1/0.2, exact round trip, clamped decoding', () => {
  const coder = new BoxCoder();
  const anchors = new Float32Array([0.5, 0.5, 0.2, 0.4]);
  const out = new Float32Array(4);
  coder.encodeOne([0.42, 0.35, 0.62, 0.75], 0, anchors, 0, out, 0);
  close(out, [1, 1.25, 0, 0], 1e-5, 'same size');
  coder.encodeOne([0.3, 0.3, 0.7, 0.5], 0, anchors, 0, out, 0);
  close(out, [0, -2.5, Math.log(2) / 0.2, Math.log(0.5) / 0.2], 1e-5, 'scaled');
  close(coder.decode(out, anchors), [0.3, 0.3, 0.7, 0.5], 1e-6, 'round trip');
  const huge = coder.decode([0, 0, 100, -1], anchors);
  close(huge, [0.5 - 6.25, 0.5 - 0.2 * Math.exp(-0.2), 0.5 + 6.25, 0.5 + 0.2 * Math.exp(-0.2)], 1e-4, 'clamped');
  assert.throws(() => coder.encodeOne([0.3, 0.3, 0.3, 0.5], 0, anchors, 0, out, 0), /degenerate/);
});

test('matcher: IoU ≥ 0.5, forced best anchor, ignore regions, empty targets', () => {
  const anchors = [0, 0, 0.5, 0.5, 0.5, 0, 1, 0.5, 0, 0.5, 0.5, 1, 0.5, 0.5, 1, 1, 0.1, 0.1, 0.4, 0.4];
  const boxes = [0, 0, 0.5, 0.5, 0.55, 0.55, 0.7, 0.7];
  const m = new Matcher();
  const r = m.match(anchors, boxes, [0.5, 0, 1, 0.4]);
  assert.equal(Array.from(r.matched), [0, -2, -1, 1, -1]);
  assert.is(r.numPositive, 2);
  close(r.overlap, [1, 0, 0, 0.09, 0], 1e-6, 'overlap');
  const empty = m.match(anchors, []);
  assert.equal(Array.from(empty.matched), [-1, -1, -1, -1, -1]);
  assert.is(empty.numPositive, 0);
  const onlyIgnore = m.match(anchors, [], [0, 0, 0.5, 0.5]);
  assert.equal(Array.from(onlyIgnore.matched), [-2, -1, -1, -1, -2]);
});

/** Plain-JS reference loss (independent of the module): per-anchor σ given explicitly. */
function referenceClsLoss(logits: number[], labels: number[], mask: number[], sigma: number[], C: number, npos: number): number {
  let total = 0;
  for (let o = 0; o < mask.length; o++) {
    if (!mask[o]) continue;
    const z = logits.slice(o * C, o * C + C).map((v) => v / sigma[o]!);
    const mx = Math.max(...z);
    const lse = mx + Math.log(z.reduce((s, v) => s + Math.exp(v - mx), 0));
    total += lse - z[labels[o]!]!;
  }
  return total / Math.max(1, npos);
}

function tinyTargets(): { targets: BatchTargets; logits: number[]; loc: number[] } {
  // One image, 6 anchors, 2 classes. Anchors 0 and 3 are positive (boxes 0 and 1), anchor 5 ignored.
  const boxIndex = new Int32Array([0, -1, -1, 1, -1, -2]);
  const labels = new Int32Array([1, 0, 0, 1, 0, 0]);
  const locTargets = new Float32Array(24);
  locTargets.set([0.5, 0, 0, 2], 0); // anchor 0
  locTargets.set([0, 0, -0.2, 0], 12); // anchor 3
  const targets: BatchTargets = {
    batchSize: 1,
    numAnchors: 6,
    labels,
    boxIndex,
    locTargets,
    numBoxes: 2,
    positivesPerImage: new Int32Array([2]),
  };
  // bg loss of negatives 1, 2, 4: anchor 2 hardest, then 4, then 1.
  const logits = [0.2, 0.9, 1.0, 0.5, -0.3, 1.1, 0.1, 0.4, 0.4, 0.6, 3.0, -1.0];
  return { targets, logits, loc: new Array<number>(24).fill(0) };
}

test('multibox loss: hand-computed parts, hard negatives ranked by background loss, 3:1 capped by availability', () => {
  const { targets, logits, loc } = tinyTargets();
  const loss = new MultiBoxLoss();
  const sel = loss.selectAnchors(logits, targets, 2);
  assert.equal(Array.from(sel.mask), [1, 1, 1, 1, 1, 0]); // 6 wanted, 3 available negatives
  const fewer = new MultiBoxLoss({ negPosRatio: 0.5 }).selectAnchors(logits, targets, 2);
  assert.equal(Array.from(fewer.mask), [1, 0, 1, 1, 0, 0]); // the hardest negative only
  const parts = loss.compute(tf.tensor3d(logits, [1, 6, 2]), tf.tensor3d(loc, [1, 6, 4]), targets, null);
  const expectedCls = referenceClsLoss(logits, [1, 0, 0, 1, 0, 0], [1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1], 2, 2);
  close([parts.cls.dataSync()[0]!], [expectedCls], 1e-5, 'cls');
  // smooth-L1: anchor 0: 0.5·0.25 + (2 − 0.5) = 1.625; anchor 3: 0.5·0.04 = 0.02; / 2 positives.
  close([parts.loc.dataSync()[0]!], [(1.625 + 0.02) / 2], 1e-6, 'loc');
  close([parts.total.dataSync()[0]!], [expectedCls + 0.8225], 1e-5, 'total');
  assert.is(parts.numPositive, 2);
  assert.is(parts.numNegative, 3);
  tf.dispose([parts.total, parts.cls, parts.loc]);
});

test('multibox loss: an image without cars contributes minNegatives negatives, normalised by 1', () => {
  const targets: BatchTargets = {
    batchSize: 1,
    numAnchors: 5,
    labels: new Int32Array(5),
    boxIndex: new Int32Array([-1, -1, -1, -1, -2]),
    locTargets: new Float32Array(20),
    numBoxes: 0,
    positivesPerImage: new Int32Array([0]),
  };
  const logits = [0, 1, 0, 2, 0, 3, 0, 0.5, 0, 9];
  const loss = new MultiBoxLoss({ minNegatives: 2 });
  assert.equal(Array.from(loss.selectAnchors(logits, targets, 2).mask), [0, 1, 1, 0, 0]);
  const parts = loss.compute(tf.tensor3d(logits, [1, 5, 2]), tf.zeros([1, 5, 4]), targets, tf.tensor1d([]));
  const expected = Math.log(1 + Math.exp(2)) + Math.log(1 + Math.exp(3));
  close([parts.total.dataSync()[0]!], [expected], 1e-5, 'total');
  tf.dispose([parts.total, parts.cls, parts.loc]);
});

test('per-box σ: positives use their box σ, negatives the batch mean; gradients match finite differences', () => {
  const { targets, logits, loc } = tinyTargets();
  const logSigma0 = [Math.log(2), Math.log(0.5)];
  const lab = [1, 0, 0, 1, 0, 0];
  const mask = [1, 1, 1, 1, 1, 0];
  const sigmaOf = (ls: number[], meanFrom: number[]): number[] => {
    const s = ls.map(Math.exp);
    const mean = meanFrom.map(Math.exp).reduce((p, v) => p + v, 0) / meanFrom.length;
    return [s[0]!, mean, mean, s[1]!, mean, mean];
  };
  for (const mode of ['detached', 'through'] as const) {
    const loss = new MultiBoxLoss({ negativeSigma: mode });
    const lz = tf.tensor3d(logits, [1, 6, 2]);
    const ll = tf.tensor3d(loc, [1, 6, 4]);
    const f = (ls: tf.Tensor): tf.Scalar => {
      const p = loss.compute(lz, ll, targets, tf.exp(ls) as tf.Tensor1D);
      tf.dispose([p.cls, p.loc]);
      return p.total;
    };
    const value = f(tf.tensor1d(logSigma0));
    const expected = referenceClsLoss(logits, lab, mask, sigmaOf(logSigma0, logSigma0), 2, 2) + 0.8225; // + the localisation part
    close([value.dataSync()[0]!], [expected], 1e-5, `${mode} value`);
    const grad = tf.grad(f)(tf.tensor1d(logSigma0)).dataSync();
    const eps = 1e-3;
    const fd: number[] = [];
    for (let i = 0; i < 2; i++) {
      const plus = logSigma0.slice(), minus = logSigma0.slice();
      plus[i]! += eps;
      minus[i]! -= eps;
      // detached: the negatives' σ stays the mean of the unperturbed σ; through: it moves with them.
      const fp = referenceClsLoss(logits, lab, mask, sigmaOf(plus, mode === 'through' ? plus : logSigma0), 2, 2);
      const fm = referenceClsLoss(logits, lab, mask, sigmaOf(minus, mode === 'through' ? minus : logSigma0), 2, 2);
      fd.push((fp - fm) / (2 * eps));
    }
    close(grad, fd, 2e-3, `${mode} gradient`);
    tf.dispose([lz, ll, value]);
    if (mode === 'detached') {
      // Only the box's own positive anchor sends gradient: box 0's anchor is labelled car with logits (0.2, 0.9).
      const s = 2, z0 = 0.2 / s, z1 = 0.9 / s;
      const p1 = Math.exp(z1) / (Math.exp(z0) + Math.exp(z1));
      // d/dlogσ CE(z/σ) = (z̃_y − Σ p z̃) with z̃ = z/σ (data-parameters note), divided by the 2 positives.
      const closed = (z1 - ((1 - p1) * z0 + p1 * z1)) / 2;
      close([grad[0]!], [closed], 1e-4, 'closed form');
    }
  }
});

test("per-box σ, boxSigmaGradient 'mean': same loss, each box's σ gradient divided by its number of positive anchors", () => {
  // Box 0 has two positive anchors (0 and 1), box 1 one (anchor 3).
  const { targets: t, logits, loc } = tinyTargets();
  const targets: BatchTargets = { ...t, boxIndex: new Int32Array([0, 0, -1, 1, -1, -2]), labels: new Int32Array([1, 1, 0, 1, 0, 0]), positivesPerImage: new Int32Array([3]) };
  const lz = tf.tensor3d(logits, [1, 6, 2]);
  const ll = tf.tensor3d(loc, [1, 6, 4]);
  const run = (negativeSigma: 'detached' | 'through', boxSigmaGradient: 'sum' | 'mean'): { value: number; grad: number[] } => {
    const loss = new MultiBoxLoss({ negativeSigma, boxSigmaGradient });
    const f = (ls: tf.Tensor): tf.Scalar => {
      const p = loss.compute(lz, ll, targets, tf.exp(ls) as tf.Tensor1D);
      tf.dispose([p.cls, p.loc]);
      return p.total;
    };
    const x = tf.tensor1d([Math.log(2), Math.log(0.5)]);
    const v = f(x);
    const g = tf.grad(f)(x);
    const out = { value: v.dataSync()[0]!, grad: Array.from(g.dataSync()) };
    tf.dispose([x, v, g]);
    return out;
  };
  const sumD = run('detached', 'sum');
  const meanD = run('detached', 'mean');
  const sumT = run('through', 'sum');
  const meanT = run('through', 'mean');
  close([meanD.value, meanT.value], [sumD.value, sumT.value], 1e-6, 'value unchanged');
  assert.ok(Math.abs(sumD.grad[0]!) > 1e-3 && Math.abs(sumD.grad[1]!) > 1e-3, 'both boxes get a gradient');
  close(meanD.grad, [sumD.grad[0]! / 2, sumD.grad[1]!], 1e-5, 'detached: box 0 halved, box 1 unchanged');
  // 'through': the negatives' share (sumT − sumD) is left as it is; only the box's own anchors are averaged.
  close(meanT.grad, [sumT.grad[0]! - sumD.grad[0]! / 2, sumT.grad[1]!], 1e-5, 'through: own anchors averaged');
  tf.dispose([lz, ll]);
});

test('multibox loss keeps the tensor count flat', () => {
  const { targets, logits, loc } = tinyTargets();
  const loss = new MultiBoxLoss();
  const lz = tf.tensor3d(logits, [1, 6, 2]);
  const ll = tf.tensor3d(loc, [1, 6, 4]);
  const sig = tf.variable(tf.tensor1d([0, 0]));
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) {
    const { value, grads } = tf.variableGrads(() => {
      const p = loss.compute(lz, ll, targets, tf.exp(sig));
      tf.dispose([p.cls, p.loc]);
      return p.total;
    }, [sig]);
    tf.dispose([value, grads]);
  }
  assert.is(tf.memory().numTensors, before);
  tf.dispose([lz, ll, sig]);
});

test('targets: boxes of a batch are numbered across images, ignore regions kept apart', () => {
  const gen = new AnchorGenerator({ minScale: 0.5, maxScale: 0.5, aspectRatios: [1], extraScale: false });
  const anchors = gen.generate([[2, 2]], { width: 100, height: 100 });
  const t = buildTargets(
    [
      { boxes: new Float32Array([0, 0, 0.5, 0.5]), labels: new Int32Array([1]) },
      { boxes: new Float32Array([0.5, 0.5, 1, 1, 0, 0.5, 0.5, 1]), labels: new Int32Array([1, 1]), ignore: new Float32Array([0.5, 0, 1, 0.5]) },
    ],
    anchors,
    new Matcher(),
    new BoxCoder(),
  );
  assert.equal(Array.from(t.boxIndex), [0, -1, -1, -1, -1, -2, 2, 1]);
  assert.equal(Array.from(t.positivesPerImage), [1, 2]);
  assert.is(t.numBoxes, 3);
});

test('postprocess: per-class NMS at 0.45, score threshold, top-k, sorted by score', () => {
  const pp = new Postprocessor({ scoreThreshold: 0.1, nmsIoU: 0.45, maxDetections: 10 });
  // 4 boxes, 3 classes (bg, car, van).
  const boxes = [0, 0, 0.4, 0.4, 0.02, 0.02, 0.42, 0.42, 0.6, 0.6, 0.9, 0.9, 0, 0, 0.4, 0.4];
  const probs = [0.1, 0.8, 0.1, 0.2, 0.7, 0.1, 0.5, 0.3, 0.2, 0.05, 0.05, 0.9];
  const dets = pp.image(probs, boxes, 3);
  assert.equal(
    dets.map((d) => [d.classIndex, Number(d.score.toFixed(2))]),
    [
      [2, 0.9],
      [1, 0.8],
      [1, 0.3],
      [2, 0.2],
    ],
  );
  const one = new Postprocessor({ scoreThreshold: 0.1, maxDetections: 1 }).image(probs, boxes, 3);
  assert.is(one.length, 1);
});

test.run();
