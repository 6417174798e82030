/**
 * Synthetic KITTI scenes: a pinhole camera 1.65 m above a flat road (KITTI's geometry, focal length scaled to the
 * image width), sky, roadside, a road in perspective with lane marks, and objects drawn back to front (painter's
 * algorithm) into a raw RGB Uint8Array.
 *
 *   const spec = sampleScene(rng, 480, 145);          // or build a SceneSpec by hand (tests do)
 *   const { rgb, labels } = renderScene(spec);         // labels: SceneLabel[] (KittiObject + visibleFraction)
 *
 * Label truth: while drawing, a per-pixel owner mask records which object each pixel shows. An object's visible
 * fraction is (its pixels still showing at the end) / (its silhouette pixels inside the image right after it was
 * drawn); occlusion = 0 if visible >= 0.9, 1 if >= 0.5, else 2. Truncation = share of the object's unclipped 2D box
 * lying outside the image. The 2D box is the full (amodal) silhouette extent clipped to the image, as in KITTI.
 * Objects less than 10% visible, and cars whose box is under `dontCareHeight` pixels tall, become DontCare regions;
 * slivers at the border (clipped box under 2 px wide or tall) get no label.
 */
import type { Rng } from '../../src/util/rng.js';
import type { KittiObject } from '../kitti/label-file.js';

export type SceneObjectKind = 'car' | 'van' | 'pedestrian' | 'pole' | 'bush';

export interface SceneObject {
  kind: SceneObjectKind;
  /** Lateral position of the footprint centre (m, camera x, right positive). */
  x: number;
  /** Depth of the footprint centre (m). */
  z: number;
  /** 3D height, width, length (m). */
  h: number;
  w: number;
  l: number;
  /** KITTI rotation_y (rad): ±π/2 drives along the road (seen from behind/front), 0 or π is a side view. */
  rotY: number;
  color: [number, number, number];
}

export interface SceneSpec {
  width: number;
  height: number;
  /** Seed of the pixel noise and the background clutter. */
  noiseSeed: number;
  /** Horizontal offset of the road centre (m). */
  roadOffset: number;
  /** Half width of the road (m). */
  roadHalfWidth: number;
  skyTint: number;
  objects: SceneObject[];
}

export interface SceneLabel {
  object: KittiObject;
  /** Index in spec.objects (-1 for none). */
  source: number;
  /** Visible share of the object's in-image silhouette after everything was drawn. */
  visibleFraction: number;
}

export interface RenderedScene {
  rgb: Uint8Array;
  labels: SceneLabel[];
}

/** Camera model shared by sampling and rendering. */
export function camera(width: number, height: number): { f: number; cx: number; horizon: number; camHeight: number } {
  return { f: 0.58 * width, cx: width / 2, horizon: 0.44 * height, camHeight: 1.65 };
}

/** Occlusion level from a visible fraction (0: >= 90%, 1: 50-90%, 2: < 50%). */
export function occlusionLevel(visibleFraction: number): 0 | 1 | 2 {
  return visibleFraction >= 0.9 ? 0 : visibleFraction >= 0.5 ? 1 : 2;
}

/** Projected unclipped 2D box (pixels) of an object's 3D box. */
export function projectBox(spec: Pick<SceneSpec, 'width' | 'height'>, o: SceneObject): [number, number, number, number] {
  const cam = camera(spec.width, spec.height);
  const footprint = Math.abs(o.w * Math.sin(o.rotY)) + Math.abs(o.l * Math.cos(o.rotY));
  const width3d = o.kind === 'car' || o.kind === 'van' ? footprint : o.w;
  const cxPix = cam.cx + (cam.f * o.x) / o.z;
  const half = (cam.f * width3d) / (2 * o.z);
  const bottom = cam.horizon + (cam.f * cam.camHeight) / o.z;
  const top = cam.horizon + (cam.f * (cam.camHeight - o.h)) / o.z;
  return [cxPix - half, top, cxPix + half, bottom];
}

const MAX_OWNER = 65535;

