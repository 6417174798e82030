/**
 * Synthetic KITTI-like ground truth and detections for benchmarking and cross-checking the evaluator: image-sized
 * scenes (1242 x 375) with cars, vans, pedestrians, sitting persons, cyclists, trucks and DontCare areas at KITTI-like
 * sizes, truncation and occlusion, and detections that are jittered copies of the objects plus false alarms.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { formatKittiDetection, formatKittiObject, type KittiObject } from '../../datasets/kitti/label-file.js';
import { Rng } from '../../src/util/rng.js';

export interface SyntheticKittiEvalOptions {
  images: number;
  /** Mean number of detections per image (default 10). */
  detectionsPerImage?: number;
  seed?: number;
  /** 'coarse' snaps coordinates to 0.5 px and scores to 0.05, so that boundary cases (heights of exactly 25 or 40 px,
   * IoU of exactly the threshold, tied scores) occur often. Default 'fine' (0.01 px, 1e-6 scores, as files hold). */
  grid?: 'fine' | 'coarse';
}

export interface SyntheticKittiEvalSet {
  ids: string[];
  groundTruth: Map<string, KittiObject[]>;
  detections: Map<string, KittiObject[]>;
}

const WIDTH = 1242;
const HEIGHT = 375;

/** What a car/pedestrian/cyclist detector calls an object: vans and trucks look like cars, sitting persons like
 * pedestrians. */
function detectorClass(type: string): string {
  return type === 'Van' || type === 'Truck' ? 'Car' : type === 'Person_sitting' ? 'Pedestrian' : type;
}

