/**
 * The package's entry points as a user sees them: each subpath resolves through package.json's `exports` (the package
 * imports itself by name), no name is exported twice, the wasm training entry stands alone (its import graph, and
 * training a conv net with it and plain tfjs), and `npm pack` ships every file the exports point to and no tests.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { assertExitedOnItsOwn, runChild } from './support/child-process.js';
// By the package's name, as a user's TypeScript resolves them: the compiler follows each entry's `types` condition.
import { DataParameters, type DataParametersOptions } from 'data-params';
import { trainDetector, type DetectorConfig } from 'data-params/detection';
import { ClassifierTrainer, type TrainerConfig } from 'data-params/classification';
import { KittiDataset, type KittiRecord } from 'data-params/datasets';
import { registerWasmTrainingKernels, type WasmThreadsState } from 'data-params/wasm-training';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const DIST = path.join(ROOT, 'dist');

interface PackageJson {
  main: string;
  types: string;
  exports: Record<string, string | Record<string, string>>;
  bin: Record<string, string>;
}
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as PackageJson;

/** Each subpath, the compiled file it must resolve to, and a name it must export. */
const ENTRIES: [specifier: string, file: string, symbol: string][] = [
  ['data-params', 'src/index.js', 'DataParameters'],
  ['data-params/detection', 'detection/index.js', 'trainDetector'],
  ['data-params/classification', 'classification/index.js', 'ClassifierTrainer'],
  ['data-params/datasets', 'datasets/index.js', 'KittiDataset'],
  ['data-params/wasm-training', 'src/wasm-training.js', 'registerWasmTrainingKernels'],
  ['data-params/browser', 'src/browser.js', 'loadDetector'],
];

/** Imports by a computed specifier, so that the compiler does not resolve it before dist exists. */
async function importEntry(specifier: string): Promise<Record<string, unknown>> {
  return (await import(specifier)) as Record<string, unknown>;
}

test('every subpath in exports resolves by the package name to its compiled entry, which exports its API', async () => {
  assert.equal(
    Object.keys(pkg.exports).filter((k) => k !== './package.json'),
    ENTRIES.map(([spec]) => spec.replace(/^data-params/, '.')),
  );
  for (const [spec, file, symbol] of ENTRIES) {
    assert.is(import.meta.resolve(spec), pathToFileURL(path.join(DIST, file)).href, spec);
    const entry = pkg.exports[spec.replace(/^data-params/, '.')];
    assert.equal(entry, { types: `./dist/${file.replace(/\.js$/, '.d.ts')}`, default: `./dist/${file}` }, spec);
    const m = await importEntry(spec);
    assert.type(m[symbol], 'function', `${spec} exports ${symbol}`);
  }
});

test('the entries resolve by name for the compiler too, and their static imports are the runtime modules', async () => {
  const typed: [unknown, string, string][] = [
    [DataParameters, 'data-params', 'DataParameters'],
    [trainDetector, 'data-params/detection', 'trainDetector'],
    [ClassifierTrainer, 'data-params/classification', 'ClassifierTrainer'],
    [KittiDataset, 'data-params/datasets', 'KittiDataset'],
    [registerWasmTrainingKernels, 'data-params/wasm-training', 'registerWasmTrainingKernels'],
  ];
  for (const [value, spec, name] of typed) assert.is(value, (await importEntry(spec))[name], spec);
  // Types from each entry (a compile-time check; these values only make the types used).
  const types: [DataParametersOptions | null, DetectorConfig | null, TrainerConfig | null, KittiRecord | null, WasmThreadsState | null] = [null, null, null, null, null];
  assert.is(types.length, 5);
});

test('a module path outside the exports is refused', async () => {
  for (const spec of ['data-params/detection/config.js', 'data-params/dist/src/index.js', 'data-params/wasm-training/index.js']) {
    try {
      await importEntry(spec);
      assert.unreachable(`${spec} resolved`);
    } catch (err) {
      assert.is((err as { code?: unknown }).code, 'ERR_PACKAGE_PATH_NOT_EXPORTED', spec);
    }
  }
});

