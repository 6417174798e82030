/** A small hand-written SVG line plot: axes with nice ticks, grid, axis labels, title, legend, ±band per series. */
import { el, fmt, svgDocument, text } from './svg.js';

export interface PlotSeries {
  label: string;
  color: string;
  /** [x, y]; a NaN y breaks the line. */
  points: ReadonlyArray<readonly [number, number]>;
  /** [x, low, high] drawn as a translucent band behind the line (e.g. mean ± std). */
  band?: ReadonlyArray<readonly [number, number, number]>;
  dashed?: boolean;
  /** Draw a dot at every point (default: when the series has at most 60 points). */
  markers?: boolean;
  /** Show in the legend (default true); a series with no points and `legend` true is a legend-only entry. */
  legend?: boolean;
  strokeWidth?: number;
  opacity?: number;
}

export interface ReferenceLine {
  y: number;
  label: string;
  color?: string;
}

export interface LinePlotSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly PlotSeries[];
  /** Width of the plot without its legend (default 600; the legend adds what its labels need). */
  width?: number;
  height?: number;
  /** Fixed y range; otherwise the data's, widened to nice ticks. */
  yRange?: readonly [number, number];
  referenceLines?: readonly ReferenceLine[];
  /** Integer x ticks only (epochs). */
  integerX?: boolean;
}

export interface PlotArea {
  left: number;
  top: number;
  width: number;
  height: number;
  x: (v: number) => number;
  y: (v: number) => number;
}

/** A step of 1, 2, 2.5 or 5 × 10^k that cuts [lo, hi] into about `count - 1` parts. */
function niceStep(lo: number, hi: number, count: number): number {
  const raw = (hi - lo) / Math.max(1, count - 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
}

/** The multiples of `step` inside [lo, hi] (computed as k·step, so that errors do not accumulate). */
function multiplesIn(lo: number, hi: number, step: number): number[] {
  const ticks: number[] = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) ticks.push(k === 0 ? 0 : k * step);
  return ticks;
}

/** Tick values covering [lo, hi] with a step of 1, 2, 2.5 or 5 × 10^k, about `count` of them. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  return multiplesIn(lo, hi, niceStep(lo, hi, count));
}

/** The data range widened to whole tick steps (never empty), with its ticks: every edge is a labelled tick. */
export function niceScale(lo: number, hi: number, count = 5): { domain: [number, number]; ticks: number[] } {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return niceScale(0, 1, count);
  if (hi - lo < 1e-12) {
    const pad = Math.abs(lo) > 1e-12 ? Math.abs(lo) * 0.1 : 1;
    return niceScale(lo - pad, hi + pad, count);
  }
  const step = niceStep(lo, hi, count);
  const domain: [number, number] = [Math.floor(lo / step + 1e-9) * step, Math.ceil(hi / step - 1e-9) * step];
  return { domain, ticks: multiplesIn(domain[0], domain[1], step) };
}

/** Decimals needed to write `step` exactly (2.5e-4 → 5), so that all labels of an axis share one format. */
function decimalsOf(step: number): number {
  for (let d = 0; d <= 12; d++) if (Math.abs(Math.round(step * 10 ** d) - step * 10 ** d) < 1e-6) return d;
  return 12;
}

/** Formats one axis's tick labels alike: fixed decimals as the step needs, or exponential for tiny or huge values. */
function tickFormatter(ticks: readonly number[]): (v: number) => string {
  const step = ticks.length > 1 ? ticks[1]! - ticks[0]! : 1;
  const maxAbs = Math.max(...ticks.map(Math.abs));
  const d = decimalsOf(step);
  if (maxAbs < 1e5 && d <= 4) return (v) => (v === 0 ? '0' : v.toFixed(d));
  const mantissa = (v: number): number => v / 10 ** Math.floor(Math.log10(Math.abs(v)));
  const digits = Math.min(3, Math.max(0, ...ticks.filter((v) => v !== 0).map((v) => decimalsOf(mantissa(v)))));
  return (v) => (v === 0 ? '0' : v.toExponential(digits));
}

