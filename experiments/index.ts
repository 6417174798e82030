/** The experiments `npm run experiment` knows, by name. */
import type { ClassifierExperiment } from './classifier-experiment.js';
import type { DetectionExperiment } from './detection-experiment.js';
import { noisyFashionMnist } from './noisy-fashion-mnist.js';
import { randomLabels } from './random-labels.js';
import { syntheticKittiCurriculum } from './synthetic-kitti-curriculum.js';

export type Experiment = ClassifierExperiment | DetectionExperiment;

export const EXPERIMENTS: readonly Experiment[] = [noisyFashionMnist, randomLabels, syntheticKittiCurriculum];

export function isDetectionExperiment(e: Experiment): e is DetectionExperiment {
  return 'task' in e && e.task === 'detection';
}

export function findExperiment(name: string): Experiment {
  const e = EXPERIMENTS.find((x) => x.name === name);
  if (!e) throw new Error(`unknown experiment '${name}': expected one of ${EXPERIMENTS.map((x) => x.name).join(', ')}`);
  return e;
}
