/**
 * A progress line for training loops: a bar on a terminal (redrawn in place), plain periodic lines otherwise
 * (CI logs, files), so that long runs always show that they are alive.
 */
export interface ProgressOptions {
  total: number;
  label?: string;
  stream?: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean };
  /** Minimum seconds between plain (non-TTY) lines. */
  plainEvery?: number;
  width?: number;
}

export class ProgressBar {
  private readonly total: number;
  private readonly label: string;
  private readonly stream: NonNullable<ProgressOptions['stream']>;
  private readonly plainEvery: number;
  private readonly width: number;
  private readonly start = Date.now();
  private lastDraw = 0;
  private lastLineLength = 0;
  private current = 0;

  constructor(options: ProgressOptions) {
    this.total = Math.max(1, options.total);
    this.label = options.label ?? '';
    this.stream = options.stream ?? process.stderr;
    this.plainEvery = options.plainEvery ?? 10;
    this.width = options.width ?? 24;
  }

  /** Moves to `current` (items done) and shows `fields` (e.g. loss parts, lr, images/s). */
  update(current: number, fields: Record<string, string | number> = {}, force = false): void {
    this.current = current;
    const now = Date.now();
    const tty = Boolean(this.stream.isTTY);
    const minGap = tty ? 100 : this.plainEvery * 1000;
    if (!force && now - this.lastDraw < minGap && current < this.total) return;
    this.lastDraw = now;
    const line = this.render(fields);
    if (tty) {
      const pad = Math.max(0, this.lastLineLength - line.length);
      this.stream.write('\r' + line + ' '.repeat(pad));
      this.lastLineLength = line.length;
    } else {
      this.stream.write(line + '\n');
    }
  }

  /** Ends the bar's line. */
  done(fields: Record<string, string | number> = {}): void {
    this.update(this.current, fields, true);
    if (this.stream.isTTY) this.stream.write('\n');
  }

  private render(fields: Record<string, string | number>): string {
    const frac = Math.min(1, this.current / this.total);
    const filled = Math.round(frac * this.width);
    const bar = '#'.repeat(filled) + '-'.repeat(this.width - filled);
    const elapsed = (Date.now() - this.start) / 1000;
    const eta = frac > 0 ? (elapsed / frac) * (1 - frac) : NaN;
    const parts = Object.entries(fields).map(([k, v]) => `${k} ${typeof v === 'number' ? formatNumber(v) : v}`);
    const head = this.label ? `${this.label} ` : '';
    return `${head}[${bar}] ${this.current}/${this.total} ${formatDuration(elapsed)}<${formatDuration(eta)} ${parts.join(' ')}`.trimEnd();
  }
}

export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  if (Number.isInteger(v)) return String(v);
  return v.toFixed(a < 1 ? 4 : a < 100 ? 3 : 1);
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(r).padStart(2, '0')}` : `${m}:${String(r).padStart(2, '0')}`;
}
