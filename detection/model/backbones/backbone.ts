import type * as tf from '@tensorflow/tfjs';
import type { ParamStore } from '../../../src/nn/param-store.js';

/** A feature extractor for SSD: the feature maps the heads predict from, finest first. */
export interface Backbone {
  /** Channels of each feature map, in order. */
  readonly channels: number[];
  readonly params: ParamStore;
  features(x: tf.Tensor4D, training: boolean): tf.Tensor4D[];
  /** Folds batch statistics of the last training pass into running averages (no-op without batch norm). */
  commitStatistics(): void;
  /** Drops the statistics of a training pass that will not be applied (e.g. a skipped non-finite step). */
  discardStatistics(): void;
}
