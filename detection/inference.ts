/**
 * Running a trained SSD on decoded images: the one path shared by `train-detector predict` (Node, images decoded by
 * sharp) and the browser entry (pixels from a canvas, ImageData or a tensor). Images of any size are warped to the
 * network input by the input pipeline's resampler (bilinear, supersampled when shrinking), normalised as in training,
 * and the detections come back in the image's own pixels. No Node APIs: it also runs in a page.
 */
import * as tf from '@tensorflow/tfjs';
import type { NormaliseOptions } from '../datasets/pipeline/render.js';
import { renderSample } from '../datasets/pipeline/render.js';
import type { RawImage } from '../datasets/pipeline/types.js';
import type { InputSize } from './anchors/anchor-generator.js';
import type { SSD } from './model/ssd.js';
import type { Detection } from './postprocess.js';

/** The detector's input normalisation: (v − 127.5) / 127.5. */
export const DETECTOR_NORMALISE: NormaliseOptions = { mean: [127.5, 127.5, 127.5], scale: 1 / 127.5 };

/** A detection in the pixels of the image it was found in. */
export interface ImageDetection {
  /** 1..C−1, as in the model's outputs (0 is background). */
  classIndex: number;
  /** The model's class name (`spec.classNames[classIndex − 1]`). */
  className: string;
  score: number;
  /** [x1, y1, x2, y2] in image pixels, clipped to the image. */
  box: [number, number, number, number];
}

/** RGB bytes from RGBA bytes (canvas ImageData, 4-channel tensors): alpha is dropped, as sharp's removeAlpha does. */
export function rgbFromRgba(rgba: ArrayLike<number>, width: number, height: number, source: string): RawImage {
  if (rgba.length !== width * height * 4) throw new Error(`${source}: ${rgba.length} values for ${width}x${height} RGBA pixels (expected ${width * height * 4})`);
  const data = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < data.length; i += 3, j += 4) {
    data[i] = rgba[j]!;
    data[i + 1] = rgba[j + 1]!;
    data[i + 2] = rgba[j + 2]!;
  }
  return { data, width, height };
}

/** Normalised network input [B, H, W, 3] of images of any size (each warped to the input size). */
export function detectorInput(images: readonly RawImage[], size: InputSize): tf.Tensor4D {
  const { width: W, height: H } = size;
  const x = new Float32Array(images.length * H * W * 3);
  images.forEach((img, b) => {
    if (!(img.width > 0 && img.height > 0) || img.data.length !== img.width * img.height * 3) {
      throw new Error(`image ${b}: ${img.data.length} bytes for ${img.width}x${img.height} RGB pixels`);
    }
    renderSample(img, { sx: W / img.width, tx: 0, sy: H / img.height, ty: 0 }, null, DETECTOR_NORMALISE, W, H, x, b * H * W * 3);
  });
  return tf.tensor4d(x, [images.length, H, W, 3]);
}

/** A detection with its box scaled from the network input to an image of `size`, clipped to it. */
export function toImageDetection(d: Detection, size: { width: number; height: number }, classNames: readonly string[]): ImageDetection {
  const clip = (v: number, hi: number): number => Math.min(hi, Math.max(0, v));
  const { width: w, height: h } = size;
  return {
    classIndex: d.classIndex,
    className: classNames[d.classIndex - 1] ?? `class${d.classIndex}`,
    score: d.score,
    box: [clip(d.box[0] * w, w), clip(d.box[1] * h, h), clip(d.box[2] * w, w), clip(d.box[3] * h, h)],
  };
}

/** Detections of each image (any size), in its own pixels, best first. */
export async function detectImages(model: SSD, classNames: readonly string[], images: readonly RawImage[]): Promise<ImageDetection[][]> {
  if (images.length === 0) return [];
  const x = detectorInput(images, model.inputSize);
  try {
    const dets = await model.detectAsync(x);
    return dets.map((list, b) => list.map((d) => toImageDetection(d, images[b]!, classNames)));
  } finally {
    x.dispose();
  }
}