export function makeSyntheticKittiEvalSet(options: SyntheticKittiEvalOptions): SyntheticKittiEvalSet {
  const rng = new Rng(options.seed ?? 1);
  const coarse = options.grid === 'coarse';
  const px = (v: number): number => (coarse ? Math.round(v * 2) / 2 : Math.round(v * 100) / 100);
  const sc = (v: number): number => (coarse ? Math.round(v * 20) / 20 : Math.round(v * 1e6) / 1e6);
  const meanDets = options.detectionsPerImage ?? 10;
  const ids: string[] = [];
  const groundTruth = new Map<string, KittiObject[]>();
  const detections = new Map<string, KittiObject[]>();

  const box = (cx: number, bottom: number, w: number, h: number): [number, number, number, number] => {
    const x1 = Math.max(0, cx - w / 2);
    const x2 = Math.min(WIDTH - 1, cx + w / 2);
    return [px(x1), px(Math.max(0, bottom - h)), px(Math.max(x2, x1 + 1)), px(Math.min(HEIGHT - 1, bottom))];
  };
  const object = (type: string, bbox: [number, number, number, number], truncated: number, occluded: number): KittiObject => ({
    type,
    truncated,
    occluded,
    alpha: type === 'DontCare' ? -10 : Math.round(rng.uniform(-3.14, 3.14) * 100) / 100,
    bbox,
    dimensions: type === 'DontCare' ? [-1, -1, -1] : [1.5, 1.6, 3.9],
    location: type === 'DontCare' ? [-1000, -1000, -1000] : [1, 1.7, 20],
    rotationY: type === 'DontCare' ? -10 : 0.1,
  });
  // Object kinds with relative frequency, aspect ratio (w/h) and height range in pixels.
  const kinds: { type: string; weight: number; aspect: number; hMin: number; hMax: number }[] = [
    { type: 'Car', weight: 10, aspect: 1.6, hMin: 18, hMax: 160 },
    { type: 'Van', weight: 1.2, aspect: 1.4, hMin: 20, hMax: 170 },
    { type: 'Truck', weight: 0.4, aspect: 1.5, hMin: 25, hMax: 180 },
    { type: 'Pedestrian', weight: 2.5, aspect: 0.4, hMin: 20, hMax: 200 },
    { type: 'Person_sitting', weight: 0.3, aspect: 0.7, hMin: 20, hMax: 120 },
    { type: 'Cyclist', weight: 0.8, aspect: 0.6, hMin: 20, hMax: 180 },
  ];
  const totalWeight = kinds.reduce((s, k) => s + k.weight, 0);
  const pickKind = (): (typeof kinds)[number] => {
    let r = rng.uniform(0, totalWeight);
    for (const k of kinds) if ((r -= k.weight) < 0) return k;
    return kinds[0]!;
  };

  for (let img = 0; img < options.images; img++) {
    const id = String(img).padStart(6, '0');
    ids.push(id);
    const gt: KittiObject[] = [];
    const nObjects = rng.int(9);
    for (let k = 0; k < nObjects; k++) {
      const kind = pickKind();
      // Height: log-uniform-ish, more small objects than big ones, as on the road.
      const h = kind.hMin * Math.pow(kind.hMax / kind.hMin, rng.next() * rng.next());
      const hh = coarse && rng.next() < 0.15 ? [25, 40, 25.5, 40.5, 24.5, 39.5][rng.int(6)]! : h;
      const bottom = rng.uniform(170, HEIGHT + 20);
      const cx = rng.uniform(-50, WIDTH + 50);
      const truncated = [0, 0, 0, 0, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7][rng.int(11)]!;
      const occluded = [0, 0, 0, 1, 1, 2, 3][rng.int(7)]!;
      gt.push(object(kind.type, box(cx, bottom, hh * kind.aspect, hh), truncated, occluded));
    }
    const nDontCare = rng.int(4);
    for (let k = 0; k < nDontCare; k++) {
      const w = rng.uniform(10, 120);
      gt.push(object('DontCare', box(rng.uniform(0, WIDTH), rng.uniform(160, 240), w, rng.uniform(8, 40)), -1, -1));
    }
    groundTruth.set(id, gt);

    // A detector that finds most objects tightly and adds loose duplicates and false alarms with lower scores.
    const dets: KittiObject[] = [];
    const nDets = Math.max(0, Math.round(meanDets + rng.uniform(-3, 3)));
    const jittered = (real: KittiObject, j: number): [number, number, number, number] => {
      const [x1, y1, x2, y2] = real.bbox;
      const w = x2 - x1;
      const h = y2 - y1;
      const b: [number, number, number, number] = [
        px(x1 + rng.normal() * j * w),
        px(y1 + rng.normal() * j * h),
        px(x2 + rng.normal() * j * w),
        px(y2 + rng.normal() * j * h),
      ];
      if (b[2] <= b[0]) b[2] = px(b[0] + 1);
      if (b[3] <= b[1]) b[3] = px(b[1] + 1);
      return b;
    };
    const clamp01 = (v: number): number => Math.min(1, Math.max(0, v));
    for (const real of gt) {
      if (dets.length >= nDets || real.type === 'DontCare' || rng.next() < 0.15) continue;
      const type = rng.next() < 0.05 ? ['Car', 'Pedestrian', 'Cyclist'][rng.int(3)]! : detectorClass(real.type);
      dets.push({ ...object(type, jittered(real, 0.03), -1, -1), alpha: -10, score: sc(clamp01(0.7 + 0.2 * rng.normal())) });
    }
    while (dets.length < nDets) {
      const real = gt.length > 0 && rng.next() < 0.5 ? gt[rng.int(gt.length)]! : null;
      if (real !== null) {
        const type = real.type === 'DontCare' ? ['Car', 'Pedestrian', 'Cyclist'][rng.int(3)]! : detectorClass(real.type);
        dets.push({ ...object(type, jittered(real, 0.12), -1, -1), alpha: -10, score: sc(clamp01(0.4 + 0.2 * rng.normal())) });
      } else {
        const kind = pickKind();
        const h = kind.hMin * Math.pow(kind.hMax / kind.hMin, rng.next() * rng.next());
        const b = box(rng.uniform(0, WIDTH), rng.uniform(170, HEIGHT), h * kind.aspect, h);
        dets.push({ ...object(detectorClass(kind.type), b, -1, -1), alpha: -10, score: sc(clamp01(0.3 + 0.2 * rng.normal())) });
      }
    }
    detections.set(id, dets);
  }
  return { ids, groundTruth, detections };
}

/** Writes `<dir>/label_2/<id>.txt` and `<dir>/results/data/<id>.txt` (the devkit's layouts). Returns the two dirs. */
export function writeSyntheticKittiEvalSet(dir: string, set: SyntheticKittiEvalSet): { labels: string; results: string } {
  const labels = path.join(dir, 'label_2');
  const results = path.join(dir, 'results');
  mkdirSync(labels, { recursive: true });
  mkdirSync(path.join(results, 'data'), { recursive: true });
  for (const id of set.ids) {
    const gt = set.groundTruth.get(id) ?? [];
    writeFileSync(path.join(labels, id + '.txt'), gt.map((o) => formatKittiObject(o) + '\n').join(''));
    const dets = set.detections.get(id) ?? [];
    writeFileSync(path.join(results, 'data', id + '.txt'), dets.map((d) => formatKittiDetection(d.type, d.bbox, d.score!) + '\n').join(''));
  }
  return { labels, results };
}
