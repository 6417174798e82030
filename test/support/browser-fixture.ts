/** One tiny trained detector (2 epochs of a 96x32 light SSD on 6 synthetic images, cpu) shared by the browser tests. */
import { copyFileSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildProgram } from '../../detection/cli/train-detector.js';
import { tinyDetectorRun } from './detection-fixture.js';

export interface TrainedDetector {
  /** The run directory (run.json, model/, ...). */
  out: string;
  model: string;
  /** Fixed images: two of the training size (128x48) and one of another size (124x38). */
  images: string[];
}

let trained: Promise<TrainedDetector> | null = null;

export function trainedDetector(): Promise<TrainedDetector> {
  trained ??= (async () => {
    const run = await tinyDetectorRun({ prefix: 'browser-', images: 6, seed: 3, train: { epochs: 2, batchSize: 3 } });
    const write = process.stdout.write.bind(process.stdout);
    const writeErr = process.stderr.write.bind(process.stderr);
    process.stdout.write = (() => true);
    process.stderr.write = (() => true);
    try {
      await buildProgram().parseAsync(['node', 'train-detector', '--config', run.cfgFile, '--data', run.data, '--backend', 'cpu', '--out', run.out], { from: 'node' });
    } finally {
      process.stdout.write = write;
      process.stderr.write = writeErr;
    }
    const fixed = path.join(run.dir, 'fixed');
    mkdirSync(fixed);
    const other = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/kitti/standard/training/image_2/000001.png');
    const sources = [path.join(run.data, 'training', 'image_2', '000000.png'), path.join(run.data, 'training', 'image_2', '000004.png'), other];
    const images = sources.map((f, i) => {
      const to = path.join(fixed, `${i}.png`);
      copyFileSync(f, to);
      return to;
    });
    return { out: run.out, model: path.join(run.out, 'model'), images };
  })();
  return trained;
}
