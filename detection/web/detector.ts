/**
 * A trained detector in a web page: `loadDetector(url)` fetches `model.json` and its weights, rebuilds the SSD and
 * returns a Detector whose `detect` takes an HTMLImageElement, ImageBitmap, canvas, ImageData or tensor and returns
 * boxes in the image's pixels. Pixels go through `detectImages`, the code `train-detector predict` runs in Node
 * (same resize, normalisation, decoding and NMS). No Node APIs; it also runs in Node with a tensor or ImageData-like
 * input and an absolute URL.
 */
import * as tf from '@tensorflow/tfjs';
import type { RawImage } from '../../datasets/pipeline/types.js';
import { detectImages, rgbFromRgba, type ImageDetection } from '../inference.js';
import type { InputSize } from '../anchors/anchor-generator.js';
import type { SSDSpec } from '../model/build.js';
import { parseSSDModelJson, ssdFromArtifacts, ssdWeightsFile, SSD_MODEL_FORMAT } from '../model/model-json.js';
import type { SSD } from '../model/ssd.js';

export type BrowserBackend = 'webgl' | 'webgpu' | 'wasm' | 'cpu';
export const BROWSER_BACKENDS: readonly BrowserBackend[] = ['webgl', 'webgpu', 'wasm', 'cpu'];

export interface BackendOptions {
  /** Default 'webgl'. 'wasm' and 'webgpu' load their tfjs backend on first use. */
  backend?: BrowserBackend;
  /** Folder (URL ending in '/') that serves tfjs-backend-wasm's .wasm files; needed for 'wasm' unless they sit next to the script. */
  wasmPaths?: string;
}

export interface LoadDetectorOptions extends BackendOptions {
  /** Injected fetch (default: the global one). */
  fetch?: (url: string) => Promise<FetchResponse>;
}

