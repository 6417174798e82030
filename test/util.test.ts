import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Rng } from '../src/util/rng.js';
import { saveCheckpoint, loadCheckpoint, encodeCheckpoint, decodeCheckpoint } from '../src/util/checkpoint.js';

test('Rng is deterministic for a seed and resumes exactly from its state', () => {
  const a = new Rng(42);
  const b = new Rng(42);
  for (let i = 0; i < 10; i++) assert.is(a.nextUint32(), b.nextUint32());
  const state = a.getState();
  const first = [a.next(), a.next(), a.normal(), a.int(7)];
  const c = new Rng(state);
  assert.equal([c.next(), c.next(), c.normal(), c.int(7)], first);
  assert.is.not(new Rng(1).nextUint32(), new Rng(2).nextUint32());
});

test('Rng.uniform stays in range and has the right mean', () => {
  const r = new Rng(7);
  let sum = 0;
  for (let i = 0; i < 20000; i++) {
    const u = r.next();
    assert.ok(u >= 0 && u < 1);
    sum += u;
  }
  assert.ok(Math.abs(sum / 20000 - 0.5) < 0.01);
});

test('checkpoint round-trips typed arrays and metadata bit-exactly', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dp-ckpt-'));
  const file = path.join(dir, 'ckpt.bin');
  const f = new Float32Array([1.5, -2.25, Math.fround(Math.PI), NaN]);
  const i = new Int32Array([1, -2, 3]);
  const u = new Uint8Array([1, 2, 3, 4, 5]);
  await saveCheckpoint(file, { meta: { step: 17, rng: [1, 2, 3, 4] }, arrays: { f, u, i } });
  const back = await loadCheckpoint<{ step: number; rng: number[] }>(file);
  assert.equal(back.meta, { step: 17, rng: [1, 2, 3, 4] });
  assert.equal(Array.from(back.arrays['f']!).slice(0, 3), Array.from(f).slice(0, 3));
  assert.ok(Number.isNaN(back.arrays['f']![3]!));
  assert.equal(Array.from(back.arrays['i']!), [1, -2, 3]);
  assert.equal(Array.from(back.arrays['u']!), [1, 2, 3, 4, 5]);
});

test('a truncated checkpoint is a clear error naming the file', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dp-ckpt-'));
  const file = path.join(dir, 'ckpt.bin');
  await saveCheckpoint(file, { meta: {}, arrays: { w: new Float32Array(100) } });
  const bytes = readFileSync(file);
  writeFileSync(file, bytes.subarray(0, bytes.length - 40));
  try {
    await loadCheckpoint(file);
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.match((err as Error).message, file);
    assert.match((err as Error).message, /truncated/);
  }
});

test('a checkpoint header with an unknown array kind or no array list is a clear error', () => {
  const bytes = Buffer.concat(encodeCheckpoint({ meta: { step: 1 }, arrays: { w: new Float32Array(3) } }));
  // Same length as "float32", so the header length stays right.
  const unknownKind = Buffer.from(bytes.toString('latin1').replace('"kind":"float32"', '"kind":"float16"'), 'latin1');
  assert.throws(() => decodeCheckpoint(unknownKind, 'k.ckpt'), /^k\.ckpt: corrupt header \(array entry 0 needs a name, a kind among/);
  const noList = Buffer.from(bytes.toString('latin1').replace('"arrays":[', '"arrayz":['), 'latin1');
  assert.throws(() => decodeCheckpoint(noList, 'l.ckpt'), /l\.ckpt: corrupt header \(no array list\)/);
  assert.equal(Array.from(decodeCheckpoint(bytes).arrays['w']!), [0, 0, 0]);
});

test.run();
