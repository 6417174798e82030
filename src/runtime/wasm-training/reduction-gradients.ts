/**
 * Gradients of Sum and Mean without `ones(x.shape)`. tfjs-core writes them as dy * ones(x.shape), and `ones` fills a
 * JavaScript array of the full input size and copies it into the backend, at every batch-norm statistic and its
 * gradient: a large share of a wasm training step. On wasm, dy is broadcast with Tile (a block copy) instead; the values are
 * identical (x * 1 = x exactly). Other backends keep tfjs-core's gradient.
 */
import * as tf from '@tensorflow/tfjs';

function expandedDy(dy: tf.Tensor, x: tf.Tensor, axis: number | number[]): tf.Tensor {
  const shape = x.shape.slice();
  for (const a of tf.util.parseAxisParam(axis, x.shape)) shape[a] = 1;
  return tf.reshape(dy, shape);
}

function wrap(name: 'Sum' | 'Mean', wasmGrad: (dy: tf.Tensor, x: tf.Tensor, axis: number | number[]) => tf.Tensor): void {
  const original = tf.getGradient(name);
  if (original === undefined) throw new Error(`wasm training kernels: tfjs-core has no gradient for ${name}`);
  tf.registerGradient({
    ...original,
    gradFunc: (dy, saved, attrs) => {
      if (tf.getBackend() !== 'wasm' || Array.isArray(dy)) return original.gradFunc(dy, saved, attrs);
      const x = saved[0]!;
      const { axis } = attrs as unknown as { axis: number | number[] };
      return { x: () => wasmGrad(dy, x, axis) };
    },
  });
}

export function registerReductionGradients(): void {
  wrap('Sum', (dy, x, axis) => tf.broadcastTo(expandedDy(dy, x, axis), x.shape));
  wrap('Mean', (dy, x, axis) => {
    const count = x.size / Math.max(1, dy.size);
    return tf.broadcastTo(tf.div(expandedDy(dy, x, axis), count), x.shape);
  });
}
