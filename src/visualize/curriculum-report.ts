/**
 * Turns a run directory's records into pictures a person reads at a glance: per-box curriculum strips (Figure 3 of the
 * paper), σ curves per occlusion level, difficulty, class and clean/corrupted group, training curves, and an
 * `index.html` that shows them all (relative paths: it opens straight from disk).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { readRun, RunRecordError, SIGMA_FILE, type RunRecords, type SigmaEntry, type TrackedInstance } from '../records/run-records.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import {
  boxStripSvg,
  loadStripImage,
  MAX_STROKE,
  MIN_STROKE,
  resolveImage,
  strokeScaleFor,
  RANGE_BASE_STROKE,
  type StripImage,
} from './box-curriculum.js';
import { linePlot, type PlotSeries, type ReferenceLine } from './line-plot.js';
import { CLEAN_COLOR, DIFFICULTY_COLORS, NOISY_COLOR, occlusionStyle, SERIES_COLORS } from './palette.js';
import { svgToPng } from './svg.js';
import { indexHtml } from './index-page.js';
import { gallerySvg, thumbnail, type GallerySample } from './sample-gallery.js';
import { renderReviewGallery } from './review-gallery.js';

export interface VisualizeOptions {
  /** Output folder (created). */
  out: string;
  /** How many tracked training images get a per-box strip (default 6). */
  images?: number;
  /** Snapshots per strip, spread evenly from the first to the last σ record (default 4). */
  snapshots?: number;
  /** Width of one snapshot in pixels (default 620). */
  panelWidth?: number;
  /** Samples per sheet of the review gallery (highest and lowest σ from label-review.csv; default 16, 0: none). When
   * given, a run without label-review.csv is reported as a warning; by default it simply has no gallery. */
  top?: number;
  /** Told about each warning (e.g. an image that could not be found) as it happens. */
  onWarning?: (message: string) => void;
}

export type FigureSection = 'review' | 'boxes' | 'sigma' | 'training';

export interface Figure {
  section: FigureSection;
  /** File names inside the output folder. */
  png: string;
  svg?: string;
  title: string;
  caption: string;
}

export interface VisualizeResult {
  outDir: string;
  indexFile: string;
  figures: Figure[];
  warnings: string[];
}

/** Reads and validates `runDir` (errors name the file and line), then renders its pictures into `options.out`. */
export async function visualizeCurriculum(runDir: string, options: VisualizeOptions): Promise<VisualizeResult> {
  return renderCurriculum(await readRun(runDir), options);
}

export async function renderCurriculum(run: RunRecords, options: VisualizeOptions): Promise<VisualizeResult> {
  if (run.sigma.length === 0) {
    throw new RunRecordError(path.join(run.dir, SIGMA_FILE), null, 'no σ records yet: nothing to draw');
  }
  const outDir = options.out;
  await fs.mkdir(outDir, { recursive: true });
  // Strips from an earlier rendering with more images would linger beside the new page: remove this tool's own.
  for (const f of await fs.readdir(outDir)) if (/^boxes-\d+-.*\.png$/.test(f)) await fs.rm(path.join(outDir, f), { force: true });
  const warnings: string[] = [];
  const warn = (m: string): void => {
    warnings.push(m);
    options.onWarning?.(m);
  };
  const figures: Figure[] = [];

  figures.push(...(await renderBoxStrips(run, options, warn)));
  figures.push(...(await renderGallery(run, options, warn)));
  figures.push(...(await reviewFigures(run, options, warn)));
  for (const plot of [...sigmaPlots(run), ...trainingPlots(run)]) {
    const { svg } = linePlot(plot.spec);
    await writeFileAtomic(path.join(outDir, plot.name + '.svg'), svg);
    await writeFileAtomic(path.join(outDir, plot.name + '.png'), await svgToPng(svg));
    figures.push({ section: plot.section, png: plot.name + '.png', svg: plot.name + '.svg', title: plot.spec.title, caption: plot.caption });
  }

  const indexFile = path.join(outDir, 'index.html');
  await writeFileAtomic(indexFile, indexHtml(run, figures, warnings));
  return { outDir, indexFile, figures, warnings };
}

