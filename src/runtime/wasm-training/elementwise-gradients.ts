/**
 * The gradients of Relu and Square on wasm as one SIMD pass each (simd-kernels.ts) instead of tfjs-core's two
 * full-size ops (mul(dy, step(x)); mul(dy, mul(x, 2))): after every conv + batch norm + ReLU, and in the variance
 * of tf.moments. The values are the same float32 products. Other backends and dtypes keep tfjs-core's gradients.
 */
import * as tf from '@tensorflow/tfjs';
import { runRows } from './kernel-pool.js';
import { heapOffset, simdKernels } from './simd-kernels.js';
import { heapF32, type KernelArgs, type TensorInfo } from './wasm-kernel-utils.js';

export const RELU_GRAD_KERNEL = 'DataParamsWasmReluGrad';
export const SQUARE_GRAD_KERNEL = 'DataParamsWasmSquareGrad';

type Elementwise = (x: number, dy: number) => number;

function elementwiseGrad(which: 'reluGrad' | 'squareGrad', scalar: Elementwise): (args: KernelArgs) => TensorInfo {
  return (args) => {
    const { backend } = args;
    const { x, dy } = args.inputs as Record<string, TensorInfo>;
    const out = backend.makeOutput(x!.shape, 'float32');
    const n = tf.util.sizeFromShape(x!.shape);
    const groups = n >> 2;
    const kernels = simdKernels(backend);
    const done = kernels === null ? 0 : groups * 4;
    if (kernels !== null && groups > 0) {
      const args = [heapOffset(backend, x!), heapOffset(backend, dy!), groups, heapOffset(backend, out)];
      runRows(backend, kernels, which, args, 2, [[0, 16], [1, 16], [3, 16]]);
    }
    if (done < n) {
      const X = heapF32(backend, x!);
      const DY = heapF32(backend, dy!);
      const OUT = heapF32(backend, out);
      for (let i = done; i < n; i++) OUT[i] = scalar(X[i]!, DY[i]!);
    }
    return out;
  };
}

const step = (x: number): number => (Number.isNaN(x) ? NaN : x > 0 ? 1 : 0);
const reluGrad = elementwiseGrad('reluGrad', (x, dy) => dy * step(x));
const squareGrad = elementwiseGrad('squareGrad', (x, dy) => dy * Math.fround(x + x));

function wrap(name: 'Relu' | 'Square', kernelName: string, kernel: (args: KernelArgs) => TensorInfo): void {
  if (tf.getKernel(kernelName, 'wasm') === undefined) {
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: kernel as unknown as tf.KernelFunc });
  }
  const original = tf.getGradient(name);
  if (original === undefined) throw new Error(`wasm training kernels: tfjs-core has no gradient for ${name}`);
  tf.registerGradient({
    ...original,
    gradFunc: (dy, saved, attrs) => {
      const x = saved[0]!;
      if (tf.getBackend() !== 'wasm' || Array.isArray(dy) || dy.dtype !== 'float32' || x.dtype !== 'float32' ||
        !tf.util.arraysEqual(dy.shape, x.shape)) {
        return original.gradFunc(dy, saved, attrs);
      }
      return { x: () => tf.engine().runKernel<tf.Tensor>(kernelName, { x, dy }) };
    },
  });
}

/** Registers the one-pass gradients of Relu and Square for wasm (idempotent). */
export function registerElementwiseGradients(): void {
  wrap('Relu', RELU_GRAD_KERNEL, reluGrad);
  wrap('Square', SQUARE_GRAD_KERNEL, squareGrad);
}
