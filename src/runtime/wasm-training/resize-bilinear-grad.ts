/**
 * ResizeBilinearGrad for wasm. The built-in (like the cpu one) ignores halfPixelCenters, so the gradient of a
 * half-pixel resize (what tf.image.resizeBilinear(..., halfPixelCenters=true) and Keras-style upsampling use) is wrong.
 * This one scatters dy with exactly the forward's sampling positions and weights.
 */
import { heapF32, type KernelArgs, type TensorInfo } from './wasm-kernel-utils.js';

interface Taps {
  lo: Int32Array;
  hi: Int32Array;
  frac: Float32Array;
}

/** Source rows (or columns) and weights of each output row, as the forward resize computes them. */
function taps(inSize: number, outSize: number, alignCorners: boolean, halfPixelCenters: boolean): Taps {
  const effIn = alignCorners && outSize > 1 ? inSize - 1 : inSize;
  const effOut = alignCorners && outSize > 1 ? outSize - 1 : outSize;
  const ratio = effIn / effOut;
  const t: Taps = { lo: new Int32Array(outSize), hi: new Int32Array(outSize), frac: new Float32Array(outSize) };
  for (let i = 0; i < outSize; i++) {
    const src = halfPixelCenters ? ratio * (i + 0.5) - 0.5 : ratio * i;
    const lo = Math.max(0, Math.floor(src));
    t.lo[i] = lo;
    t.hi[i] = Math.min(inSize - 1, Math.ceil(src));
    t.frac[i] = src - lo;
  }
  return t;
}

export function resizeBilinearGrad(args: KernelArgs): TensorInfo {
  const { backend } = args;
  const images = args.inputs['images']!;
  const dy = args.inputs['dy']!;
  const attrs = (args.attrs ?? {}) as { alignCorners?: boolean; halfPixelCenters?: boolean };
  const [batch, inH, inW, depth] = images.shape as [number, number, number, number];
  const [, outH, outW] = dy.shape as [number, number, number, number];
  const rows = taps(inH, outH, attrs.alignCorners === true, attrs.halfPixelCenters === true);
  const cols = taps(inW, outW, attrs.alignCorners === true, attrs.halfPixelCenters === true);
  const dx = backend.makeOutput(images.shape, 'float32');
  const DY = heapF32(backend, dy);
  const DX = heapF32(backend, dx);
  DX.fill(0);
  let o = 0;
  for (let b = 0; b < batch; b++) {
    const base = b * inH * inW * depth;
    for (let r = 0; r < outH; r++) {
      const top = base + rows.lo[r]! * inW * depth;
      const bottom = base + rows.hi[r]! * inW * depth;
      const fr = rows.frac[r]!;
      for (let c = 0; c < outW; c++) {
        const fc = cols.frac[c]!;
        const left = cols.lo[c]! * depth;
        const right = cols.hi[c]! * depth;
        const wTL = (1 - fr) * (1 - fc);
        const wTR = (1 - fr) * fc;
        const wBL = fr * (1 - fc);
        const wBR = fr * fc;
        for (let d = 0; d < depth; d++, o++) {
          const g = DY[o]!;
          DX[top + left + d]! += g * wTL;
          DX[top + right + d]! += g * wTR;
          DX[bottom + left + d]! += g * wBL;
          DX[bottom + right + d]! += g * wBR;
        }
      }
    }
  }
  return dx;
}