/** Rough width of 12 px DejaVu Sans text (about 7 px per character), to size the legend. */
function textWidth(label: string, fontSize = 12): number {
  return label.length * fontSize * 0.6;
}

/** Renders the plot; returns an SVG document (and the plot area, for tests that measure positions). */
export function linePlot(spec: LinePlotSpec): { svg: string; area: PlotArea } {
  const legendLabels = spec.series.filter((s) => s.legend !== false).map((s) => s.label);
  const legendWidth = Math.max(120, 58 + Math.max(0, ...legendLabels.map((l) => textWidth(l))));
  const width = (spec.width ?? 600) + legendWidth;
  const height = spec.height ?? 400;
  const margin = { left: 70, right: legendWidth + 10, top: 44, bottom: 56 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;

  const xs: number[] = [];
  const ys: number[] = [];
  for (const s of spec.series) {
    for (const [x, y] of s.points) {
      if (Number.isFinite(x) && Number.isFinite(y)) {
        xs.push(x);
        ys.push(y);
      }
    }
    for (const [x, lo, hi] of s.band ?? []) {
      if (Number.isFinite(x) && Number.isFinite(lo) && Number.isFinite(hi)) {
        xs.push(x);
        ys.push(lo, hi);
      }
    }
  }
  for (const r of spec.referenceLines ?? []) if (Number.isFinite(r.y)) ys.push(r.y);
  const xMin = xs.length ? Math.min(...xs) : 0;
  const xMax = xs.length ? Math.max(...xs) : 1;
  const [x0, x1] = xMax > xMin ? [xMin, xMax] : [xMin, xMin + 1];
  const yTickCount = Math.max(2, Math.min(8, Math.floor(plotH / 50)));
  const yScale = spec.yRange
    ? { domain: spec.yRange, ticks: niceTicks(spec.yRange[0], spec.yRange[1], yTickCount) }
    : niceScale(ys.length ? Math.min(...ys) : 0, ys.length ? Math.max(...ys) : 1, yTickCount);
  const [y0, y1] = yScale.domain;
  const area: PlotArea = {
    left: margin.left,
    top: margin.top,
    width: plotW,
    height: plotH,
    x: (v) => margin.left + ((v - x0) / (x1 - x0)) * plotW,
    y: (v) => margin.top + plotH - ((v - y0) / (y1 - y0)) * plotH,
  };

  const body: string[] = [];
  body.push(text(margin.left + plotW / 2, 26, spec.title, { 'font-size': 16, 'font-weight': 'bold', 'text-anchor': 'middle' }));

  // Grid and ticks.
  let xTicks = niceTicks(x0, x1, Math.max(2, Math.min(8, Math.floor(plotW / 80))));
  if (spec.integerX) xTicks = xTicks.filter((v) => Number.isInteger(v));
  const yTicks = yScale.ticks;
  const xLabelOf = tickFormatter(xTicks);
  const yLabelOf = tickFormatter(yTicks);
  const grid: string[] = [];
  for (const v of yTicks) {
    const y = area.y(v);
    grid.push(el('line', { x1: margin.left, x2: margin.left + plotW, y1: y, y2: y, stroke: '#e3e3e3', 'stroke-width': 1 }));
    grid.push(el('line', { x1: margin.left - 5, x2: margin.left, y1: y, y2: y, stroke: '#444' }));
    grid.push(text(margin.left - 8, y + 4, yLabelOf(v), { 'text-anchor': 'end', 'font-size': 11 }));
  }
  for (const v of xTicks) {
    const x = area.x(v);
    grid.push(el('line', { x1: x, x2: x, y1: margin.top, y2: margin.top + plotH, stroke: '#efefef', 'stroke-width': 1 }));
    grid.push(el('line', { x1: x, x2: x, y1: margin.top + plotH, y2: margin.top + plotH + 5, stroke: '#444' }));
    grid.push(text(x, margin.top + plotH + 18, xLabelOf(v), { 'text-anchor': 'middle', 'font-size': 11 }));
  }
  body.push(el('g', { class: 'grid' }, ...grid));

  // Reference lines (e.g. a noise rate).
  for (const r of spec.referenceLines ?? []) {
    if (!Number.isFinite(r.y)) continue;
    const y = area.y(r.y);
    const color = r.color ?? '#777';
    body.push(el('line', { x1: margin.left, x2: margin.left + plotW, y1: y, y2: y, stroke: color, 'stroke-width': 1.5, 'stroke-dasharray': '6 4' }));
    body.push(text(margin.left + plotW - 4, y - 5, r.label, { 'text-anchor': 'end', 'font-size': 11, fill: color }));
  }

  // Bands first so that every line stays visible on top of them.
  for (const s of spec.series) {
    for (const seg of segments(s.band ?? [], (p) => Number.isFinite(p[1]) && Number.isFinite(p[2]))) {
      const upper = seg.map((p) => `${fmt(area.x(p[0]))},${fmt(area.y(p[2]))}`);
      const lower = seg.map((p) => `${fmt(area.x(p[0]))},${fmt(area.y(p[1]))}`).reverse();
      body.push(el('polygon', { 'data-band': s.label, points: [...upper, ...lower].join(' '), fill: s.color, 'fill-opacity': 0.16, stroke: 'none' }));
    }
  }
  for (const s of spec.series) {
    const showMarkers = s.markers ?? s.points.length <= 60;
    for (const seg of segments(s.points, (p) => Number.isFinite(p[1]))) {
      const pts = seg.map((p) => `${fmt(area.x(p[0]))},${fmt(area.y(p[1]))}`).join(' ');
      body.push(el('polyline', {
        'data-series': s.label, points: pts, fill: 'none', stroke: s.color, 'stroke-width': s.strokeWidth ?? 2.2,
        'stroke-opacity': s.opacity,
        'stroke-linejoin': 'round', 'stroke-linecap': 'round', 'stroke-dasharray': s.dashed ? '7 4' : undefined,
      }));
      if (showMarkers) {
        for (const p of seg) body.push(el('circle', { cx: area.x(p[0]), cy: area.y(p[1]), r: 3, fill: s.color }));
      }
    }
  }

  // Axes and labels.
  body.push(el('rect', { x: margin.left, y: margin.top, width: plotW, height: plotH, fill: 'none', stroke: '#444', 'stroke-width': 1 }));
  body.push(text(margin.left + plotW / 2, height - 14, spec.xLabel, { 'text-anchor': 'middle', 'font-size': 13 }));
  const yMid = margin.top + plotH / 2;
  body.push(text(18, yMid, spec.yLabel, { 'text-anchor': 'middle', 'font-size': 13, transform: `rotate(-90 18 ${fmt(yMid)})` }));

  // Legend, to the right of the plot so that it never hides data.
  const lx = margin.left + plotW + 20;
  let ly = margin.top + 6;
  const legend: string[] = [];
  for (const s of spec.series) {
    if (s.legend === false) continue;
    if (s.band) legend.push(el('rect', { x: lx, y: ly - 7, width: 30, height: 14, fill: s.color, 'fill-opacity': 0.16 }));
    legend.push(el('line', { x1: lx, x2: lx + 30, y1: ly, y2: ly, stroke: s.color, 'stroke-width': 2.5, 'stroke-dasharray': s.dashed ? '7 4' : undefined }));
    legend.push(text(lx + 38, ly + 4, s.label, { 'font-size': 12 }));
    ly += 22;
  }
  if (spec.series.some((s) => s.band)) legend.push(text(lx, ly + 4, 'band: ± 1 std', { 'font-size': 11, fill: '#666' }));
  body.push(el('g', { class: 'legend' }, ...legend));

  return { svg: svgDocument(width, height, body), area };
}

/** Splits a point list into runs where `ok` holds (a NaN breaks the line). */
function segments<P extends readonly number[]>(points: ReadonlyArray<P>, ok: (p: P) => boolean): P[][] {
  const out: P[][] = [];
  let cur: P[] = [];
  for (const p of points) {
    if (Number.isFinite(p[0]) && ok(p)) cur.push(p);
    else if (cur.length) {
      out.push(cur);
      cur = [];
    }
  }
  if (cur.length) out.push(cur);
  return out;
}
