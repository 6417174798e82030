/**
 * The SSD's conventions on the shared layers: parameter names as in its saved models and checkpoints
 * (`<layer>/kernel`, `<bn>/running_mean`), He-normal fan-in weights (or a given std for the heads), zero biases, and
 * batch-norm running statistics committed after a step (a skipped non-finite step discards them).
 */
import { BatchNorm, Conv2d } from '../../src/nn/layers.js';
import { normalInit, type ParamStore } from '../../src/nn/param-store.js';

export interface SsdConvOptions {
  kernel: number;
  stride?: number;
  dilation?: number;
  bias?: boolean;
  /** Weight init std; default He-normal. */
  std?: number;
}

export function ssdConv(store: ParamStore, name: string, cin: number, cout: number, o: SsdConvOptions): Conv2d {
  return new Conv2d(store, name, {
    inChannels: cin,
    outChannels: cout,
    kernel: o.kernel,
    stride: o.stride,
    dilation: o.dilation,
    pad: 'same',
    weightName: 'kernel',
    ...(o.std === undefined ? {} : { init: normalInit(o.std) }),
    ...(o.bias === false ? { bias: false as const } : {}),
  });
}

export function ssdBatchNorm(store: ParamStore, name: string, channels: number): BatchNorm {
  return new BatchNorm(store, name, channels, { runningStats: 'commit', bufferNames: ['running_mean', 'running_var'] });
}