// --- per-box strips ----------------------------------------------------------------------------------------------------

/** `count` indices spread evenly over 0..n-1, always including the first and the last. */
export function pickSnapshots(n: number, count: number): number[] {
  if (n <= 0) return [];
  if (n <= count) return Array.from({ length: n }, (_, i) => i);
  const out = new Set<number>();
  for (let k = 0; k < count; k++) out.add(Math.round((k * (n - 1)) / Math.max(1, count - 1)));
  return [...out].sort((a, b) => a - b);
}

/** A tracked box: its index into manifest.tracked and the instance, which has an image and a box. */
interface TrackedBox {
  i: number;
  t: TrackedInstance & { box: [number, number, number, number] };
}

interface ImageGroup {
  image: string;
  members: number[]; // indices into manifest.tracked
  boxes: TrackedBox[]; // the same instances, in the same order
}

function trackedImages(tracked: readonly TrackedInstance[]): ImageGroup[] {
  const byImage = new Map<string, TrackedBox[]>();
  tracked.forEach((t, i) => {
    if (t.image === undefined || t.box === undefined) return;
    const list = byImage.get(t.image) ?? [];
    list.push({ i, t: { ...t, box: t.box } });
    byImage.set(t.image, list);
  });
  return [...byImage].map(([image, boxes]) => ({ image, members: boxes.map((b) => b.i), boxes }));
}

async function renderBoxStrips(run: RunRecords, options: VisualizeOptions, warn: (m: string) => void): Promise<Figure[]> {
  const groups = trackedImages(run.manifest.tracked).slice(0, Math.max(0, options.images ?? 6));
  if (groups.length === 0) return [];
  const snaps = pickSnapshots(run.sigma.length, Math.max(1, options.snapshots ?? 4)).map((i) => run.sigma[i]!);
  let maxSigma = 0;
  let minSigma = Infinity;
  for (const g of groups) {
    for (const s of snaps) {
      for (const i of g.members) {
        const v = s.tracked[i]!;
        if (!Number.isFinite(v)) continue;
        maxSigma = Math.max(maxSigma, v);
        minSigma = Math.min(minSigma, v);
      }
    }
  }
  // A narrow spread (largest σ under 1.5x the smallest, typical early in training or with a small σ lr) would give
  // strokes that all look alike: then draw widths affine in σ so that the spread fills RANGE_BASE..MAX_STROKE.
  const ranged = Number.isFinite(minSigma) && maxSigma > minSigma && maxSigma < 1.5 * minSigma;
  const strokeFrom = ranged ? minSigma : undefined;
  const strokePerSigma = ranged ? (MAX_STROKE - RANGE_BASE_STROKE) / (maxSigma - minSigma) : strokeScaleFor(maxSigma);
  const panelWidth = options.panelWidth ?? 620;

  const figures: Figure[] = [];
  for (const [k, g] of groups.entries()) {
    const boxes = g.boxes.map(({ t }) => ({ box: t.box, occlusion: t.occlusion }));
    const file = await resolveImage(g.image, run.dir);
    let image: StripImage | null = null;
    let problem: string;
    if (file) {
      try {
        image = await loadStripImage(file, panelWidth);
      } catch (err) {
        problem = `image ${file} could not be read (${(err as Error).message})`;
      }
    } else {
      problem = path.isAbsolute(g.image)
        ? `image ${g.image} not found`
        : `image ${g.image} not found (looked in ${run.dir} and in ${process.cwd()})`;
    }
    if (!image) {
      warn(`${problem!}: drew its boxes on a grey placeholder`);
      const w = Math.max(...boxes.map((b) => b.box[2])) * 1.05 + 10;
      const h = Math.max(...boxes.map((b) => b.box[3])) * 1.05 + 10;
      image = { png: null, width: w, height: h, missingNote: `${file ? 'unreadable' : 'not found'}: ${g.image}` };
    }
    const { svg } = boxStripSvg({
      title: `${path.basename(g.image)}: ${g.members.length} box${g.members.length === 1 ? '' : 'es'}, σ at ${snaps.length} epoch${snaps.length === 1 ? '' : 's'}`,
      image,
      boxes,
      snapshots: snaps.map((s) => ({ epoch: s.epoch, sigma: g.members.map((i) => s.tracked[i]!) })),
      strokePerSigma,
      ...(strokeFrom !== undefined ? { strokeFrom } : {}),
      panelWidth,
    });
    const name = `boxes-${k + 1}-${safeName(path.basename(g.image, path.extname(g.image)))}.png`;
    await writeFileAtomic(path.join(options.out, name), await svgToPng(svg));
    const first = snaps[0]!;
    const last = snaps[snaps.length - 1]!;
    const rising = g.boxes
      .map(({ i, t }) => ({ i, t, d: last.tracked[i]! - first.tracked[i]! }))
      .sort((a, b) => b.d - a.d)[0];
    const note = rising && rising.d > 0
      ? ` Largest rise: box ${rising.t.id} (occlusion ${rising.t.occlusion ?? '?'}) ` +
        `σ ${first.tracked[rising.i]!.toFixed(2)} → ${last.tracked[rising.i]!.toFixed(2)}.`
      : '';
    figures.push({
      section: 'boxes',
      png: name,
      title: `Per-box curriculum: ${path.basename(g.image)}`,
      caption:
        `Ground-truth boxes of ${path.basename(g.image)} at epochs ${snaps.map((s) => s.epoch).join(', ')}. ` +
        (ranged
          ? `σ spans only ${minSigma.toFixed(3)} to ${maxSigma.toFixed(3)} here, so stroke width is proportional to σ − ` +
            `${minSigma.toFixed(3)} (${RANGE_BASE_STROKE} px at the smallest σ shown, ${MAX_STROKE} px at the largest), colour is `
          : `Stroke width is proportional to the box's σ (${MAX_STROKE} px = σ ${fmtSigma(maxSigma)}, the largest shown; ` +
            `at least ${MIN_STROKE} px), colour is `) +
        `the KITTI occlusion level. A thick box is one the model finds hard and learns later.${note}` +
        (image.png ? '' : ' The image file could not be found or read; a grey placeholder stands in for it.'),
    });
  }
  return figures;
}