class Canvas {
  readonly rgb: Uint8Array;
  readonly owner: Uint16Array;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.rgb = new Uint8Array(width * height * 3);
    this.owner = new Uint16Array(width * height);
  }

  /** Fills pixels whose centres lie in [x1,x2)x[y1,y2); shade darkens towards the bottom (0..1). */
  rect(x1: number, y1: number, x2: number, y2: number, c: readonly number[], id: number, shade = 0): void {
    const i1 = Math.max(0, Math.ceil(x1 - 0.5));
    const i2 = Math.min(this.width, Math.ceil(x2 - 0.5));
    const j1 = Math.max(0, Math.ceil(y1 - 0.5));
    const j2 = Math.min(this.height, Math.ceil(y2 - 0.5));
    const span = Math.max(1, y2 - y1);
    for (let j = j1; j < j2; j++) {
      const k = 1 - (shade * (j + 0.5 - y1)) / span;
      const r = c[0]! * k;
      const g = c[1]! * k;
      const b = c[2]! * k;
      let p = j * this.width + i1;
      for (let i = i1; i < i2; i++, p++) {
        this.rgb[3 * p] = r;
        this.rgb[3 * p + 1] = g;
        this.rgb[3 * p + 2] = b;
        this.owner[p] = id;
      }
    }
  }

  ellipse(cx: number, cy: number, rx: number, ry: number, c: readonly number[], id: number): void {
    if (rx <= 0 || ry <= 0) return;
    const j1 = Math.max(0, Math.ceil(cy - ry - 0.5));
    const j2 = Math.min(this.height, Math.ceil(cy + ry - 0.5));
    for (let j = j1; j < j2; j++) {
      const dy = (j + 0.5 - cy) / ry;
      const half = rx * Math.sqrt(Math.max(0, 1 - dy * dy));
      const i1 = Math.max(0, Math.ceil(cx - half - 0.5));
      const i2 = Math.min(this.width, Math.ceil(cx + half - 0.5));
      let p = j * this.width + i1;
      for (let i = i1; i < i2; i++, p++) {
        this.rgb[3 * p] = c[0]!;
        this.rgb[3 * p + 1] = c[1]!;
        this.rgb[3 * p + 2] = c[2]!;
        this.owner[p] = id;
      }
    }
  }

  count(id: number, box: readonly number[]): number {
    const i1 = Math.max(0, Math.floor(box[0]!));
    const i2 = Math.min(this.width, Math.ceil(box[2]!) + 1);
    const j1 = Math.max(0, Math.floor(box[1]!));
    const j2 = Math.min(this.height, Math.ceil(box[3]!) + 1);
    let n = 0;
    for (let j = j1; j < j2; j++) for (let i = i1; i < i2; i++) if (this.owner[j * this.width + i] === id) n++;
    return n;
  }
}

/** xorshift32: the per-pixel noise stream (seeded from the scene, so rendering is deterministic). */
function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

