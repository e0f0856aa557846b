// The example's web server (node:http, no framework): the page, its scripts, the Shoal browser
// bundle, tfjs's .wasm binaries, each page's local data and the coordinator's round history.
import { createServer, type ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBrowserBundles } from '../../scripts/build-browser.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = join(HERE, '..', '..');
const WASM_DIR = join(REPO_ROOT, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');
/** The only .wasm files served; anything else under /wasm/ is a 404 (no path from the URL reaches the disk). */
const WASM_FILES = new Set(['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm']);
const PAGE_FILES: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/worker.js': { file: 'worker.js', type: 'text/javascript; charset=utf-8' },
};

/** One page's local examples, as the page's `ShoalClient` takes them. */
export interface PageData {
  readonly x: Float32Array;
  readonly y: Int32Array;
  readonly featureShape: readonly number[];
}

export interface ExampleServerOptions {
  /** The coordinator's WebSocket URL the pages connect to. */
  readonly coordinatorUrl: string;
  /** The token the pages present (a real app would get one per user from its backend). */
  readonly token: string;
  /** Local data of page `?client=<n>`, served as `/data/<n>.json`. */
  readonly partitions: readonly PageData[];
  /** What `/status.json` returns (the coordinator's round history); polled by the page. */
  readonly status: () => unknown;
  /** Where the browser bundle is built. Default `<repo>/dist/browser`. */
  readonly bundleDir?: string;
}

export interface ExampleServer {
  /** e.g. `http://127.0.0.1:43210/`; open `${url}?client=0` (add `&worker=1` to train in a Web Worker). */
  readonly url: string;
  close(): Promise<void>;
}

/** Builds the browser bundle, then serves the example on 127.0.0.1 and an OS-chosen port. */
export async function startExampleServer(options: ExampleServerOptions): Promise<ExampleServer> {
  const { full } = await buildBrowserBundles(options.bundleDir);
  const bundle = await readFile(full.file);
  const config = JSON.stringify({ coordinatorUrl: options.coordinatorUrl, token: options.token });
  // Serialised once: the data does not change while the example runs.
  const data = options.partitions.map((p) => JSON.stringify({ featureShape: p.featureShape, x: Array.from(p.x), y: Array.from(p.y) }));

  const server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    void route(path, response).catch((error: unknown) => send(response, 500, 'text/plain', `error: ${String(error)}`));
  });

  async function route(path: string, response: ServerResponse): Promise<void> {
    const page = PAGE_FILES[path];
    if (page !== undefined) return send(response, 200, page.type, await readFile(join(HERE, page.file)));
    if (path === '/shoal-client.js') return send(response, 200, 'text/javascript; charset=utf-8', bundle);
    if (path === '/config.json') return send(response, 200, 'application/json', config);
    if (path === '/status.json') return send(response, 200, 'application/json', JSON.stringify(options.status()));
    const wasm = /^\/wasm\/([\w.-]+)$/.exec(path)?.[1];
    // application/wasm lets the browser compile the binary while it downloads (instantiateStreaming).
    if (wasm !== undefined && WASM_FILES.has(wasm)) return send(response, 200, 'application/wasm', await readFile(join(WASM_DIR, wasm)));
    const index = /^\/data\/(\d+)\.json$/.exec(path)?.[1];
    const partition = index === undefined ? undefined : data[Number(index)];
    if (partition !== undefined) return send(response, 200, 'application/json', partition);
    send(response, 404, 'text/plain', `not found: ${path}`);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('example server: no TCP address');
  return {
    url: `http://127.0.0.1:${address.port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function send(response: ServerResponse, status: number, type: string, body: string | Buffer): void {
  // The page polls /status.json; nothing here should be cached between runs.
  response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  response.end(body);
}
