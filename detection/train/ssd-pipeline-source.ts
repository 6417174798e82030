/**
 * Training batches from the input pipeline (`datasets/pipeline`) with SSD's full augmentation: photometric jitter
 * and channel swap, expand (zoom out), min-IoU random crop with boxes clipped and dropped (their instance ids travel
 * with them), flip. Like the simple loader, a batch is a pure function of (seed, epoch, position), so checkpoints
 * resume exactly. Normalisation is the detector's: (v − 127.5) / 127.5.
 */
import { DetectionLoader as PipelineLoader, SSD_AUGMENTATION } from '../../datasets/pipeline/loader.js';
import type { RawImage } from '../../datasets/pipeline/types.js';
import type { InputSize } from '../anchors/anchor-generator.js';
import { DETECTOR_NORMALISE } from '../inference.js';
import type { Batch, BatchSource, DetectionRecord } from './data.js';

export interface SsdPipelineOptions {
  inputSize: InputSize;
  batchSize: number;
  seed: number;
  /** Keep decoded images in memory (small sets). */
  cache?: boolean;
  /** Injected decoder (tests). */
  decode?: (file: string) => Promise<RawImage>;
  /** Worker threads that decode and augment (default 0: the main thread, decoding in sharp's threads); not with
   * `cache` or `decode`. The trainer asks for the next batch before each step, so with workers it is prepared while
   * the step runs. */
  workers?: number;
}

export class SsdPipelineSource implements BatchSource {
  readonly stepsPerEpoch: number;
  private readonly loader: PipelineLoader;

  constructor(
    readonly records: DetectionRecord[],
    o: SsdPipelineOptions,
  ) {
    const items = records.map((r) => {
      const trained = r.objects.filter((b) => b.classIndex >= 0 && !b.ignore);
      const ignored = r.objects.filter((b) => b.ignore);
      return {
        imageId: r.imageId,
        imagePath: r.imagePath,
        target: {
          boxes: Float32Array.from(trained.flatMap((b) => b.bbox)),
          labels: Int32Array.from(trained.map((b) => b.classIndex)),
          instanceIds: Int32Array.from(trained.map((b) => b.instanceId)),
          ignore: Float32Array.from(ignored.flatMap((b) => b.bbox)),
        },
      };
    });
    this.loader = new PipelineLoader(items, {
      batchSize: o.batchSize,
      width: o.inputSize.width,
      height: o.inputSize.height,
      seed: o.seed,
      shuffle: true,
      dropLast: true,
      augment: SSD_AUGMENTATION,
      normalise: DETECTOR_NORMALISE,
      prefetch: 0,
      cacheDecoded: o.cache === true && o.decode === undefined ? true : undefined,
      ...(o.decode ? { decode: o.decode } : {}),
      ...(o.workers ? { workers: o.workers } : {}),
    });
    this.stepsPerEpoch = this.loader.batchesPerEpoch;
  }

  async batch(epoch: number, index: number): Promise<Batch> {
    const b = await this.loader.prepareBatch(epoch, index);
    const ids: number[] = [];
    const images = b.targets.map((t) => {
      ids.push(...t.instanceIds);
      return { boxes: t.boxes, labels: Int32Array.from(t.labels, (l) => l + 1), ignore: t.ignore };
    });
    const records = Array.from(b.itemIndices, (i) => this.records[i]!);
    return {
      x: b.images,
      images,
      instanceIds: Int32Array.from(ids),
      records,
      // Original sizes from the transforms (output px = |sx|·original px when nothing is cropped): only used to map
      // validation detections back, which never go through this source.
      originalSizes: records.map((r, k) => ({ width: r.width ?? Math.round(b.width / Math.abs(b.transforms[k]!.sx)), height: r.height ?? Math.round(b.height / Math.abs(b.transforms[k]!.sy)) })),
    };
  }

  async close(): Promise<void> {
    await this.loader.close();
  }
}
