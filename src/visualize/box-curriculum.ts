/**
 * The per-box curriculum (the paper's Figure 3): one training image shown at several epochs, each ground-truth box drawn
 * with a stroke width proportional to its instance σ at that epoch and coloured by its occlusion level.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { el, svgDocument, text } from './svg.js';
import { OCCLUSION_STYLES, occlusionStyle, UNKNOWN_STYLE } from './palette.js';

export interface StripBox {
  box: readonly [number, number, number, number];
  occlusion?: number;
}

export interface StripSnapshot {
  epoch: number;
  /** σ of each box, in the order of `boxes`. */
  sigma: readonly number[];
}

/** The image behind the boxes: PNG bytes already scaled to the panel size, or null for a grey placeholder. */
export interface StripImage {
  png: Buffer | null;
  /** Original image size in pixels (the boxes' coordinate system). */
  width: number;
  height: number;
  /** Shown in the placeholder when the image could not be read. */
  missingNote?: string;
}

export interface StripSpec {
  title: string;
  image: StripImage;
  boxes: readonly StripBox[];
  snapshots: readonly StripSnapshot[];
  /** Display pixels of stroke per unit σ (shared across a run's strips so that they compare). */
  strokePerSigma: number;
  /**
   * When set, widths are affine in σ: this σ gets RANGE_BASE_STROKE pixels and each unit above it `strokePerSigma`
   * more. Used when a run's σ spread is narrow (e.g. 1.00 to 1.02), where strictly proportional strokes would all look
   * alike. Unset: width = σ · strokePerSigma.
   */
  strokeFrom?: number;
  /** Panel width in display pixels (the image is scaled to it). */
  panelWidth: number;
}

export interface StripLayout {
  width: number;
  height: number;
  /** Image-to-display scale. */
  scale: number;
  /** Top-left corner of each snapshot's image, in the order of `snapshots`. */
  panels: { x: number; y: number; epoch: number }[];
  panelWidth: number;
  panelHeight: number;
}

/** Thinnest stroke drawn, so that a box with a tiny σ stays visible (the legend says so). */
export const MIN_STROKE = 0.75;
/** Default stroke of the largest σ in a run, in display pixels. */
export const MAX_STROKE = 14;

/** Stroke of the smallest σ shown in range mode (see StripSpec.strokeFrom). */
export const RANGE_BASE_STROKE = 1.5;

export function strokeWidth(sigma: number, strokePerSigma: number, strokeFrom?: number): number {
  if (!Number.isFinite(sigma)) return MIN_STROKE;
  const w = strokeFrom === undefined ? sigma * strokePerSigma : RANGE_BASE_STROKE + (sigma - strokeFrom) * strokePerSigma;
  return Math.max(MIN_STROKE, w);
}

const HEADER = 92;
const LABEL = 22;
const GAP = 16;
const SIDE = 16;

export function layoutStrip(spec: Pick<StripSpec, 'image' | 'snapshots' | 'panelWidth'>): StripLayout {
  const scale = spec.panelWidth / spec.image.width;
  const panelWidth = spec.panelWidth;
  const panelHeight = Math.round(spec.image.height * scale);
  const n = spec.snapshots.length;
  // Wide images (KITTI is 1242×375) in two columns, squarer ones in up to four.
  const cols = Math.max(1, Math.min(n, spec.image.width / spec.image.height >= 1.6 ? 2 : 4));
  const rows = Math.ceil(n / cols);
  const panels = spec.snapshots.map((s, i) => ({
    x: SIDE + (i % cols) * (panelWidth + GAP),
    y: HEADER + Math.floor(i / cols) * (panelHeight + LABEL + GAP) + LABEL,
    epoch: s.epoch,
  }));
  const width = Math.max(2 * SIDE + cols * panelWidth + (cols - 1) * GAP, 640);
  const height = HEADER + rows * (panelHeight + LABEL + GAP) + 4;
  return { width, height, scale, panels, panelWidth, panelHeight };
}

