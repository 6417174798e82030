import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { boxStripSvg, layoutStrip, strokeWidth } from '../src/visualize/box-curriculum.js';
import { averageBuckets, visualizeCurriculum, pickSnapshots, type VisualizeResult } from '../src/visualize/curriculum-report.js';
import { linePlot, niceScale, niceTicks } from '../src/visualize/line-plot.js';
import { CLEAN_COLOR, NOISY_COLOR, OCCLUSION_STYLES } from '../src/visualize/palette.js';
import { svgToPng } from '../src/visualize/svg.js';
import { layoutGallery, THUMB } from '../src/visualize/sample-gallery.js';
import { IMAGE_RGB, makeClassificationRun, makeDetectionRun, sampleColor } from './support/visualize-fixture.js';

type Rgb = [number, number, number];

interface Raster {
  data: Buffer;
  width: number;
  height: number;
  channels: number;
}

async function decode(png: Buffer | string): Promise<Raster> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

function pixel(r: Raster, x: number, y: number): Rgb {
  const i = (Math.round(y) * r.width + Math.round(x)) * r.channels;
  return [r.data[i]!, r.data[i + 1]!, r.data[i + 2]!];
}

function near(a: Rgb, b: Rgb, tol = 40): boolean {
  return Math.abs(a[0] - b[0]) + Math.abs(a[1] - b[1]) + Math.abs(a[2] - b[2]) <= tol;
}

function hexRgb(hex: string): Rgb {
  return [parseInt(hex.slice(1, 3), 16), parseInt(hex.slice(3, 5), 16), parseInt(hex.slice(5, 7), 16)];
}

/** The longest run of pixels of `color` on row `y` between x0 and x1: the stroke's width where the row crosses it. */
function strokeRun(r: Raster, y: number, x0: number, x1: number, color: Rgb): number {
  let best = 0;
  let cur = 0;
  for (let x = Math.max(0, Math.floor(x0)); x <= Math.min(r.width - 1, Math.ceil(x1)); x++) {
    cur = near(pixel(r, x, y), color) ? cur + 1 : 0;
    best = Math.max(best, cur);
  }
  return best;
}

/** Measured width of the left edge of `box` (image pixels) in a panel at (px, py) with the given scale. */
function leftEdgeWidth(r: Raster, panel: { x: number; y: number }, scale: number, box: readonly number[], color: Rgb): number {
  const xEdge = panel.x + box[0]! * scale;
  const yMid = panel.y + ((box[1]! + box[3]!) / 2) * scale;
  return strokeRun(r, yMid, xEdge - 20, xEdge + 20, color);
}

