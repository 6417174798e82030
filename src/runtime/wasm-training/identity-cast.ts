/**
 * Identity and same-dtype Cast without copying. The built-ins copy the whole tensor in wasm memory; tfjs-core calls
 * them for every clone and for cast(x, 'float32') of float32 data (batch-norm moments, gradients), ~30 full copies
 * per training step. Tensors are immutable, so sharing the data with a reference count (as Reshape and the cpu
 * backend do) is enough.
 */
import type { KernelArgs, TensorInfo } from './wasm-kernel-utils.js';

function share(args: KernelArgs): TensorInfo {
  const x = args.inputs['x']!;
  args.backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

export function identity(args: KernelArgs): TensorInfo {
  return share(args);
}

/** Same-dtype casts share the data; others go to the built-in (returns null). */
export function castSameDtype(args: KernelArgs): TensorInfo | null {
  const x = args.inputs['x']!;
  const dtype = (args.attrs as { dtype: string }).dtype;
  return x.dtype === dtype ? share(args) : null;
}
