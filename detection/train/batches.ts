/**
 * The detector's batches come from the input pipeline's DetectionLoader (datasets/pipeline): this file gives it the
 * detector's settings (normalisation (v − 127.5) / 127.5, shuffling and augmentation for training; every image in
 * order, unaugmented, for validation and the label review) and turns a batch's targets into the SSD's (labels 1-based
 * with 0 the background, the instance id of every target box in target order).
 *
 * A batch is a pure function of (seed, epoch, index): `loader.prepareBatch(epoch, index)` reads no loader state, so a
 * resumed run sees exactly the batches of the uninterrupted run.
 */
import type { KittiObject } from '../../datasets/kitti/label-file.js';
import { DetectionLoader, kittiDetectionItems, type AugmentOptions, type DetectionBatch, type LabelledBox } from '../../datasets/pipeline/loader.js';
import type { ImageDecoder } from '../../datasets/pipeline/types.js';
import type { InputSize } from '../anchors/anchor-generator.js';
import { DETECTOR_NORMALISE } from '../inference.js';
import type { ImageTargets } from '../targets.js';

/** What the trainer needs of a box (a structural subset of the KITTI reader's KittiBox). */
export interface DetectionBox extends LabelledBox {
  bbox: [number, number, number, number];
  occlusion: number;
  truncation: number;
  difficulty: 'easy' | 'moderate' | 'hard' | null;
  /** The label line as parsed (ground truth for the KITTI evaluator). */
  object: KittiObject;
}

/** What the trainer needs of an image record (a structural subset of the KITTI reader's KittiRecord). */
export interface DetectionRecord {
  imageId: string;
  imagePath: string;
  width?: number;
  height?: number;
  objects: DetectionBox[];
}

/** A batch as the SSD trains on it. */
export interface Batch {
  /** Normalised pixels [B, H, W, 3]. */
  x: Float32Array;
  images: ImageTargets[];
  /** Instance id of every target box, in target order (images' boxes concatenated). */
  instanceIds: Int32Array;
}

/** The SSD's view of a pipeline batch: labels shifted by one (0 is the background), instance ids concatenated. */
export function trainingBatch(batch: DetectionBatch): Batch {
  const ids: number[] = [];
  const images = batch.targets.map((t) => {
    ids.push(...t.instanceIds);
    return { boxes: t.boxes, labels: Int32Array.from(t.labels, (l) => l + 1), ignore: t.ignore };
  });
  return { x: batch.images, images, instanceIds: Int32Array.from(ids) };
}

export interface DetectorLoaderOptions {
  inputSize: InputSize;
  batchSize: number;
  seed: number;
  /** Training augmentation (the epoch's order is shuffled and a last partial batch dropped); null: evaluation (every
   * image once, in order, unaugmented). */
  augment: AugmentOptions | null;
  /** Injected decoder (tests); default sharp. */
  decode?: ImageDecoder;
  /** Keep decoded images in memory (small sets; default false). */
  cache?: boolean;
  /** Worker threads that decode and augment while the step runs (default 0: the main thread); not with `cache` or
   * `decode`. Full-resolution KITTI needs them. */
  workers?: number;
}

export function detectorLoader(records: readonly DetectionRecord[], o: DetectorLoaderOptions): DetectionLoader {
  const training = o.augment !== null;
  return new DetectionLoader(kittiDetectionItems(records), {
    batchSize: o.batchSize,
    width: o.inputSize.width,
    height: o.inputSize.height,
    seed: o.seed,
    shuffle: training,
    dropLast: training,
    augment: o.augment,
    normalise: DETECTOR_NORMALISE,
    // The trainer asks for batch k + 1 itself while step k computes: no queue of its own.
    prefetch: 0,
    ...(o.cache === true ? { cacheDecoded: true } : {}),
    ...(o.decode ? { decode: o.decode } : {}),
    ...(o.workers ? { workers: o.workers } : {}),
  });
}