test('no name is exported by two of the core, area and wasm-training entries', async () => {
  const names = new Map<string, string>();
  for (const [spec] of ENTRIES.filter(([spec]) => spec !== 'data-params/browser')) {
    for (const name of Object.keys(await importEntry(spec))) {
      const other = names.get(name);
      assert.ok(other === undefined, `${name} is exported by both ${other ?? ''} and ${spec}`);
      names.set(name, spec);
    }
  }
  // What moved: the area APIs are no longer in the root.
  const root = await importEntry('data-params');
  for (const name of ['trainDetector', 'ClassifierTrainer', 'KittiDataset', 'registerWasmTrainingKernels']) assert.not.ok(name in root, name);
  for (const name of ['initBackend', 'RunRecorder', 'rankSuspects', 'ParamStore', 'NonFiniteLossError']) assert.ok(name in root, name);
});

const IMPORT_PATTERNS = [
  /^\s*(?:import|export)\b[^;'"]*?\bfrom\s*['"]([^'"]+)['"]/gm, // import x from '…', export { … } from '…'
  /^\s*import\s*['"]([^'"]+)['"]/gm, // import '…'
  /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g, // import('…')
  /\bnew URL\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*,\s*import\.meta\.url\s*\)/g, // worker scripts
];

/** The compiled files reachable from `entry` by relative imports (paths relative to dist) and the bare specifiers. */
function importGraph(entry: string): { files: string[]; packages: string[] } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const queue = [path.join(DIST, entry)];
  for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
    const rel = path.relative(DIST, file);
    if (files.has(rel)) continue;
    files.add(rel);
    const source = readFileSync(file, 'utf8');
    for (const pattern of IMPORT_PATTERNS) {
      for (const match of source.matchAll(pattern)) {
        const spec = match[1];
        if (spec === undefined) continue;
        if (spec.startsWith('.')) queue.push(path.resolve(path.dirname(file), spec));
        else packages.add(spec);
      }
    }
  }
  return { files: [...files].sort(), packages: [...packages].sort() };
}

