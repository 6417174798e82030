import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/runtime/backend.js';
import { DataParameters, omitGradients, type CurriculumMode } from '../src/data-parameters/data-parameters.js';
import { Rng } from '../src/util/rng.js';

test.before(async () => {
  await initBackend('cpu', { log: null });
});

/**
 * An independent float64 reference of the method: loss and closed-form gradients (paper eqs. 3-5 with the chain rule
 * through exp), and the reference SGD with sparse momentum and clamping.
 */
class Reference {
  cls: Float64Array;
  inst: Float64Array;
  clsBuf: Float64Array | null = null;
  instBuf: Float64Array | null = null;
  constructor(
    readonly mode: CurriculumMode,
    K: number,
    N: number,
    readonly o: {
      clsInit: number;
      instInit: number;
      clsLr: number;
      instLr: number;
      clsMu: number;
      instMu: number;
      clsWd: number;
      instWd: number;
      clamp: [number, number] | null;
    },
  ) {
    this.cls = new Float64Array(K).fill(Math.log(o.clsInit));
    this.inst = new Float64Array(N).fill(Math.log(o.instInit));
  }
  get learnsClass(): boolean {
    return this.mode === 'class' || this.mode === 'joint';
  }
  get learnsInst(): boolean {
    return this.mode === 'instance' || this.mode === 'joint';
  }
  sigma(y: number, id: number): number {
    let s = 0;
    if (this.learnsClass) s += Math.exp(this.cls[y]!);
    if (this.learnsInst) s += Math.exp(this.inst[id]!);
    return this.mode === 'none' ? 1 : s;
  }
  /** Loss and gradients with respect to logits, class log σ and instance log σ. */
  lossAndGrads(z: number[][], y: number[], ids: number[]) {
    const B = z.length;
    const C = z[0]!.length;
    let loss = 0;
    const dz = z.map((row) => row.map(() => 0));
    const dcls = new Float64Array(this.cls.length);
    const dinst = new Float64Array(this.inst.length);
    for (let i = 0; i < B; i++) {
      const s = this.sigma(y[i]!, ids[i]!);
      const u = z[i]!.map((v) => v / s);
      const m = Math.max(...u);
      const lse = m + Math.log(u.reduce((a, v) => a + Math.exp(v - m), 0));
      const p = u.map((v) => Math.exp(v - lse));
      loss += (lse - u[y[i]!]!) / B;
      for (let j = 0; j < C; j++) dz[i]![j] = (p[j]! - (j === y[i] ? 1 : 0)) / (s * B);
      const dSigma = (z[i]![y[i]!]! - p.reduce((a, pj, j) => a + pj * z[i]![j]!, 0)) / (s * s * B);
      if (this.learnsClass) {
        const l = this.cls[y[i]!]!;
        dcls[y[i]!]! += dSigma * Math.exp(l) + this.o.clsWd * l;
        loss += 0.5 * this.o.clsWd * l * l;
      }
      if (this.learnsInst) {
        const l = this.inst[ids[i]!]!;
        dinst[ids[i]!]! += dSigma * Math.exp(l) + this.o.instWd * l;
        loss += 0.5 * this.o.instWd * l * l;
      }
    }
    return { loss, dz, dcls, dinst };
  }
  step(dcls: Float64Array, dinst: Float64Array): void {
    const upd = (p: Float64Array, g: Float64Array, buf: Float64Array | null, lr: number, mu: number) => {
      const first = buf === null;
      const b = buf ?? new Float64Array(p.length);
      for (let k = 0; k < p.length; k++) {
        if (g[k] === 0) continue;
        b[k] = mu === 0 ? g[k]! : first ? g[k]! : mu * b[k]! + g[k]!;
        p[k]! -= lr * b[k]!;
      }
      return b;
    };
    if (this.learnsClass) this.clsBuf = upd(this.cls, dcls, this.clsBuf, this.o.clsLr, this.o.clsMu);
    if (this.learnsInst) this.instBuf = upd(this.inst, dinst, this.instBuf, this.o.instLr, this.o.instMu);
    if (this.o.clamp) {
      const [lo, hi] = this.o.clamp.map(Math.log) as [number, number];
      for (const p of [this.learnsClass ? this.cls : null, this.learnsInst ? this.inst : null]) {
        if (p) for (let k = 0; k < p.length; k++) p[k] = Math.min(hi, Math.max(lo, p[k]!));
      }
    }
  }
}

