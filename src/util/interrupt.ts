/**
 * Ctrl-C and SIGTERM around training. Before the training loop first asks (`poll`), a signal ends the process at once:
 * there is no step to finish, and setup (reading data, creating the run directory) may be stuck in a system call.
 * Once the loop polls, the first SIGINT or SIGTERM asks it to stop at the next safe point, after the current step,
 * with a checkpoint from which `--resume` continues exactly; a second one exits at once.
 */
export interface StopRequest {
  /** True once a stop signal has arrived. */
  readonly requested: boolean;
  /** The signal that asked for the stop, if any. */
  readonly signal: NodeJS.Signals | null;
  /** For the training loop, before each step: from the first call on, a signal waits for the step; returns `requested`. */
  poll(): boolean;
  /** Removes the handlers (the default behaviour of the signals returns). */
  dispose(): void;
}

/** The shell's exit status of a process ended by a signal: 128 + its number. */
export function signalExitCode(signal: NodeJS.Signals): number {
  return signal === 'SIGTERM' ? 143 : 130;
}

export function watchForStop(onFirst: (signal: NodeJS.Signals) => void = () => {}): StopRequest {
  let signal: NodeJS.Signals | null = null;
  let armed = false;
  const handler = (s: NodeJS.Signals): void => {
    if (!armed) {
      process.stderr.write(`\n${s} before the first training step: exiting without a checkpoint\n`);
      process.exit(signalExitCode(s));
    }
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
    poll() {
      armed = true;
      return signal !== null;
    },
    dispose() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