// --- sample gallery (classification) -----------------------------------------------------------------------------------

/** Samples per gallery row. */
const GALLERY_ROW = 8;

async function renderGallery(run: RunRecords, options: VisualizeOptions, warn: (m: string) => void): Promise<Figure[]> {
  const candidates = run.manifest.tracked.map((t, i) => ({ t, i })).filter(({ t }) => t.image !== undefined && t.box === undefined);
  if (candidates.length === 0) return [];
  const last = run.sigma[run.sigma.length - 1]!;
  const ranked = candidates
    .filter(({ i }) => Number.isFinite(last.tracked[i]!))
    .sort((a, b) => last.tracked[b.i]! - last.tracked[a.i]! || a.i - b.i);
  const per = Math.min(GALLERY_ROW, Math.ceil(ranked.length / 2));
  const high = ranked.slice(0, per);
  const low = ranked.slice(Math.max(per, ranked.length - per)).reverse();
  const missing: string[] = [];
  const load = async ({ t, i }: { t: TrackedInstance; i: number }): Promise<GallerySample> => {
    let png: Buffer | null = null;
    const file = await resolveImage(t.image!, run.dir);
    if (file) {
      try {
        png = await thumbnail(file);
      } catch {
        missing.push(`${file} (unreadable)`);
      }
    } else missing.push(t.image!);
    const label = t.className ?? (t.classIndex !== undefined ? run.manifest.classNames?.[t.classIndex] ?? `class ${t.classIndex}` : `#${t.id}`);
    return { png, label, sigma: last.tracked[i]!, noisy: t.noisy };
  };
  const rows = [{ title: `Highest σ (learnt last)`, samples: await Promise.all(high.map(load)) }];
  if (low.length) rows.push({ title: `Lowest σ (learnt first)`, samples: await Promise.all(low.map(load)) });
  if (missing.length) {
    warn(`${missing.length} of ${high.length + low.length} sample images not found or unreadable (e.g. ${missing[0]}): grey placeholders`);
  }
  const { svg } = gallerySvg(`Tracked samples by σ at epoch ${last.epoch}`, rows);
  const name = 'samples-by-sigma.png';
  await writeFileAtomic(path.join(options.out, name), await svgToPng(svg));
  const noisyKnown = candidates.some(({ t }) => t.noisy !== undefined);
  return [{
    section: 'boxes',
    png: name,
    title: 'Samples the curriculum postpones and those it learns first',
    caption:
      `Of the ${candidates.length} tracked samples with an image, the ${high.length} with the highest σ at epoch ${last.epoch} ` +
      `(top row) and the ${low.length} with the lowest (bottom row), with their label and σ.` +
      (noisyKnown ? ' A thick red frame marks a sample whose label was corrupted: these should gather in the top row.' : ''),
  }];
}

