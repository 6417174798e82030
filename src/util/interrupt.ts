/**
 * Ctrl-C during training: the first SIGINT (or SIGTERM) asks the loop to stop at the next safe point, after the
 * current step, with a checkpoint from which `--resume` continues exactly; a second one exits at once.
 */
export interface StopRequest {
  /** True once a stop signal has arrived. */
  readonly requested: boolean;
  /** The signal that asked for the stop, if any. */
  readonly signal: NodeJS.Signals | null;
  /** Removes the handlers (the default behaviour of the signals returns). */
  dispose(): void;
}

export function watchForStop(onFirst: (signal: NodeJS.Signals) => void = () => {}): StopRequest {
  let signal: NodeJS.Signals | null = null;
  const handler = (s: NodeJS.Signals): void => {
    if (signal !== null) {
      process.stderr.write(`\n${s} again: exiting without a checkpoint\n`);
      process.exit(130);
    }
    signal = s;
    onFirst(s);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    get requested() {
      return signal !== null;
    },
    get signal() {
      return signal;
    },
    dispose() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