function polylinePoints(svg: string, series: string): number[] {
  const re = /<polyline data-series="([^"]*)" points="([^"]*)"/g;
  const counts: number[] = [];
  for (const m of svg.matchAll(re)) if (m[1] === series || m[1]!.startsWith(series + ' ')) counts.push(m[2]!.trim().split(/\s+/).length);
  return counts;
}

const BLUE = hexRgb(OCCLUSION_STYLES[0]!.onImage);
const RED = hexRgb(OCCLUSION_STYLES[2]!.onImage);

let detRun = '';
let det: VisualizeResult;
const detWarnings: string[] = [];

test.before(async () => {
  detRun = await makeDetectionRun({ missingImage: true });
  det = await visualizeCurriculum(detRun, { out: path.join(detRun, 'pictures'), onWarning: (m) => detWarnings.push(m) });
});

test('niceTicks, niceScale and pickSnapshots (literal cases)', () => {
  assert.equal(niceTicks(0, 1, 5), [0, 0.25, 0.5, 0.75, 1]);
  assert.equal(niceTicks(0.3, 3.1, 5), [1, 2, 3]);
  assert.equal(niceTicks(0, 50, 6), [0, 10, 20, 30, 40, 50]);
  const scale = niceScale(0.58, 1.07, 6);
  const r6 = (v: number): number => Number(v.toFixed(6));
  assert.equal(scale.domain.map(r6), [0.5, 1.1]);
  assert.equal(scale.ticks.map(r6), [0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.1]);
  assert.equal(niceScale(5, 5, 5).ticks, [4.5, 4.75, 5, 5.25, 5.5]); // a flat series gets ± 10 %
  assert.equal(pickSnapshots(6, 4), [0, 2, 3, 5]);
  assert.equal(pickSnapshots(3, 4), [0, 1, 2]);
  assert.equal(pickSnapshots(10, 1), [0]);
});

test('box strip: stroke width measured in pixels is proportional to σ', async () => {
  const image = await sharp({ create: { width: 200, height: 100, channels: 3, background: IMAGE_RGB } }).png().toBuffer();
  const boxes = [
    { box: [20, 20, 80, 80] as const, occlusion: 0 },
    { box: [110, 20, 180, 80] as const, occlusion: 2 },
  ];
  const snapshots = [
    { epoch: 0, sigma: [1, 1] },
    { epoch: 3, sigma: [0.5, 2.5] },
  ];
  const strokePerSigma = 4; // σ 0.5 → 2 px, σ 1 → 4 px, σ 2.5 → 10 px
  const { svg, layout } = boxStripSvg({ title: 't', image: { png: image, width: 200, height: 100 }, boxes, snapshots, strokePerSigma, panelWidth: 200 });
  // Each panel is labelled with its epoch, each box with its σ (text is checked in the SVG: pixels depend on fonts).
  assert.match(svg, />epoch 0</);
  assert.match(svg, />epoch 3</);
  assert.equal([...svg.matchAll(/>σ (\d\.\d\d)</g)].map((m) => m[1]), ['1.00', '1.00', '2.50', '0.50']);
  assert.is(layout.scale, 1);
  const r = await decode(await svgToPng(svg));
  assert.is(r.width, layout.width);
  const [p0, p1] = layout.panels;
  // The image is drawn: inside a box, the panel shows the image's colour.
  assert.ok(near(pixel(r, p0!.x + 50, p0!.y + 50), [IMAGE_RGB.r, IMAGE_RGB.g, IMAGE_RGB.b], 12));
  const w = (p: { x: number; y: number }, b: number, c: Rgb): number => leftEdgeWidth(r, p, layout.scale, boxes[b]!.box, c);
  // Epoch 0: equal σ, equal strokes of about 4 px.
  assert.ok(Math.abs(w(p0!, 0, BLUE) - 4) <= 1, `epoch 0 blue ${w(p0!, 0, BLUE)}`);
  assert.ok(Math.abs(w(p0!, 1, RED) - 4) <= 1, `epoch 0 red ${w(p0!, 1, RED)}`);
  // Epoch 3: σ 0.5 → ~2 px, σ 2.5 → ~10 px.
  const thin = w(p1!, 0, BLUE);
  const thick = w(p1!, 1, RED);
  assert.ok(Math.abs(thin - 2) <= 1, `thin stroke ${thin}`);
  assert.ok(Math.abs(thick - 10) <= 1, `thick stroke ${thick}`);
  assert.is(strokeWidth(0.01, strokePerSigma), 0.75);
});

test('narrow σ spreads are drawn affine in σ so that a small difference is still visible', () => {
  // σ 1.00 → 1.5 px, 1.02 → 1.5 + 0.02 · 625 = 14 px (the run's spread mapped onto RANGE_BASE..MAX_STROKE).
  assert.is(strokeWidth(1.0, 625, 1.0), 1.5);
  assert.ok(Math.abs(strokeWidth(1.02, 625, 1.0) - 14) < 1e-9);
  assert.is(strokeWidth(0.9, 625, 1.0), 0.75, 'never thinner than the minimum');
  assert.is(strokeWidth(2, 4), 8, 'without strokeFrom: proportional');
});

test('visualizeCurriculum: per-box strip of a run shows a larger σ as a thicker box', async () => {
  const strip = det.figures.find((f) => f.png === 'boxes-1-a.png');
  assert.ok(strip, det.figures.map((f) => f.png).join(' '));
  const r = await decode(path.join(det.outDir, strip.png));
  // Same layout as the tool: 400×160 images, 4 snapshots of 6 epochs (0, 2, 3, 5), 620 px panels.
  const layout = layoutStrip({ image: { png: null, width: 400, height: 160 }, snapshots: [0, 2, 3, 5].map((epoch) => ({ epoch, sigma: [] })), panelWidth: 620 });
  assert.is(r.width, layout.width);
  assert.is(r.height, layout.height);
  const boxA: readonly number[] = [40, 40, 160, 120]; // occlusion 0, σ 1 → 0.5
  const boxB: readonly number[] = [230, 40, 350, 120]; // occlusion 2, σ 1 → 3
  const first = layout.panels[0]!;
  const last = layout.panels[3]!;
  const a0 = leftEdgeWidth(r, first, layout.scale, boxA, BLUE);
  const b0 = leftEdgeWidth(r, first, layout.scale, boxB, RED);
  const a3 = leftEdgeWidth(r, last, layout.scale, boxA, BLUE);
  const b3 = leftEdgeWidth(r, last, layout.scale, boxB, RED);
  // The run's largest shown σ (3) gets 14 px: σ 1 → 4.7 px, σ 0.5 → 2.3 px, σ 3 → 14 px.
  assert.ok(Math.abs(a0 - b0) <= 1, `equal σ at epoch 0 but ${a0} vs ${b0} px`);
  assert.ok(Math.abs(b3 - 14) <= 1.5, `σ 3 stroke ${b3} px`);
  assert.ok(Math.abs(a3 - 2.33) <= 1.5, `σ 0.5 stroke ${a3} px`);
  assert.ok(b3 >= 4 * a3, `σ 3 (${b3} px) should be about 6× σ 0.5 (${a3} px)`);
});

test('a missing image is drawn as a grey placeholder and reported as a warning', async () => {
  assert.is(detWarnings.length, 1);
  assert.match(detWarnings[0]!, /^image \.\.\/images\/b\.png not found \(looked in .*\): drew its boxes on a grey placeholder$/);
  assert.equal(det.warnings, detWarnings);
  const strip = det.figures.find((f) => f.png === 'boxes-2-b.png')!;
  assert.match(strip.caption, /grey placeholder/);
  const r = await decode(path.join(det.outDir, strip.png));
  const layout = layoutStrip({ image: { png: null, width: 380 * 1.05 + 10, height: 130 * 1.05 + 10 }, snapshots: [0, 2, 3, 5].map((epoch) => ({ epoch, sigma: [] })), panelWidth: 620 });
  const p = layout.panels[0]!;
  assert.ok(near(pixel(r, p.x + 5, p.y + 5), [138, 138, 138], 6), String(pixel(r, p.x + 5, p.y + 5)));
  assert.match(readFileSync(det.indexFile, 'utf8'), /1 warning/);
});

test('an unreadable image is a warning naming the file, and a placeholder', async () => {
  const dir = await makeDetectionRun({ epochs: 1 });
  const image = path.resolve(dir, '../images/a.png');
  writeFileSync(image, 'not a png');
  const res = await visualizeCurriculum(dir, { out: path.join(dir, 'pictures'), images: 1, snapshots: 1 });
  assert.is(res.warnings.length, 1);
  assert.ok(res.warnings[0]!.startsWith(`image ${image} could not be read (`), res.warnings[0]);
  assert.match(res.figures[0]!.caption, /grey placeholder/);
});

test('σ curves have one point per σ record, per group, and the occluded group ends higher', () => {
  const svg = readFileSync(path.join(det.outDir, 'sigma-occlusion.svg'), 'utf8');
  for (const g of ['occl. 0', 'occl. 1', 'occl. 2', 'all boxes']) assert.equal(polylinePoints(svg, g), [6], g);
  assert.is((svg.match(/data-band=/g) ?? []).length, 3); // ± std bands for the three levels, not for 'all'
  const lastY = (series: string): number => {
    const m = new RegExp(`data-series="${series}[^"]*" points="([^"]*)"`).exec(svg)!;
    return Number(m[1]!.trim().split(/\s+/).pop()!.split(',')[1]);
  };
  assert.ok(lastY('occl. 2') < lastY('occl. 0'), 'higher σ is drawn higher');
  assert.match(svg, />epoch</);
  assert.match(svg, />σ \(mean ± std\)</);
  const diff = readFileSync(path.join(det.outDir, 'sigma-difficulty.svg'), 'utf8');
  for (const g of ['easy', 'moderate', 'hard', 'no level']) assert.equal(polylinePoints(diff, g), [6], g);
  // Training curves: 10 train records with three loss terms, 5 epoch means, 5 validation records with three APs.
  const loss = readFileSync(path.join(det.outDir, 'loss.svg'), 'utf8');
  for (const k of ['loss', 'cls', 'loc']) assert.equal(polylinePoints(loss, k), [10], k);
  assert.equal(polylinePoints(loss, '(epoch) loss'), [5]);
  assert.is((loss.match(/<polyline /g) ?? []).length, 4); // not 'positives', 'lr', 'imagesPerSecond' or 'sigma_all'
  const val = readFileSync(path.join(det.outDir, 'validation.svg'), 'utf8');
  for (const k of ['ap_car_easy_r40', 'ap_car_moderate_r40', 'ap_car_hard_r40']) assert.equal(polylinePoints(val, k), [5], k);
  const tracked = readFileSync(path.join(det.outDir, 'sigma-tracked.svg'), 'utf8');
  assert.is((tracked.match(/<polyline /g) ?? []).length, 5);
});

test('a NaN in a curve breaks the line instead of drawing through it', () => {
  const { svg } = linePlot({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ label: 's', color: '#000', points: [[0, 1], [1, 2], [2, NaN], [3, 1], [4, 0]] }] });
  assert.equal(polylinePoints(svg, 's'), [2, 2]);
});

