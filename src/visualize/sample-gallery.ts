/**
 * For classification runs whose tracked samples name their image: thumbnails of the samples with the highest and the
 * lowest σ at the last epoch, a red frame on those whose label was corrupted. What the curriculum postpones, at a glance.
 */
import sharp from 'sharp';
import { el, svgDocument, text } from './svg.js';
import { CLEAN_COLOR, NOISY_COLOR } from './palette.js';

export interface GallerySample {
  /** PNG bytes of the thumbnail (already THUMB × THUMB), or null for a grey placeholder. */
  png: Buffer | null;
  label: string;
  sigma: number;
  noisy?: boolean;
}

export interface GalleryRow {
  title: string;
  samples: readonly GallerySample[];
}

export const THUMB = 112;
const CELL_W = THUMB + 24;
const CELL_H = THUMB + 44;
const SIDE = 16;
const HEADER = 64;
const ROW_TITLE = 24;

export interface GalleryLayout {
  width: number;
  height: number;
  /** Top-left corner of each thumbnail, per row. */
  cells: { x: number; y: number }[][];
}

export function layoutGallery(rows: readonly GalleryRow[]): GalleryLayout {
  const perRow = Math.max(1, ...rows.map((r) => r.samples.length));
  const cells = rows.map((r, ri) =>
    r.samples.map((_, ci) => ({ x: SIDE + ci * CELL_W + 12, y: HEADER + ri * (CELL_H + ROW_TITLE) + ROW_TITLE + 6 })),
  );
  return { width: Math.max(2 * SIDE + perRow * CELL_W, 700), height: HEADER + rows.length * (CELL_H + ROW_TITLE) + 8, cells };
}

export function gallerySvg(title: string, rows: readonly GalleryRow[]): { svg: string; layout: GalleryLayout } {
  const layout = layoutGallery(rows);
  const body: string[] = [];
  body.push(text(SIDE, 24, title, { 'font-size': 16, 'font-weight': 'bold' }));
  body.push(el('rect', { x: SIDE, y: 36, width: 22, height: 14, fill: 'none', stroke: NOISY_COLOR, 'stroke-width': 4 }));
  body.push(text(SIDE + 30, 48, 'corrupted label', { 'font-size': 12 }));
  body.push(el('rect', { x: SIDE + 150, y: 36, width: 22, height: 14, fill: 'none', stroke: CLEAN_COLOR, 'stroke-width': 2 }));
  body.push(text(SIDE + 180, 48, 'clean label (or not known)', { 'font-size': 12 }));
  rows.forEach((row, ri) => {
    const y0 = HEADER + ri * (CELL_H + ROW_TITLE);
    body.push(text(SIDE, y0 + 16, row.title, { 'font-size': 13, 'font-weight': 'bold' }));
    row.samples.forEach((s, ci) => {
      const { x, y } = layout.cells[ri]![ci]!;
      if (s.png) {
        body.push(el('image', { x, y, width: THUMB, height: THUMB, href: `data:image/png;base64,${s.png.toString('base64')}` }));
      } else {
        body.push(el('rect', { x, y, width: THUMB, height: THUMB, fill: '#8a8a8a' }));
        body.push(text(x + THUMB / 2, y + THUMB / 2 + 4, 'no image', { 'text-anchor': 'middle', fill: '#fff', 'font-size': 11 }));
      }
      const noisy = s.noisy === true;
      body.push(el('rect', {
        x: x - 3, y: y - 3, width: THUMB + 6, height: THUMB + 6, fill: 'none',
        stroke: noisy ? NOISY_COLOR : CLEAN_COLOR, 'stroke-width': noisy ? 5 : 2, 'data-noisy': noisy ? 1 : 0,
      }));
      body.push(text(x + THUMB / 2, y + THUMB + 18, truncate(s.label, 18), { 'text-anchor': 'middle', 'font-size': 11 }));
      body.push(text(x + THUMB / 2, y + THUMB + 33, `σ ${Number.isFinite(s.sigma) ? s.sigma.toFixed(2) : '?'}`, {
        'text-anchor': 'middle', 'font-size': 11, fill: '#555',
      }));
    });
  });
  return { svg: svgDocument(layout.width, layout.height, body), layout };
}

function truncate(s: string, n: number): string {
  return s.length <= n ? s : s.slice(0, n - 1) + '…';
}

/** A thumbnail that fits inside THUMB × THUMB on a dark background (aspect ratio kept). */
export async function thumbnail(file: string): Promise<Buffer> {
  return sharp(file)
    .resize({ width: THUMB, height: THUMB, fit: 'contain', background: { r: 30, g: 30, b: 30, alpha: 1 } })
    .flatten({ background: { r: 30, g: 30, b: 30 } })
    .png()
    .toBuffer();
}