const OPTS = {
  clsInit: 1,
  instInit: 1,
  clsLr: 0.1,
  instLr: 0.2,
  clsMu: 0.9,
  instMu: 0.9,
  clsWd: 5e-4,
  instWd: 1e-3,
  clamp: [0.05, 20] as [number, number],
};

function makeDp(mode: CurriculumMode, K: number, N: number, o = OPTS): DataParameters {
  return new DataParameters({
    numClasses: K,
    numInstances: N,
    mode,
    class: { init: o.clsInit, lr: o.clsLr, momentum: o.clsMu, weightDecay: o.clsWd },
    instance: { init: o.instInit, lr: o.instLr, momentum: o.instMu, weightDecay: o.instWd },
    clamp: o.clamp ? { min: o.clamp[0], max: o.clamp[1] } : null,
  });
}

function randomLogits(rng: Rng, B: number, C: number, scale = 3): number[][] {
  return Array.from({ length: B }, () => Array.from({ length: C }, () => scale * rng.normal()));
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.is(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    assert.ok(Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)), `${what}[${i}]: ${a} vs ${e}`);
  }
}

for (const mode of ['class', 'instance', 'joint'] as const) {
  test(`${mode}: closed-form gradients = tf.variableGrads = finite differences`, () => {
    const rng = new Rng(mode.length);
    const K = 4;
    const N = 7;
    const B = 6;
    // Classes and instances repeat within the batch: gradients must accumulate per entry.
    const y = [0, 2, 2, 3, 0, 2];
    const ids = [1, 4, 4, 0, 6, 2];
    const z = randomLogits(rng, B, K);
    const dp = makeDp(mode, K, N);
    // Start from non-trivial σ so that the chain rule through exp is exercised.
    const start = { cls: [0.3, -0.2, 0.5, -0.4], inst: [0.1, -0.3, 0.2, 0.4, -0.5, 0.05, 0.25] };
    dp.setState({
      classLogSigma: dp.variableNames.some((n) => n.endsWith('classLogSigma')) ? Float32Array.from(start.cls) : null,
      instanceLogSigma: dp.variableNames.some((n) => n.endsWith('instanceLogSigma')) ? Float32Array.from(start.inst) : null,
      classMomentum: null,
      instanceMomentum: null,
      step: 0,
    });
    const ref = new Reference(mode, K, N, OPTS);
    ref.cls.set(start.cls);
    ref.inst.set(start.inst);
    const closed = ref.lossAndGrads(z, y, ids);

    const logits = tf.variable(tf.tensor2d(z), true, `logits-${mode}`);
    const { value, grads } = tf.variableGrads(() => dp.loss(logits, y, ids));
    close([value.dataSync()[0]!], [closed.loss], 1e-5, 'loss');
    close(grads[logits.name]!.dataSync(), closed.dz.flat(), 1e-5, 'dL/dz');
    for (const name of dp.variableNames) {
      const expected = name.endsWith('classLogSigma') ? closed.dcls : closed.dinst;
      close(grads[name]!.dataSync(), expected, 1e-5, name);
    }

    // Central finite differences of the float64 reference loss in log σ.
    const h = 1e-6;
    for (const table of [ref.learnsClass ? ref.cls : null, ref.learnsInst ? ref.inst : null]) {
      if (!table) continue;
      const expected = table === ref.cls ? closed.dcls : closed.dinst;
      for (let k = 0; k < table.length; k++) {
        const keep = table[k]!;
        table[k] = keep + h;
        const up = ref.lossAndGrads(z, y, ids).loss;
        table[k] = keep - h;
        const down = ref.lossAndGrads(z, y, ids).loss;
        table[k] = keep;
        assert.ok(Math.abs((up - down) / (2 * h) - expected[k]!) < 1e-6, `finite difference ${k}`);
      }
    }
    tf.dispose([value, logits]);
    tf.dispose(grads);
    dp.dispose();
  });
}