test('long curves are averaged in buckets (hand-computed)', () => {
  const pts: [number, number][] = Array.from({ length: 7 }, (_, i) => [i + 1, i * 2]);
  assert.equal(averageBuckets(pts, 10), { points: pts, bucket: 1 });
  // 7 points, at most 3 → buckets of 3: (1,2,3 | 0,2,4), (4,5,6 | 6,8,10), (7 | 12).
  assert.equal(averageBuckets(pts, 3), { points: [[2, 2], [5, 8], [7, 12]], bucket: 3 });
});

test('index.html references every PNG by a relative path, with a caption each', () => {
  const html = readFileSync(det.indexFile, 'utf8');
  const pngs = readdirSync(det.outDir).filter((f) => f.endsWith('.png')).sort();
  const referenced = [...html.matchAll(/<img src="([^"]+)"/g)].map((m) => decodeURI(m[1]!)).sort();
  assert.equal(referenced, pngs);
  assert.is(pngs.length, det.figures.length);
  assert.is((html.match(/<figcaption>/g) ?? []).length, pngs.length);
  for (const f of referenced) assert.ok(!f.includes('/') && existsSync(path.join(det.outDir, f)), f);
});

test('classification run: class σ, clean vs corrupted σ and the corrupted share of the top σ', async () => {
  const dir = await makeClassificationRun(4);
  const res = await visualizeCurriculum(dir, { out: path.join(dir, 'pictures') });
  const names = res.figures.map((f) => f.png);
  for (const n of ['class-sigma.png', 'sigma-clean-noisy.png', 'noisy-top-fraction.png', 'loss.png', 'validation.png']) {
    assert.ok(names.includes(n), `${n} in ${names.join(' ')}`);
  }
  assert.not.ok(names.some((n) => n.startsWith('boxes-')));
  const cls = readFileSync(path.join(dir, 'pictures', 'class-sigma.svg'), 'utf8');
  // 10 classes: the 4 highest and 4 lowest final σ, 5 records each.
  assert.is((cls.match(/<polyline /g) ?? []).length, 8);
  assert.equal(polylinePoints(cls, 'class-9'), [5]);
  assert.equal(polylinePoints(cls, 'class-0'), [5]);
  assert.equal(polylinePoints(cls, 'class-5'), []);
  const top = readFileSync(path.join(dir, 'pictures', 'noisy-top-fraction.svg'), 'utf8');
  assert.equal(polylinePoints(top, 'top 20%'), [5]);
  assert.match(top, /noise rate 25%/);
  const r = await decode(path.join(dir, 'pictures', 'noisy-top-fraction.png'));
  assert.ok(r.width > 600 && r.height === 400);
});

