/**
 * One detection sample, start to end on typed arrays: plan the geometry on the boxes (geometry.ts), draw the
 * photometric jitter, render the pixels into an output buffer (render.ts), and return the target in normalised output
 * coordinates. Shared by the in-thread loader path and the worker threads.
 */
import type { Rng } from '../../src/util/rng.js';
import { planGeometry } from './geometry.js';
import type { DetectionLoaderOptions } from './loader.js';
import { renderSample, samplePhotometric } from './render.js';
import type { Affine, DetectionTarget, RawImage } from './types.js';

/** A prepared sample: its target in normalised output coordinates, the map from original to output pixels, and the
 * count of boxes dropped for having no area in the output. */
export interface PreparedSample {
  target: DetectionTarget;
  affine: Affine;
  dropped: number;
}

/**
 * One sample: geometry planned on the boxes, pixels rendered into `out` at `offset`, target returned in normalised
 * output coordinates. rng null means no augmentation.
 */
export function prepareSample(
  img: RawImage,
  target: DetectionTarget,
  options: Pick<DetectionLoaderOptions, 'width' | 'height' | 'resize' | 'augment' | 'normalise'>,
  rng: Rng | null,
  out: Float32Array,
  offset: number,
): PreparedSample {
  const { width, height } = options;
  const aug = rng ? (options.augment ?? null) : null;
  const plan = planGeometry(img.width, img.height, target, { width, height, resize: options.resize ?? 'warp', augment: aug?.geometric ?? null }, aug ? rng : null);
  const colour = aug?.photometric && rng ? samplePhotometric(aug.photometric, rng) : null;
  renderSample(img, plan.affine, colour, options.normalise ?? {}, width, height, out, offset);
  const norm = (a: Float32Array): Float32Array => {
    const o = new Float32Array(a.length);
    for (let k = 0; k < a.length; k += 2) {
      o[k] = a[k]! / width;
      o[k + 1] = a[k + 1]! / height;
    }
    return o;
  };
  const t = plan.target;
  return { target: { boxes: norm(t.boxes), labels: t.labels, instanceIds: t.instanceIds, ignore: norm(t.ignore) }, affine: plan.affine, dropped: plan.dropped };
}