for (const mode of ['class', 'instance', 'joint'] as const) {
  test(`${mode}: multi-step trajectory with absent entries matches the reference SGD`, () => {
    const rng = new Rng(100 + mode.length);
    const K = 5;
    const N = 12;
    const B = 4;
    const dp = makeDp(mode, K, N);
    const ref = new Reference(mode, K, N, OPTS);
    for (let step = 0; step < 12; step++) {
      // Class 4 and instances 10, 11 appear only from step 6 on; instance 3 only in even steps.
      const y: number[] = [];
      const ids: number[] = [];
      for (let i = 0; i < B; i++) {
        y.push(rng.int(step < 6 ? 4 : 5));
        let id = rng.int(step < 6 ? 10 : 12);
        if (id === 3 && step % 2 === 1) id = 2;
        ids.push(id);
      }
      const z = randomLogits(rng, B, K, 4);
      const closed = ref.lossAndGrads(z, y, ids);
      ref.step(closed.dcls, closed.dinst);
      const logits = tf.tensor2d(z);
      const { value, grads } = tf.variableGrads(() => dp.loss(logits, y, ids));
      dp.applyGradients(grads);
      tf.dispose([value, logits]);
      tf.dispose(grads);
      const s = dp.getState();
      if (ref.learnsClass) close(s.classLogSigma!, ref.cls, 2e-5, `step ${step} class`);
      if (ref.learnsInst) close(s.instanceLogSigma!, ref.inst, 2e-5, `step ${step} instance`);
      if (ref.learnsClass) close(s.classMomentum!, ref.clsBuf!, 2e-5, `step ${step} class momentum`);
      if (ref.learnsInst) close(s.instanceMomentum!, ref.instBuf!, 2e-5, `step ${step} instance momentum`);
    }
    dp.dispose();
  });
}

test('entries absent from a step keep value and momentum exactly', () => {
  const dp = makeDp('instance', 3, 5);
  const step = (ids: number[], y: number[]) => {
    const logits = tf.tensor2d([
      [2, -1, 0.5],
      [0.1, 0.3, -2],
    ]);
    const { value, grads } = tf.variableGrads(() => dp.loss(logits, y, ids));
    dp.applyGradients(grads);
    tf.dispose([value, logits]);
    tf.dispose(grads);
  };
  step([0, 1], [0, 2]);
  step([0, 1], [1, 2]);
  const before = dp.getState();
  step([2, 3], [0, 1]);
  const after = dp.getState();
  for (const k of [0, 1, 4]) {
    assert.is(after.instanceLogSigma![k], before.instanceLogSigma![k], `value ${k}`);
    assert.is(after.instanceMomentum![k], before.instanceMomentum![k], `momentum ${k}`);
  }
  assert.is(after.instanceLogSigma![4], 0, 'never-seen entry stays at log(1)');
  assert.is.not(after.instanceLogSigma![2], 0);
  dp.dispose();
});

test('both clamp bounds are hit and the momentum buffer is left untouched by the clamp', () => {
  const dp = new DataParameters({
    numClasses: 2,
    numInstances: 2,
    mode: 'class',
    class: { init: 1, lr: 50, momentum: 0.9 },
    clamp: { min: 0.5, max: 2 },
  });
  // Class 0 confidently right (σ pushed down), class 1 confidently wrong (σ pushed up).
  const logits = tf.tensor2d([
    [1, -1],
    [1, -1],
  ]);
  const { value, grads } = tf.variableGrads(() => dp.loss(logits, [0, 1]));
  const g = Array.from(grads[dp.variableNames[0]!]!.dataSync());
  dp.applyGradients(grads);
  const s = dp.getState();
  assert.ok(g[0]! > 0 && g[1]! < 0);
  close(s.classLogSigma!, [Math.log(0.5), Math.log(2)], 1e-6, 'clamped');
  close(s.classMomentum!, g, 1e-6, 'buffer = first gradient');
  close(dp.classSigma(), [0.5, 2], 1e-6, 'σ');
  tf.dispose([value, logits]);
  tf.dispose(grads);
  dp.dispose();
});