// --- review gallery (label-review.csv) -------------------------------------------------------------------------------

async function reviewFigures(run: RunRecords, options: VisualizeOptions, warn: (m: string) => void): Promise<Figure[]> {
  const top = options.top ?? 16;
  if (top <= 0) return [];
  const r = await renderReviewGallery(run, options.out, top);
  if (r.note && (!r.missing || options.top !== undefined)) warn(r.note);
  const figures: Figure[] = [];
  for (const s of r.sheets) {
    if (s.result.skipped.length) {
      warn(
        `review gallery: ${s.result.skipped.length} image${s.result.skipped.length === 1 ? '' : 's'} not found or unreadable, skipped ` +
          `(label-review.csv still lists them): ${s.result.skipped.join('; ')}`,
      );
    }
    if (s.result.png) {
      const skipped = s.result.skipped.length ? ` ${s.result.skipped.length} could not be shown (moved or unreadable): ${s.result.skipped.join('; ')}.` : '';
      figures.push({ section: 'review', png: s.result.png, title: s.title, caption: s.caption + skipped });
    }
  }
  return figures;
}

// --- σ curves ----------------------------------------------------------------------------------------------------------

interface PlotJob {
  name: string;
  section: FigureSection;
  spec: Parameters<typeof linePlot>[0];
  caption: string;
}

function groupKeys(sigma: readonly SigmaEntry[], prefix: string): string[] {
  const keys = new Set<string>();
  for (const s of sigma) for (const k of Object.keys(s.groups)) if (k.startsWith(prefix)) keys.add(k.slice(prefix.length));
  return [...keys];
}

function groupSeries(sigma: readonly SigmaEntry[], key: string, label: string, color: string, band = true): PlotSeries {
  const points: [number, number][] = [];
  const bandPts: [number, number, number][] = [];
  let count = 0;
  for (const s of sigma) {
    const g = s.groups[key];
    if (!g) {
      points.push([s.epoch, NaN]);
      continue;
    }
    count = g.count;
    points.push([s.epoch, g.mean]);
    bandPts.push([s.epoch, g.mean - g.std, g.mean + g.std]);
  }
  return { label: `${label} (n=${count})`, color, points, ...(band ? { band: bandPts } : {}) };
}

function allSeries(sigma: readonly SigmaEntry[], label: string): PlotSeries[] {
  if (!sigma.some((s) => s.groups['all'])) return [];
  return [{ ...groupSeries(sigma, 'all', label, '#333333', false), dashed: true }];
}

