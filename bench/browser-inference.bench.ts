/**
 * browser-inference: time to detect on one image with a saved light SSD (384x128 in the default config), in Node
 * (predict's code: sharp decode, then resize, forward pass and NMS) and in headless Chromium (the demo page's
 * `detect` on an HTMLImageElement: canvas read, resize, forward pass and NMS) on WebGL, WebGPU and wasm (WebGL and
 * WebGPU on SwiftShader, a CPU renderer, in headless Chromium without a GPU; WebGPU only with --webgpu). --runs N
 * images (default 20) per backend after 3 warm-ups, in rounds of 5 that alternate the backends so that they share
 * the machine's load; each emits the median ms per image, with min and max.
 * Options: --model DIR (a saved model; default: an untrained light SSD built from configs/synthetic-kitti.json),
 * --image FILE (default: a generated 480x145 synthetic KITTI image), --chromium PATH (default /usr/bin/chromium).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import puppeteer, { type Page } from 'puppeteer-core';
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
/** Images per backend per round. */
const ROUND = 5;

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
    let nodeCount = 0;
    const nodeRuns = async (n: number): Promise<number[]> => {
      const times: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        const [dets] = await detectImages(model, spec.classNames, [await decodeImage(image)]);
        times.push(performance.now() - t0);
        nodeCount = dets!.length;
      }
      return times;
    };
    const timings = new Map<string, number[]>([[`node-${backend.name}`, []]]);
    const extra = new Map<string, Record<string, unknown>>();
    const pages = new Map<string, Page>();

    const chromium = ctx.options['chromium'] ?? '/usr/bin/chromium';
    const server = existsSync(chromium) ? await serveModel({ model: modelDir, port: 0 }) : null;
    if (!server) process.stderr.write(`browser-inference: no Chromium at ${chromium}: browser timings skipped\n`);
    const browser = server
      ? await puppeteer.launch({
          executablePath: chromium,
          headless: true,
          protocolTimeout: 600_000,
          userDataDir: path.join(tmp, 'profile'),
          args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--enable-unsafe-webgpu', '--enable-features=Vulkan'],
        })
      : null;
    try {
      const src = `data:image/png;base64,${readFileSync(image).toString('base64')}`;
      // WebGPU on SwiftShader takes seconds per image: only with --webgpu.
      const backends = ['webgl', 'wasm', ...(ctx.options['webgpu'] ? ['webgpu'] : [])];
      for (const b of browser ? backends : []) {
        const page = await browser!.newPage();
        await page.goto(`${server!.demo}?backend=${b}`, { waitUntil: 'load' });
        await page.waitForFunction('window.dataParamsDemo !== undefined');
        // Page code as text: the browser's globals are not in this project's Node types.
        const info = (await page.evaluate(`(async () => {
          const detector = await window.dataParamsDemo.ready;
          const img = new Image();
          img.src = ${JSON.stringify(src)};
          await img.decode();
          window.benchRuns = async (n) => {
            const times = [];
            for (let i = 0; i < n; i++) {
              const t0 = performance.now();
              window.benchCount = (await detector.detect(img)).length;
              times.push(performance.now() - t0);
            }
            return times;
          };
          const m = await import('/_data-params/data-params.js');
          return { crossOriginIsolated: self.crossOriginIsolated, cores: navigator.hardwareConcurrency, wasmThreads: m.tf.getBackend() === 'wasm' ? m.tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT') : null };
        })()`)) as Record<string, unknown>;
        pages.set(b, page);
        timings.set(`chromium-${b}`, []);
        extra.set(`chromium-${b}`, info);
      }
      const browserRuns = async (b: string, n: number): Promise<number[]> => (await pages.get(b)!.evaluate(`window.benchRuns(${n})`)) as number[];
      // Warm-ups, then rounds that alternate Node and the browser backends, so that all see the same machine load.
      await nodeRuns(WARMUP);
      for (const b of pages.keys()) await browserRuns(b, WARMUP);
      const rounds = Math.max(1, Math.ceil(runs / ROUND));
      for (let r = 0; r < rounds; r++) {
        timings.get(`node-${backend.name}`)!.push(...(await nodeRuns(ROUND)));
        for (const b of pages.keys()) timings.get(`chromium-${b}`)!.push(...(await browserRuns(b, b === 'webgpu' ? 1 : ROUND)));
      }
      for (const [name, times] of timings) {
        const b = name.replace(/^chromium-/, '');
        const count = pages.has(b) ? ((await pages.get(b)!.evaluate('window.benchCount')) as number) : nodeCount;
        ctx.emit({ bench: 'browser-inference', backend: name, value: median(times), unit: 'ms/image', input: size, detections: count, runs: times.length, min: Math.min(...times), max: Math.max(...times), ...extra.get(name) });
      }
    } finally {
      model.dispose();
      await browser?.close();
      await server?.close();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
