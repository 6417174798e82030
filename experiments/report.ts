/**
 * An experiment's outputs: results.json (every figure per arm, seed and epoch, the final-epoch and best-epoch means
 * over seeds, and the claims beside the paper's numbers, so that a script can check them) and a report page
 * (index.html with one SVG line plot per figure, mean ± std over seeds as a band).
 */
import * as path from 'node:path';
import { linePlot } from '../src/visualize/line-plot.js';
import type { LinePlotSpec, PlotSeries } from '../src/visualize/line-plot.js';
import { PAGE_STYLE } from '../src/visualize/index-page.js';
import { escapeXml as esc } from '../src/visualize/svg.js';
import { writeFileAtomic } from '../src/util/atomic-file.js';
import type { ArmResult, EpochRecord, ExperimentResults } from './classifier-experiment.js';
import type { Claim, Stat } from './experiment-runs.js';
import { perEpoch } from './classifier-experiment.js';

export interface FigureSpec {
  /** File name without extension. */
  id: string;
  caption: string;
  plot: LinePlotSpec;
}

/** Per-epoch means over seeds as a line with a ±std band, scaled by `scale`. */
export function statSeries(
  rows: readonly { epoch: number; stat: Stat }[],
  options: { label: string; color: string; scale?: number; dashed?: boolean },
): PlotSeries {
  const s = options.scale ?? 1;
  const series: PlotSeries = {
    label: options.label,
    color: options.color,
    points: rows.map((r) => [r.epoch, r.stat.mean * s] as const),
    band: rows.map((r) => [r.epoch, (r.stat.mean - r.stat.std) * s, (r.stat.mean + r.stat.std) * s] as const),
  };
  if (options.dashed) series.dashed = true;
  return series;
}

/** The mean over seeds of `key` per epoch as a line with a ±std band. */
export function meanSeries(arm: ArmResult, key: keyof EpochRecord, options: { scale?: number; label?: string; color?: string; dashed?: boolean } = {}): PlotSeries {
  return statSeries(perEpoch(arm, key), { ...options, label: options.label ?? arm.label, color: options.color ?? arm.color });
}

export function formatStat(st: Stat | undefined | null, scale = 1, digits = 1): string {
  if (!st) return '-';
  return `${(st.mean * scale).toFixed(digits)} ± ${(st.std * scale).toFixed(digits)}`;
}

const FINAL_COLUMNS: { key: string; title: string; scale: number; digits: number }[] = [
  { key: 'testTop1', title: 'test top-1 %', scale: 100, digits: 1 },
  { key: 'trainAccuracy', title: 'train top-1 % (training labels, no augmentation)', scale: 100, digits: 1 },
  { key: 'memorised', title: 'corrupted predicted as their noisy label %', scale: 100, digits: 1 },
  { key: 'sigmaCleanMean', title: 'σ clean', scale: 1, digits: 3 },
  { key: 'sigmaCorruptMean', title: 'σ corrupted', scale: 1, digits: 3 },
  { key: 'corruptShareOfTop', title: 'corrupted share of the top by σ %', scale: 100, digits: 1 },
  { key: 'corruptAboveAllClean', title: 'corrupted above every clean σ %', scale: 100, digits: 1 },
];

