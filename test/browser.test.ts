/**
 * The demo page in a real browser: headless Chromium (Debian's `chromium`, driven by puppeteer-core; no browser
 * download) opens the page written next to a tiny trained model, served by `train-detector serve`'s server, and its
 * detections on fixed images must equal predict's in Node (boxes within 1 px, scores within 1e-3) on the wasm, WebGL
 * and WebGPU backends (WebGL and WebGPU run on SwiftShader, a CPU renderer, here). The run's curriculum report loads with every
 * picture and names no absolute path. Without Chromium the tests say so and pass, except under CI=true.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import * as path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { initBackend } from '../src/runtime/backend.js';
import { visualizeCurriculum } from '../src/visualize/curriculum-report.js';
import { serveModel, type ModelServer } from '../detection/web/serve.js';
import { loadSSD } from '../detection/model/io.js';
import { decodeImage } from '../datasets/pipeline/decode.js';
import { detectImages, type ImageDetection } from '../detection/inference.js';
import { trainedDetector, type TrainedDetector } from './support/browser-fixture.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
  // WebGPU on SwiftShader's Vulkan (software), for the webgpu backend's run.
  '--enable-unsafe-webgpu', '--enable-features=Vulkan'];

let browser: Browser | null = null;
let server: ModelServer | null = null;
let run: TrainedDetector;
let want: ImageDetection[][] = [];
let dataUrls: string[] = [];
let userDataDir = '';
const pageErrors: string[] = [];

test.before(async () => {
  if (!HAVE_CHROMIUM) return;
  await initBackend('cpu', { log: null });
  run = await trainedDetector();
  await visualizeCurriculum(run.out, { out: path.join(run.out, 'curriculum'), images: 2, snapshots: 2, panelWidth: 200, onWarning: () => {} });
  const { model, spec } = await loadSSD(run.model);
  want = await detectImages(model, spec.classNames, await Promise.all(run.images.map((f) => decodeImage(f))));
  model.dispose();
  dataUrls = run.images.map((f) => `data:image/png;base64,${readFileSync(f).toString('base64')}`);
  server = await serveModel({ model: run.model, port: 0 });
  userDataDir = mkdtempSync(path.join(tmpdir(), 'chromium-profile-'));
  // protocolTimeout bounds every call into the page (evaluate has no timeout of its own): a hang fails the test.
  browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS, userDataDir, protocolTimeout: 90_000 });
});

test.after(async () => {
  await browser?.close();
  await server?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

test('headless Chromium is here (required when CI=true)', () => {
  if (HAVE_CHROMIUM) return;
  if (process.env['CI'] === 'true') assert.unreachable(`CI=true but no Chromium at ${CHROMIUM} (apt-get install chromium)`);
  console.log(`\n  browser tests skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
});

async function openDemo(backend: string): Promise<Page> {
  const page = await browser!.newPage();
  page.on('pageerror', (err) => pageErrors.push(String(err)));
  await page.goto(`${server!.demo}?backend=${backend}`, { waitUntil: 'load' });
  await page.waitForFunction('window.dataParamsDemo !== undefined');
  const err = (await page.evaluate("window.dataParamsDemo.ready.then(() => '', (e) => e.message)")) as string;
  assert.is(err, '', `${backend}: the model loads`);
  return page;
}

/** Largest box (px) and score differences, after checking class and count. */
function differences(got: ImageDetection[], exp: ImageDetection[], what: string): { box: number; score: number } {
  assert.is(got.length, exp.length, `${what}: detection count`);
  let box = 0;
  let score = 0;
  exp.forEach((w, i) => {
    const g = got[i]!;
    assert.is(g.className, w.className, `${what} #${i}`);
    score = Math.max(score, Math.abs(g.score - w.score));
    for (let k = 0; k < 4; k++) box = Math.max(box, Math.abs(g.box[k]! - w.box[k]!));
  });
  return { box, score };
}

for (const backend of ['wasm', 'webgl', 'webgpu']) {
  test(`demo page on ${backend}: the detections of the fixed images equal predict's in Node (1 px, 1e-3)`, async () => {
    if (!browser) return;
    const page = await openDemo(backend);
    for (let i = 0; i < dataUrls.length; i++) {
      const got = (await page.evaluate(`window.dataParamsDemo.detectUrl(${JSON.stringify(dataUrls[i])})`)) as ImageDetection[];
      const d = differences(got, want[i]!, `${backend}, image ${i}`);
      assert.ok(d.box <= 1 && d.score <= 1e-3, `${backend}, image ${i}: box differs by ${d.box} px, score by ${d.score}`);
    }
    assert.match((await page.evaluate("document.getElementById('status').textContent")) as string, new RegExp(`${want[2]!.length} detections .* ms \\(${backend}\\)`));
    await page.close();
  });
}

