/**
 * `npm run bench [-- --only NAME] [-- --backend NAME]`: runs every benchmark module in this folder (files named
 * `*.bench.js` after compilation) and prints one JSON object per line:
 * {"bench": NAME, "backend": ..., "value": ..., "unit": ...} (extra fields allowed, e.g. a ratio).
 */
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface BenchResult {
  bench: string;
  backend: string;
  /** null when the measurement failed (the line then says why). */
  value: number | null;
  unit: string;
  [extra: string]: unknown;
}

export interface BenchContext {
  /** Backend asked for on the command line (default auto). */
  backend: string;
  /** Free-form `--key value` options from the command line. */
  options: Record<string, string>;
  emit(result: BenchResult): void;
}

export interface BenchModule {
  /** Names this module can produce (matched by --only). */
  names: string[];
  run(ctx: BenchContext, only: string | null): Promise<void>;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const options: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument '${a}'`);
    const key = a.slice(2);
    const value = args[i + 1] && !args[i + 1]!.startsWith('--') ? args[++i]! : 'true';
    options[key] = value;
  }
  const only = options['only'] ?? null;
  const dir = path.dirname(fileURLToPath(import.meta.url));
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.bench.js'))
    .sort();
  const ctx: BenchContext = {
    backend: options['backend'] ?? 'auto',
    options,
    emit: (r) => process.stdout.write(JSON.stringify(r) + '\n'),
  };
  let ran = 0;
  for (const f of files) {
    const mod = (await import(pathToFileURL(path.join(dir, f)).href)) as BenchModule;
    if (only !== null && !mod.names.includes(only)) continue;
    await mod.run(ctx, only);
    ran++;
  }
  if (ran === 0) {
    throw new Error(only === null ? 'no benchmarks found' : `no benchmark named '${only}'`);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