test('joint mode reproduces the reference quirk: instance init 0.001 is lifted to 0.05 after the first step', () => {
  const make = (clamp?: { min: number; max: number } | null) =>
    new DataParameters({
      numClasses: 3,
      numInstances: 4,
      mode: 'joint',
      class: { init: 1, lr: 0.1, weightDecay: 1e-4 },
      instance: { init: 0.001, lr: 0.8, weightDecay: 1e-8, ...(clamp !== undefined ? { clamp } : {}) },
    });
  const run = (dp: DataParameters) => {
    const logits = tf.tensor2d([[1, 2, 3]]);
    assert.ok(Math.abs(dp.sigma([0], [1]).dataSync()[0]! - 1.001) < 1e-6);
    const { value, grads } = tf.variableGrads(() => dp.loss(logits, [0], [1]));
    dp.applyGradients(grads);
    tf.dispose([value, logits]);
    tf.dispose(grads);
    return dp.instanceSigmaValues();
  };
  const quirk = run(make());
  for (const v of quirk) assert.ok(Math.abs(v - 0.05) < 1e-6, `σ_i ${v} lifted to the floor 0.05`);
  const fixed = run(make({ min: 1e-4, max: 20 }));
  assert.ok(Math.abs(fixed[0]! - 0.001) < 1e-7, 'with a per-kind floor the init survives for absent entries');
});

test('state round-trip: a restored object continues exactly like the original', () => {
  const rng = new Rng(9);
  const batches = Array.from({ length: 6 }, () => ({
    z: randomLogits(rng, 3, 4),
    y: [rng.int(4), rng.int(4), rng.int(4)],
    ids: [rng.int(6), rng.int(6), rng.int(6)],
  }));
  const train = (dp: DataParameters, from: number, to: number) => {
    for (let s = from; s < to; s++) {
      const logits = tf.tensor2d(batches[s]!.z);
      const { value, grads } = tf.variableGrads(() => dp.loss(logits, batches[s]!.y, batches[s]!.ids));
      dp.applyGradients(grads);
      tf.dispose([value, logits]);
      tf.dispose(grads);
    }
  };
  const a = makeDp('joint', 4, 6);
  train(a, 0, 6);
  const b = makeDp('joint', 4, 6);
  train(b, 0, 3);
  const saved = b.getState();
  b.dispose();
  const c = makeDp('joint', 4, 6);
  c.setState(saved);
  assert.is(c.step, 3);
  train(c, 3, 6);
  const sa = a.getState();
  const sc = c.getState();
  assert.equal(Array.from(sc.classLogSigma!), Array.from(sa.classLogSigma!));
  assert.equal(Array.from(sc.instanceLogSigma!), Array.from(sa.instanceLogSigma!));
  assert.equal(Array.from(sc.instanceMomentum!), Array.from(sa.instanceMomentum!));
  assert.is(sc.step, 6);
  a.dispose();
  c.dispose();
});

test('mode none is plain softmax cross-entropy and owns no variables', () => {
  const dp = new DataParameters({ numClasses: 3, numInstances: 0, mode: 'none' });
  assert.equal(dp.variableNames, []);
  const logits = tf.tensor2d([
    [1, 2, 0.5],
    [-1, 0, 3],
  ]);
  const ours = dp.loss(logits, [2, 0]);
  const theirs = tf.losses.softmaxCrossEntropy(tf.oneHot([2, 0], 3), logits);
  close(ours.dataSync(), theirs.dataSync(), 1e-6, 'CE');
  close(dp.sigma([2, 0]).dataSync(), [1, 1], 0, 'σ* = 1');
  tf.dispose([logits, ours, theirs]);
});

