/**
 * `npm run bench -- --only loader [--train-ips N] [--images N] [--data DIR] [--output WxH] [--workers 0,1]`: images/s
 * of the detection input pipeline (sharp decode, SSD augmentation, resize to 384x128, normalisation, batching with
 * prefetch 2; in the main thread and with one worker thread) on a freshly generated synthetic KITTI
 * set, at the synthetic default size (480x145) and at KITTI's full size (1242x375). `--data DIR` reads the first
 * --images training images of an existing KITTI-layout set instead (e.g. one made with `make-synthetic-kitti
 * --kitti-scale`), `--output WxH` sets the network input (e.g. 1248x384), `--workers` the worker counts tried with
 * augmentation.
 *
 * With `--train-ips N` (the training step's consumption rate, e.g. from `--only detector`) it also runs the loader
 * against a simulated training step that blocks the main thread for batchSize/N seconds per batch, as a JS/WASM step
 * does, and reports the share of wall time the trainer waited for data (0 = the loader keeps up).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import * as path from 'node:path';
import type { BenchContext } from './run.js';
import { generateSyntheticKitti } from '../datasets/synthetic-kitti/generate.js';
import { KittiDataset } from '../datasets/kitti/dataset.js';
import { DetectionLoader, kittiDetectionItems, SSD_AUGMENTATION } from '../datasets/pipeline/loader.js';

export const names = ['loader'];

const BATCH = 8;

function parseOutput(v: string | undefined): { width: number; height: number } {
  if (v === undefined) return { width: 384, height: 128 };
  const m = /^(\d+)x(\d+)$/.exec(v);
  if (!m) throw new Error(`--output must be WIDTHxHEIGHT, got '${v}'`);
  return { width: Number(m[1]), height: Number(m[2]) };
}

function busyWait(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // A synchronous training step keeps the main thread; only sharp's threads can work meanwhile.
  }
}

export async function run(ctx: BenchContext, _only: string | null): Promise<void> {
  const nImages = Number(ctx.options['images'] ?? 48);
  const trainIps = ctx.options['train-ips'] !== undefined ? Number(ctx.options['train-ips']) : null;
  const OUT = parseOutput(ctx.options['output']);
  const workerCounts = (ctx.options['workers'] ?? '0,1').split(',').map(Number);
  if (workerCounts.some((w) => !(Number.isInteger(w) && w >= 0))) throw new Error(`--workers must be a list of integers >= 0, got '${ctx.options['workers']}'`);
  const given = ctx.options['data'];
  const dir = mkdtempSync(path.join(tmpdir(), 'loader-bench-'));
  try {
    const sources = given !== undefined ? [{ root: given, size: null }] : [
      { width: 480, height: 145 },
      { width: 1242, height: 375 },
    ].map((size) => ({ root: path.join(dir, `${size.width}x${size.height}`), size }));
    for (const { root, size } of sources) {
      const gen = size === null ? null : await generateSyntheticKitti({ out: root, images: nImages, seed: 1, valFraction: 0.25, ...size });
      const ds = await KittiDataset.open(root, { split: 'train', log: null });
      const items = kittiDetectionItems(ds.records.slice(0, nImages));
      const first = ds.records[0];
      const common = {
        bench: 'loader',
        backend: 'none (sharp + JS typed arrays)',
        source: size === null ? `${root} (${first?.width ?? '?'}x${first?.height ?? '?'}, first ${items.length} training images)` : `${size.width}x${size.height}`,
        output: `${OUT.width}x${OUT.height}`,
        batchSize: BATCH,
        cores: cpus().length,
        loadAverage1m: Number(loadavg()[0]?.toFixed(2)),
      };
      if (gen !== null) ctx.emit({ ...common, bench: 'loader', value: gen.imagesPerSecond, unit: 'images/s', what: 'make-synthetic-kitti generation' });

      const variants = [
        ...workerCounts.map((workers) => ({ augment: SSD_AUGMENTATION, workers })),
        { augment: null, workers: 0 },
      ];
      for (const { augment, workers } of variants) {
        const loader = new DetectionLoader(items, { batchSize: BATCH, ...OUT, seed: 1, augment, prefetch: 2, workers });
        await loader.next(); // warm-up (sharp start-up, JIT, worker start)
        const batches = Math.max(2, loader.batchesPerEpoch * 2);
        const t0 = performance.now();
        const c0 = process.cpuUsage();
        let n = 0;
        for (let k = 0; k < batches; k++) n += (await loader.next()).batchSize;
        const seconds = (performance.now() - t0) / 1000;
        // CPU time of the whole process (main, worker and libvips threads): images per CPU second is what the loader
        // costs whatever else runs on the machine.
        const cpu = process.cpuUsage(c0);
        await loader.close();
        ctx.emit({
          ...common,
          value: n / seconds,
          unit: 'images/s',
          what: `pipeline, ${augment ? 'SSD augmentation' : 'resize only'}`,
          workers,
          images: n,
          imagesPerCpuSecond: Number((n / ((cpu.user + cpu.system) / 1e6)).toFixed(2)),
        });
      }

      if (trainIps !== null && trainIps > 0) {
        for (const workers of workerCounts) {
          const loader = new DetectionLoader(items, { batchSize: BATCH, ...OUT, seed: 2, augment: SSD_AUGMENTATION, prefetch: 2, workers });
          await loader.next();
          const stepMs = (1000 * BATCH) / trainIps;
          const batches = Math.max(2, loader.batchesPerEpoch * 2);
          let waited = 0;
          const t0 = performance.now();
          for (let k = 0; k < batches; k++) {
            const w0 = performance.now();
            await loader.next();
            waited += performance.now() - w0;
            busyWait(stepMs);
          }
          const total = performance.now() - t0;
          await loader.close();
          ctx.emit({
            ...common,
            value: waited / total,
            unit: 'share of time waiting for data',
            what: `simulated training step consuming ${trainIps} images/s`,
            workers,
            achievedImagesPerSecond: (batches * BATCH) / (total / 1000),
          });
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (trainIps === null) {
    process.stderr.write("loader bench: the training step's consumption rate comes from `npm run bench -- --only detector`; pass it as --train-ips N to check that the loader keeps up\n");
  }
}
