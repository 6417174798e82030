/**
 * The error every classification reader throws for bad input: it names the file and, where the format has lines, the
 * line (1-based), so that a user can open the file at the culprit.
 */
export class DatasetFormatError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | null,
    readonly reason: string,
  ) {
    super(`${file}${line === null ? '' : `:${line}`}: ${reason}`);
    this.name = 'DatasetFormatError';
  }
}
