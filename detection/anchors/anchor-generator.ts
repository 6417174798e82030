/**
 * SSD default boxes ("anchors") for rectangular inputs. The grids come from the feature-map sizes the backbone really
 * produces (`featureMapSizes`), never from assumed strides, so that any input size and any backbone line up.
 *
 * Sizes are relative to the input HEIGHT (KITTI objects are described by their height: the difficulty levels cut at
 * 25/40 px), so an anchor of scale s and aspect ratio a (= width / height, in pixels) is s·H px tall and s·H·a px wide;
 * normalised, h = s and w = s·a·H/W. (The SSD paper keeps the area at s² with w = s√a, h = s/√a; we keep the height
 * instead: KITTI cars of one height class vary in width with the viewing angle, not in height.)
 */
import * as tf from '@tensorflow/tfjs';

export interface InputSize {
  /** Network input width in pixels. */
  width: number;
  /** Network input height in pixels. */
  height: number;
}

/** [rows, cols] of one feature map. */
export type FeatureMapSize = [number, number];

export interface AnchorGeneratorOptions {
  /** Scale of the first (finest) level, as a fraction of the input height. */
  minScale: number;
  /** Scale of the last level. Levels in between are spaced linearly (SSD paper, eq. 4). */
  maxScale: number;
  /** Aspect ratios (width / height in pixels) per level, or one list for every level. */
  aspectRatios: number[] | number[][];
  /** Add, per level, one more anchor of scale √(s_k·s_{k+1}) at the first aspect ratio (SSD's extra square box). */
  extraScale?: boolean;
  /** Clip anchors to the image (KITTI SSD variants do not; default false). */
  clip?: boolean;
}

export interface Anchors {
  /** Centre form [cx, cy, w, h] per anchor, normalised to the input (x by width, y by height). */
  centre: Float32Array;
  /** Corner form [x1, y1, x2, y2] per anchor, same normalisation. */
  corner: Float32Array;
  count: number;
  /** Anchors per cell, per level (the head of level k predicts this many boxes per location). */
  perCell: number[];
  featureMapSizes: FeatureMapSize[];
  inputSize: InputSize;
}

export class AnchorGenerator {
  readonly options: Required<AnchorGeneratorOptions>;

  constructor(options: AnchorGeneratorOptions) {
    if (!(options.minScale > 0 && options.maxScale >= options.minScale)) {
      throw new Error(`anchor scales must satisfy 0 < minScale <= maxScale (got ${options.minScale}, ${options.maxScale})`);
    }
    this.options = { extraScale: true, clip: false, ...options };
  }

  /** Aspect ratios used at level k of `levels`. */
  ratiosAt(k: number, levels: number): number[] {
    const r = this.options.aspectRatios;
    if (r.length === 0) throw new Error('anchor aspectRatios must not be empty');
    if (Array.isArray(r[0])) {
      const perLevel = r as number[][];
      if (perLevel.length !== levels) {
        throw new Error(`anchor aspectRatios has ${perLevel.length} levels but the backbone produces ${levels} feature maps`);
      }
      return perLevel[k]!;
    }
    return r as number[];
  }

  /** Scale of level k (linear from minScale to maxScale); level `levels` is the one past the last (for the extra box). */
  scaleAt(k: number, levels: number): number {
    const { minScale, maxScale } = this.options;
    if (levels === 1) return k === 0 ? minScale : maxScale;
    return minScale + ((maxScale - minScale) * k) / (levels - 1);
  }

  anchorsPerCell(levels: number): number[] {
    const out: number[] = [];
    for (let k = 0; k < levels; k++) out.push(this.ratiosAt(k, levels).length + (this.options.extraScale ? 1 : 0));
    return out;
  }

  /**
   * Anchors, level by level, row by row, column by column, then the level's boxes per cell in order (ratios, then the
   * extra box): the same order as the heads' outputs reshaped [rows, cols, perCell, ...].
   */
  generate(featureMapSizes: FeatureMapSize[], inputSize: InputSize): Anchors {
    const levels = featureMapSizes.length;
    if (levels === 0) throw new Error('anchor generation needs at least one feature map');
    const perCell = this.anchorsPerCell(levels);
    let count = 0;
    for (let k = 0; k < levels; k++) count += featureMapSizes[k]![0] * featureMapSizes[k]![1] * perCell[k]!;
    const centre = new Float32Array(count * 4);
    const aspect = inputSize.height / inputSize.width; // converts a width in height-units to width-normalised units
    let n = 0;
    for (let k = 0; k < levels; k++) {
      const [rows, cols] = featureMapSizes[k]!;
      const s = this.scaleAt(k, levels);
      const ratios = this.ratiosAt(k, levels);
      const shapes: [number, number][] = ratios.map((a) => [s * a * aspect, s]);
      if (this.options.extraScale) {
        const sNext = Math.sqrt(s * this.scaleAt(k + 1, levels));
        shapes.push([sNext * ratios[0]! * aspect, sNext]);
      }
      for (let i = 0; i < rows; i++) {
        const cy = (i + 0.5) / rows;
        for (let j = 0; j < cols; j++) {
          const cx = (j + 0.5) / cols;
          for (const [w, h] of shapes) {
            centre[n++] = cx;
            centre[n++] = cy;
            centre[n++] = w;
            centre[n++] = h;
          }
        }
      }
    }
    if (this.options.clip) clipCentre(centre);
    const corner = new Float32Array(count * 4);
    for (let i = 0; i < count * 4; i += 4) {
      corner[i] = centre[i]! - centre[i + 2]! / 2;
      corner[i + 1] = centre[i + 1]! - centre[i + 3]! / 2;
      corner[i + 2] = centre[i]! + centre[i + 2]! / 2;
      corner[i + 3] = centre[i + 1]! + centre[i + 3]! / 2;
    }
    return { centre, corner, count, perCell, featureMapSizes: featureMapSizes.map((f) => [f[0], f[1]]), inputSize };
  }
}

function clipCentre(c: Float32Array): void {
  for (let i = 0; i < c.length; i += 4) {
    const x1 = Math.max(0, c[i]! - c[i + 2]! / 2), y1 = Math.max(0, c[i + 1]! - c[i + 3]! / 2);
    const x2 = Math.min(1, c[i]! + c[i + 2]! / 2), y2 = Math.min(1, c[i + 1]! + c[i + 3]! / 2);
    c[i] = (x1 + x2) / 2;
    c[i + 1] = (y1 + y2) / 2;
    c[i + 2] = x2 - x1;
    c[i + 3] = y2 - y1;
  }
}

/**
 * The [rows, cols] of each feature map a backbone produces for an input size, found by running it once on a zero
 * image (cheap: one forward, batch 1, no gradients).
 */
export function featureMapSizes(
  features: (x: tf.Tensor4D) => tf.Tensor4D[],
  inputSize: InputSize,
): FeatureMapSize[] {
  return tf.tidy(() => {
    const maps = features(tf.zeros([1, inputSize.height, inputSize.width, 3]));
    return maps.map((m) => [m.shape[1], m.shape[2]] as FeatureMapSize);
  });
}
