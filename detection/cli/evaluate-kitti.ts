#!/usr/bin/env node
/**
 * evaluate-kitti: the official KITTI 2D object metric (devkit rules) on label and result directories.
 * Imports no tfjs, so that it starts fast.
 */
import { writeSync } from 'node:fs';
import { KITTI_EVAL_CLASSES, parseKittiEvalClasses } from '../kitti-eval/classes.js';
import { evaluateKittiDirs } from '../kitti-eval/read-dirs.js';
import { formatKittiJson, formatKittiTable } from '../kitti-eval/format.js';

const EXAMPLES = `
Examples:
  $ evaluate-kitti --labels data/kitti/training/label_2 --results runs/ssd/val-results
  $ evaluate-kitti --labels data/kitti/training/label_2 --results runs/ssd/val-results \\
      --ids data/kitti/ImageSets/val.txt --classes car --format json

Result files are <id>.txt in DIR or DIR/data, one detection per line with 16 columns (the 15 label columns and a
score; 2D-only detections write -1 -1 -1 -1000 -1000 -1000 -10 for the 3D fields). An image without a result file
has no detections (a warning gives their number). AP11 and AP|R40 are in percent; GT is the number of valid
ground-truth boxes at that difficulty.`;

interface CliOptions {
  labels: string;
  results: string;
  ids?: string;
  classes: string;
  format: 'table' | 'json';
}

const DEFAULT_CLASSES = KITTI_EVAL_CLASSES.join(',');
const OPTION_NAMES = new Set(['--labels', '--results', '--ids', '--classes', '--format']);

/**
 * The usual command lines (each option at most once, as `--name value` or `--name=value`, valid values) without
 * loading commander, which costs a noticeable part of this short-lived process; null for anything else (--help,
 * mistakes), which commander then parses and answers with its messages.
 */
function quickParse(args: readonly string[]): CliOptions | null {
  const given = new Map<string, string>();
  for (let k = 0; k < args.length; k++) {
    let name = args[k]!;
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (name.startsWith('--') && eq > 2) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    if (!OPTION_NAMES.has(name) || given.has(name)) return null;
    if (value === undefined) value = args[++k];
    if (value === undefined || value === '' || value.startsWith('-')) return null;
    given.set(name, value);
  }
  const labels = given.get('--labels');
  const results = given.get('--results');
  const format = given.get('--format') ?? 'table';
  if (labels === undefined || results === undefined || (format !== 'table' && format !== 'json')) return null;
  return { labels, results, ids: given.get('--ids'), classes: given.get('--classes') ?? DEFAULT_CLASSES, format };
}

async function parseWithCommander(argv: string[]): Promise<CliOptions> {
  const { Command, Option } = await import('commander');
  const program = new Command()
    .name('evaluate-kitti')
    .description('Score 2D detections with the official KITTI object devkit rules: AP11 and AP|R40 per class and difficulty.')
    .requiredOption('--labels <dir>', 'directory of KITTI label files <id>.txt (e.g. training/label_2)')
    .requiredOption('--results <dir>', 'directory of result files <id>.txt (or DIR/data)')
    .option('--ids <file>', 'image ids to evaluate, one per line (default: every label file)')
    .option('--classes <list>', `comma-separated classes out of ${DEFAULT_CLASSES}`, DEFAULT_CLASSES)
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .addHelpText('after', EXAMPLES)
    .showHelpAfterError()
    .parse(argv);
  return program.opts<CliOptions>();
}

/**
 * Writes to file descriptor 1 directly: creating process.stdout (its stream machinery) costs several milliseconds of
 * this short process. Falls back to process.stdout when the descriptor refuses (e.g. a non-blocking pipe, EAGAIN).
 */
function writeStdout(text: string): void {
  const bytes = Buffer.from(text, 'utf8');
  let done = 0;
  try {
    while (done < bytes.length) done += writeSync(1, bytes, done, bytes.length - done);
  } catch {
    process.stdout.write(bytes.subarray(done));
  }
}

async function main(argv: string[]): Promise<void> {
  const opts = quickParse(argv.slice(2)) ?? (await parseWithCommander(argv));
  const classes = parseKittiEvalClasses(opts.classes);
  const result = await evaluateKittiDirs({
    labels: opts.labels,
    results: opts.results,
    ids: opts.ids,
    classes,
    onMissingResults: (ids, dir) => {
      process.stderr.write(
        `evaluate-kitti: warning: ${ids.length} image(s) have no result file in ${dir} (first: ${ids[0]}.txt); ` +
          'evaluated as images without detections\n',
      );
    },
  });
  writeStdout((opts.format === 'json' ? formatKittiJson(result) : formatKittiTable(result)) + '\n');
}

main(process.argv).catch((e: unknown) => {
  process.stderr.write(`evaluate-kitti: error: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
