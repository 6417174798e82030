/**
 * SSD box encoding with variances (0.1 for centres, 0.2 for sizes):
 *   t_x = (g_cx − d_cx) / (0.1·d_w), t_y = (g_cy − d_cy) / (0.1·d_h), t_w = log(g_w / d_w) / 0.2, t_h = log(g_h / d_h) / 0.2.
 * Decoding clamps the log-size offsets at log(1000/16) (as torchvision does) so that an untrained or diverging head
 * cannot produce infinite boxes.
 */
export interface BoxCoderOptions {
  centerVariance?: number;
  sizeVariance?: number;
  /** Upper bound on the decoded log-size change (after multiplying by the variance). */
  maxLogSize?: number;
}

export const DEFAULT_MAX_LOG_SIZE = Math.log(1000 / 16);

export class BoxCoder {
  readonly centerVariance: number;
  readonly sizeVariance: number;
  readonly maxLogSize: number;

  constructor(options: BoxCoderOptions = {}) {
    this.centerVariance = options.centerVariance ?? 0.1;
    this.sizeVariance = options.sizeVariance ?? 0.2;
    this.maxLogSize = options.maxLogSize ?? DEFAULT_MAX_LOG_SIZE;
  }

  /**
   * Regression target of anchor `a` (centre form `anchors`) for ground-truth box `g` (corner form `boxes`), written to
   * out[4·o .. 4·o+3].
   */
  encodeOne(boxes: ArrayLike<number>, g: number, anchors: ArrayLike<number>, a: number, out: Float32Array, o: number): void {
    const gw = boxes[4 * g + 2]! - boxes[4 * g]!;
    const gh = boxes[4 * g + 3]! - boxes[4 * g + 1]!;
    if (!(gw > 0 && gh > 0)) throw new Error(`box ${g} is degenerate (width ${gw}, height ${gh}): cannot encode it`);
    const gcx = boxes[4 * g]! + gw / 2;
    const gcy = boxes[4 * g + 1]! + gh / 2;
    const dcx = anchors[4 * a]!, dcy = anchors[4 * a + 1]!, dw = anchors[4 * a + 2]!, dh = anchors[4 * a + 3]!;
    out[4 * o] = (gcx - dcx) / (this.centerVariance * dw);
    out[4 * o + 1] = (gcy - dcy) / (this.centerVariance * dh);
    out[4 * o + 2] = Math.log(gw / dw) / this.sizeVariance;
    out[4 * o + 3] = Math.log(gh / dh) / this.sizeVariance;
  }

  /** Encodes every anchor against its matched box (`matched[a] >= 0`); other anchors get zeros. */
  encode(boxes: ArrayLike<number>, anchors: ArrayLike<number>, matched: Int32Array): Float32Array {
    const out = new Float32Array(matched.length * 4);
    for (let a = 0; a < matched.length; a++) if (matched[a]! >= 0) this.encodeOne(boxes, matched[a]!, anchors, a, out, a);
    return out;
  }

  /** Offsets [A·4] → corner-form boxes [A·4] (normalised like the anchors). */
  decode(offsets: ArrayLike<number>, anchors: ArrayLike<number>): Float32Array {
    const n = anchors.length / 4;
    if (offsets.length !== anchors.length) {
      throw new Error(`decode: ${offsets.length / 4} offsets for ${n} anchors`);
    }
    const out = new Float32Array(n * 4);
    for (let a = 0; a < n; a++) {
      const dcx = anchors[4 * a]!, dcy = anchors[4 * a + 1]!, dw = anchors[4 * a + 2]!, dh = anchors[4 * a + 3]!;
      const cx = dcx + offsets[4 * a]! * this.centerVariance * dw;
      const cy = dcy + offsets[4 * a + 1]! * this.centerVariance * dh;
      const lw = Math.min(offsets[4 * a + 2]! * this.sizeVariance, this.maxLogSize);
      const lh = Math.min(offsets[4 * a + 3]! * this.sizeVariance, this.maxLogSize);
      const w = dw * Math.exp(lw), h = dh * Math.exp(lh);
      out[4 * a] = cx - w / 2;
      out[4 * a + 1] = cy - h / 2;
      out[4 * a + 2] = cx + w / 2;
      out[4 * a + 3] = cy + h / 2;
    }
    return out;
  }
}