export function boxStripSvg(spec: StripSpec): { svg: string; layout: StripLayout } {
  const layout = layoutStrip(spec);
  const { scale, panelWidth: pw, panelHeight: ph } = layout;
  const body: string[] = [];
  body.push(text(SIDE, 24, spec.title, { 'font-size': 16, 'font-weight': 'bold' }));
  const extraLevels = spec.boxes.some((b) => b.occlusion === 3) ? [3] : [];
  const unknown = spec.boxes.some((b) => b.occlusion === undefined || OCCLUSION_STYLES[b.occlusion] === undefined);
  body.push(...legend(SIDE, 44, spec.strokePerSigma, spec.strokeFrom, [0, 1, 2, ...extraLevels], unknown));

  if (spec.image.png) {
    body.push(el('defs', {}, el('image', {
      id: 'photo', x: 0, y: 0, width: pw, height: ph, preserveAspectRatio: 'none',
      href: `data:image/png;base64,${spec.image.png.toString('base64')}`,
    })));
  }
  spec.snapshots.forEach((snap, i) => {
    const { x, y } = layout.panels[i]!;
    body.push(text(x, y - 7, `epoch ${snap.epoch}`, { 'font-size': 13, 'font-weight': 'bold' }));
    const g: string[] = [];
    if (spec.image.png) g.push(el('use', { href: '#photo', x: 0, y: 0 }));
    else {
      g.push(el('rect', { x: 0, y: 0, width: pw, height: ph, fill: '#8a8a8a' }));
      const note = spec.image.missingNote ?? 'image not available';
      g.push(el('rect', { x: 0, y: ph - 20, width: pw, height: 20, fill: '#000', 'fill-opacity': 0.5 }));
      g.push(text(6, ph - 6, note, { fill: '#fff', 'font-size': 12 }));
    }
    // Thick strokes first so that a thin box lying on top of a thick one is not hidden by it.
    const order = spec.boxes.map((_, b) => b).sort((a, b) => (snap.sigma[b] ?? 0) - (snap.sigma[a] ?? 0));
    for (const b of order) {
      const [x1, y1, x2, y2] = spec.boxes[b]!.box;
      const sigma = snap.sigma[b]!;
      const w = strokeWidth(sigma, spec.strokePerSigma, spec.strokeFrom);
      const style = occlusionStyle(spec.boxes[b]!.occlusion);
      const r = { x: x1 * scale, y: y1 * scale, width: (x2 - x1) * scale, height: (y2 - y1) * scale };
      // A dark halo keeps bright strokes readable on bright road and sky.
      g.push(el('rect', { ...r, fill: 'none', stroke: '#000', 'stroke-opacity': 0.45, 'stroke-width': w + 2 }));
      g.push(el('rect', { ...r, fill: 'none', stroke: style.onImage, 'stroke-width': w, 'data-sigma': sigma }));
    }
    for (const b of order) {
      const [x1, y1] = spec.boxes[b]!.box;
      const label = `σ ${formatSigma(snap.sigma[b]!, spec.strokeFrom !== undefined)}`;
      const tx = Math.min(Math.max(0, x1 * scale), pw - 48);
      const half = strokeWidth(snap.sigma[b]!, spec.strokePerSigma, spec.strokeFrom) / 2;
      // Above the box, or just inside its top edge when there is no room above.
      const above = y1 * scale - half - 3;
      const ty = above >= 12 ? above : y1 * scale + half + 13;
      g.push(el('rect', { x: tx, y: ty - 11, width: 6.5 * label.length + 6, height: 14, fill: '#000', 'fill-opacity': 0.55, rx: 2 }));
      g.push(text(tx + 3, ty, label, { 'font-size': 11, fill: '#fff' }));
    }
    body.push(el('svg', { x, y, width: pw, height: ph, overflow: 'hidden' }, ...g));
  });
  return { svg: svgDocument(layout.width, layout.height, body), layout };
}

function formatSigma(s: number, fine = false): string {
  if (!Number.isFinite(s)) return '?';
  return s >= 10 ? s.toFixed(1) : s.toFixed(fine ? 3 : 2);
}

