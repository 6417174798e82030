/**
 * Add, Sub, Multiply and RealDiv of a full tensor with a per-channel vector or a scalar ([1, 1, 1, C], [C], [1]),
 * in either order. The built-ins' broadcasting path is ~10x slower per element than their same-shape path, and batch
 * norm and its gradients broadcast per-channel statistics over whole activations a dozen times per layer. Other
 * shapes go to the built-in (returns null).
 */
import { heapF32, type KernelArgs, type TensorInfo } from './wasm-kernel-utils.js';

type Op = 'add' | 'sub' | 'mul' | 'div';

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** True when `small`, after dropping leading ones, equals the trailing dimensions of `full` (or is a single value). */
function isTrailingVector(small: number[], full: number[]): boolean {
  if (small.length > full.length) return false;
  let i = 0;
  while (i < small.length && small[i] === 1) i++;
  const rest = small.slice(i);
  const tail = full.slice(full.length - rest.length);
  return rest.every((d, j) => d === tail[j]);
}

function binary(args: KernelArgs, op: Op): TensorInfo | null {
  const { backend } = args;
  const a = args.inputs['a']!;
  const b = args.inputs['b']!;
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return null;
  const sa = size(a.shape);
  const sb = size(b.shape);
  if (sa === sb) return null;
  const aFull = sa > sb;
  const full = aFull ? a : b;
  const small = aFull ? b : a;
  if (full.shape.length < small.shape.length || !isTrailingVector(small.shape, full.shape)) return null;
  const out = backend.makeOutput(full.shape.slice(), 'float32');
  const F = heapF32(backend, full);
  const S = heapF32(backend, small);
  const O = heapF32(backend, out);
  const n = S.length;
  const total = F.length;
  // Written out per case so that each inner loop is monomorphic.
  if (op === 'add') {
    for (let base = 0; base < total; base += n) for (let c = 0; c < n; c++) O[base + c] = F[base + c]! + S[c]!;
  } else if (op === 'mul') {
    for (let base = 0; base < total; base += n) for (let c = 0; c < n; c++) O[base + c] = F[base + c]! * S[c]!;
  } else if (op === 'sub') {
    if (aFull) for (let base = 0; base < total; base += n) for (let c = 0; c < n; c++) O[base + c] = F[base + c]! - S[c]!;
    else for (let base = 0; base < total; base += n) for (let c = 0; c < n; c++) O[base + c] = S[c]! - F[base + c]!;
  } else {
    if (aFull) for (let base = 0; base < total; base += n) for (let c = 0; c < n; c++) O[base + c] = F[base + c]! / S[c]!;
    else for (let base = 0; base < total; base += n) for (let c = 0; c < n; c++) O[base + c] = S[c]! / F[base + c]!;
  }
  return out;
}

export const addBroadcast = (args: KernelArgs) => binary(args, 'add');
export const subBroadcast = (args: KernelArgs) => binary(args, 'sub');
export const mulBroadcast = (args: KernelArgs) => binary(args, 'mul');
export const divBroadcast = (args: KernelArgs) => binary(args, 'div');