function sigmaPlots(run: RunRecords): PlotJob[] {
  const sigma = run.sigma;
  const unit = run.manifest.task === 'detection' ? 'boxes' : 'samples';
  const jobs: PlotJob[] = [];
  const base = { xLabel: 'epoch', integerX: true };

  const occ = groupKeys(sigma, 'occlusion:').sort((a, b) => Number(a) - Number(b));
  if (occ.length) {
    jobs.push({
      name: 'sigma-occlusion',
      section: 'sigma',
      spec: {
        ...base,
        title: 'Instance σ by occlusion level',
        yLabel: 'σ (mean ± std)',
        series: [
          ...occ.map((o) => {
            const st = occlusionStyle(Number(o));
            return groupSeries(sigma, `occlusion:${o}`, `occl. ${o} ${st.label}`, st.onWhite);
          }),
          ...allSeries(sigma, `all ${unit}`),
        ],
      },
      caption:
        `Mean instance σ over all training ${unit} of each KITTI occlusion level, with a ± 1 standard deviation band. ` +
        'If the curriculum works as in the paper, occluded boxes end with higher σ (learnt later) than fully visible ones.',
    });
  }

  const diffOrder = ['easy', 'moderate', 'hard', 'none'];
  const diff = groupKeys(sigma, 'difficulty:').sort((a, b) => diffOrder.indexOf(a) - diffOrder.indexOf(b));
  if (diff.length) {
    jobs.push({
      name: 'sigma-difficulty',
      section: 'sigma',
      spec: {
        ...base,
        title: 'Instance σ by KITTI difficulty',
        yLabel: 'σ (mean ± std)',
        series: [
          ...diff.map((d) => groupSeries(sigma, `difficulty:${d}`, d === 'none' ? 'no level (ignored)' : d, DIFFICULTY_COLORS[d] ?? '#7f7f7f')),
          ...allSeries(sigma, `all ${unit}`),
        ],
      },
      caption:
        'Mean instance σ per KITTI difficulty level (each box counted at the easiest level it qualifies for; "no level" ' +
        'boxes are too small, occluded or truncated for any level), ± 1 standard deviation.',
    });
  }

  if (sigma.some((s) => s.groups['clean']) && sigma.some((s) => s.groups['noisy'])) {
    jobs.push({
      name: 'sigma-clean-noisy',
      section: 'sigma',
      spec: {
        ...base,
        title: 'Instance σ of clean and corrupted samples',
        yLabel: 'σ (mean ± std)',
        series: [
          groupSeries(sigma, 'clean', 'clean labels', CLEAN_COLOR),
          groupSeries(sigma, 'noisy', 'corrupted labels', NOISY_COLOR),
        ],
      },
      caption:
        'Mean instance σ of samples whose label is correct and of samples whose label was corrupted, ± 1 standard ' +
        'deviation (the paper, Figure 4: corrupted samples get a larger σ, so their gradient is damped).',
    });
  }

  const top = sigma.filter((s) => s.noisyTopFraction !== undefined);
  if (top.length) {
    const ratio = top[top.length - 1]!.noisyTopRatio;
    const last = sigma[sigma.length - 1]!;
    const noiseRate = last.groups['noisy'] && last.groups['all'] ? last.groups['noisy'].count / last.groups['all'].count : NaN;
    const refs: ReferenceLine[] = Number.isFinite(noiseRate)
      ? [{ y: noiseRate, label: `noise rate ${(100 * noiseRate).toFixed(0)}% (a random ranking)`, color: '#777' }]
      : [];
    const r = ratio !== undefined ? `${(100 * ratio).toFixed(0)}%` : 'r%';
    jobs.push({
      name: 'noisy-top-fraction',
      section: 'sigma',
      spec: {
        ...base,
        title: `Corrupted share of the top ${r} of samples by σ`,
        yLabel: 'fraction corrupted',
        yRange: [0, 1],
        series: [{ label: `top ${r} by σ`, color: NOISY_COLOR, points: top.map((s) => [s.epoch, s.noisyTopFraction!] as [number, number]) }],
        referenceLines: refs,
      },
      caption:
        `Of the ${r} of training samples with the highest instance σ, the fraction whose label was corrupted. Above the ` +
        'dashed noise-rate line, σ singles out the noise (the paper, Figure 4).',
    });
  }

  const withClass = sigma.filter((s) => s.classSigma !== undefined);
  if (withClass.length) {
    const last = withClass[withClass.length - 1]!.classSigma!;
    const k = last.length;
    const order = Array.from({ length: k }, (_, i) => i).sort((a, b) => last[b]! - last[a]! || a - b);
    const chosen = k <= 8 ? order : [...order.slice(0, 4), ...order.slice(-4)];
    const names = run.manifest.classNames;
    jobs.push({
      name: 'class-sigma',
      section: 'sigma',
      spec: {
        ...base,
        title: k <= 8 ? 'Class σ' : `Class σ: the 4 highest and 4 lowest of ${k} classes`,
        yLabel: 'σ',
        series: chosen.map((c, j) => ({
          label: names?.[c] ?? `class ${c}`,
          color: SERIES_COLORS[j % SERIES_COLORS.length]!,
          points: withClass.map((s) => [s.epoch, s.classSigma![c]!] as [number, number]),
          dashed: k > 8 && j >= 4,
        })),
      },
      caption:
        'σ of individual classes over training (the paper, Figure 1 left): classes with a high σ are learnt later.' +
        (k > 8 ? ' Solid lines: the four classes with the highest final σ; dashed: the four lowest.' : ''),
    });
  }

  const tracked = run.manifest.tracked;
  if (tracked.length > 0) {
    const shown = tracked.slice(0, 200);
    const isNoisy = tracked.some((t) => t.noisy !== undefined);
    const colorOf = (t: TrackedInstance): string =>
      isNoisy ? (t.noisy ? NOISY_COLOR : CLEAN_COLOR) : occlusionStyle(t.occlusion).onWhite;
    const categories = new Map<string, string>();
    for (const t of shown) {
      categories.set(isNoisy ? (t.noisy ? 'corrupted label' : 'clean label') : `occl. ${t.occlusion ?? '?'} ${occlusionStyle(t.occlusion).label}`, colorOf(t));
    }
    jobs.push({
      name: 'sigma-tracked',
      section: 'sigma',
      spec: {
        ...base,
        title: `σ of ${shown.length} tracked ${unit}`,
        yLabel: 'σ',
        series: [
          ...shown.map((t, i) => ({
            label: String(t.id),
            color: colorOf(t),
            points: sigma.map((s) => [s.epoch, s.tracked[i]!] as [number, number]),
            legend: false,
            markers: false,
            // Few lines can be bold; many must be thin and see-through to stay readable.
            strokeWidth: shown.length <= 30 ? 1.8 : 1,
            opacity: shown.length <= 30 ? 0.85 : 0.45,
          })),
          ...[...categories].sort().map(([label, color]) => ({ label, color, points: [] })),
        ],
      },
      caption:
        `σ of each tracked ${unit === 'boxes' ? 'box' : 'sample'} at every epoch, one line each, coloured by ` +
        `${isNoisy ? 'whether its label was corrupted' : 'occlusion level'}` +
        (tracked.length > shown.length ? ` (the first ${shown.length} of ${tracked.length})` : '') + '.',
    });
  }
  return jobs;
}

