/**
 * Batch normalisation with batch statistics, optionally followed by ReLU, as one op with its own gradient. On wasm
 * (with the training kernels registered) it runs as three fused kernels (batch-norm-training.ts); written as
 * tf.moments + tf.batchNorm + tf.relu, the same layer costs about fifteen full-size passes forward and backward (the
 * moments' squared differences, the tape's broadcasts and the Adds that sum a tensor's gradients over its uses). Other
 * backends, and inputs the kernels do not take, compose the same function from tfjs ops. Imports tfjs only, so that
 * model code (and the browser bundle) can use it.
 */
import * as tf from '@tensorflow/tfjs';

export const BATCH_STATISTICS_KERNEL = 'DataParamsBatchStatistics';
export const BATCH_NORM_TRAINING_KERNEL = 'DataParamsBatchNormTraining';
export const BATCH_NORM_TRAINING_GRAD_KERNEL = 'DataParamsBatchNormTrainingGrad';

export interface TrainingAttrs {
  epsilon: number;
  relu: boolean;
}

export interface BatchNormTrainingOptions {
  /** Apply ReLU to the normalised output (its gradient is part of the op's). */
  relu?: boolean;
}

export interface BatchNormTrainingResult<T extends tf.Tensor> {
  /** relu?((x - mean) / sqrt(variance + epsilon) * gamma + beta), differentiable in x, gamma and beta. */
  y: T;
  /** The batch's per-channel mean and biased variance (over every axis but the last), for running statistics. */
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
}

/** Whether batchNormTraining runs as fused kernels for x on the current backend (else it composes tfjs ops). */
export function fusedBatchNormApplies(x: tf.Tensor): boolean {
  if (x.dtype !== 'float32' || x.rank < 2 || tf.getKernel(BATCH_STATISTICS_KERNEL, tf.getBackend()) === undefined) return false;
  const c = x.shape[x.rank - 1]!;
  return c >= 4 && c % 4 === 0;
}

/**
 * Batch normalisation of x over every axis but the last, with the batch's statistics (training mode), then ReLU if
 * asked: y = relu?((x − mean) / sqrt(variance + ε) · gamma + beta), differentiable in x, gamma and beta (through the
 * statistics too). Also returns the statistics (not differentiable) for running averages.
 */
export function batchNormTraining<T extends tf.Tensor>(
  x: T,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  epsilon: number,
  options: BatchNormTrainingOptions = {},
): BatchNormTrainingResult<T> {
  const relu = options.relu ?? false;
  const c = x.shape[x.rank - 1];
  for (const [what, t] of [['gamma', gamma], ['beta', beta]] as const) {
    if (t.rank !== 1 || t.shape[0] !== c) throw new Error(`batchNormTraining: ${what} must have shape [${c}] (x is [${x.shape}]), got [${t.shape}]`);
  }
  if (!fusedBatchNormApplies(x)) {
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(x, [...Array(x.rank - 1).keys()]);
      const normalised = tf.batchNorm(x, mean, variance, beta, gamma, epsilon);
      return { y: (relu ? tf.relu(normalised) : normalised) as T, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
    });
  }
  const attrs: TrainingAttrs = { epsilon, relu };
  const engine = tf.engine();
  const [mean, variance] = engine.runKernel<[tf.Tensor1D, tf.Tensor1D]>(BATCH_STATISTICS_KERNEL, { x }, {});
  const normalise = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xIn, g, b, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const y = engine.runKernel<tf.Tensor>(BATCH_NORM_TRAINING_KERNEL, { x: xIn, mean, variance, gamma: g, beta: b }, attrs as unknown as tf.NamedAttrMap);
    save([xIn, y, g, mean, variance]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ys, gs, ms, vs] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
        const inputs = { x: xs, y: ys, dy, mean: ms, variance: vs, gamma: gs };
        return engine.runKernel<tf.Tensor[]>(BATCH_NORM_TRAINING_GRAD_KERNEL, inputs, attrs as unknown as tf.NamedAttrMap);
      },
    };
  });
  return { y: normalise(x, gamma, beta) as T, mean, variance };
}
