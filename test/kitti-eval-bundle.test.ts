/**
 * The bundled evaluate-kitti command (dist/detection/cli/evaluate-kitti.cjs, what the bin runs) behaves exactly as
 * the ES-module entry it is built from, and the bundler refuses what it cannot translate.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleCommonJs } from '../tools/bundle-cli.js';
import { makeSyntheticKittiEvalSet, writeSyntheticKittiEvalSet } from '../detection/kitti-eval/synthetic.js';

const CLI_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'detection', 'cli');
const ESM = path.join(CLI_DIR, 'evaluate-kitti.js');
const BUNDLE = path.join(CLI_DIR, 'evaluate-kitti.cjs');

let root = '';

function run(file: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [file, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test.before(() => {
  root = mkdtempSync(path.join(tmpdir(), 'kitti-eval-bundle-'));
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test('the built bundle is what the bundler makes of the compiled modules now', () => {
  const built = existsSync(BUNDLE) ? readFileSync(BUNDLE, 'utf8') : '(missing)';
  assert.ok(built === bundleCommonJs(ESM), `${BUNDLE} is missing or stale: run node dist/tools/bundle-cli.js after tsc (npm run build does)`);
});

test('bundle and ES-module entry: identical output, messages and exit codes', () => {
  const set = makeSyntheticKittiEvalSet({ images: 40, seed: 3 });
  const { labels, results } = writeSyntheticKittiEvalSet(path.join(root, 'set'), set);
  const cases = [
    ['--labels', labels, '--results', results, '--format', 'json'],
    ['--labels', labels, '--results', results, '--classes', 'car'],
    ['--labels', path.join(root, 'none'), '--results', results],
    ['--format', 'xml', '--labels', labels, '--results', results],
    ['--help'],
  ];
  for (const args of cases) {
    const a = run(ESM, args);
    const b = run(BUNDLE, args);
    assert.equal(b, a, args.join(' '));
  }
  assert.is(run(BUNDLE, cases[0]!).status, 0);
  // A malformed line: the same error naming the file and line.
  const first = path.join(labels, set.ids[0] + '.txt');
  appendFileSync(first, 'Car 0 0 oops\n');
  const bad = run(BUNDLE, cases[0]!);
  assert.is(bad.status, 1);
  assert.match(bad.stderr, first + ':');
  assert.equal(bad, run(ESM, cases[0]!));
});

function writeModules(dir: string, files: Record<string, string>): string {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
  return path.join(dir, 'main.js');
}

test('modules keep their own scopes, run once in dependency order, and see their own import.meta.url', () => {
  const entry = writeModules(path.join(root, 'ok'), {
    'main.js': "import { a } from './a.js';\nimport * as b from './b.js';\nimport { where as w } from './sub/c.js';\nfunction f() { return 'main'; }\nprocess.stdout.write([f(), a(), b.f(), b.count, w].join(' '));\n",
    'a.js': "import { count } from './b.js';\nfunction f() { return 'a' + count; }\nexport function a() { return f(); }\n",
    'b.js': "let n = 0;\nn++;\nexport const count = n;\nexport function f() { return 'b'; }\n",
    'sub/c.js': "import { f } from '../b.js';\nexport const where = f() + new URL('.', import.meta.url).pathname.endsWith('/sub/');\n",
  });
  const out = path.join(root, 'ok', 'main.cjs');
  writeFileSync(out, bundleCommonJs(entry));
  assert.equal(run(out, []), { status: 0, stdout: 'main a1 b 1 btrue', stderr: '' });
});

test('the bundler refuses what it does not translate, naming the file', () => {
  const fails = (files: Record<string, string>, what: RegExp): void => {
    const dir = path.join(root, 'bad-' + Math.random().toString(36).slice(2));
    assert.throws(() => bundleCommonJs(writeModules(dir, files)), what);
  };
  fails({ 'main.js': "import { x } from './x.js';\n", 'x.js': 'export default 1;\nexport const x = 1;\n' }, /x\.js: 'export ' not supported/);
  fails({ 'main.js': "export { y } from './x.js';\n", 'x.js': 'export const y = 1;\n' }, /main\.js: 'export ' not supported/);
  fails({ 'main.js': "const m = await import('./x.js');\n", 'x.js': 'export const y = 1;\n' }, /main\.js: 'import\s*\(/);
  fails({ 'main.js': "import { x } from './x.js';\n", 'x.js': 'export let x = 1;\n' }, /x\.js: 'export ' not supported/);
  fails({ 'main.js': "import { x } from './x.js';\n", 'x.js': "import { y } from './main.js';\nexport const x = 1;\n" }, /import cycle/);
  fails({ 'main.js': "import x from './x.js';\n", 'x.js': 'export const y = 1;\n' }, /import form not supported/);
});

test.run();