test('omitGradients leaves the model its own gradients', () => {
  const dp = makeDp('class', 3, 2);
  const w = tf.variable(tf.randomNormal([4, 3], 0, 1, 'float32', 1), true, 'omit-w');
  const x = tf.randomNormal([2, 4], 0, 1, 'float32', 2);
  const { value, grads } = tf.variableGrads(() => dp.loss(tf.matMul<tf.Tensor2D>(x, w), [0, 2]));
  assert.equal(Object.keys(omitGradients(grads, dp.variableNames)), ['omit-w']);
  tf.dispose([w, x, value]);
  tf.dispose(grads);
  dp.dispose();
});

test('a 100-step loop leaves the tensor count flat', () => {
  const dp = makeDp('joint', 5, 50);
  const w = tf.variable(tf.randomNormal([8, 5], 0, 0.1, 'float32', 3), true, 'flat-w');
  const opt: tf.Optimizer = tf.train.momentum(0.01, 0.9);
  const rng = new Rng(5);
  const step = () => {
    const x = tf.randomNormal([16, 8], 0, 1, 'float32', rng.int(1000));
    const y = Array.from({ length: 16 }, () => rng.int(5));
    const ids = Array.from({ length: 16 }, () => rng.int(50));
    const { value, grads } = tf.variableGrads(() => dp.loss(tf.matMul<tf.Tensor2D>(x, w), y, ids));
    opt.applyGradients(omitGradients(grads, dp.variableNames));
    dp.applyGradients(grads);
    tf.dispose([x, value]);
    tf.dispose(grads);
  };
  for (let i = 0; i < 3; i++) step();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 100; i++) step();
  assert.is(tf.memory().numTensors, before);
  opt.dispose();
  w.dispose();
  dp.dispose();
});

test('creating and disposing data parameters leaves no tensor behind', () => {
  const w = tf.variable(tf.ones([2, 3]), true, 'leak-w');
  const x = tf.tensor2d([[1, 2]]);
  const before = tf.memory().numTensors;
  for (const mode of ['none', 'class', 'instance', 'joint'] as const) {
    const dp = makeDp(mode, 3, 5);
    const { value, grads } = tf.variableGrads(() => dp.loss(tf.matMul<tf.Tensor2D>(x, w), [1], [2]));
    dp.applyGradients(grads);
    tf.dispose(value);
    tf.dispose(grads);
    dp.dispose();
  }
  assert.is(tf.memory().numTensors, before);
  tf.dispose([w, x]);
});

test('per-box lookup: instanceSigma gathers σ on the tape; weightDecayLoss takes the ids it applies to', () => {
  const dp = new DataParameters({ numClasses: 2, numInstances: 5, mode: 'instance', instance: { momentum: 0, weightDecay: 0.5 } });
  dp.setState({ classLogSigma: null, classMomentum: null, instanceLogSigma: Float32Array.from([0.1, -0.2, 0.3, 0.4, -0.5]), instanceMomentum: null, step: 0 });
  assert.equal(dp.variables.map((v) => v.name), [...dp.variableNames]);
  const table = dp.variables[0]!;
  const ids = Int32Array.from([3, 0, 3, 4]);
  const weights = tf.tensor1d([1, 2, 3, 4]);
  const { value, grads } = tf.variableGrads(() => tf.sum<tf.Scalar>(tf.mul(dp.instanceSigma(ids), weights)), [table]);
  // Σ w·σ = 1·e^0.4 + 2·e^0.1 + 3·e^0.4 + 4·e^-0.5; d/dlogσ_3 = (1 + 3)·e^0.4; absent entries get 0.
  close(value.dataSync(), [4 * Math.exp(0.4) + 2 * Math.exp(0.1) + 4 * Math.exp(-0.5)], 1e-5, 'value');
  close(grads[table.name]!.dataSync(), [2 * Math.exp(0.1), 0, 0, 4 * Math.exp(0.4), 4 * Math.exp(-0.5)], 1e-5, 'gradient');
  tf.dispose([value, grads]);
  // The weight-decay term is over the ids given, whatever was looked up before: 0.5·0.5·(0.4² + 0.4² + (−0.5)²).
  dp.instanceSigma([1]).dispose();
  const wd = dp.weightDecayLoss({ instanceIds: [3, 3, 4] });
  close(wd.dataSync(), [0.25 * (0.16 + 0.16 + 0.25)], 1e-6, 'weight decay');
  wd.dispose();
  const none = dp.weightDecayLoss({ instanceIds: [] });
  assert.equal(Array.from(none.dataSync()), [0]);
  none.dispose();
  assert.throws(() => dp.weightDecayLoss({}), /mode 'instance' with instance weight decay needs instance ids/);
  assert.throws(() => dp.weightDecayLoss({ instanceIds: [5] }), /instance id 5 at position 0 is out of range \[0, 5\)/);
  // Without weight decay no ids are needed.
  const plain = new DataParameters({ numClasses: 2, numInstances: 5, mode: 'joint' });
  const zero = plain.weightDecayLoss({});
  assert.equal(Array.from(zero.dataSync()), [0]);
  tf.dispose([zero, weights]);
  plain.dispose();
  dp.dispose();
  assert.throws(() => dp.variables, /used after dispose/);
});