function drawBackground(cv: Canvas, spec: SceneSpec): void {
  const { width: W, height: H } = cv;
  const cam = camera(W, H);
  const rnd = xorshift(spec.noiseSeed ^ 0x5bd1e995);
  const hz = cam.horizon;
  // Sky gradient.
  for (let j = 0; j < Math.min(H, Math.ceil(hz)); j++) {
    const t = j / hz;
    cv.rect(0, j, W, j + 1, [120 + 80 * t + spec.skyTint, 160 + 60 * t, 215 + 30 * t], 0);
  }
  // Clutter at the horizon: buildings and tree rows.
  let u = -10;
  while (u < W) {
    const bw = W * (0.04 + 0.12 * rnd());
    const bh = H * (0.05 + 0.22 * rnd());
    const tree = rnd() < 0.4;
    const c = tree ? [40 + 40 * rnd(), 90 + 50 * rnd(), 40 + 30 * rnd()] : [110 + 90 * rnd(), 100 + 80 * rnd(), 90 + 70 * rnd()];
    if (tree) cv.ellipse(u + bw / 2, hz - bh / 2, bw / 2, bh / 2 + 2, c, 0);
    else cv.rect(u, hz - bh, u + bw, hz + 1, c, 0);
    u += bw * (0.7 + 0.6 * rnd());
  }
  // Ground: roadside, road, markings.
  const side = [95 + 30 * rnd(), 110 + 30 * rnd(), 70 + 20 * rnd()];
  const road = 85 + 30 * rnd();
  for (let j = Math.max(0, Math.floor(hz + 1)); j < H; j++) {
    const z = (cam.f * cam.camHeight) / (j + 0.5 - hz);
    const uOf = (x: number): number => cam.cx + (cam.f * (x + spec.roadOffset)) / z;
    cv.rect(0, j, W, j + 1, side, 0);
    cv.rect(uOf(-spec.roadHalfWidth - 2), j, uOf(-spec.roadHalfWidth), j + 1, [150, 150, 145], 0);
    cv.rect(uOf(spec.roadHalfWidth), j, uOf(spec.roadHalfWidth + 2), j + 1, [150, 150, 145], 0);
    cv.rect(uOf(-spec.roadHalfWidth), j, uOf(spec.roadHalfWidth), j + 1, [road, road, road + 4], 0);
    const lineW = 0.12;
    const edge = [235, 235, 230];
    cv.rect(uOf(-spec.roadHalfWidth + 0.2), j, uOf(-spec.roadHalfWidth + 0.2 + lineW), j + 1, edge, 0);
    cv.rect(uOf(spec.roadHalfWidth - 0.2 - lineW), j, uOf(spec.roadHalfWidth - 0.2), j + 1, edge, 0);
    if (Math.floor(z / 3) % 2 === 0) {
      for (let lane = -spec.roadHalfWidth + 3.5; lane < spec.roadHalfWidth - 1; lane += 3.5) {
        cv.rect(uOf(lane - lineW / 2), j, uOf(lane + lineW / 2), j + 1, edge, 0);
      }
    }
  }
}

function drawCar(cv: Canvas, o: SceneObject, box: readonly number[], id: number): void {
  const [x1, y1, x2, y2] = box as [number, number, number, number];
  const bw = x2 - x1;
  const bh = y2 - y1;
  const sideView = Math.abs(Math.cos(o.rotY)) > 0.7;
  const van = o.kind === 'van';
  const wheelR = bh * (van ? 0.14 : 0.17);
  const bodyTop = y1 + bh * (van ? 0.25 : 0.45);
  const c = o.color;
  const dark = [c[0] * 0.55, c[1] * 0.55, c[2] * 0.55];
  const glass = [40, 55, 75];
  // Cabin (roof + windows), then body, then wheels and lights.
  const inset = sideView ? bw * (van ? 0.02 : 0.2) : bw * (van ? 0.03 : 0.12);
  const shift = sideView && !van ? bw * 0.05 * Math.sign(Math.cos(o.rotY)) : 0;
  cv.rect(x1 + inset + shift, y1, x2 - inset + shift, bodyTop + 1, c, id);
  if (sideView) {
    const wy2 = bodyTop - bh * 0.05;
    const wy1 = y1 + bh * 0.08;
    const mid = (x1 + x2) / 2 + shift;
    cv.rect(x1 + inset + shift + bw * 0.04, wy1, mid - bw * 0.02, wy2, glass, id);
    cv.rect(mid + bw * 0.02, wy1, x2 - inset + shift - bw * 0.04, wy2, glass, id);
  } else {
    cv.rect(x1 + inset + bw * 0.06, y1 + bh * 0.07, x2 - inset - bw * 0.06, bodyTop - bh * 0.04, glass, id);
  }
  cv.rect(x1, bodyTop, x2, y2 - wheelR * 0.6, c, id, 0.35);
  if (sideView) {
    cv.ellipse(x1 + bw * 0.2, y2 - wheelR, wheelR, wheelR, [20, 20, 22], id);
    cv.ellipse(x2 - bw * 0.2, y2 - wheelR, wheelR, wheelR, [20, 20, 22], id);
  } else {
    cv.rect(x1 + bw * 0.04, y2 - wheelR * 1.2, x1 + bw * 0.2, y2, [20, 20, 22], id);
    cv.rect(x2 - bw * 0.2, y2 - wheelR * 1.2, x2 - bw * 0.04, y2, [20, 20, 22], id);
    const ly = bodyTop + bh * 0.06;
    cv.rect(x1 + bw * 0.05, ly, x1 + bw * 0.18, ly + bh * 0.08, [200, 30, 30], id);
    cv.rect(x2 - bw * 0.18, ly, x2 - bw * 0.05, ly + bh * 0.08, [200, 30, 30], id);
    cv.rect(x1 + bw * 0.3, y2 - wheelR * 1.6, x2 - bw * 0.3, y2 - wheelR * 0.9, dark, id);
  }
}

