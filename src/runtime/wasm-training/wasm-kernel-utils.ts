/**
 * Shared plumbing for the wasm training kernels: calling other wasm kernels without recording them on the tape,
 * releasing intermediates, and typed views of the wasm heap.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

export type { BackendWasm };
export type TensorInfo = tf.TensorInfo;
export type Attrs = tf.NamedAttrMap;

/** The attributes of tfjs's conv kernels (Conv2D, its gradients, depthwise and fused variants). */
export interface ConvAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat?: 'NHWC' | 'NCHW';
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** tfjs's geometry of an NHWC conv (output size, padding, strides, dilations) from the kernel's attributes. */
export function convInfo(xShape: readonly number[], filterShape: readonly number[], attrs: ConvAttrs, depthwise = false): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    depthwise,
  );
}

/** The arguments every kernel function receives. */
export interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: BackendWasm;
  attrs?: Attrs;
}

/** Runs another kernel registered for 'wasm' directly: no tape, no engine bookkeeping; free the result yourself. */
export function runWasmKernel(
  backend: BackendWasm,
  name: string,
  inputs: Record<string, TensorInfo>,
  attrs: Attrs = {},
): TensorInfo {
  const config = tf.getKernel(name, 'wasm');
  if (config === undefined) throw new Error(`wasm training kernels: kernel '${name}' is not registered for wasm`);
  const out = config.kernelFunc({ inputs, attrs, backend });
  if (Array.isArray(out)) throw new Error(`wasm training kernels: kernel '${name}' returned several outputs`);
  return out;
}

/** Releases intermediates made by `runWasmKernel` (never a kernel's own inputs). */
export function release(backend: BackendWasm, ...infos: TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

/** A float32 view of a tensor in wasm memory. Take views only after the last allocation: growth detaches them. */
export function heapF32(backend: BackendWasm, info: TensorInfo): Float32Array {
  const view = backend.typedArrayFromHeap(info);
  if (!(view instanceof Float32Array)) throw new Error(`wasm training kernels: expected float32, got ${info.dtype}`);
  return view;
}

export function heapI32(backend: BackendWasm, info: TensorInfo): Int32Array {
  const view = backend.typedArrayFromHeap(info);
  if (!(view instanceof Int32Array)) throw new Error(`wasm training kernels: expected int32, got ${info.dtype}`);
  return view;
}

export function reshape(backend: BackendWasm, x: TensorInfo, shape: number[]): TensorInfo {
  return runWasmKernel(backend, 'Reshape', { x }, { shape });
}

export function transpose(backend: BackendWasm, x: TensorInfo, perm: number[]): TensorInfo {
  return runWasmKernel(backend, 'Transpose', { x }, { perm });
}

/** Slice `x` from `begin` with `size`; returns x itself (with an extra reference) when nothing is cut. */
export function slice(backend: BackendWasm, x: TensorInfo, begin: number[], size: number[]): TensorInfo {
  if (begin.every((b) => b === 0) && size.every((s, i) => s === x.shape[i])) {
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  }
  return runWasmKernel(backend, 'Slice', { x }, { begin, size });
}

/**
 * A forward 2-D convolution (NHWC, stride, dilation) with explicit paddings that may be negative: a negative pad
 * crops the input instead. Rows/columns the conv never reads must already be cropped by the caller's pads.
 */
export function conv2dExplicit(
  backend: BackendWasm,
  x: TensorInfo,
  filter: TensorInfo,
  pads: { top: number; bottom: number; left: number; right: number },
  strides: [number, number],
  dilations: [number, number],
  depthwise = false,
): TensorInfo {
  const [n, h, w, c] = x.shape as [number, number, number, number];
  const cropTop = Math.max(0, -pads.top);
  const cropBottom = Math.max(0, -pads.bottom);
  const cropLeft = Math.max(0, -pads.left);
  const cropRight = Math.max(0, -pads.right);
  const xc = slice(backend, x, [0, cropTop, cropLeft, 0], [n, h - cropTop - cropBottom, w - cropLeft - cropRight, c]);
  const pad = [
    [0, 0],
    [Math.max(0, pads.top), Math.max(0, pads.bottom)],
    [Math.max(0, pads.left), Math.max(0, pads.right)],
    [0, 0],
  ];
  const out = runWasmKernel(backend, depthwise ? 'DepthwiseConv2dNative' : 'Conv2D', { x: xc, filter }, {
    strides,
    pad,
    dilations,
    dataFormat: 'NHWC',
    dimRoundingMode: undefined as unknown as string,
  });
  release(backend, xc);
  return out;
}

export function asPair(v: number | number[] | undefined, fallback = 1): [number, number] {
  if (v === undefined || v === null) return [fallback, fallback];
  if (typeof v === 'number') return [v, v];
  return [v[0] ?? fallback, v[1] ?? v[0] ?? fallback];
}

/** A Slice kernel's begin and size, with negative and omitted sizes resolved against x's shape. */
export function sliceParams(x: TensorInfo, attrs: Attrs | undefined): { begin: number[]; size: number[] } {
  if (attrs === undefined) throw new Error('Slice: no begin and size attributes');
  const { begin, size } = attrs as { begin: number | number[]; size?: number | number[] };
  const [b, s] = tf.slice_util.parseSliceParams(x, begin, size);
  if (b === undefined || s === undefined) throw new Error('Slice: parseSliceParams returned no begin or size');
  return { begin: b, size: s };
}
