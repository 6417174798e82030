/**
 * An SSD from a JSON-serialisable description (what configs and saved models store). The constructors stay the API;
 * this only maps a description to them.
 */
import { Rng } from '../../src/util/rng.js';
import { AnchorGenerator, type AnchorGeneratorOptions, type InputSize } from '../anchors/anchor-generator.js';
import { BoxCoder, type BoxCoderOptions } from '../box-coder.js';
import { Matcher, type MatcherOptions } from '../matcher.js';
import { MultiBoxLoss, type MultiBoxLossOptions } from '../loss.js';
import { Postprocessor, type PostprocessOptions } from '../postprocess.js';
import { LightBackbone, type LightBackboneOptions } from './backbones/light.js';
import { Vgg16ReducedBackbone, type Vgg16ReducedOptions } from './backbones/vgg16-reduced.js';
import type { Backbone } from './backbones/backbone.js';
import { ParamStore } from '../../src/nn/param-store.js';
import { SSD } from './ssd.js';

export type BackboneSpec = ({ type: 'light' } & LightBackboneOptions) | ({ type: 'vgg16-reduced' } & Vgg16ReducedOptions);

export interface SSDSpec {
  backbone: BackboneSpec;
  inputSize: InputSize;
  /** Object classes without background, e.g. ['car']. */
  classNames: string[];
  anchors: AnchorGeneratorOptions;
  boxCoder?: BoxCoderOptions;
  matcher?: MatcherOptions;
  loss?: MultiBoxLossOptions;
  postprocess?: PostprocessOptions;
}

export function buildBackbone(spec: BackboneSpec, store: ParamStore): Backbone {
  switch (spec.type) {
    case 'light':
      return new LightBackbone(store, spec);
    case 'vgg16-reduced':
      return new Vgg16ReducedBackbone(store, spec);
    default:
      throw new Error(`unknown backbone type '${(spec as { type: string }).type}' (expected light or vgg16-reduced)`);
  }
}

/** Builds an SSD whose initial weights are fixed by `seed`. */
export function buildSSD(spec: SSDSpec, seed: number): SSD {
  const store = new ParamStore(new Rng(seed));
  return new SSD({
    backbone: buildBackbone(spec.backbone, store),
    anchorGenerator: new AnchorGenerator(spec.anchors),
    boxCoder: new BoxCoder(spec.boxCoder),
    matcher: new Matcher(spec.matcher),
    loss: new MultiBoxLoss(spec.loss),
    postprocess: new Postprocessor(spec.postprocess),
    numClasses: spec.classNames.length + 1,
    inputSize: spec.inputSize,
  });
}
