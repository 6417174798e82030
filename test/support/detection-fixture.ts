/** A tiny synthetic KITTI set and a matching tiny detector config on disk, for end-to-end CLI tests. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { generateSyntheticKitti } from '../../datasets/synthetic-kitti/generate.js';
import { DEFAULT_CONFIG } from '../../detection/cli/train-detector.js';
import { readDetectorConfig, type DetectorConfig } from '../../detection/config.js';

export interface TinyDetectorRun {
  dir: string;
  data: string;
  cfgFile: string;
  out: string;
}

/** The default config shrunk to a 2-map light SSD at 96x32 on `images` generated 128x48 images. */
export async function tinyDetectorRun(options: {
  prefix: string;
  images: number;
  seed: number;
  train: Partial<DetectorConfig['train']>;
}): Promise<TinyDetectorRun> {
  const dir = mkdtempSync(path.join(tmpdir(), options.prefix));
  const data = path.join(dir, 'data');
  await generateSyntheticKitti({ out: data, images: options.images, seed: options.seed, width: 128, height: 48 });
  const cfg = await readDetectorConfig(DEFAULT_CONFIG);
  cfg.model.backbone = { type: 'light', widths: [4, 8, 8], extraChannels: 8, featureMaps: 2 };
  cfg.model.inputSize = { width: 96, height: 32 };
  cfg.train = { ...cfg.train, logEvery: 1, valAtStart: false, warmupSteps: 0, ...options.train };
  delete cfg.data.synthetic;
  const cfgFile = path.join(dir, 'tiny.json');
  writeFileSync(cfgFile, JSON.stringify(cfg));
  return { dir, data, cfgFile, out: path.join(dir, 'run') };
}