function drawPedestrian(cv: Canvas, o: SceneObject, box: readonly number[], id: number): void {
  const [x1, y1, x2, y2] = box as [number, number, number, number];
  const bw = x2 - x1;
  const bh = y2 - y1;
  const cx = (x1 + x2) / 2;
  cv.ellipse(cx, y1 + bh * 0.07, bw * 0.22, bh * 0.07, [225, 180, 150], id);
  cv.rect(x1 + bw * 0.1, y1 + bh * 0.14, x2 - bw * 0.1, y1 + bh * 0.55, o.color, id);
  const legs = [40, 40, 70];
  cv.rect(x1 + bw * 0.18, y1 + bh * 0.55, cx - bw * 0.04, y2, legs, id);
  cv.rect(cx + bw * 0.04, y1 + bh * 0.55, x2 - bw * 0.18, y2, legs, id);
}

function drawOccluder(cv: Canvas, o: SceneObject, box: readonly number[], id: number): void {
  const [x1, y1, x2, y2] = box as [number, number, number, number];
  if (o.kind === 'pole') {
    cv.rect(x1, y1, x2, y2, o.color, id, 0.2);
  } else {
    // A hedge: a rounded block (rectangle + elliptical top).
    const r = Math.min((y2 - y1) * 0.3, (x2 - x1) * 0.5);
    cv.rect(x1, y1 + r, x2, y2, o.color, id, 0.3);
    cv.ellipse((x1 + x2) / 2, y1 + r, (x2 - x1) / 2, r, o.color, id);
  }
}

export interface RenderOptions {
  /** Cars/vans whose 2D box is at most this many pixels tall become DontCare regions (default 16: KITTI's difficulty
   * thresholds are absolute pixels, so this stays fixed whatever the image size). */
  dontCareHeight?: number;
}