function legend(x: number, y: number, strokePerSigma: number, strokeFrom: number | undefined, levels: number[], unknown: boolean): string[] {
  const out: string[] = [];
  out.push(text(x, y + 4, 'colour: occlusion', { 'font-size': 12, fill: '#444' }));
  let cx = x + 118;
  const entries = levels.map((level) => ({ style: OCCLUSION_STYLES[level]!, label: `${level} ${OCCLUSION_STYLES[level]!.label}` }));
  if (unknown) entries.push({ style: UNKNOWN_STYLE, label: UNKNOWN_STYLE.label });
  for (const { style: st, label } of entries) {
    out.push(el('rect', { x: cx, y: y - 7, width: 22, height: 14, fill: 'none', stroke: st.onImage, 'stroke-width': 4 }));
    out.push(text(cx + 30, y + 4, label, { 'font-size': 12 }));
    cx += 40 + label.length * 7;
  }
  const y2 = y + 30;
  const ranged = strokeFrom !== undefined;
  out.push(text(x, y2 + 4, ranged ? 'stroke width ∝ σ − σmin' : 'stroke width ∝ σ', { 'font-size': 12, fill: '#444' }));
  let sx = x + (ranged ? 150 : 118);
  const values = ranged
    ? [strokeFrom, strokeFrom + (MAX_STROKE - RANGE_BASE_STROKE) / strokePerSigma / 2, strokeFrom + (MAX_STROKE - RANGE_BASE_STROKE) / strokePerSigma]
    : sigmaLegendValues(strokePerSigma);
  for (const s of values) {
    const w = strokeWidth(s, strokePerSigma, strokeFrom);
    out.push(el('line', { x1: sx, x2: sx + 34, y1: y2, y2, stroke: '#333', 'stroke-width': w }));
    out.push(text(sx + 40, y2 + 4, `σ = ${ranged ? formatSigma(s, true) : s}`, { 'font-size': 12 }));
    sx += ranged ? 112 : 100;
  }
  out.push(text(sx + 6, y2 + 4, `(high σ: learnt later; min ${ranged ? RANGE_BASE_STROKE : MIN_STROKE} px)`, { 'font-size': 11, fill: '#666' }));
  return out;
}

/** Round σ values for the width legend (up to three of 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 20), plus the largest σ
 * shown when it is not near one of them. */
function sigmaLegendValues(strokePerSigma: number): number[] {
  const maxSigma = MAX_STROKE / strokePerSigma;
  const round = [0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 20].filter((v) => v <= maxSigma * 1.001).slice(-3);
  const top = Number(maxSigma.toPrecision(2));
  if (round.length === 0 || top > round[round.length - 1]! * 1.1) round.push(top);
  return round;
}

/** The display scale for σ: the largest σ of a run gets MAX_STROKE pixels. */
export function strokeScaleFor(maxSigma: number): number {
  return MAX_STROKE / (Number.isFinite(maxSigma) && maxSigma > 0 ? maxSigma : 1);
}

/**
 * Finds an image named in a manifest: an absolute path as is; a relative one against the run directory, then against
 * the current directory. Returns null when neither exists.
 */
export async function resolveImage(image: string, runDir: string): Promise<string | null> {
  const candidates = path.isAbsolute(image) ? [image] : [path.resolve(runDir, image), path.resolve(image)];
  for (const c of candidates) {
    try {
      if ((await fs.stat(c)).isFile()) return c;
    } catch {
      // try the next candidate
    }
  }
  return null;
}

/** Reads an image for a strip, scaled to `panelWidth`. */
export async function loadStripImage(file: string, panelWidth: number): Promise<StripImage> {
  const meta = await sharp(file).metadata();
  if (!meta.width || !meta.height) throw new Error(`${file}: could not read the image size`);
  const png = await sharp(file).resize({ width: panelWidth, height: Math.round((meta.height * panelWidth) / meta.width), fit: 'fill' }).png().toBuffer();
  return { png, width: meta.width, height: meta.height };
}