test('classification gallery: highest-σ samples first, corrupted ones framed in red (checked by pixel colour)', async () => {
  const dir = await makeClassificationRun(4, { withImages: true });
  const res = await visualizeCurriculum(dir, { out: path.join(dir, 'pictures') });
  assert.equal(res.warnings, []);
  const fig = res.figures.find((f) => f.png === 'samples-by-sigma.png');
  assert.ok(fig);
  const r = await decode(path.join(dir, 'pictures', fig.png));
  // Final σ: noisy 0, 4, 8 → 3.00, 3.01, 3.02; clean 2, 5, 11 → 0.72 next. Top row: 8, 4, 0, 2, 5, 11 (6 of 12).
  const top = [8, 4, 0, 2, 5, 11];
  const layout = layoutGallery([{ title: '', samples: top.map(() => ({ png: null, label: '', sigma: 0 })) }, { title: '', samples: top.map(() => ({ png: null, label: '', sigma: 0 })) }]);
  assert.equal([r.width, r.height], [layout.width, layout.height]);
  top.forEach((id, col) => {
    const c = layout.cells[0]![col]!;
    const want = sampleColor(id);
    const got = pixel(r, c.x + THUMB / 2, c.y + THUMB / 2);
    assert.ok(near(got, [want.r, want.g, want.b], 12), `cell ${col}: ${got} is not sample ${id}`);
    const frame = pixel(r, c.x - 3, c.y + THUMB / 2);
    assert.ok(near(frame, hexRgb(id % 4 === 0 ? NOISY_COLOR : CLEAN_COLOR), 30), `frame of ${id}: ${frame}`);
  });
  // Bottom row: the lowest σ (0.70: samples 3, 6, 9) comes first.
  const low = layout.cells[1]![0]!;
  const lowPx = pixel(r, low.x + THUMB / 2, low.y + THUMB / 2);
  assert.ok([3, 6, 9].some((id) => near(lowPx, [sampleColor(id).r, sampleColor(id).g, sampleColor(id).b], 12)), String(lowPx));
});