/** Renders a scene and returns the image with labels that are true to the drawing. */
export function renderScene(spec: SceneSpec, options: RenderOptions = {}): RenderedScene {
  const cv = new Canvas(spec.width, spec.height);
  drawBackground(cv, spec);
  const cam = camera(spec.width, spec.height);
  const dontCareHeight = options.dontCareHeight ?? 16;
  const order = spec.objects.map((_, i) => i).sort((a, b) => spec.objects[b]!.z - spec.objects[a]!.z || a - b);
  const full = new Map<number, { box: [number, number, number, number]; own: number }>();
  if (spec.objects.length >= MAX_OWNER - 1) throw new Error('renderScene: too many objects');
  for (const i of order) {
    const o = spec.objects[i]!;
    const box = projectBox(spec, o);
    const id = i + 1;
    if (o.kind === 'car' || o.kind === 'van') drawCar(cv, o, box, id);
    else if (o.kind === 'pedestrian') drawPedestrian(cv, o, box, id);
    else drawOccluder(cv, o, box, MAX_OWNER);
    if (o.kind !== 'pole' && o.kind !== 'bush') full.set(i, { box, own: cv.count(id, box) });
  }
  // Pixel noise (sensor-like), after the owner mask is final.
  const rnd = xorshift(spec.noiseSeed);
  const rgb = cv.rgb;
  for (let p = 0; p < rgb.length; p += 3) {
    const n = (rnd() - 0.5) * 16;
    rgb[p] = clampByte(rgb[p]! + n);
    rgb[p + 1] = clampByte(rgb[p + 1]! + n);
    rgb[p + 2] = clampByte(rgb[p + 2]! + n);
  }
  const labels: SceneLabel[] = [];
  for (let i = 0; i < spec.objects.length; i++) {
    const info = full.get(i);
    if (!info || info.own === 0) continue;
    const o = spec.objects[i]!;
    const [u1, v1, u2, v2] = info.box;
    // KITTI boxes lie in [0, W-1] x [0, H-1]; a sliver at the border narrower than 2 px gets no label at all.
    const cx = (v: number): number => Math.min(Math.max(v, 0), spec.width - 1);
    const cy = (v: number): number => Math.min(Math.max(v, 0), spec.height - 1);
    const clipped: [number, number, number, number] = [cx(u1), cy(v1), cx(u2), cy(v2)];
    if (clipped[2] - clipped[0] < 2 || clipped[3] - clipped[1] < 2) continue;
    const fullArea = (u2 - u1) * (v2 - v1);
    const inArea = Math.max(0, clipped[2] - clipped[0]) * Math.max(0, clipped[3] - clipped[1]);
    const truncated = fullArea > 0 ? Math.min(1, Math.max(0, 1 - inArea / fullArea)) : 1;
    const visibleFraction = cv.count(i + 1, info.box) / info.own;
    const round2 = (v: number): number => Math.round(v * 100) / 100;
    const bbox = clipped.map(round2) as [number, number, number, number];
    const dontCare = visibleFraction < 0.1 || ((o.kind === 'car' || o.kind === 'van') && bbox[3] - bbox[1] <= dontCareHeight);
    if (dontCare) {
      labels.push({
        source: i,
        visibleFraction,
        object: {
          type: 'DontCare',
          truncated: -1,
          occluded: -1,
          alpha: -10,
          bbox,
          dimensions: [-1, -1, -1],
          location: [-1000, -1000, -1000],
          rotationY: -10,
        },
      });
      continue;
    }
    const type = o.kind === 'car' ? 'Car' : o.kind === 'van' ? 'Van' : 'Pedestrian';
    labels.push({
      source: i,
      visibleFraction,
      object: {
        type,
        truncated: round2(truncated),
        occluded: occlusionLevel(visibleFraction),
        alpha: round2(wrapAngle(o.rotY - Math.atan2(o.x, o.z))),
        bbox,
        dimensions: [round2(o.h), round2(o.w), round2(o.l)],
        location: [round2(o.x), round2(cam.camHeight), round2(o.z)],
        rotationY: round2(o.rotY),
      },
    });
  }
  return { rgb, labels };
}

