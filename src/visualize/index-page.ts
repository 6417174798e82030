/** The one page that shows a run's pictures: `index.html` beside the PNGs, relative links only. */
import * as path from 'node:path';
import type { RunRecords } from '../records/run-records.js';
import type { Figure, FigureSection } from './curriculum-report.js';
import { escapeXml as esc } from './svg.js';

const SECTIONS: { id: FigureSection; title: string; intro: string }[] = [
  {
    id: 'review',
    title: 'Label review',
    intro:
      'The training samples ranked by σ in label-review.csv: those with the highest σ are the most likely to be ' +
      'mislabelled; those with the lowest are what the model finds easy.',
  },
  {
    id: 'boxes',
    title: 'What the model learns first',
    intro:
      'Each ground-truth box (or training sample) has its own learned temperature σ. A high σ divides its logits by a ' +
      'large number, which softens its loss: the model learns it later. Thin boxes are learnt first.',
  },
  { id: 'sigma', title: 'σ over training', intro: 'How σ evolves for groups of instances and classes.' },
  { id: 'training', title: 'Training curves', intro: 'Loss, validation metrics and learning rate from metrics.jsonl.' },
];

/**
 * The config with absolute paths shown relative to the run directory: the page is served and shared, and should
 * not name folders of the machine that trained.
 */
function withRelativePaths(value: unknown, runDir: string): unknown {
  if (typeof value === 'string') return path.isAbsolute(value) ? path.relative(runDir, value) || '.' : value;
  if (Array.isArray(value)) return value.map((v) => withRelativePaths(v, runDir));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withRelativePaths(v, runDir)]));
  }
  return value;
}

/** The style sheet of the report pages (a run's curriculum page, an experiment's report). */
export const PAGE_STYLE = `body { font-family: 'DejaVu Sans', Arial, Helvetica, sans-serif; margin: 2em auto; max-width: 1320px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
table.facts td { padding: 0.1em 1em 0.1em 0; vertical-align: top; }
table.facts td:first-child { color: #666; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { max-width: 60em; color: #333; margin-top: 0.4em; }
.warnings { background: #fff4e0; border: 1px solid #e0a040; padding: 0.5em 1em; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; }
`;

export function indexHtml(run: RunRecords, figures: readonly Figure[], warnings: readonly string[]): string {
  const m = run.manifest;
  const last = run.sigma[run.sigma.length - 1];
  const all = last?.groups['all'];
  const facts: [string, string][] = [
    ['task', m.task],
    ['run directory', path.basename(path.resolve(run.dir))],
    ['started', m.createdAt],
    ['σ records', `${run.sigma.length} (epochs ${run.sigma[0]?.epoch ?? '-'} to ${last?.epoch ?? '-'})`],
    ['tracked instances', String(m.tracked.length)],
    ['metrics records', String(run.metrics.length)],
  ];
  if (all) {
    facts.push([`σ at epoch ${last.epoch}, all ${all.count} instances`, `mean ${all.mean.toFixed(3)}, std ${all.std.toFixed(3)}, range ${all.min.toFixed(3)} to ${all.max.toFixed(3)}`]);
  }
  const parts: string[] = [];
  parts.push(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Curriculum: ${esc(path.basename(run.dir))}</title>
<style>
${PAGE_STYLE}</style>
</head>
<body>
<h1>Curriculum of run <code>${esc(path.basename(run.dir))}</code></h1>
<p>Data parameters learn a temperature σ per class and per training instance; high σ means "hard or noisy: learn later".</p>
<table class="facts">
${facts.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`).join('\n')}
</table>
`);
  if (warnings.length) {
    parts.push(`<div class="warnings"><strong>${warnings.length} warning${warnings.length === 1 ? '' : 's'}</strong><ul>\n`);
    parts.push(warnings.map((w) => `<li>${esc(w)}</li>`).join('\n'));
    parts.push('</ul></div>\n');
  }
  for (const section of SECTIONS) {
    const figs = figures.filter((f) => f.section === section.id);
    if (figs.length === 0) continue;
    parts.push(`<h2 id="${section.id}">${esc(section.title)}</h2>\n<p>${esc(section.intro)}</p>\n`);
    for (const f of figs) {
      const svgLink = f.svg ? ` <a href="${encodeURI(f.svg)}">(SVG)</a>` : '';
      parts.push(
        `<figure>\n<a href="${encodeURI(f.png)}"><img src="${encodeURI(f.png)}" alt="${esc(f.title)}"></a>\n` +
          `<figcaption><strong>${esc(f.title)}.</strong> ${esc(f.caption)}${svgLink}</figcaption>\n</figure>\n`,
      );
    }
  }
  parts.push(`<h2>Configuration</h2>\n<details><summary>run.json config</summary><pre>${esc(JSON.stringify(withRelativePaths(m.config, path.resolve(run.dir)), null, 2))}</pre></details>\n`);
  parts.push('</body>\n</html>\n');
  return parts.join('');
}
