/**
 * A page for running `@shoal/secagg` itself in Chromium (test/browser/x25519-webcrypto.test.ts,
 * test/browser/ed25519-webcrypto.test.ts and bench/secagg-client-browser.bench.ts): a loopback HTTP server on port 0 (127.0.0.1 is a secure
 * context, so `crypto.subtle` exists) serving an empty document at `/` and, at `/secagg.js`, the
 * package bundled for browsers from its sources by esbuild, with `createSeededRandom` from
 * `@shoal/protocol` for repeatable randomness. A page loads it with `await import('/secagg.js')`.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'];

export interface SecAggPageServer {
  /** `http://127.0.0.1:<port>/`. */
  readonly url: string;
  close(): Promise<void>;
}

/** Bundles the package and starts the server; the caller closes it. */
export async function startSecAggPageServer(): Promise<SecAggPageServer> {
  const bundled = await build({
    stdin: { contents: "export * from '@shoal/secagg';\nexport { createSeededRandom } from '@shoal/protocol';\n", resolveDir: ROOT, loader: 'ts' },
    bundle: true,
    write: false,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    conditions: ['shoal-source', 'browser'],
    logLevel: 'silent',
  });
  const script = bundled.outputFiles[0]!.contents;
  const server = createServer((request, response) => {
    if (request.url === '/secagg.js') {
      response.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
    } else if (request.url === '/') {
      response.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>secagg</title>');
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
  };
}

/**
 * Evaluates `expression` (source text of an async expression, so nothing of the caller's transpiled
 * code leaks in) in a fresh page of headless Chromium that can import '/secagg.js', and closes the
 * page, the browser and the server whatever happens. Returns its value and Chromium's version.
 */
export async function evaluateInSecAggPage<T>(expression: string): Promise<{ readonly value: T; readonly chromium: string }> {
  const server = await startSecAggPageServer();
  try {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    try {
      const page = await browser.newPage();
      await page.goto(server.url);
      return { value: (await page.evaluate(expression)) as T, chromium: browser.version() };
    } finally {
      await browser.close();
    }
  } finally {
    await server.close();
  }
}
