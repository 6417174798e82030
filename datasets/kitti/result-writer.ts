/**
 * KITTI result files for the devkit and `evaluate-kitti`: one `<imageId>.txt` per image with 16 columns per
 * detection, 2D-only fields `-1 -1 -1 -1000 -1000 -1000 -10` (see formatKittiDetection). An image without
 * detections gets an empty file (the devkit fails on a missing one). Each file is written atomically.
 *
 *   await writeKittiResults(dir, '000123', [{ className: 'Car', bbox: [x1, y1, x2, y2], score: 0.9 }]);
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../../src/util/atomic-file.js';
import { formatKittiDetection } from './label-file.js';

export interface KittiDetection {
  /** Written as is (KITTI compares case-insensitively; 'Car' reads best). */
  className: string;
  /** Original image pixels: left, top, right, bottom. */
  bbox: readonly [number, number, number, number];
  score: number;
}

export async function writeKittiResults(dir: string, imageId: string, detections: readonly KittiDetection[]): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  const text = detections.map((d) => formatKittiDetection(d.className, d.bbox, d.score) + '\n').join('');
  await writeFileAtomic(path.join(dir, `${imageId}.txt`), text);
}
