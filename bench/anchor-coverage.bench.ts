/**
 * `npm run bench -- --only anchor-coverage --config FILE --data DIR [--images N]`: how well a detector config's
 * anchors fit a KITTI-layout set's boxes. For the trained boxes of the first N training images (default 500), the IoU
 * of each box's best anchor after resizing the image to the config's input (as training does, warp), per box height
 * in original pixels (KITTI's difficulty levels start at 25 and 40 px): the share whose best anchor reaches the
 * matcher's threshold (the others are trained only through the matcher's forced best-anchor match) and the median
 * best IoU. Small cars are where anchors usually fall short.
 */
import { readDetectorConfig } from '../detection/config.js';
import { AnchorGenerator, featureMapSizes } from '../detection/anchors/anchor-generator.js';
import { buildBackbone } from '../detection/model/build.js';
import { iou } from '../detection/boxes.js';
import { KittiDataset } from '../datasets/kitti/dataset.js';
import { ParamStore } from '../src/nn/param-store.js';
import { Rng } from '../src/util/rng.js';
import { initBackend } from '../src/runtime/backend.js';
import { median } from './step-timing.js';
import type { BenchContext } from './run.js';

export const names = ['anchor-coverage'];

const HEIGHT_BINS: [string, number, number][] = [
  ['< 25 px', 0, 25],
  ['25-40 px', 25, 40],
  ['40-80 px', 40, 80],
  ['>= 80 px', 80, Infinity],
];

export async function run(ctx: BenchContext, _only: string | null): Promise<void> {
  const configFile = ctx.options['config'];
  const root = ctx.options['data'];
  if (configFile === undefined || root === undefined) throw new Error('anchor-coverage needs --config FILE and --data DIR');
  const nImages = Number(ctx.options['images'] ?? 500);
  const config = await readDetectorConfig(configFile);
  const spec = config.model;
  await initBackend('cpu', { log: null });
  // The feature-map sizes come from the backbone itself (as the SSD does), on the cpu backend: shapes only.
  const store = new ParamStore(new Rng(1));
  const backbone = buildBackbone(spec.backbone, store);
  const sizes = featureMapSizes((x) => backbone.features(x, false), spec.inputSize);
  store.dispose();
  const anchors = new AnchorGenerator(spec.anchors).generate(sizes, spec.inputSize);
  const threshold = spec.matcher?.iouThreshold ?? 0.5;
  const ds = await KittiDataset.open(root, { split: 'train', classes: spec.classNames, log: null });
  const byLevel = new Map<string, number[]>();
  for (const r of ds.records.slice(0, nImages)) {
    const w = r.width ?? 0, h = r.height ?? 0;
    if (!(w > 0 && h > 0)) throw new Error(`${r.imagePath}: image size unknown`);
    for (const o of r.objects) {
      if (o.classIndex < 0 || o.ignore) continue;
      const box = [o.bbox[0] / w, o.bbox[1] / h, o.bbox[2] / w, o.bbox[3] / h];
      let best = 0;
      for (let a = 0; a < anchors.count; a++) best = Math.max(best, iou(anchors.corner, a, box, 0));
      const height = o.bbox[3] - o.bbox[1];
      const level = HEIGHT_BINS.find(([, lo, hi]) => height >= lo && height < hi)?.[0] ?? 'other';
      const list = byLevel.get(level) ?? [];
      list.push(best);
      byLevel.set(level, list);
    }
  }
  for (const [level] of HEIGHT_BINS) {
    const v = byLevel.get(level) ?? [];
    if (v.length === 0) continue;
    ctx.emit({
      bench: 'anchor-coverage',
      backend: 'none',
      value: Number((v.filter((x) => x >= threshold).length / v.length).toFixed(3)),
      unit: `share of boxes whose best anchor has IoU >= ${threshold}`,
      boxHeight: level,
      boxes: v.length,
      medianBestIoU: Number(median(v).toFixed(3)),
      anchors: anchors.count,
      config: configFile,
      images: Math.min(nImages, ds.records.length),
    });
  }
}
