/** Config-file checks of data-parameter settings, shared by the detector's and the classifier's configs. */
import { nullable, number, object, optional, type Check } from '../util/config-schema.js';

/** σ bounds { min, max }, both > 0 (DataParameters checks min < max). */
export const sigmaBoundsCheck: Check = object({ min: number({ above: 0 }), max: number({ above: 0 }) });

/** Partial KindOptions: init, lr, momentum, weightDecay, clamp (bounds or null). */
export const kindOptionsCheck: Check = object({
  init: optional(number({ above: 0 })),
  lr: optional(number({ min: 0 })),
  momentum: optional(number({ min: 0, below: 1 })),
  weightDecay: optional(number({ min: 0 })),
  clamp: optional(nullable(sigmaBoundsCheck)),
});