/** What the loader reads of a fetch Response. */
export interface FetchResponse {
  ok: boolean;
  status: number;
  statusText: string;
  text(): Promise<string>;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/** ImageData or anything with RGBA bytes in the same layout. */
export interface ImageDataLike {
  readonly data: Uint8ClampedArray | Uint8Array;
  readonly width: number;
  readonly height: number;
}

/** An HTMLImageElement, ImageBitmap, HTMLCanvasElement, OffscreenCanvas or HTMLVideoElement: what a 2D canvas draws. */
export interface CanvasImageLike {
  readonly width: number;
  readonly height: number;
  readonly naturalWidth?: number;
  readonly naturalHeight?: number;
  readonly videoWidth?: number;
  readonly videoHeight?: number;
}

/** Images `detect` takes; a tensor is [H, W, 3 or 4] (or [1, H, W, 3 or 4]) of 0-255 values, as tf.browser.fromPixels gives. */
export type DetectorInput = CanvasImageLike | ImageDataLike | tf.Tensor;

interface Context2D {
  drawImage(image: unknown, dx: number, dy: number): void;
  getImageData(sx: number, sy: number, sw: number, sh: number): ImageDataLike;
}
interface CanvasLike {
  getContext(kind: '2d', options?: { willReadFrequently?: boolean }): Context2D | null;
}
interface BrowserGlobals {
  OffscreenCanvas?: new (width: number, height: number) => CanvasLike;
  document?: { createElement(tag: 'canvas'): CanvasLike & { width: number; height: number } };
  location?: { href: string };
  fetch?: (url: string) => Promise<FetchResponse>;
}
const browser = globalThis as unknown as BrowserGlobals;

/** Makes `backend` tfjs's active backend, loading the wasm or WebGPU backend first; throws if the browser lacks it. */
export async function useBackend(options: BackendOptions = {}): Promise<void> {
  const name = options.backend ?? 'webgl';
  if (!BROWSER_BACKENDS.includes(name)) throw new Error(`unknown backend '${String(name)}' (expected ${BROWSER_BACKENDS.join(', ')})`);
  if (name === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    // The paths are read when the backend first starts; later calls would throw.
    if (options.wasmPaths !== undefined && tf.engine().registry['wasm'] === undefined) wasm.setWasmPaths(options.wasmPaths);
  } else if (name === 'webgpu') {
    await import('@tensorflow/tfjs-backend-webgpu');
  }
  let reason = '';
  let ok = false;
  try {
    ok = await tf.setBackend(name);
  } catch (err) {
    reason = ` (${err instanceof Error ? err.message : String(err)})`;
  }
  if (!ok) throw new Error(`the '${name}' backend could not start here${reason}; choose another of ${BROWSER_BACKENDS.filter((b) => b !== name).join(', ')}`);
  await tf.ready();
}

function absoluteUrl(url: string): string {
  try {
    return new URL(url, browser.location?.href).href;
  } catch {
    throw new Error(`${url}: not a URL${browser.location ? '' : ' (outside a page, give an absolute URL)'}`);
  }
}

async function fetchOk(fetchFn: (url: string) => Promise<FetchResponse>, url: string, expected: string): Promise<FetchResponse> {
  let res: FetchResponse;
  try {
    res = await fetchFn(url);
  } catch (err) {
    throw new Error(`${url}: cannot fetch (${err instanceof Error ? err.message : String(err)}); expected ${expected}`);
  }
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}${res.statusText ? ' ' + res.statusText : ''}; expected ${expected}`);
  return res;
}

/** A loaded detector. `detect` may be called concurrently; `dispose` frees its weights. */
export class Detector {
  constructor(
    readonly model: SSD,
    readonly spec: SSDSpec,
    /** Where model.json came from. */
    readonly url: string,
  ) {}

  get classNames(): readonly string[] {
    return this.spec.classNames;
  }

  get inputSize(): InputSize {
    return this.spec.inputSize;
  }

  /** Detections of one image, best first, boxes in its pixels (any size: it is resized to the input as in predict). */
  async detect(input: DetectorInput, options: { minScore?: number } = {}): Promise<ImageDetection[]> {
    const image = await rgbPixels(input);
    const [dets] = await detectImages(this.model, this.spec.classNames, [image]);
    return options.minScore === undefined ? dets! : dets!.filter((d) => d.score >= options.minScore!);
  }

  dispose(): void {
    this.model.dispose();
  }
}

/**
 * Fetches `url` (model.json, or the folder holding it when it ends in '/') and the weights file it names (relative to
 * it), and rebuilds the detector on the chosen backend.
 */
export async function loadDetector(url: string, options: LoadDetectorOptions = {}): Promise<Detector> {
  await useBackend(options);
  const fetchFn = options.fetch ?? browser.fetch;
  if (!fetchFn) throw new Error('loadDetector: no fetch in this environment (pass options.fetch)');
  const modelUrl = absoluteUrl(url.endsWith('/') ? url + 'model.json' : url);
  const res = await fetchOk(fetchFn, modelUrl, `a model.json written by data-params (format '${SSD_MODEL_FORMAT}')`);
  const json = parseSSDModelJson(await res.text(), modelUrl);
  const weightsUrl = new URL(ssdWeightsFile(json), modelUrl).href;
  const weights = await (await fetchOk(fetchFn, weightsUrl, `the weights file listed in ${modelUrl}`)).arrayBuffer();
  const { model, spec } = ssdFromArtifacts(json, weights, modelUrl, weightsUrl);
  return new Detector(model, spec, modelUrl);
}

function isImageData(x: DetectorInput): x is ImageDataLike {
  const d = (x as { data?: unknown }).data;
  return d instanceof Uint8ClampedArray || d instanceof Uint8Array;
}

/** RGB bytes of any DetectorInput. */
export async function rgbPixels(input: DetectorInput): Promise<RawImage> {
  if (input instanceof tf.Tensor) {
    const shape = input.shape.length === 4 && input.shape[0] === 1 ? input.shape.slice(1) : input.shape;
    const [h, w, c] = shape;
    if (shape.length !== 3 || (c !== 3 && c !== 4) || !h || !w) {
      throw new Error(`detect: a tensor image must be [height, width, 3 or 4] (or [1, height, width, 3 or 4]), got [${input.shape.join(', ')}]`);
    }
    const values = await input.data();
    const bytes = new Uint8Array(values.length);
    for (let i = 0; i < values.length; i++) bytes[i] = Math.round(Math.min(255, Math.max(0, Number(values[i]))));
    return c === 4 ? rgbFromRgba(bytes, w, h, 'tensor') : { data: bytes, width: w, height: h };
  }
  if (isImageData(input)) return rgbFromRgba(input.data, input.width, input.height, 'ImageData');
  const w = input.naturalWidth || input.videoWidth || input.width;
  const h = input.naturalHeight || input.videoHeight || input.height;
  if (!(w > 0 && h > 0)) throw new Error('detect: the image has no size yet (not loaded? await img.decode() first)');
  let canvas: CanvasLike;
  if (browser.OffscreenCanvas) {
    canvas = new browser.OffscreenCanvas(w, h);
  } else if (browser.document) {
    const el = browser.document.createElement('canvas');
    el.width = w;
    el.height = h;
    canvas = el;
  } else {
    throw new Error('detect: no canvas here to read an image element from; pass ImageData or a tensor');
  }
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new Error('detect: no 2D canvas context');
  ctx.drawImage(input, 0, 0);
  const data = ctx.getImageData(0, 0, w, h);
  return rgbFromRgba(data.data, w, h, 'canvas');
}