test('missing or truncated records are clear errors naming the file and line', async () => {
  const dir = await makeDetectionRun({ epochs: 2 });
  const sigmaFile = path.join(dir, 'sigma.jsonl');
  const text = readFileSync(sigmaFile, 'utf8');
  writeFileSync(sigmaFile, text.slice(0, -20));
  try {
    await visualizeCurriculum(dir, { out: path.join(dir, 'pictures') });
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.match((err as Error).message, `${sigmaFile}:3: truncated record`);
  }
  writeFileSync(sigmaFile, '');
  try {
    await visualizeCurriculum(dir, { out: path.join(dir, 'pictures') });
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.match((err as Error).message, `${sigmaFile}: no σ records yet`);
  }
  writeFileSync(sigmaFile, text);
  appendFileSync(path.join(dir, 'metrics.jsonl'), '{"kind":"val","step":');
  try {
    await visualizeCurriculum(dir, { out: path.join(dir, 'pictures') });
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.match((err as Error).message, `${path.join(dir, 'metrics.jsonl')}:9: truncated record`);
  }
  rmSync(path.join(dir, 'metrics.jsonl'));
  try {
    await visualizeCurriculum(dir, { out: path.join(dir, 'pictures') });
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.match((err as Error).message, `${path.join(dir, 'metrics.jsonl')}: missing`);
  }
});

test('a run that has just started (one σ record, no metrics yet) still renders', async () => {
  const dir = await makeDetectionRun({ epochs: 1 });
  const sigmaFile = path.join(dir, 'sigma.jsonl');
  writeFileSync(sigmaFile, readFileSync(sigmaFile, 'utf8').split('\n')[0] + '\n');
  writeFileSync(path.join(dir, 'metrics.jsonl'), '');
  const res = await visualizeCurriculum(dir, { out: path.join(dir, 'pictures'), images: 1 });
  assert.equal(res.figures.map((f) => f.png), ['boxes-1-a.png', 'sigma-occlusion.png', 'sigma-difficulty.png', 'sigma-tracked.png']);
  assert.equal(polylinePoints(readFileSync(path.join(dir, 'pictures', 'sigma-occlusion.svg'), 'utf8'), 'occl. 0'), [1]);
  const r = await decode(path.join(dir, 'pictures', 'boxes-1-a.png'));
  const layout = layoutStrip({ image: { png: null, width: 400, height: 160 }, snapshots: [{ epoch: 0, sigma: [] }], panelWidth: 620 });
  assert.equal([r.width, r.height], [layout.width, layout.height]);
});

const CLI = fileURLToPath(new URL('../src/cli/visualize-curriculum.js', import.meta.url));

test('CLI: draws a run into <run>/curriculum, and fails with exit code 1 naming the bad line', async () => {
  const run = promisify(execFile);
  const dir = await makeDetectionRun({ epochs: 2 });
  const ok = await run(process.execPath, [CLI, '--run', dir, '--images', '1', '--snapshots', '2']);
  assert.match(ok.stdout, `open ${path.join(dir, 'curriculum', 'index.html')}`);
  assert.ok(existsSync(path.join(dir, 'curriculum', 'boxes-1-a.png')));
  assert.not.ok(existsSync(path.join(dir, 'curriculum', 'boxes-2-b.png')));
  const metrics = path.join(dir, 'metrics.jsonl');
  const lines = readFileSync(metrics, 'utf8').split('\n');
  lines[1] = '{"kind": "train", oops}';
  writeFileSync(metrics, lines.join('\n'));
  try {
    await run(process.execPath, [CLI, '--run', dir]);
    assert.unreachable('should have failed');
  } catch (err) {
    const e = err as { code: number; stderr: string };
    assert.is(e.code, 1);
    assert.match(e.stderr, `visualize-curriculum: ${metrics}:2: corrupt record`);
  }
  const help = await run(process.execPath, [CLI, '--help']);
  assert.match(help.stdout, /Examples:\n {2}visualize-curriculum --run/);
});

test.run();
