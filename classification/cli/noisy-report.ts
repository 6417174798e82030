#!/usr/bin/env node
/**
 * noisy-report BASELINE_RUN CURRICULUM_RUN: reads two run directories written by train-classifier on the same noisy
 * data and prints, per epoch, the test top-1 of both and, for the curriculum run, where the corrupted samples sit in
 * the σ ranking (fraction corrupt among the top ⌊N·rate⌋ by σ, and the share of all corrupt samples found there) and
 * σ of clean vs corrupted samples. Markdown on stdout (the tables in docs/benchmarks.md).
 */
import { readRun } from '../../src/records/run-records.js';
import type { MetricsEntry } from '../../src/records/run-records.js';

const pct = (v: unknown): string => (typeof v === 'number' && Number.isFinite(v) ? `${(100 * v).toFixed(1)}%` : '-');
const num = (v: unknown): string => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(3) : '-');

async function main(): Promise<void> {
  const [baseDir, curDir] = process.argv.slice(2);
  if (!baseDir || !curDir) throw new Error('usage: noisy-report BASELINE_RUN CURRICULUM_RUN');
  const base = await readRun(baseDir);
  const cur = await readRun(curDir);
  const byEpoch = (metrics: MetricsEntry[], kind: string): Map<number, MetricsEntry> =>
    new Map(metrics.filter((m) => m.kind === kind && (kind !== 'val' || m['top1'] !== undefined)).map((m) => [m.epoch, m]));
  const baseVal = byEpoch(base.metrics, 'val');
  const curVal = byEpoch(cur.metrics, 'val');
  const curEpoch = byEpoch(cur.metrics, 'epoch');
  const baseEpoch = byEpoch(base.metrics, 'epoch');
  const epochs = [...new Set([...baseVal.keys(), ...curVal.keys()])].sort((a, b) => a - b);
  const curName = String((cur.manifest.config as { curriculum?: string }).curriculum ?? 'curriculum');
  const lines = [
    `| epoch | test top-1, baseline | test top-1, ${curName} | train top-1 (noisy labels), baseline / ${curName} | corrupt among top ⌊N·rate⌋ by σ | share of corrupt in that top | σ clean (mean ± std) | σ corrupt (mean ± std) |`,
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const e of epochs) {
    const c = curEpoch.get(e);
    lines.push(
      `| ${e} | ${pct(baseVal.get(e)?.['top1'])} | ${pct(curVal.get(e)?.['top1'])} | ${pct(baseEpoch.get(e)?.['trainTop1'])} / ${pct(c?.['trainTop1'])} | ` +
        `${pct(c?.['noisyTopFraction'])} | ${pct(c?.['noisyTopRecall'])} | ${num(c?.['cleanSigmaMean'])} ± ${num(c?.['cleanSigmaStd'])} | ` +
        `${num(c?.['noisySigmaMean'])} ± ${num(c?.['noisySigmaStd'])} |`,
    );
  }
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`noisy-report: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
