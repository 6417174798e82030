/**
 * The saved SSD's two files, `model.json` and its weights, as text and bytes: parsed, checked and turned into an SSD
 * with no file-system or network access, so that `loadSSD` (files, Node) and the browser entry (fetch) share it.
 *
 * `model.json` is a tfjs ModelJSON (`format`, `generatedBy`, `modelTopology`, `weightsManifest`). The model is built
 * from ops, not tf.layers, so `modelTopology` holds our SSDSpec (format 'data-params-ssd') instead of a Keras or
 * TensorFlow graph; the weights are plain tfjs weight manifests (tf.io.encodeWeights).
 */
import * as tf from '@tensorflow/tfjs';
import { buildSSD, type SSDSpec } from './build.js';
import type { SSD } from './ssd.js';

export const SSD_MODEL_FORMAT = 'data-params-ssd';

export interface SSDModelJson {
  format: string;
  generatedBy: string;
  convertedBy: null;
  modelTopology: { spec: SSDSpec };
  /** One group with one weights file (parseSSDModelJson checks this). */
  weightsManifest: [{ paths: [string]; weights: tf.io.WeightsManifestEntry[] }];
  userDefinedMetadata?: Record<string, unknown>;
}

export function ssdModelJson(spec: SSDSpec, weights: tf.io.WeightsManifestEntry[], weightsFile: string, metadata: Record<string, unknown>): SSDModelJson {
  return {
    format: SSD_MODEL_FORMAT,
    generatedBy: `data-params (tfjs ${tf.version_core})`,
    convertedBy: null,
    modelTopology: { spec },
    weightsManifest: [{ paths: [weightsFile], weights }],
    userDefinedMetadata: metadata,
  };
}

const EXPECTED = `a model.json written by data-params (format '${SSD_MODEL_FORMAT}')`;

/** Parses and checks `model.json` text; `file` names it in errors (a path or a URL). */
export function parseSSDModelJson(text: string, file: string): SSDModelJson {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not JSON (${(err as Error).message}); expected ${EXPECTED}`);
  }
  const j = json as Partial<SSDModelJson> | null;
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new Error(`${file}: not a JSON object; expected ${EXPECTED}`);
  if (j.format !== SSD_MODEL_FORMAT) {
    const other = j.format === undefined ? 'no format field' : `format '${String(j.format)}'`;
    const hint = j.format === 'layers-model' || j.format === 'graph-model' ? ' (a tf.loadLayersModel / tf.loadGraphModel model, not a data-params SSD)' : '';
    throw new Error(`${file}: ${other}${hint}; expected ${EXPECTED}`);
  }
  const spec = j.modelTopology?.spec;
  if (typeof spec !== 'object' || spec === null || typeof spec.inputSize !== 'object' || !Array.isArray(spec.classNames)) {
    throw new Error(`${file}: modelTopology.spec is missing or has no inputSize / classNames; expected ${EXPECTED}`);
  }
  const group = j.weightsManifest?.[0];
  if (!group || !Array.isArray(group.paths) || group.paths.length !== 1 || !Array.isArray(group.weights)) {
    throw new Error(`${file}: weightsManifest must hold one group with one path and its weights; expected ${EXPECTED}`);
  }
  return j as SSDModelJson;
}

/** The weights file named by a checked model.json, relative to it. */
export function ssdWeightsFile(json: SSDModelJson): string {
  return json.weightsManifest[0].paths[0];
}

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

/** Bytes the manifest's weights take (unquantised float32 / int32 / bool, as tf.io.encodeWeights writes them). */
export function manifestByteLength(entries: readonly tf.io.WeightsManifestEntry[], file: string): number {
  let n = 0;
  for (const e of entries) {
    const bytes = e.quantization ? undefined : DTYPE_BYTES[e.dtype];
    if (bytes === undefined) throw new Error(`${file}: weight '${e.name}' is ${e.quantization ? 'quantised' : e.dtype}; expected float32, int32 or bool`);
    n += e.shape.reduce((a, b) => a * b, 1) * bytes;
  }
  return n;
}

/**
 * An SSD from a checked model.json and the bytes of its weights file (`weightsFile` names it in errors). The weights
 * must be exactly the manifest's size and hold every parameter of the spec's network.
 */
export function ssdFromArtifacts(json: SSDModelJson, weights: ArrayBuffer, jsonFile: string, weightsFile: string): { model: SSD; spec: SSDSpec } {
  const entries = json.weightsManifest[0].weights;
  const expected = manifestByteLength(entries, jsonFile);
  if (weights.byteLength !== expected) {
    throw new Error(
      `${weightsFile}: ${weights.byteLength} bytes, expected ${expected} (the ${entries.length} weights listed in ${jsonFile}); ` +
        `a truncated download, or weights of another model?`,
    );
  }
  const spec = json.modelTopology.spec;
  const model = buildSSD(spec, 0);
  const tensors = tf.io.decodeWeights(weights, entries);
  try {
    const values: Record<string, Float32Array> = {};
    for (const [k, t] of Object.entries(tensors)) values[k] = t.dataSync() as Float32Array;
    model.params.restore(values, weightsFile);
  } catch (err) {
    model.dispose();
    throw err;
  } finally {
    tf.dispose(Object.values(tensors));
  }
  return { model, spec };
}
