/** Learning-rate schedules of the trainers. */

/** Learning rate at `step` (0-based): linear warmup from lr·warmupFactor, then steps ×gamma at the milestones. */
export function learningRate(
  step: number,
  s: { lr: number; warmupSteps?: number; warmupFactor?: number; milestones?: number[]; gamma?: number },
): number {
  let lr = s.lr;
  for (const m of s.milestones ?? []) if (step >= m) lr *= s.gamma ?? 0.1;
  const w = s.warmupSteps ?? 0;
  if (step < w) {
    const f = s.warmupFactor ?? 1 / 3;
    lr *= f + ((1 - f) * step) / w;
  }
  return lr;
}

/** Step schedule: lr · gamma^(number of milestones ≤ epoch), milestones either listed or every `every` epochs. */
export interface StepSchedule {
  milestones?: number[];
  every?: number;
  gamma: number;
}

export function scheduledLr(baseLr: number, schedule: StepSchedule, epoch: number): number {
  let k = 0;
  if (schedule.milestones) k += schedule.milestones.filter((m) => epoch >= m).length;
  if (schedule.every && schedule.every > 0) k += Math.floor(epoch / schedule.every);
  return baseLr * schedule.gamma ** k;
}
