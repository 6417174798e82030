/**
 * KITTI object label and result files: one object per line, 15 space-separated columns (16 with a detection score):
 * type truncated occluded alpha x1 y1 x2 y2 h w l x y z rotation_y [score].
 */
export interface KittiObject {
  /** Class name as written in the file (e.g. 'Car', 'DontCare'). Compare with `normaliseClassName`. */
  type: string;
  /** 0 (fully inside the image) .. 1 (leaving it). */
  truncated: number;
  /** 0 fully visible, 1 partly occluded, 2 largely occluded, 3 unknown. */
  occluded: number;
  alpha: number;
  /** 2D box in pixels: left, top, right, bottom. */
  bbox: [number, number, number, number];
  /** 3D height, width, length (m). */
  dimensions: [number, number, number];
  /** 3D location x, y, z in camera coordinates (m). */
  location: [number, number, number];
  rotationY: number;
  /** Detection confidence (result files only). */
  score?: number;
}

/** 2D-only result fields, as the KITTI devkit expects them for detectors without 3D output. */
export const KITTI_2D_ONLY = { alpha: -10, dimensions: [-1, -1, -1], location: [-1000, -1000, -1000], rotationY: -10 } as const;

export class KittiFormatError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
    this.name = 'KittiFormatError';
  }
}

/** Lower-case class name; KITTI class names compare case-insensitively. */
export function normaliseClassName(name: string): string {
  return name.toLowerCase();
}

export interface ParseOptions {
  /** 'label': exactly 15 columns (16 accepted, the score kept). 'result': exactly 16 columns. Default 'label'. */
  kind?: 'label' | 'result';
}

/**
 * Parses a label or result file. Blank lines are skipped; any other malformed line throws a KittiFormatError naming
 * the file and the 1-based line number.
 */
export function parseKittiObjects(text: string, file: string, options: ParseOptions = {}): KittiObject[] {
  const kind = options.kind ?? 'label';
  const out: KittiObject[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const f = line.split(/\s+/);
    const lineNo = i + 1;
    if (kind === 'label' ? f.length !== 15 && f.length !== 16 : f.length !== 16) {
      const expected = kind === 'label' ? '15 (or 16 with a score)' : '16';
      throw new KittiFormatError(file, lineNo, `expected ${expected} columns, found ${f.length}`);
    }
    const num = (k: number, name: string): number => {
      const v = Number(f[k]);
      if (f[k] === '' || !Number.isFinite(v)) {
        throw new KittiFormatError(file, lineNo, `column ${k + 1} (${name}) is not a number: '${f[k]}'`);
      }
      return v;
    };
    const occluded = num(2, 'occluded');
    if (!Number.isInteger(occluded) || occluded < -1 || occluded > 3) {
      throw new KittiFormatError(file, lineNo, `column 3 (occluded) must be an integer 0..3, found '${f[2]}'`);
    }
    const bbox: [number, number, number, number] = [num(4, 'left'), num(5, 'top'), num(6, 'right'), num(7, 'bottom')];
    const obj: KittiObject = {
      type: f[0]!,
      truncated: num(1, 'truncated'),
      occluded,
      alpha: num(3, 'alpha'),
      bbox,
      dimensions: [num(8, 'height'), num(9, 'width'), num(10, 'length')],
      location: [num(11, 'x'), num(12, 'y'), num(13, 'z')],
      rotationY: num(14, 'rotation_y'),
    };
    if (f.length === 16) obj.score = num(15, 'score');
    out.push(obj);
  }
  return out;
}

function fmt(v: number): string {
  return v.toFixed(2);
}

/** One line in KITTI format (16 columns when the object has a score). */
export function formatKittiObject(o: KittiObject): string {
  const cols = [
    o.type,
    fmt(o.truncated),
    String(Math.round(o.occluded)),
    fmt(o.alpha),
    ...o.bbox.map(fmt),
    ...o.dimensions.map(fmt),
    ...o.location.map(fmt),
    fmt(o.rotationY),
  ];
  if (o.score !== undefined) cols.push(o.score.toFixed(6));
  return cols.join(' ');
}

/** A 2D detection as a KITTI result line: 2D-only fields set to -1 -1 -1 -1000 -1000 -1000 -10. */
export function formatKittiDetection(type: string, bbox: readonly [number, number, number, number], score: number): string {
  return formatKittiObject({
    type,
    truncated: -1,
    occluded: -1,
    alpha: KITTI_2D_ONLY.alpha,
    bbox: [bbox[0], bbox[1], bbox[2], bbox[3]],
    dimensions: [...KITTI_2D_ONLY.dimensions],
    location: [...KITTI_2D_ONLY.location],
    rotationY: KITTI_2D_ONLY.rotationY,
    score,
  });
}

/** The devkit's difficulty levels (cumulative: hard includes moderate includes easy). */
export const KITTI_DIFFICULTIES = [
  { name: 'easy', minHeight: 40, maxOcclusion: 0, maxTruncation: 0.15 },
  { name: 'moderate', minHeight: 25, maxOcclusion: 1, maxTruncation: 0.3 },
  { name: 'hard', minHeight: 25, maxOcclusion: 2, maxTruncation: 0.5 },
] as const;

export type KittiDifficulty = (typeof KITTI_DIFFICULTIES)[number]['name'];

/** The easiest difficulty level whose filters the box passes, or null when it fails even 'hard'
 * (height <= min, occlusion or truncation above the maximum, as the devkit tests them). */
export function kittiDifficulty(o: Pick<KittiObject, 'bbox' | 'occluded' | 'truncated'>): KittiDifficulty | null {
  const height = o.bbox[3] - o.bbox[1];
  for (const d of KITTI_DIFFICULTIES) {
    if (o.occluded <= d.maxOcclusion && o.truncated <= d.maxTruncation && height > d.minHeight) return d.name;
  }
  return null;
}
