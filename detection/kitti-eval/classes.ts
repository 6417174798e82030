/** The classes the KITTI object devkit evaluates, with its per-class parameters. */
export const KITTI_EVAL_CLASSES = ['car', 'pedestrian', 'cyclist'] as const;
export type KittiEvalClass = (typeof KITTI_EVAL_CLASSES)[number];

export interface KittiClassParams {
  /** Lower-case class name as it appears (case-insensitively) in label and result files. */
  name: KittiEvalClass;
  /** A detection matches a box when IoU is strictly greater than this; also the DontCare absorption threshold. */
  minOverlap: number;
  /** Ground truth of this class is ignored (neither TP nor FN) rather than skipped: 'van' for car,
   * 'person_sitting' for pedestrian. */
  neighbour: string | null;
}

export const KITTI_CLASS_PARAMS: Readonly<Record<KittiEvalClass, KittiClassParams>> = {
  car: { name: 'car', minOverlap: 0.7, neighbour: 'van' },
  pedestrian: { name: 'pedestrian', minOverlap: 0.5, neighbour: 'person_sitting' },
  cyclist: { name: 'cyclist', minOverlap: 0.5, neighbour: null },
};

export function isKittiEvalClass(name: string): name is KittiEvalClass {
  return (KITTI_EVAL_CLASSES as readonly string[]).includes(name);
}

/** Parses a comma-separated class list such as 'car,pedestrian' (case-insensitive, duplicates dropped). */
export function parseKittiEvalClasses(list: string): KittiEvalClass[] {
  const out: KittiEvalClass[] = [];
  for (const raw of list.split(',')) {
    const name = raw.trim().toLowerCase();
    if (name === '') continue;
    if (!isKittiEvalClass(name)) {
      throw new Error(`unknown class '${raw.trim()}' (the KITTI devkit evaluates ${KITTI_EVAL_CLASSES.join(', ')})`);
    }
    if (!out.includes(name)) out.push(name);
  }
  if (out.length === 0) throw new Error(`no class given (choose from ${KITTI_EVAL_CLASSES.join(', ')})`);
  return out;
}
