import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, promises as fs, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../src/runtime/backend.js';
import { DataParameters } from '../src/data-parameters/data-parameters.js';
import { WriteError, writeFileAtomic } from '../src/util/atomic-file.js';
import { RunRecorder } from '../src/records/run-records.js';
import {
  DivergenceWatch,
  ResumeMismatchError,
  RunDirError,
  checkResumeConfig,
  configChanges,
  prepareRunDir,
  removeStaleTemps,
} from '../src/training/harness.js';
import { runChild } from './support/child-process.js';

test.before(async () => {
  await initBackend('cpu', { log: null });
});

const tmp = (p: string): string => mkdtempSync(path.join(tmpdir(), `dp-harness-${p}-`));

/** The pid of a process that has exited (so that no running process has it, barring reuse). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

test('configChanges lists the differing leaves with dotted keys; JSON-equal values are equal', () => {
  const a = { train: { epochs: 4, lr: 0.01, milestones: [2, 3] }, seed: 1, data: { root: 'd', extra: undefined } };
  const b = { train: { epochs: 6, lr: 0.01, milestones: [2, 4] }, seed: 1, data: { root: 'd' }, out: 'r' };
  assert.equal(configChanges(a, b), [
    { key: 'out', checkpoint: undefined, now: 'r' },
    { key: 'train.epochs', checkpoint: 4, now: 6 },
    { key: 'train.milestones', checkpoint: [2, 3], now: [2, 4] },
  ]);
  assert.equal(configChanges(a, structuredClone(a)), []);
});

test('checkResumeConfig: safe keys are returned, any other change throws a message listing each', () => {
  const saved = { train: { epochs: 4, batchSize: 8, lr: 0.002 }, curriculum: { mode: 'instance' } };
  assert.equal(checkResumeConfig('ck', saved, { ...saved, train: { ...saved.train, epochs: 6 } }, ['train.epochs']), [
    { key: 'train.epochs', checkpoint: 4, now: 6 },
  ]);
  try {
    checkResumeConfig('run/checkpoint.dpckpt', saved, { train: { epochs: 6, batchSize: 4, lr: 0.002 }, curriculum: { mode: 'none' } }, ['train.epochs']);
    assert.unreachable();
  } catch (err) {
    assert.ok(err instanceof ResumeMismatchError);
    assert.is(
      (err as Error).message,
      "--resume: this run's options differ from those run/checkpoint.dpckpt was trained with:\n" +
        '  curriculum.mode: "instance" in the checkpoint, "none" now\n' +
        '  train.batchSize: 8 in the checkpoint, 4 now\n' +
        'Resume with the original options (only train.epochs may change), or start a new run with another --out.',
    );
  }
});

test('removeStaleTemps removes the temporary files of dead writers only, in the run folder and its subfolders', async () => {
  const dir = tmp('stale');
  const dead = deadPid();
  await fs.mkdir(path.join(dir, 'model'));
  const files = [
    `checkpoint.dpckpt.tmp-${dead}-1700000000000`,
    `model/weights.bin.tmp-${dead}-1700000000001`,
    `metrics.jsonl.tmp-${process.pid}-1700000000002`,
    'checkpoint.dpckpt',
    'notes.tmp-old',
  ];
  for (const f of files) writeFileSync(path.join(dir, f), 'x');
  assert.equal(await removeStaleTemps(dir), [`checkpoint.dpckpt.tmp-${dead}-1700000000000`, path.join('model', `weights.bin.tmp-${dead}-1700000000001`)]);
  assert.equal(readdirSync(dir).sort(), ['checkpoint.dpckpt', `metrics.jsonl.tmp-${process.pid}-1700000000002`, 'model', 'notes.tmp-old']);
  assert.equal(readdirSync(path.join(dir, 'model')), []);
});

test('prepareRunDir refuses virtual file systems and unusable paths with a message naming the folder', async () => {
  for (const dir of ['/proc/dp-run', '/sys/dp/run', '/proc/self/../dp']) {
    await prepareRunDir(dir).then(
      () => assert.unreachable(dir),
      (err: Error) => {
        assert.ok(err instanceof RunDirError, String(err));
        assert.match(err.message, new RegExp(`^cannot use ${dir.replace(/[.]/g, '\\.')} as the run directory: it is on /(proc|sys), a virtual file system`));
      },
    );
  }
  const file = path.join(tmp('notdir'), 'file');
  writeFileSync(file, '');
  await prepareRunDir(path.join(file, 'run')).then(
    () => assert.unreachable(),
    (err: Error) => assert.match(err.message, /^cannot use .*file\/run as the run directory: ENOTDIR/),
  );
  const ok = path.join(tmp('ok'), 'a', 'b');
  assert.equal(await prepareRunDir(ok), []);
  assert.equal(readdirSync(ok), [], 'the write probe is removed');
});

test('a full disk: writeFileAtomic names the file, keeps the previous content and leaves no temporary file', async () => {
  const dir = tmp('enospc');
  const file = path.join(dir, 'checkpoint.bin');
  await writeFileAtomic(file, 'good');
  const handle = await fs.open(path.join(dir, 'probe'), 'w');
  const proto = Object.getPrototypeOf(handle) as { write: unknown; writeFile: unknown };
  await handle.close();
  const { write, writeFile } = proto;
  const enospc = (): Promise<never> => Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
  proto.write = enospc;
  proto.writeFile = enospc;
  try {
    for (const data of ['new', [new Uint8Array([1, 2])]]) {
      const err = await writeFileAtomic(file, data as string).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof WriteError, String(err));
      assert.is(err.code, 'ENOSPC');
      assert.is((err as Error).message, `cannot write ${file} (ENOSPC: no space left on device, write); its previous content, if any, is unchanged`);
    }
  } finally {
    proto.write = write;
    proto.writeFile = writeFile;
  }
  assert.is(readFileSync(file, 'utf8'), 'good');
  assert.equal(readdirSync(dir).sort(), ['checkpoint.bin', 'probe']);
});

test('a failed append to the run records names the file', async () => {
  const dir = tmp('append');
  const rec = new RunRecorder(path.join(dir, 'run'));
  writeFileSync(path.join(dir, 'run'), ''); // a file where the run folder should be
  await rec.appendMetrics({ kind: 'train', step: 1, epoch: 1, loss: 1 }).then(
    () => assert.unreachable(),
    (err: Error) => assert.match(err.message, new RegExp(`^cannot write ${path.join(dir, 'run', 'metrics.jsonl')} \\(`)),
  );
});

test('DivergenceWatch: warns once when every σ sits at a clamp bound or the epoch loss grew 100-fold', () => {
  const lines: string[] = [];
  const watch = new DivergenceWatch((l) => lines.push(l));
  const dp = new DataParameters({ numClasses: 2, numInstances: 3, mode: 'instance', clamp: { min: 0.05, max: 20 } });
  watch.step(2.5);
  assert.equal(watch.epochEnd(1, 2.0, dp), []);
  dp.setState({ classLogSigma: null, classMomentum: null, instanceLogSigma: new Float32Array(3).fill(Math.log(20)), instanceMomentum: null, step: 1 });
  assert.equal(watch.epochEnd(2, 3.5e12, dp), [
    "warning: epoch 2's mean loss 3.50e+12 is 1400000000000x the first step's (2.50): training is diverging; lower --lr",
    'warning: every instance σ (3) sits at the clamp\'s max 20 after epoch 2: the data parameters no longer learn anything; lower --lr',
  ]);
  assert.equal(watch.epochEnd(3, 4e12, dp), [], 'each warning once');
  assert.is(lines.length, 2);
  // A σ off the bound: no warning for an untouched watch either.
  dp.setState({ classLogSigma: null, classMomentum: null, instanceLogSigma: Float32Array.from([Math.log(20), Math.log(20), 0]), instanceMomentum: null, step: 1 });
  assert.equal(new DivergenceWatch(() => {}).epochEnd(1, 1, dp), []);
  dp.dispose();
});

const WATCH = new URL('../src/util/interrupt.js', import.meta.url).href;

test('a signal before the training loop polls ends the process at once; after, it waits for the step', async () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    const early = await runChild(
      `import { watchForStop } from ${JSON.stringify(WATCH)};
       watchForStop();
       setInterval(() => {}, 1000);
       setTimeout(() => process.kill(process.pid, '${signal}'), 50);`,
      {},
    );
    assert.is(early.signal, null, 'ended on its own');
    assert.is(early.status, signal === 'SIGTERM' ? 143 : 130);
    assert.match(early.stderr, new RegExp(`${signal} before the first training step: exiting without a checkpoint`));
  }
  const armed = await runChild(
    `import { watchForStop } from ${JSON.stringify(WATCH)};
     const stop = watchForStop((s) => process.stdout.write('asked ' + s + '\\n'));
     stop.poll();
     process.kill(process.pid, 'SIGTERM');
     setTimeout(() => { process.stdout.write('step done, requested ' + stop.poll() + '\\n'); stop.dispose(); }, 100);`,
    {},
  );
  assert.is(armed.status, 0, armed.stderr);
  assert.is(armed.stdout, 'asked SIGTERM\nstep done, requested true\n');
});

test('both trainers end with a message when --out is on /proc (where mkdir hangs)', async () => {
  const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
  for (const [cli, extra] of [
    ['dist/detection/cli/train-detector.js', ['--backend', 'cpu']],
    ['dist/classification/cli/train-classifier.js', ['--config', 'configs/fashion-mnist.json', '--backend', 'cpu']],
  ] as const) {
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [cli, ...extra, '--out', '/proc/dp-run'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    assert.is(r.signal, null, `${cli} hung (${Date.now() - t0} ms)`);
    assert.is(r.status, 1, r.stderr);
    assert.match(r.stderr, /: cannot use \/proc\/dp-run as the run directory: it is on \/proc, a virtual file system that holds no files\n$/);
  }
  assert.not.ok(existsSync('/proc/dp-run'));
});

test.run();