/** The page's head, title, setup paragraph and a line on arms, seeds and epochs (shared by every experiment). */
export function pageStart(r: { experiment: string; title: string; setup: string; quick: boolean; seeds: number[]; epochs: number; writtenAt: string; arms: readonly unknown[] }): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Experiment: ${esc(r.experiment)}</title>
<style>
${PAGE_STYLE}table.results { border-collapse: collapse; margin: 1em 0; }
table.results th, table.results td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
td.holds { background: #e6f4e6; }
td.fails { background: #fbe6e6; }
</style>
</head>
<body>
<h1>${esc(r.title)}${r.quick ? ' (quick mode)' : ''}</h1>
<p>${esc(r.setup)}</p>
<p>${r.arms.length} arms, seeds ${r.seeds.join(', ')}, up to ${r.epochs} epochs; mean ± std over seeds (sample std).
Written ${esc(r.writtenAt)}; every number per arm, seed and epoch is in <a href="results.json">results.json</a>.</p>
`;
}

/** The paper's claims beside ours. */
export function claimsTable(claims: readonly Claim[]): string {
  const parts = ['<h2>The paper\'s claims and ours</h2>\n<table class="results"><tr><th>claim</th><th>paper</th><th>target here</th><th>measured here</th><th>holds</th></tr>\n'];
  for (const c of claims) {
    const cls = c.holds === null ? '' : c.holds ? ' class="holds"' : ' class="fails"';
    const word = c.holds === null ? 'not measured' : c.holds ? 'yes' : 'no';
    parts.push(`<tr><td>${esc(c.claim)}</td><td>${esc(c.paper)}</td><td>${esc(c.target)}</td><td>${esc(c.ours)}</td><td${cls}>${word}</td></tr>\n`);
  }
  parts.push('</table>\n');
  return parts.join('');
}

/** One <figure> per plot (figures/ID.svg). */
export function figuresHtml(figures: readonly FigureSpec[]): string {
  return figures
    .map((f) => `<figure>\n<img src="figures/${encodeURI(f.id)}.svg" alt="${esc(f.plot.title)}">\n<figcaption><strong>${esc(f.plot.title)}.</strong> ${esc(f.caption)}</figcaption>\n</figure>\n`)
    .join('');
}

export function reportHtml(results: ExperimentResults, figures: readonly FigureSpec[]): string {
  const parts: string[] = [];
  const seeds = results.seeds.length;
  parts.push(pageStart(results));
  parts.push(claimsTable(results.claims));
  parts.push(`<h2>Final epoch</h2>\n<table class="results"><tr><th>arm</th><th>seeds</th><th>epoch</th>${FINAL_COLUMNS.map((c) => `<th>${esc(c.title)}</th>`).join('')}<th>best test top-1 % (any epoch)</th></tr>\n`);
  for (const arm of results.arms) {
    parts.push(
      `<tr><td>${esc(arm.label)}</td><td>${arm.seeds.length} of ${seeds}${arm.unfinishedSeeds.length ? ` (${arm.unfinishedSeeds.length} still running)` : ''}</td><td>${arm.final['epoch']?.mean.toFixed(0) ?? '-'}</td>` +
        FINAL_COLUMNS.map((c) => `<td>${esc(formatStat(arm.final[c.key], c.scale, c.digits))}</td>`).join('') +
        `<td>${esc(formatStat(arm.bestTestTop1, 100, 1))}</td></tr>\n`,
    );
  }
  parts.push('</table>\n<h2>Figures</h2>\n');
  parts.push(figuresHtml(figures));
  parts.push(`<h2>Runs</h2>\n<p>Each run directory holds train-classifier's records (run.json, metrics.jsonl, sigma.jsonl, checkpoint.bin): <code>visualize-curriculum --run DIR</code> draws one run.</p>\n<ul>\n`);
  for (const arm of results.arms) for (const s of arm.seeds) parts.push(`<li>${esc(arm.label)}, seed ${s.seed}: <code>${esc(s.dir)}</code> (${s.trainCount} training entries${s.corruptedCount !== null ? `, ${s.corruptedCount} corrupted` : ''})</li>\n`);
  parts.push('</ul>\n</body>\n</html>\n');
  return parts.join('');
}

/** Writes results.json, figures/*.svg and the page (index.html) into `out`. */
export async function writePage(out: string, results: unknown, figures: readonly FigureSpec[], html: string): Promise<void> {
  await writeFileAtomic(path.join(out, 'results.json'), JSON.stringify(results, null, 1) + '\n');
  for (const f of figures) await writeFileAtomic(path.join(out, 'figures', `${f.id}.svg`), linePlot(f.plot).svg);
  await writeFileAtomic(path.join(out, 'index.html'), html);
}

/** Writes results.json, figures/*.svg and index.html into `out`. */
export async function writeReport(out: string, results: ExperimentResults, figures: readonly FigureSpec[]): Promise<void> {
  await writePage(out, results, figures, reportHtml(results, figures));
}
