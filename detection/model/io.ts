/**
 * Saving a trained SSD in the tfjs model format: `model.json` (a tfjs ModelJSON: `format`, `generatedBy`,
 * `modelTopology`, `weightsManifest`) next to one `weights.bin`, written with tf.io.encodeWeights. The model is
 * built from ops, not tf.layers, so `modelTopology` holds our SSDSpec (format 'data-params-ssd') instead of a Keras
 * graph: tf.loadLayersModel cannot rebuild it, `loadSSD` does; any tfjs tool that reads weight manifests
 * (tf.io.loadWeights, converters) reads the weights.
 */
import * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../../src/util/atomic-file.js';
import { buildSSD, type SSDSpec } from './build.js';
import type { SSD } from './ssd.js';

export const SSD_MODEL_FORMAT = 'data-params-ssd';

interface SSDModelJson {
  format: string;
  generatedBy: string;
  convertedBy: null;
  modelTopology: { spec: SSDSpec };
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  userDefinedMetadata?: Record<string, unknown>;
}

export async function saveSSD(model: SSD, spec: SSDSpec, dir: string, metadata: Record<string, unknown> = {}): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  const named: tf.NamedTensorMap = {};
  for (const [k, v] of [...model.params.trainable, ...model.params.buffers]) named[k] = v;
  const { data, specs } = await tf.io.encodeWeights(named);
  const json: SSDModelJson = {
    format: SSD_MODEL_FORMAT,
    generatedBy: `data-params (tfjs ${tf.version_core})`,
    convertedBy: null,
    modelTopology: { spec },
    weightsManifest: [{ paths: ['weights.bin'], weights: specs }],
    userDefinedMetadata: metadata,
  };
  await writeFileAtomic(path.join(dir, 'weights.bin'), new Uint8Array(data));
  await writeFileAtomic(path.join(dir, 'model.json'), JSON.stringify(json, null, 1));
}

/** Loads a model saved by saveSSD (`file` is model.json or its folder). */
export async function loadSSD(file: string): Promise<{ model: SSD; spec: SSDSpec }> {
  const jsonPath = file.endsWith('.json') ? file : path.join(file, 'model.json');
  let json: SSDModelJson;
  try {
    json = JSON.parse(await fs.readFile(jsonPath, 'utf8')) as SSDModelJson;
  } catch (err) {
    throw new Error(`${jsonPath}: cannot read the model (${(err as Error).message})`);
  }
  if (json.format !== SSD_MODEL_FORMAT) throw new Error(`${jsonPath}: format '${json.format}' is not '${SSD_MODEL_FORMAT}'`);
  const group = json.weightsManifest[0];
  if (!group) throw new Error(`${jsonPath}: empty weightsManifest`);
  const buf = await fs.readFile(path.join(path.dirname(jsonPath), group.paths[0]!));
  const weights = tf.io.decodeWeights(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength), group.weights);
  const spec = json.modelTopology.spec;
  const model = buildSSD(spec, 0);
  const values: Record<string, Float32Array> = {};
  for (const [k, t] of Object.entries(weights)) values[k] = t.dataSync() as Float32Array;
  model.params.restore(values, jsonPath);
  tf.dispose(Object.values(weights));
  return { model, spec };
}
