#!/usr/bin/env node
/**
 * evaluate-kitti: the official KITTI 2D object metric (devkit rules) on label and result directories.
 * Imports no tfjs, so that it starts fast.
 */
import { Command, Option } from 'commander';
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

async function main(argv: string[]): Promise<void> {
  const program = new Command()
    .name('evaluate-kitti')
    .description('Score 2D detections with the official KITTI object devkit rules: AP11 and AP|R40 per class and difficulty.')
    .requiredOption('--labels <dir>', 'directory of KITTI label files <id>.txt (e.g. training/label_2)')
    .requiredOption('--results <dir>', 'directory of result files <id>.txt (or DIR/data)')
    .option('--ids <file>', 'image ids to evaluate, one per line (default: every label file)')
    .option('--classes <list>', `comma-separated classes out of ${KITTI_EVAL_CLASSES.join(',')}`, KITTI_EVAL_CLASSES.join(','))
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .addHelpText('after', EXAMPLES)
    .showHelpAfterError()
    .parse(argv);
  const opts = program.opts<{ labels: string; results: string; ids?: string; classes: string; format: 'table' | 'json' }>();
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
  process.stdout.write((opts.format === 'json' ? formatKittiJson(result) : formatKittiTable(result)) + '\n');
}

main(process.argv).catch((e: unknown) => {
  process.stderr.write(`evaluate-kitti: error: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
