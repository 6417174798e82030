/**
 * Bundles the browser entry (dist/src/browser.js, compiled) with esbuild for the browser platform into
 * dist/browser/: `data-params.js` (ESM, tfjs included), chunks for the wasm and WebGPU backends (loaded on first use)
 * and tfjs-backend-wasm's .wasm binaries, which is what `train-detector serve` serves to the demo pages. Bundling for
 * the browser platform is also the check that the entry pulls in no Node built-in: esbuild fails on one, and so does
 * this. Run after tsc (`npm run build` and `npm test` do): `node dist/tools/bundle-browser.js`.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as esbuild from 'esbuild';
import { BROWSER_BUNDLE } from '../detection/web/demo-page.js';
import { BROWSER_DIST } from '../detection/web/serve.js';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The compiled browser entry. */
export const BROWSER_ENTRY = path.join(DIST, 'src', 'browser.js');

const NODE_BUILTIN = new RegExp(`^(node:.*|${builtinModules.map((m) => m.replace(/[/]/g, '\\/')).join('|')})(\\/.*)?$`);

/**
 * Fails the build on any import of a Node built-in from this package's code. (Dependencies' imports are left to
 * esbuild, which maps them through their package's `browser` field, e.g. tfjs-backend-wasm's guarded `fs`, and fails on
 * any it cannot.)
 */
const noNodeBuiltins: esbuild.Plugin = {
  name: 'no-node-builtins',
  setup(build) {
    build.onResolve({ filter: NODE_BUILTIN }, (args) =>
      args.importer.split(path.sep).includes('node_modules')
        ? undefined
        : { errors: [{ text: `Node built-in '${args.path}' imported by ${path.relative(process.cwd(), args.importer)}: the browser entry must not use Node APIs` }] },
    );
  },
};

export interface BundleResult {
  /** Output files (relative to outdir) and their sizes in bytes. */
  files: Record<string, number>;
  /** Source modules in the bundle (paths relative to the working directory, as esbuild names them). */
  inputs: string[];
}

/** Bundles `entry` for the browser into `outdir` (or only in memory when outdir is null). */
export async function bundleBrowser(options: { entry?: string; outdir: string | null }): Promise<BundleResult> {
  const { build } = (await import('esbuild'));
  const outdir = options.outdir ?? path.join(DIST, 'browser-check');
  const result = await build({
    entryPoints: { [BROWSER_BUNDLE.replace(/\.js$/, '')]: options.entry ?? BROWSER_ENTRY },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    minify: true,
    metafile: true,
    write: options.outdir !== null,
    outdir,
    logLevel: 'silent',
    plugins: [noNodeBuiltins],
  });
  const files: Record<string, number> = {};
  for (const [file, out] of Object.entries(result.metafile.outputs)) files[path.relative(outdir, file)] = out.bytes;
  return { files, inputs: Object.keys(result.metafile.inputs) };
}

/** The .wasm binaries of tfjs-backend-wasm (the browser fetches them from next to the bundle). */
export function wasmBinaries(): string[] {
  const require = createRequire(import.meta.url);
  const dir = path.dirname(realpathSync(require.resolve('@tensorflow/tfjs-backend-wasm')));
  const files = readdirSync(dir).filter((f) => f.endsWith('.wasm'));
  if (files.length === 0) throw new Error(`${dir}: no .wasm files of @tensorflow/tfjs-backend-wasm`);
  return files.map((f) => path.join(dir, f));
}

async function main(): Promise<void> {
  const t0 = Date.now();
  if (existsSync(BROWSER_DIST)) rmSync(BROWSER_DIST, { recursive: true });
  mkdirSync(BROWSER_DIST, { recursive: true });
  const { files } = await bundleBrowser({ outdir: BROWSER_DIST });
  for (const f of wasmBinaries()) copyFileSync(f, path.join(BROWSER_DIST, path.basename(f)));
  const kb = Object.values(files).reduce((a, b) => a + b, 0) / 1024;
  process.stderr.write(`browser bundle: ${path.relative(process.cwd(), BROWSER_DIST)}/${BROWSER_BUNDLE} and ${Object.keys(files).length - 1} chunks (${kb.toFixed(0)} KiB) in ${Date.now() - t0} ms\n`);
}

if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
  main().catch((err: unknown) => {
    process.stderr.write(`browser bundle: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
