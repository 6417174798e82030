/**
 * Add, Sub, Multiply, RealDiv, Minimum and Maximum on wasm when one float32 operand is broadcast along a whole
 * tensor: a scalar (Minimum, Maximum), a per-channel vector of the last axis (x - mean, x * gamma in batch norm and its gradient), or
 * a column with one value per row ([N, 1] against [N, C]: the softmax and per-anchor weights of a loss). The
 * built-ins run these through a generic broadcasting loop, several times slower than an element-wise add for vectors
 * and more so for columns (Minimum and Maximum even with a scalar); here they are one SIMD pass
 * (simd-kernels.ts). One IEEE float32 operation per element, so the values are those of the built-ins and of cpu.
 * Equal shapes of Add, Sub and Multiply: see sameShape. Other cases (a last axis that is not a multiple of 4; general
 * broadcasts; other dtypes) return null for the built-in.
 */
import * as tf from '@tensorflow/tfjs';
import { runRows } from './kernel-pool.js';
import { pooledElementwise } from './pooled-elementwise.js';
import { SAME_SHAPE_OPS, heapBuffer, heapOffset, scratch, simdKernels, type BinaryOp, type BroadcastMode } from './simd-kernels.js';
import { heapF32, release, type KernelArgs, type TensorInfo } from './wasm-kernel-utils.js';

/** How `other` broadcasts against `full` (whose shape is the output's), or null when no SIMD kernel covers it. */
export function broadcastKind(fullShape: number[], otherShape: number[]): 'scalar' | 'vector' | 'column' | null {
  const rank = fullShape.length;
  if (otherShape.length > rank || rank === 0) return null;
  const other = [...new Array<number>(rank - otherShape.length).fill(1), ...otherShape];
  const c = fullShape[rank - 1]!;
  if (other.every((d) => d === 1)) return 'scalar';
  if (c % 4 !== 0) return null;
  if (other.every((d, i) => (i === rank - 1 ? d === c : d === 1))) return 'vector';
  if (other[rank - 1] === 1 && other.every((d, i) => i === rank - 1 || d === fullShape[i])) return 'column';
  return null;
}

function binaryFastPath(op: BinaryOp): (args: KernelArgs) => TensorInfo | null {
  return (args) => {
    const { backend } = args;
    const { a, b } = args.inputs as Record<string, TensorInfo>;
    if (a === undefined || b === undefined || a.dtype !== 'float32' || b.dtype !== 'float32') return null;
    const outShape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const n = tf.util.sizeFromShape(outShape);
    const aFull = tf.util.arraysEqual(a.shape, outShape);
    const bFull = tf.util.arraysEqual(b.shape, outShape);
    if (aFull && bFull) return sameShape(args, op, a, b, outShape);
    if (aFull === bFull || n === 0) return null; // a general broadcast
    const [full, other] = aFull ? [a, b] : [b, a];
    const kind = broadcastKind(outShape, other.shape);
    // XNNPACK has its own kernels for +, -, *, / by a scalar (as fast as this one); not for minimum and maximum.
    if (kind === null || (kind === 'scalar' && (n % 4 !== 0 || (op !== 'min' && op !== 'max')))) return null;
    const kernels = simdKernels(backend);
    if (kernels === null) return null;
    const c = kind === 'scalar' ? 4 : outShape[outShape.length - 1]!;
    const mode: BroadcastMode = `${kind === 'column' ? 'column' : 'vector'}${aFull ? 'Second' : 'First'}`;
    const out = backend.makeOutput(outShape, 'float32');
    // A scalar becomes a vector of 4 copies over rows of 4.
    const splat = kind === 'scalar' ? scratch(backend, 16) : null;
    if (splat !== null) new Float32Array(heapBuffer(backend), splat.offset, 4).fill(heapF32(backend, other)[0]!);
    const v = splat === null ? heapOffset(backend, other) : splat.offset;
    const moving: [number, number][] = [[0, 4 * c], [4, 4 * c], ...(kind === 'column' ? [[1, 4] as [number, number]] : [])];
    runRows(backend, kernels, `binary_${op}_${mode}`, [heapOffset(backend, full), v, n / c, c, heapOffset(backend, out)], 2, moving);
    if (splat !== null) release(backend, splat.info);
    return out;
  };
}

/**
 * Equal shapes: XNNPACK's kernel runs on one thread; with a kernel pool, large tensors (the gradient accumulations of
 * a backward pass) are split between its threads. Without one, or for small tensors, the built-in.
 */
function sameShape(args: KernelArgs, op: BinaryOp, a: TensorInfo, b: TensorInfo, outShape: number[]): TensorInfo | null {
  if (!(SAME_SHAPE_OPS as readonly string[]).includes(op)) return null;
  return pooledElementwise(args.backend, `binarySame_${op}`, [a, b], outShape);
}

/** [kernel name, fast path] for registerFastPath. */
export const binaryBroadcastFastPaths: [string, (args: KernelArgs) => TensorInfo | null][] = [
  ['Add', binaryFastPath('add')],
  ['Sub', binaryFastPath('sub')],
  ['Multiply', binaryFastPath('mul')],
  ['RealDiv', binaryFastPath('div')],
  ['Minimum', binaryFastPath('min')],
  ['Maximum', binaryFastPath('max')],
];