test('bad options and inputs give clear errors', () => {
  const base = { numClasses: 3, numInstances: 4 };
  assert.throws(() => new DataParameters({ ...base, mode: 'class', class: { init: -1 } }), /init must be a positive number/);
  assert.throws(() => new DataParameters({ ...base, mode: 'curriculum' as CurriculumMode }), /unknown mode 'curriculum'/);
  assert.throws(() => new DataParameters({ ...base, numInstances: 0, mode: 'instance' }), /numInstances must be a positive integer/);
  assert.throws(() => new DataParameters({ ...base, mode: 'class', clamp: { min: 2, max: 1 } }), /clamp needs 0 < min < max/);
  assert.throws(() => new DataParameters({ ...base, mode: 'class', class: { momentum: 1 } }), /momentum must be in \[0, 1\)/);
  const dp = new DataParameters({ ...base, mode: 'joint' });
  const logits = tf.zeros<tf.Rank.R2>([2, 3]);
  assert.throws(() => dp.loss(logits, [0, 1], [0, 4]), /instance id 4 at position 1 is out of range \[0, 4\)/);
  assert.throws(() => dp.loss(logits, [0, 3], [0, 1]), /target class 3 at position 1 is out of range/);
  assert.throws(() => dp.loss(logits, [0, 1, 2], [0, 1, 2]), /2 rows of logits but 3 targets/);
  assert.throws(() => dp.loss(logits, [0, 1], [0]), /2 rows of logits but 1 instance ids/);
  assert.throws(() => dp.sigma([0, 1]), /needs instance ids/);
  assert.throws(() => dp.setState({ ...dp.getState(), instanceLogSigma: new Float32Array(3) }), /needs 4 values, got 3/);
  logits.dispose();
  dp.dispose();
  assert.throws(() => dp.sigma([0], [0]), /used after dispose/);
});

test('stats summarise σ per class and over chosen instances', () => {
  const dp = new DataParameters({ numClasses: 2, numInstances: 4, mode: 'joint', instance: { init: 2 } });
  dp.setState({
    ...dp.getState(),
    instanceLogSigma: Float32Array.from([0, Math.log(2), Math.log(4), Math.log(3)]),
  });
  const s = dp.stats({ instanceIds: [0, 2], bins: 3 });
  close(s.perClass!, [1, 1], 1e-6, 'per class');
  assert.is(s.instance!.count, 2);
  close([s.instance!.min, s.instance!.max, s.instance!.mean, s.instance!.std], [1, 4, 2.5, 1.5], 1e-6, 'summary');
  assert.equal(s.instance!.histogram.counts, [1, 0, 1]);
  dp.dispose();
});

test.run();