function clampByte(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

function wrapAngle(a: number): number {
  while (a > Math.PI) a -= 2 * Math.PI;
  while (a <= -Math.PI) a += 2 * Math.PI;
  return a;
}

const CAR_COLOURS: [number, number, number][] = [
  [200, 200, 205],
  [30, 30, 35],
  [150, 20, 25],
  [20, 50, 140],
  [230, 230, 225],
  [110, 110, 115],
  [160, 130, 60],
  [40, 100, 60],
];

/**
 * A random road scene: cars in lanes and parked at the kerbs (near ones truncated by the image border), sometimes a
 * van, pedestrians on the pavement, hedges and poles placed in front of some cars to occlude a random share of them.
 */
export function sampleScene(rng: Rng, width: number, height: number): SceneSpec {
  const roadHalfWidth = rng.uniform(5.5, 8);
  const spec: SceneSpec = {
    width,
    height,
    noiseSeed: rng.nextUint32(),
    roadOffset: rng.uniform(-1.5, 1.5),
    roadHalfWidth,
    skyTint: rng.uniform(-20, 20),
    objects: [],
  };
  const colour = (): [number, number, number] => {
    const c = CAR_COLOURS[rng.int(CAR_COLOURS.length)]!;
    const k = rng.uniform(0.85, 1.1);
    return [Math.min(255, c[0] * k), Math.min(255, c[1] * k), Math.min(255, c[2] * k)];
  };
  const depth = (): number => {
    const u = rng.next();
    return u < 0.45 ? rng.uniform(5.5, 10.5) : u < 0.8 ? rng.uniform(10.5, 17) : rng.uniform(17, 40);
  };
  const nCars = 2 + rng.int(5);
  const targets: SceneObject[] = [];
  for (let k = 0; k < nCars; k++) {
    const parked = rng.bernoulli(0.35);
    const sideSign = rng.bernoulli(0.5) ? -1 : 1;
    const z = depth();
    const van = rng.bernoulli(0.1);
    const x = parked
      ? spec.roadOffset + sideSign * (roadHalfWidth - 1.1 + rng.uniform(-0.2, 0.3))
      : spec.roadOffset + (rng.int(Math.max(1, Math.floor((2 * roadHalfWidth) / 3.5))) + 0.5) * 3.5 - roadHalfWidth + rng.uniform(-0.4, 0.4);
    const heading = parked || rng.bernoulli(0.8) ? (rng.bernoulli(0.5) ? Math.PI / 2 : -Math.PI / 2) : rng.uniform(-Math.PI, Math.PI);
    const o: SceneObject = {
      kind: van ? 'van' : 'car',
      x,
      z,
      h: van ? rng.uniform(1.9, 2.3) : rng.uniform(1.4, 1.6),
      w: van ? rng.uniform(1.8, 2.0) : rng.uniform(1.55, 1.8),
      l: van ? rng.uniform(4.6, 5.4) : rng.uniform(3.6, 4.6),
      rotY: wrapAngle(heading + rng.uniform(-0.15, 0.15)),
      color: colour(),
    };
    spec.objects.push(o);
    if (!van) targets.push(o);
  }
  // Near cars cut by the left/right border (truncation).
  if (rng.bernoulli(0.5)) {
    const side = rng.bernoulli(0.5) ? -1 : 1;
    const z = rng.uniform(5.5, 12);
    const cam = camera(width, height);
    const edgeX = ((width / 2) * z) / cam.f; // lateral position of the image border at depth z
    spec.objects.push({
      kind: 'car',
      x: side * (edgeX + rng.uniform(-1.2, 0.6)),
      z,
      h: rng.uniform(1.4, 1.6),
      w: rng.uniform(1.55, 1.8),
      l: rng.uniform(3.6, 4.6),
      rotY: rng.bernoulli(0.5) ? Math.PI / 2 : -Math.PI / 2,
      color: colour(),
    });
  }
  // Occluders in front of some cars: hedges (cover the lower part or all of it) and poles.
  for (const t of targets) {
    if (!rng.bernoulli(0.5)) continue;
    const box = projectBox(spec, t);
    const bw = box[2] - box[0];
    const zOcc = Math.max(3, t.z - rng.uniform(0.8, 2.5));
    const cam = camera(width, height);
    const toX = (u: number): number => ((u - cam.cx) * zOcc) / cam.f;
    if (rng.bernoulli(0.75)) {
      const cover = rng.uniform(0.2, 1.0) * bw;
      const fromLeft = rng.bernoulli(0.5);
      const u1 = fromLeft ? box[0] - bw * 0.2 : box[2] - cover;
      const u2 = fromLeft ? box[0] + cover : box[2] + bw * 0.2;
      spec.objects.push({
        kind: 'bush',
        x: (toX(u1) + toX(u2)) / 2,
        z: zOcc,
        h: rng.uniform(0.8, 2.2),
        w: Math.abs(toX(u2) - toX(u1)),
        l: 1,
        rotY: 0,
        color: [40 + rng.uniform(0, 40), 100 + rng.uniform(0, 60), 35 + rng.uniform(0, 30)],
      });
    } else {
      const u = rng.uniform(box[0], box[2]);
      spec.objects.push({
        kind: 'pole',
        x: toX(u),
        z: zOcc,
        h: rng.uniform(4, 7),
        w: rng.uniform(0.15, 0.5),
        l: 0.2,
        rotY: 0,
        color: [120, 120, 125],
      });
    }
  }
  // Pedestrians on the pavement.
  const nPed = rng.int(3);
  for (let k = 0; k < nPed; k++) {
    const side = rng.bernoulli(0.5) ? -1 : 1;
    spec.objects.push({
      kind: 'pedestrian',
      x: spec.roadOffset + side * (roadHalfWidth + rng.uniform(0.3, 1.8)),
      z: rng.uniform(6, 25),
      h: rng.uniform(1.55, 1.9),
      w: rng.uniform(0.5, 0.7),
      l: 0.5,
      rotY: rng.uniform(-Math.PI, Math.PI),
      color: colour(),
    });
  }
  return spec;
}
