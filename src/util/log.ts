/** Human-readable log lines on stderr (stdout stays free for machine-readable output such as JSON). */
export type Logger = (message: string) => void;

export const stderrLogger: Logger = (message) => {
  process.stderr.write(`${message}\n`);
};

export const silentLogger: Logger = () => {};
