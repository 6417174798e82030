/**
 * Box geometry on typed arrays (CPU side: targets, matching and NMS never need gradients).
 * Corner form: [x1, y1, x2, y2] per box; centre form: [cx, cy, w, h]. Coordinates are normalised to the network input
 * (x by its width, y by its height) unless a function says otherwise.
 */

/** Centre form [cx,cy,w,h]* → corner form [x1,y1,x2,y2]*. */
export function centreToCorner(centre: Float32Array): Float32Array {
  const out = new Float32Array(centre.length);
  for (let i = 0; i < centre.length; i += 4) {
    const cx = centre[i]!, cy = centre[i + 1]!, w = centre[i + 2]!, h = centre[i + 3]!;
    out[i] = cx - w / 2;
    out[i + 1] = cy - h / 2;
    out[i + 2] = cx + w / 2;
    out[i + 3] = cy + h / 2;
  }
  return out;
}

/** Area of box `i` of a corner-form array (0 for degenerate boxes). */
export function boxArea(b: ArrayLike<number>, i: number): number {
  const w = b[4 * i + 2]! - b[4 * i]!;
  const h = b[4 * i + 3]! - b[4 * i + 1]!;
  return w > 0 && h > 0 ? w * h : 0;
}

/** Intersection area of box i of `a` and box j of `b` (corner form). */
export function intersection(a: ArrayLike<number>, i: number, b: ArrayLike<number>, j: number): number {
  const w = Math.min(a[4 * i + 2]!, b[4 * j + 2]!) - Math.max(a[4 * i]!, b[4 * j]!);
  if (w <= 0) return 0;
  const h = Math.min(a[4 * i + 3]!, b[4 * j + 3]!) - Math.max(a[4 * i + 1]!, b[4 * j + 1]!);
  if (h <= 0) return 0;
  return w * h;
}

export function iou(a: ArrayLike<number>, i: number, b: ArrayLike<number>, j: number): number {
  const inter = intersection(a, i, b, j);
  if (inter === 0) return 0;
  const union = boxArea(a, i) + boxArea(b, j) - inter;
  return union > 0 ? inter / union : 0;
}

/** IoU matrix [a.length/4, b.length/4], row-major. */
export function iouMatrix(a: ArrayLike<number>, b: ArrayLike<number>): Float32Array {
  const na = a.length / 4, nb = b.length / 4;
  const out = new Float32Array(na * nb);
  for (let i = 0; i < na; i++) for (let j = 0; j < nb; j++) out[i * nb + j] = iou(a, i, b, j);
  return out;
}
