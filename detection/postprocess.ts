/**
 * From raw head outputs to detections: softmax, per-class score threshold, top-k per class, greedy NMS per class,
 * then the best `maxDetections` overall. NMS runs on typed arrays (no tensors, identical on every backend).
 */
import * as tf from '@tensorflow/tfjs';
import { iou } from './boxes.js';
import type { BoxCoder } from './box-coder.js';

export interface PostprocessOptions {
  scoreThreshold?: number;
  nmsIoU?: number;
  /** Candidates per class kept (by score) before NMS. */
  topKPerClass?: number;
  /** Detections per image kept after NMS. */
  maxDetections?: number;
}

export interface Detection {
  /** 1..C−1 (0 is background and never reported). */
  classIndex: number;
  score: number;
  /** Corner form, normalised to the network input. */
  box: [number, number, number, number];
}

export class Postprocessor {
  readonly scoreThreshold: number;
  readonly nmsIoU: number;
  readonly topKPerClass: number;
  readonly maxDetections: number;

  constructor(options: PostprocessOptions = {}) {
    this.scoreThreshold = options.scoreThreshold ?? 0.01;
    this.nmsIoU = options.nmsIoU ?? 0.45;
    this.topKPerClass = options.topKPerClass ?? 400;
    this.maxDetections = options.maxDetections ?? 200;
  }

  /** Detections of every image of a batch. clsLogits [B, A, C], locPreds [B, A, 4]; anchors in centre form. */
  run(clsLogits: tf.Tensor3D, locPreds: tf.Tensor3D, anchors: Float32Array, coder: BoxCoder): Detection[][] {
    const probsT = tf.softmax(clsLogits);
    const probs = probsT.dataSync() as Float32Array;
    probsT.dispose();
    return this.batch(probs, locPreds.dataSync() as Float32Array, clsLogits.shape, anchors, coder);
  }

  /** As run, reading the outputs back asynchronously (backends without synchronous reads, e.g. WebGPU). */
  async runAsync(clsLogits: tf.Tensor3D, locPreds: tf.Tensor3D, anchors: Float32Array, coder: BoxCoder): Promise<Detection[][]> {
    const probsT = tf.softmax(clsLogits);
    try {
      const [probs, loc] = await Promise.all([probsT.data() as Promise<Float32Array>, locPreds.data() as Promise<Float32Array>]);
      return this.batch(probs, loc, clsLogits.shape, anchors, coder);
    } finally {
      probsT.dispose();
    }
  }

  private batch(probs: Float32Array, loc: Float32Array, [B, A, C]: [number, number, number], anchors: Float32Array, coder: BoxCoder): Detection[][] {
    const out: Detection[][] = [];
    for (let b = 0; b < B; b++) {
      const boxes = coder.decode(loc.subarray(b * A * 4, (b + 1) * A * 4), anchors);
      out.push(this.image(probs.subarray(b * A * C, (b + 1) * A * C), boxes, C));
    }
    return out;
  }

  /** Detections of one image from probabilities [A·C] and decoded corner boxes [A·4]. */
  image(probs: ArrayLike<number>, boxes: ArrayLike<number>, numClasses: number): Detection[] {
    const A = boxes.length / 4;
    const dets: Detection[] = [];
    for (let c = 1; c < numClasses; c++) {
      let cand: number[] = [];
      for (let a = 0; a < A; a++) if (probs[a * numClasses + c]! > this.scoreThreshold) cand.push(a);
      cand.sort((i, j) => probs[j * numClasses + c]! - probs[i * numClasses + c]! || i - j);
      if (cand.length > this.topKPerClass) cand = cand.slice(0, this.topKPerClass);
      const kept: number[] = [];
      for (const a of cand) {
        let suppressed = false;
        for (const k of kept) {
          if (iou(boxes, a, boxes, k) > this.nmsIoU) {
            suppressed = true;
            break;
          }
        }
        if (!suppressed) kept.push(a);
      }
      for (const a of kept) {
        dets.push({
          classIndex: c,
          score: probs[a * numClasses + c]!,
          box: [boxes[4 * a]!, boxes[4 * a + 1]!, boxes[4 * a + 2]!, boxes[4 * a + 3]!],
        });
      }
    }
    dets.sort((p, q) => q.score - p.score);
    return dets.slice(0, this.maxDetections);
  }
}