test('the wasm-training entry reaches only its own folder, the LEB128 helper, tfjs and Node built-ins', () => {
  const { files, packages } = importGraph('src/wasm-training.js');
  const outside = files.filter((f) => !f.startsWith('src/runtime/wasm-training/'));
  assert.equal(outside, ['src/util/leb128.js', 'src/wasm-training.js']);
  for (const area of ['src/data-parameters/', 'detection/', 'classification/', 'datasets/']) {
    assert.equal(files.filter((f) => f.startsWith(area)), [], area);
  }
  assert.ok(files.includes('src/runtime/wasm-training/kernel-pool-worker.js'), 'the pool worker is part of the graph');
  assert.equal(packages.filter((p) => !p.startsWith('node:')), ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm']);
  // The walk does see an area where there is one: the root entry reaches data parameters.
  assert.ok(importGraph('src/index.js').files.includes('src/data-parameters/data-parameters.js'));
});

const WASM_README = path.join(ROOT, 'src', 'runtime', 'wasm-training', 'README.md');

test("the wasm-training README's example trains a conv net with plain tfjs on wasm, and its loss falls", async () => {
  const example = /^## Example\n[^]*?^```js\n([^]*?)^```/m.exec(readFileSync(WASM_README, 'utf8'))?.[1];
  assert.ok(example !== undefined, 'the README has a js example');
  assert.match(example, /from 'data-params\/wasm-training'/);
  const child = await runChild(example, { DATA_PARAMS_WASM_THREADS: '1' });
  assertExitedOnItsOwn(child);
  const losses = child.stdout.trim().split(/\s+/).map(Number);
  assert.is(losses.length, 5, child.stdout);
  const first = losses[0] ?? NaN;
  const last = losses[losses.length - 1] ?? NaN;
  assert.ok(Number.isFinite(first) && first > 0.1, child.stdout);
  assert.ok(last < 0.1 && last < first / 4, `loss fell from ${first} to ${last}`);
});

// A conv net's gradients on wasm (training kernels registered through the entry) against the cpu backend's: same
// weights and data, conv 3x3 stride 1 + ReLU, 2x2 max pool, conv 3x3 stride 2 + ReLU, mean pool, dense, softmax
// cross-entropy. Stock wasm has no Conv2DBackpropFilter, so this step runs the entry's kernels.
const GRADIENT_SCRIPT = `
import * as tf from '@tensorflow/tfjs';
import { registerWasmTrainingKernels } from 'data-params/wasm-training';
const registered = registerWasmTrainingKernels();
await tf.setBackend('wasm');
let s = 12345;
const rand = (n, scale) => Float32Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * scale);
const shapes = [[3, 3, 3, 8], [3, 3, 8, 16], [16, 4]];
const weights = shapes.map((shape) => rand(shape.reduce((a, b) => a * b), 0.8));
const xData = rand(2 * 12 * 12 * 3, 2);
function step() {
  return tf.tidy(() => {
    const x = tf.tensor4d(xData, [2, 12, 12, 3]);
    const loss = (w1, w2, w3) => {
      const h1 = tf.maxPool(tf.relu(tf.conv2d(x, w1, 1, 'same')), 2, 2, 'valid');
      const h2 = tf.relu(tf.conv2d(h1, w2, 2, 'same'));
      return tf.losses.softmaxCrossEntropy(tf.oneHot([1, 3], 4), tf.matMul(tf.mean(h2, [1, 2]), w3));
    };
    const { value, grads } = tf.valueAndGrads(loss)(weights.map((w, i) => tf.tensor(w, shapes[i])));
    return { backend: tf.getBackend(), loss: value.dataSync()[0], grads: grads.map((g) => Array.from(g.dataSync())) };
  });
}
const wasm = step();
await tf.setBackend('cpu');
tf.backend().firstUse = false; // (no banner recommending tfjs-node)
const cpu = step();
const relErr = wasm.grads.map((g, i) => {
  const scale = Math.max(...cpu.grads[i].map(Math.abs));
  return Math.max(...g.map((v, j) => Math.abs(v - cpu.grads[i][j]))) / scale;
});
const scales = cpu.grads.map((g) => Math.max(...g.map(Math.abs)));
console.log(JSON.stringify({ registered, backends: [wasm.backend, cpu.backend], loss: [wasm.loss, cpu.loss], relErr, scales }));
`;

test('one step of a conv net with only the wasm-training entry and tfjs: gradients on wasm equal the cpu backend', async () => {
  const child = await runChild(GRADIENT_SCRIPT, { DATA_PARAMS_WASM_THREADS: '1' });
  assertExitedOnItsOwn(child);
  const out = JSON.parse(child.stdout) as { registered: string[]; backends: string[]; loss: number[]; relErr: number[]; scales: number[] };
  assert.equal(out.backends, ['wasm', 'cpu']);
  for (const kernel of ['Conv2DBackpropFilter', 'Conv2DBackpropInput', 'MaxPoolGrad']) assert.ok(out.registered.includes(kernel), kernel);
  const [wasmLoss = NaN, cpuLoss = NaN] = out.loss;
  assert.ok(Math.abs(wasmLoss - cpuLoss) <= 1e-6 * Math.abs(cpuLoss), `loss ${wasmLoss} vs ${cpuLoss}`);
  assert.is(out.relErr.length, 3);
  for (const [i, err] of out.relErr.entries()) {
    assert.ok((out.scales[i] ?? 0) > 1e-3, `gradient ${i} is not all zero`);
    assert.ok(err <= 1e-5, `gradient ${i}: max |wasm - cpu| = ${err} of its largest entry`);
  }
});

test('npm pack ships every file the exports and bins point to, the wasm-training graph and README, and no tests', () => {
  const result = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  assert.is(result.status, 0, result.stderr);
  const packed = JSON.parse(result.stdout) as { files: { path: string }[] }[];
  const files = new Set((packed[0]?.files ?? []).map((f) => f.path));
  const targets = [pkg.main, pkg.types, ...Object.values(pkg.bin)];
  for (const entry of Object.values(pkg.exports)) targets.push(...(typeof entry === 'string' ? [entry] : Object.values(entry)));
  for (const target of targets) assert.ok(files.has(path.posix.normalize(target)), `${target} is packed`);
  for (const file of importGraph('src/wasm-training.js').files) assert.ok(files.has(`dist/${file}`), `dist/${file} is packed`);
  for (const file of ['README.md', 'src/runtime/wasm-training/README.md', 'package.json']) assert.ok(files.has(file), `${file} is packed`);
  assert.equal([...files].filter((f) => /(^|\/)test\/|\.test\.[cm]?[jt]s$/.test(f)), []);
});

test.run();
