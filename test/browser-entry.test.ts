/**
 * The browser entry without a browser: it bundles for the browser platform with no Node built-in, and in Node (fetch
 * against the local server, tensor and ImageData inputs) it gives predict's detections and clear errors on bad input.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/runtime/backend.js';
import { loadDetector, rgbPixels } from '../src/browser.js';
import { bundleBrowser } from '../tools/bundle-browser.js';
import { serveModel, type ModelServer } from '../detection/web/serve.js';
import { loadSSD } from '../detection/model/io.js';
import { decodeImage } from '../datasets/pipeline/decode.js';
import { detectImages, type ImageDetection } from '../detection/inference.js';
import { trainedDetector } from './support/browser-fixture.js';

let server: ModelServer | null = null;

test.before(async () => {
  await initBackend('cpu', { log: null });
});

test.after(async () => {
  await server?.close();
});

test('the browser entry bundles for the browser platform without Node built-ins; a Node import in our code fails the bundle', async () => {
  const { inputs, files } = await bundleBrowser({ outdir: null });
  assert.ok(inputs.some((f) => f.endsWith('detection/inference.js')) && inputs.some((f) => f.endsWith('data-parameters/data-parameters.js')));
  for (const f of inputs) assert.not.match(f, /sharp|node_modules\/commander|detection\/model\/io\.js|records\/|util\/atomic-file/, f);
  assert.ok(files['data-params.js']! > 100_000, 'one entry file with tfjs in it');
  const dir = mkdtempSync(path.join(tmpdir(), 'bundle-bad-'));
  const bad = path.join(dir, 'entry.js');
  writeFileSync(bad, "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n");
  let message = '';
  await bundleBrowser({ entry: bad, outdir: null }).catch((e: Error) => (message = e.message));
  assert.match(message, /Node built-in 'node:fs' imported by .*entry\.js/);
});

function assertSameDetections(got: ImageDetection[], want: ImageDetection[], what: string): void {
  assert.is(got.length, want.length, `${what}: detection count`);
  want.forEach((w, i) => {
    const g = got[i]!;
    assert.is(g.className, w.className, what);
    assert.ok(Math.abs(g.score - w.score) <= 1e-6, `${what} #${i}: score ${g.score} vs ${w.score}`);
    for (let k = 0; k < 4; k++) assert.ok(Math.abs(g.box[k]! - w.box[k]!) <= 1e-3, `${what} #${i}: box ${g.box} vs ${w.box}`);
  });
}

test("in Node, loadDetector (fetch from the local server) on tensor and ImageData inputs gives predict's detections", async () => {
  const t = await trainedDetector();
  assert.ok(existsSync(path.join(t.model, 'index.html')), 'the demo page is written next to the model');
  server = await serveModel({ model: t.model, port: 0 });
  const detector = await loadDetector(`${server.demo}model.json`, { backend: 'cpu' });
  const { model, spec } = await loadSSD(t.model);
  const decoded = await Promise.all(t.images.map((f) => decodeImage(f)));
  const want = await detectImages(model, spec.classNames, decoded);
  assert.ok(want.every((d) => d.length > 0), 'the tiny model finds something on each fixed image');
  for (let i = 0; i < decoded.length; i++) {
    const img = decoded[i]!;
    const x = tf.tensor3d(img.data, [img.height, img.width, 3], 'int32');
    assertSameDetections(await detector.detect(x), want[i]!, `tensor ${i}`);
    x.dispose();
    const rgba = new Uint8ClampedArray(img.width * img.height * 4).fill(255);
    for (let p = 0; p < img.width * img.height; p++) for (let c = 0; c < 3; c++) rgba[4 * p + c] = img.data[3 * p + c]!;
    assertSameDetections(await detector.detect({ data: rgba, width: img.width, height: img.height }), want[i]!, `ImageData ${i}`);
  }
  // Boxes are in the image's pixels (the 124x38 image is not the 128x48 training size).
  for (const d of want[2]!) assert.ok(d.box[0] >= 0 && d.box[2] <= 124 && d.box[3] <= 38 && d.box[2] > d.box[0]);
  const minScore = want[0]![Math.floor(want[0]!.length / 2)]!.score;
  assert.ok((await detector.detect(tf.tensor3d(decoded[0]!.data, [48, 128, 3], 'int32'), { minScore })).every((d) => d.score >= minScore));
  const before = tf.memory().numTensors;
  await detector.detect({ data: new Uint8ClampedArray(124 * 38 * 4), width: 124, height: 38 });
  assert.is(tf.memory().numTensors, before, 'detect leaves no tensors behind');
  detector.dispose();
  model.dispose();
});

test('bad input: a 404 model URL, a model.json of another format, weights of the wrong size, a bad tensor', async () => {
  const t = await trainedDetector();
  const url = server!.demo;
  const error = async (u: string): Promise<string> => {
    try {
      (await loadDetector(u, { backend: 'cpu' })).dispose();
    } catch (err) {
      return (err as Error).message;
    }
    return 'no error';
  };
  assert.match(await error(`${url}nothing/model.json`), new RegExp(`^${url}nothing/model\\.json: HTTP 404 Not Found; expected a model.json written by data-params \\(format 'data-params-ssd'\\)$`));
  // Another format, and weights of the wrong size, served from copies beside the model.
  const dir = path.dirname(t.model);
  const json = JSON.parse(readFileSync(path.join(t.model, 'model.json'), 'utf8')) as { format: string; weightsManifest: { paths: string[] }[] };
  writeFileSync(path.join(dir, 'layers.json'), JSON.stringify({ ...json, format: 'layers-model' }));
  assert.match(await error(`${server!.url}layers.json`), /layers\.json: format 'layers-model' \(a tf\.loadLayersModel \/ tf\.loadGraphModel model, not a data-params SSD\); expected a model\.json written by data-params/);
  writeFileSync(path.join(dir, 'text.json'), 'not json');
  assert.match(await error(`${server!.url}text.json`), /text\.json: not JSON/);
  const weights = readFileSync(path.join(t.model, 'weights.bin'));
  writeFileSync(path.join(dir, 'short.bin'), weights.subarray(0, weights.length - 8));
  json.weightsManifest[0]!.paths = ['short.bin'];
  writeFileSync(path.join(dir, 'short.json'), JSON.stringify(json));
  assert.match(await error(`${server!.url}short.json`), new RegExp(`short\\.bin: ${weights.length - 8} bytes, expected ${weights.length} \\(the \\d+ weights listed in .*short\\.json\\)`));
  json.weightsManifest[0]!.paths = ['missing.bin'];
  writeFileSync(path.join(dir, 'missing.json'), JSON.stringify(json));
  assert.match(await error(`${server!.url}missing.json`), /missing\.bin: HTTP 404 Not Found; expected the weights file listed in .*missing\.json/);
  let message = '';
  await rgbPixels(tf.zeros([4, 4])).catch((e: Error) => (message = e.message));
  assert.match(message, /a tensor image must be \[height, width, 3 or 4\].*got \[4, 4\]/);
});

test('the server serves the run (model, demo page, assets) on 127.0.0.1 only and refuses paths out of it', async () => {
  const base = server!.url;
  assert.match(base, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const get = (p: string): Promise<Response> => fetch(base + p);
  const page = await get('model/');
  assert.is(page.status, 200);
  assert.is(page.headers.get('cross-origin-embedder-policy'), 'require-corp');
  assert.match(await page.text(), /import \{ loadDetector \} from '\/_data-params\/data-params\.js'/);
  assert.is((await get('_data-params/data-params.js')).headers.get('content-type'), 'text/javascript; charset=utf-8');
  assert.is((await get('_data-params/tfjs-backend-wasm-simd.wasm')).headers.get('content-type'), 'application/wasm');
  assert.is((await get('run.json')).status, 200);
  for (const p of ['..%2F..%2Fetc%2Fpasswd', '%2e%2e/%2e%2e/etc/passwd', '_data-params/..%2F..%2Fpackage.json', '.hidden']) {
    assert.is((await get(p)).status, 404, p);
  }
  assert.is((await fetch(base, { redirect: 'manual' })).headers.get('location'), '/model/');
});

test.run();
