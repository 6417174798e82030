/**
 * data-params/browser: the browser entry. ESM with no Node built-ins (a browser bundler needs no polyfills): load a
 * trained detector from a URL and run it on images in a page, and the data-parameters API for training in a page.
 */
export * as tf from '@tensorflow/tfjs';
export { loadDetector, useBackend, rgbPixels, Detector, BROWSER_BACKENDS } from '../detection/web/detector.js';
export type {
  BrowserBackend,
  BackendOptions,
  LoadDetectorOptions,
  FetchResponse,
  DetectorInput,
  ImageDataLike,
  CanvasImageLike,
} from '../detection/web/detector.js';
export { detectImages, detectorInput, toImageDetection, rgbFromRgba, DETECTOR_NORMALISE } from '../detection/inference.js';
export type { ImageDetection } from '../detection/inference.js';
export { parseSSDModelJson, ssdFromArtifacts, SSD_MODEL_FORMAT } from '../detection/model/model-json.js';
export type { SSDModelJson } from '../detection/model/model-json.js';
export { buildSSD } from '../detection/model/build.js';
export type { SSDSpec, BackboneSpec } from '../detection/model/build.js';
export { SSD } from '../detection/model/ssd.js';
export type { Detection } from '../detection/postprocess.js';
export type { RawImage } from '../datasets/pipeline/types.js';
export * from './data-parameters/index.js';
export { Rng } from './util/rng.js';
