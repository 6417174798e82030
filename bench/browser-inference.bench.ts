/**
 * browser-inference: time to detect on one image with a saved light SSD (384x128 in the default config), in Node
 * (predict's code: sharp decode, then resize, forward pass and NMS) and in headless Chromium (the demo page's
 * `detect` on an HTMLImageElement: canvas read, resize, forward pass and NMS) on WebGL and on wasm. Median of --runs N
 * (default 20) after 3 warm-ups; each emits ms per image.
 * Options: --model DIR (a saved model; default: an untrained light SSD built from configs/synthetic-kitti.json),
 * --image FILE (default: a generated 480x145 synthetic KITTI image), --chromium PATH (default /usr/bin/chromium).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import puppeteer from 'puppeteer-core';
import { initBackend, parseBackendName } from '../src/runtime/backend.js';
import { generateSyntheticKitti } from '../datasets/synthetic-kitti/generate.js';
import { decodeImage } from '../datasets/pipeline/decode.js';
import { readConfig, DEFAULT_CONFIG } from '../detection/cli/train-detector.js';
import { buildSSD } from '../detection/model/build.js';
import { loadSSD, saveSSD } from '../detection/model/io.js';
import { detectImages } from '../detection/inference.js';
import { serveModel } from '../detection/web/serve.js';
import type { BenchContext } from './run.js';

export const names = ['browser-inference'];

const WARMUP = 3;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function run(ctx: BenchContext, _only: string | null): Promise<void> {
  const runs = Number(ctx.options['runs'] ?? 20);
  const tmp = mkdtempSync(path.join(tmpdir(), 'bench-browser-'));
  try {
    let modelDir = ctx.options['model'];
    if (!modelDir) {
      const cfg = await readConfig(DEFAULT_CONFIG);
      await initBackend('cpu', { log: null });
      const ssd = buildSSD(cfg.model, 1);
      modelDir = path.join(tmp, 'model');
      await saveSSD(ssd, cfg.model, modelDir);
      ssd.dispose();
    }
    let image = ctx.options['image'];
    if (!image) {
      await generateSyntheticKitti({ out: path.join(tmp, 'data'), images: 1, seed: 1 });
      const dir = path.join(tmp, 'data', 'training', 'image_2');
      image = path.join(dir, readdirSync(dir)[0]!);
    }

    // Node: predict's path, timed per image including the decode.
    const backend = await initBackend(parseBackendName(ctx.backend), { log: null });
    const { model, spec } = await loadSSD(modelDir);
    const size = `${spec.inputSize.width}x${spec.inputSize.height}`;
    const times: number[] = [];
    let count = 0;
    for (let i = 0; i < WARMUP + runs; i++) {
      const t0 = performance.now();
      const [dets] = await detectImages(model, spec.classNames, [await decodeImage(image)]);
      if (i >= WARMUP) times.push(performance.now() - t0);
      count = dets!.length;
    }
    model.dispose();
    ctx.emit({ bench: 'browser-inference', backend: `node-${backend.name}`, value: median(times), unit: 'ms/image', input: size, detections: count, runs });

    const chromium = ctx.options['chromium'] ?? '/usr/bin/chromium';
    if (!existsSync(chromium)) {
      process.stderr.write(`browser-inference: no Chromium at ${chromium}: browser timings skipped\n`);
      return;
    }
    const server = await serveModel({ model: modelDir, port: 0 });
    const browser = await puppeteer.launch({
      executablePath: chromium,
      headless: true,
      protocolTimeout: 300_000,
      userDataDir: path.join(tmp, 'profile'),
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const src = `data:image/png;base64,${readFileSync(image).toString('base64')}`;
      for (const b of ['webgl', 'wasm']) {
        const page = await browser.newPage();
        await page.goto(`${server.demo}?backend=${b}`, { waitUntil: 'load' });
        await page.waitForFunction('window.dataParamsDemo !== undefined');
        // Page code as text: the browser's globals are not in this project's Node types.
        const r = (await page.evaluate(`(async () => {
          const detector = await window.dataParamsDemo.ready;
          const img = new Image();
          img.src = ${JSON.stringify(src)};
          await img.decode();
          const times = [];
          let count = 0;
          for (let i = 0; i < ${WARMUP + runs}; i++) {
            const t0 = performance.now();
            count = (await detector.detect(img)).length;
            if (i >= ${WARMUP}) times.push(performance.now() - t0);
          }
          const m = await import('/_data-params/data-params.js');
          return { times, count, isolated: self.crossOriginIsolated, threads: navigator.hardwareConcurrency, wasmThreads: m.tf.getBackend() === 'wasm' ? m.tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT') : null };
        })()`)) as { times: number[]; count: number; isolated: boolean; threads: number; wasmThreads: boolean | null };
        ctx.emit({ bench: 'browser-inference', backend: `chromium-${b}`, value: median(r.times), unit: 'ms/image', input: size, detections: r.count, runs, crossOriginIsolated: r.isolated, cores: r.threads, wasmThreads: r.wasmThreads });
        await page.close();
      }
    } finally {
      await browser.close();
      await server.close();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
