/**
 * A local static server for a trained detector's demo page: on 127.0.0.1 only, it serves the run directory (the
 * model folder with its demo page, the curriculum report, the run records) and, under BROWSER_ASSETS, the browser
 * bundle and wasm binaries. Cross-origin isolation headers let the wasm backend use threads. Nothing outside those
 * two folders is reachable (`..`, symbolic links out of them and dot files are refused).
 */
import { createReadStream, existsSync, promises as fs, realpathSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MANIFEST_FILE } from '../../src/records/run-records.js';
import { parseSSDModelJson } from '../model/model-json.js';
import { BROWSER_ASSETS, BROWSER_BUNDLE, demoPageHtml } from './demo-page.js';

/** Where `npm run build` puts the browser bundle (tools/bundle-browser.ts) and the .wasm files: dist/browser. */
export const BROWSER_DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../browser');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.jsonl': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.svg': 'image/svg+xml',
  '.wasm': 'application/wasm',
  '.bin': 'application/octet-stream',
};

export interface ServeOptions {
  /** A model folder (model.json, weights.bin) or a run directory holding one in `model/`. */
  model: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** The browser bundle's folder (default: this package's dist/browser). */
  assets?: string;
}

export interface ModelServer {
  /** Base URL, e.g. http://127.0.0.1:8080/ */
  url: string;
  /** The demo page's URL. */
  demo: string;
  /** The curriculum report's URL, or null when the run has none. */
  report: string | null;
  /** The folder served at `/`. */
  root: string;
  close(): Promise<void>;
}

/** Where a model folder sits: the folder served at `/` and the model's path under it. */
export function modelLayout(dir: string): { root: string; modelPath: string } {
  const d = path.resolve(dir);
  if (existsSync(path.join(d, 'model.json'))) {
    // Serve the run around the model (for its curriculum report), never an arbitrary parent folder.
    const parent = path.dirname(d);
    return existsSync(path.join(parent, MANIFEST_FILE)) ? { root: parent, modelPath: path.basename(d) + '/' } : { root: d, modelPath: '' };
  }
  if (existsSync(path.join(d, 'model', 'model.json'))) return { root: d, modelPath: 'model/' };
  throw new Error(`${dir}: no model.json here or in ${path.join(dir, 'model')} (a model folder written by train-detector)`);
}

function inside(root: string, file: string): boolean {
  return file === root || file.startsWith(root + path.sep);
}

export async function serveModel(o: ServeOptions): Promise<ModelServer> {
  const { root: rootDir, modelPath } = modelLayout(o.model);
  const assetsDir = o.assets ?? BROWSER_DIST;
  if (!existsSync(path.join(assetsDir, BROWSER_BUNDLE))) {
    throw new Error(`${path.join(assetsDir, BROWSER_BUNDLE)}: the browser bundle is missing (build it: npm run build)`);
  }
  const root = realpathSync(rootDir);
  const assets = realpathSync(assetsDir);
  const modelDir = path.join(root, modelPath);

  /** The file a URL path names, or null. */
  const resolve = async (urlPath: string): Promise<string | null> => {
    let rel: string;
    try {
      rel = decodeURIComponent(urlPath);
    } catch {
      return null;
    }
    if (rel.includes('\0') || rel.split('/').some((part) => part.startsWith('.'))) return null;
    const [base, sub] = rel.startsWith(BROWSER_ASSETS) ? [assets, rel.slice(BROWSER_ASSETS.length)] : [root, rel.slice(1)];
    let file = path.resolve(base, sub);
    if (!inside(base, file)) return null;
    try {
      file = await fs.realpath(file);
      if (!inside(base, file)) return null;
      if ((await fs.stat(file)).isDirectory()) {
        file = path.join(file, 'index.html');
        await fs.access(file);
      }
      return file;
    } catch {
      return null;
    }
  };

  const headers = (type: string): Record<string, string> => ({
    'Content-Type': type,
    'Cache-Control': 'no-cache',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Embedder-Policy': 'require-corp',
    'X-Content-Type-Options': 'nosniff',
  });
  const send = (res: ServerResponse, status: number, type: string, body: string | Buffer | null, headOnly: boolean): void => {
    res.writeHead(status, headers(type));
    res.end(headOnly ? undefined : body ?? undefined);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const headOnly = req.method === 'HEAD';
    if (req.method !== 'GET' && !headOnly) return send(res, 405, 'text/plain; charset=utf-8', 'only GET and HEAD\n', false);
    const urlPath = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    if (urlPath === '/') {
      res.writeHead(302, { Location: `/${modelPath}` });
      res.end();
      return;
    }
    const file = await resolve(urlPath);
    if (!file) {
      // A model saved before demo pages existed still gets one.
      if (urlPath === `/${modelPath}` || urlPath === `/${modelPath}index.html`) {
        const json = parseSSDModelJson(await fs.readFile(path.join(modelDir, 'model.json'), 'utf8'), path.join(modelDir, 'model.json'));
        return send(res, 200, TYPES['.html']!, demoPageHtml(json.modelTopology.spec), headOnly);
      }
      return send(res, 404, 'text/plain; charset=utf-8', `not found: ${urlPath}\n`, headOnly);
    }
    const type = TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
    if (headOnly) return send(res, 200, type, null, true);
    res.writeHead(200, headers(type));
    createReadStream(file).on('error', () => res.destroy()).pipe(res);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `${err instanceof Error ? err.message : String(err)}\n`, false);
      else res.destroy();
    });
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(o.port ?? 8080, '127.0.0.1', () => ok());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}/`;
  return {
    url,
    demo: `${url}${modelPath}`,
    report: existsSync(path.join(root, 'curriculum', 'index.html')) ? `${url}curriculum/` : null,
    root,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
