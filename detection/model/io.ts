/**
 * Saving and loading a trained SSD in Node: `model.json` (a tfjs ModelJSON, see model-json.ts) next to one
 * `weights.bin` written with tf.io.encodeWeights, and the demo page (`index.html`) that runs the model in a browser.
 * The model is built from ops, not tf.layers: tf.loadLayersModel cannot rebuild it, `loadSSD` (and the browser
 * entry's `loadDetector`) do; any tfjs tool that reads weight manifests (tf.io.loadWeights, converters) reads the
 * weights.
 */
import * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../../src/util/atomic-file.js';
import { demoPageHtml } from '../web/demo-page.js';
import type { SSDSpec } from './build.js';
import { parseSSDModelJson, ssdFromArtifacts, ssdModelJson, ssdWeightsFile } from './model-json.js';
import type { SSD } from './ssd.js';

export { SSD_MODEL_FORMAT } from './model-json.js';

export const WEIGHTS_FILE = 'weights.bin';
export const DEMO_PAGE_FILE = 'index.html';

export async function saveSSD(model: SSD, spec: SSDSpec, dir: string, metadata: Record<string, unknown> = {}): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  const named: tf.NamedTensorMap = {};
  for (const [k, v] of [...model.params.trainable, ...model.params.buffers]) named[k] = v;
  const { data, specs } = await tf.io.encodeWeights(named);
  await writeFileAtomic(path.join(dir, WEIGHTS_FILE), new Uint8Array(data));
  await writeFileAtomic(path.join(dir, 'model.json'), JSON.stringify(ssdModelJson(spec, specs, WEIGHTS_FILE, metadata), null, 1));
  await writeFileAtomic(path.join(dir, DEMO_PAGE_FILE), demoPageHtml(spec));
}

/** Loads a model saved by saveSSD (`file` is model.json or its folder). */
export async function loadSSD(file: string): Promise<{ model: SSD; spec: SSDSpec }> {
  const jsonPath = file.endsWith('.json') ? file : path.join(file, 'model.json');
  let text: string;
  try {
    text = await fs.readFile(jsonPath, 'utf8');
  } catch (err) {
    throw new Error(`${jsonPath}: cannot read the model (${(err as Error).message})`);
  }
  const json = parseSSDModelJson(text, jsonPath);
  const weightsPath = path.join(path.dirname(jsonPath), ssdWeightsFile(json));
  let buf: Buffer;
  try {
    buf = await fs.readFile(weightsPath);
  } catch (err) {
    throw new Error(`${weightsPath}: cannot read the weights (${(err as Error).message})`);
  }
  return ssdFromArtifacts(json, buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer, jsonPath, weightsPath);
}
