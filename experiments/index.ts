/** The experiments `npm run experiment` knows, by name. */
import type { ClassifierExperiment } from './classifier-experiment.js';
import { noisyFashionMnist } from './noisy-fashion-mnist.js';
import { randomLabels } from './random-labels.js';

export const EXPERIMENTS: readonly ClassifierExperiment[] = [noisyFashionMnist, randomLabels];

export function findExperiment(name: string): ClassifierExperiment {
  const e = EXPERIMENTS.find((x) => x.name === name);
  if (!e) throw new Error(`unknown experiment '${name}': expected one of ${EXPERIMENTS.map((x) => x.name).join(', ')}`);
  return e;
}