test('demo page UI: an image picked in the file input is drawn with its boxes and listed in the table', async () => {
  if (!browser) return;
  const page = await openDemo('wasm');
  const input = await page.$('#file');
  await input!.uploadFile(run.images[2]!);
  await page.waitForFunction("/detections/.test(document.getElementById('status').textContent)");
  await page.evaluate("(() => { const s = document.getElementById('minScore'); s.value = '0'; s.dispatchEvent(new Event('input')); })()");
  const table = (await page.evaluate(
    "[...document.querySelectorAll('#dets tr')].slice(1).map((r) => [...r.children].map((c) => c.textContent))",
  )) as string[][];
  assert.is(table.length, want[2]!.length);
  const best = want[2]![0]!;
  assert.equal(table[0], [best.className, best.score.toFixed(3), ...best.box.map((v) => v.toFixed(1))]);
  const canvas = (await page.evaluate("[document.getElementById('view').width, document.getElementById('view').height]")) as number[];
  assert.equal(canvas, [124, 38]);
  await page.close();
});

test('in the page: ImageBitmap, ImageData and tensor inputs give the same detections; a 404 model URL names the file', async () => {
  if (!browser) return;
  const page = await openDemo('wasm');
  // Page code (the browser's globals are not in this project's Node types).
  const got = (await page.evaluate(`(async () => {
    const m = await import('/_data-params/data-params.js');
    const detector = await window.dataParamsDemo.ready;
    const img = new Image();
    img.src = ${JSON.stringify(dataUrls[2])};
    await img.decode();
    const bitmap = await createImageBitmap(img);
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const imageData = ctx.getImageData(0, 0, canvas.width, canvas.height);
    const tensor = m.tf.browser.fromPixels(imageData);
    const out = [await detector.detect(img), await detector.detect(bitmap), await detector.detect(imageData), await detector.detect(tensor)];
    tensor.dispose();
    let error = '';
    await m.loadDetector('/nothing/model.json', { backend: 'wasm' }).catch((e) => (error = e.message));
    return { out, error };
  })()`)) as { out: ImageDetection[][]; error: string };
  for (const [k, list] of got.out.entries()) {
    const d = differences(list, want[2]!, `input kind ${k}`);
    assert.ok(d.box <= 1 && d.score <= 1e-3, `input kind ${k}: ${d.box} px, ${d.score}`);
  }
  assert.is(got.error, `${server!.url}nothing/model.json: HTTP 404 Not Found; expected a model.json written by data-params (format 'data-params-ssd')`);
  await page.close();
});

test("DataParameters from the browser entry trains in the page (WebGL): σ after 3 steps equals Node's", async () => {
  if (!browser) return;
  // Class 0 confidently right (its σ goes down), class 1 confidently wrong (its σ goes up).
  const steps = `(m) => {
    const dp = new m.DataParameters({ numClasses: 2, numInstances: 2, mode: 'joint', class: { init: 1, lr: 0.5, momentum: 0.9 }, instance: { init: 1, lr: 0.5 } });
    const logits = m.tf.tensor2d([[2, -1], [2, -1]]);
    for (let i = 0; i < 3; i++) {
      const { value, grads } = m.tf.variableGrads(() => dp.loss(logits, [0, 1], [0, 1]));
      dp.applyGradients(grads);
      m.tf.dispose([value, ...Object.values(grads)]);
    }
    logits.dispose();
    const out = [...dp.classSigma(), ...dp.instanceSigmaValues()];
    dp.dispose();
    return out;
  }`;
  const page = await openDemo('webgl');
  const inPage = (await page.evaluate(`import('/_data-params/data-params.js').then((m) => [m.tf.getBackend(), (${steps})(m)])`)) as [string, number[]];
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- the page and Node run the same source text
  const inNode = (new Function('m', `return (${steps})(m)`) as (m: unknown) => number[])(await import('../src/browser.js'));
  assert.is(inPage[0], 'webgl');
  assert.ok(inNode[0]! < 1 && inNode[1]! > 1, `σ moved the right way: ${inNode}`);
  inNode.forEach((v, i) => assert.ok(Math.abs(inPage[1][i]! - v) < 1e-4, `σ ${i}: ${inPage[1][i]} in the page, ${v} in Node`));
  await page.close();
});

test('curriculum report: every picture loads and the page names no absolute path of this machine', async () => {
  if (!browser) return;
  assert.ok(server!.report, 'the server found the report');
  const page = await browser.newPage();
  const failed: string[] = [];
  page.on('requestfailed', (r) => failed.push(r.url()));
  page.on('response', (r) => {
    if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`);
  });
  await page.goto(server!.report, { waitUntil: 'networkidle0' });
  const pictures = (await page.evaluate("[...document.images].map((i) => ({ src: i.src, ok: i.complete && i.naturalWidth > 0 }))")) as { src: string; ok: boolean }[];
  assert.ok(pictures.length >= 3, `${pictures.length} pictures`);
  for (const p of pictures) assert.ok(p.ok, `${p.src} does not load`);
  const links = (await page.evaluate(`[...document.querySelectorAll('a[href$=".png"], a[href$=".svg"]')].map((a) => a.href)`)) as string[];
  for (const href of links) assert.is((await fetch(href)).status, 200, href);
  assert.equal(failed, []);
  const html = await page.content();
  const machinePaths = [run.out, path.dirname(run.out), tmpdir(), process.cwd(), homedir()].filter((p) => p.length > 1);
  for (const p of machinePaths) assert.not.ok(html.includes(p), `the page names ${p}`);
  assert.not.match(html, /(^|[\s"'>(=])\/(tmp|home|root|work|usr|var|mnt|Users)\//);
  await page.close();
  assert.equal(pageErrors, []);
});

test.run();