// --- training curves ---------------------------------------------------------------------------------------------------

const BOOKKEEPING = new Set(['step', 'epoch', 'kind']);
/** Metric keys drawn as loss terms: anything with "loss" in it, and the usual names of a detector's loss parts. */
const LOSS_KEY = /loss|^(cls|loc|conf|box|reg|obj)$/i;

function numericKeys(records: readonly Record<string, number | string>[], keep: (k: string) => boolean): string[] {
  const keys = new Set<string>();
  for (const r of records) for (const [k, v] of Object.entries(r)) if (!BOOKKEEPING.has(k) && typeof v === 'number' && keep(k)) keys.add(k);
  return [...keys];
}

function trainingPlots(run: RunRecords): PlotJob[] {
  const jobs: PlotJob[] = [];
  const isLoss = (k: string): boolean => LOSS_KEY.test(k);
  const train = run.metrics.filter((m) => m.kind === 'train');
  const val = run.metrics.filter((m) => m.kind === 'val');
  const epochs = run.metrics.filter((m) => m.kind === 'epoch');

  const lossSeries: PlotSeries[] = [];
  let c = 0;
  let averaged = 1;
  const addLoss = (records: typeof train, prefix: string, dashed: boolean): void => {
    for (const k of numericKeys(records, isLoss)) {
      const pts = records.filter((m) => typeof m[k] === 'number').map((m) => [m.step, m[k] as number] as [number, number]);
      const { points, bucket } = averageBuckets(pts, MAX_CURVE_POINTS);
      averaged = Math.max(averaged, bucket);
      lossSeries.push({ label: prefix + k, color: SERIES_COLORS[c++ % SERIES_COLORS.length]!, points, dashed });
    }
  };
  addLoss(train, '', false);
  addLoss(epochs, '(epoch) ', true);
  addLoss(val, '(val) ', true);
  if (lossSeries.length) {
    jobs.push({
      name: 'loss',
      section: 'training',
      spec: { title: 'Training loss', xLabel: 'step', yLabel: 'loss', series: lossSeries },
      caption:
        'Loss terms logged during training against the optimiser step (dashed: values of the per-epoch records, marked (epoch), and ' +
        'of the validation records, marked (val)). Keys containing "loss" and the usual part names (cls, loc, conf, box, reg) are plotted.' +
        (averaged > 1 ? ` Long series are drawn as means of ${averaged} consecutive records.` : ''),
    });
  }

  const metricKeys = numericKeys(val, (k) => !isLoss(k));
  if (metricKeys.length) {
    const byEpoch = val.every((m, i) => i === 0 || m.epoch > val[i - 1]!.epoch);
    const xOf = (m: { step: number; epoch: number }): number => (byEpoch ? m.epoch : m.step);
    const all = val.flatMap((m) => metricKeys.map((k) => m[k])).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
    const unitRange = all.length > 0 && all.every((v) => v >= 0 && v <= 1);
    jobs.push({
      name: 'validation',
      section: 'training',
      spec: {
        title: 'Validation',
        xLabel: byEpoch ? 'epoch' : 'step',
        yLabel: metricKeys.every((k) => /^ap/i.test(k)) ? 'average precision' : metricKeys.every((k) => /^top/i.test(k)) ? 'accuracy' : metricKeys.length === 1 ? metricKeys[0]! : 'metric',
        series: metricKeys.map((k, i) => ({
          label: k,
          color: SERIES_COLORS[i % SERIES_COLORS.length]!,
          points: val.filter((m) => typeof m[k] === 'number').map((m) => [xOf(m), m[k] as number] as [number, number]),
        })),
        ...(unitRange ? { yRange: [0, 1] as const } : {}),
        integerX: byEpoch,
      },
      caption:
        run.manifest.task === 'detection'
          ? 'Validation metrics: KITTI 2D average precision (e.g. ap_car_moderate_r40: car, moderate difficulty, 40 recall points).'
          : 'Validation metrics (e.g. top-1 and top-5 accuracy).',
    });
  }

  const lr = train.filter((m) => typeof m['lr'] === 'number');
  if (lr.length > 1) {
    jobs.push({
      name: 'learning-rate',
      section: 'training',
      spec: { title: 'Model learning rate', xLabel: 'step', yLabel: 'learning rate', series: [{ label: 'lr', color: '#555', points: lr.map((m) => [m.step, m['lr'] as number] as [number, number]) }] },
      caption: 'The model optimiser\'s learning rate (data parameters keep their own constant rate).',
    });
  }
  return jobs;
}

/** More points than a plot can show are averaged in consecutive buckets (x: bucket mean too). */
const MAX_CURVE_POINTS = 1500;

export function averageBuckets(points: readonly [number, number][], max: number): { points: [number, number][]; bucket: number } {
  if (points.length <= max) return { points: [...points], bucket: 1 };
  const bucket = Math.ceil(points.length / max);
  const out: [number, number][] = [];
  for (let i = 0; i < points.length; i += bucket) {
    const chunk = points.slice(i, i + bucket);
    const finite = chunk.filter((p) => Number.isFinite(p[1]));
    const x = chunk.reduce((a, p) => a + p[0], 0) / chunk.length;
    out.push([x, finite.length ? finite.reduce((a, p) => a + p[1], 0) / finite.length : NaN]);
  }
  return { points: out, bucket };
}

// --- helpers -----------------------------------------------------------------------------------------------------------

function fmtSigma(s: number): string {
  return s >= 10 ? s.toFixed(1) : s.toFixed(2);
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 60) || 'image';
}

