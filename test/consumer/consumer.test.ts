/**
 * Shoal as an app developer installs it. Builds and packs every published workspace (`npm pack`),
 * installs the tarballs into a fresh app in a temp folder outside the repository (no workspace
 * links, no tsx, no TypeScript sources), and checks, with the fixture app in ./app:
 * - the tarballs hold built JavaScript, .d.ts and source maps, and every export points at a file;
 * - a plain Node ESM app trains two clients for 2 rounds against a coordinator;
 * - TypeScript apps type-check against the published .d.ts under "node16" and "bundler" (the
 *   browser entry also without Node's typings);
 * - esbuild bundles the browser build of `@shoal/client` (within the 60 kB gzip budget without
 *   tfjs), and the page trains a round in Chromium beside a Node client;
 * - the installed `shoal` command runs `--help`, `privacy`, `simulate` and `serve`.
 *
 * Run with `npm run test:consumer` (the last step of `npm test`). It imports no @shoal package
 * itself: everything Shoal runs in the app's own processes, from the app's node_modules.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, type BuildOptions, type BuildResult } from 'esbuild';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// The testkit's source itself: this suite runs without the "shoal-source" condition, and the testkit is not built.
import { runToCompletion, type ProcessResult } from '../../packages/testkit/src/process.js';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FIXTURE_APP = join(REPO_ROOT, 'test', 'consumer', 'app');
const TSC = join(REPO_ROOT, 'node_modules', '.bin', 'tsc');
const GZIP_BUDGET_BYTES = 60 * 1024;

/** Debian's Chromium; as in test/browser, CI (SHOAL_REQUIRE_BROWSER) fails without it, a developer machine skips that part. */
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'];
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env['SHOAL_REQUIRE_BROWSER']) {
  throw new Error(`Chromium is required (SHOAL_REQUIRE_BROWSER is set) but ${CHROMIUM} is missing: apt-get install -y chromium`);
}
if (!haveChromium) console.warn(`consumer test: the Chromium part is skipped, ${CHROMIUM} is missing (apt-get install -y chromium)`);

/** What page.js reports through `globalThis.__shoal`. */
interface PageReport {
  readonly backend?: string;
  readonly rounds?: readonly { round: number; status: string }[];
  readonly done?: boolean;
  readonly error?: string;
}

/**
 * The environment of the app's processes: ours without npm's per-script variables (`npm_*`, which
 * would point a nested npm at this repository) and NODE_OPTIONS, like a shell in a fresh app.
 */
function appEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key) && key !== 'NODE_OPTIONS'));
  return { ...env, ...extra };
}

/** Runs a command in the app's environment; after `timeoutMs` (default 60 s) its whole process group is killed. */
function run(command: string, args: readonly string[], options: { cwd: string; timeoutMs?: number; env?: Record<string, string> }): Promise<ProcessResult> {
  return runToCompletion(command, args, { cwd: options.cwd, env: appEnv(options.env), timeoutMs: options.timeoutMs ?? 60_000 });
}

/** Like `run`, but a non-zero exit fails with the command's output. */
async function mustRun(command: string, args: readonly string[], options: { cwd: string; timeoutMs?: number; env?: Record<string, string> }): Promise<ProcessResult> {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited with ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`);
  }
  return result;
}

/** The last stdout line that is a JSON object. */
function lastJsonLine(stdout: string): Record<string, unknown> {
  const line = stdout.trim().split('\n').reverse().find((text) => text.startsWith('{'));
  if (line === undefined) throw new Error(`no JSON line in:\n${stdout}`);
  return JSON.parse(line) as Record<string, unknown>;
}

/** The workspaces `npm publish` would publish: every one whose package.json is not private. */
function publishedWorkspaces(): { dir: string; name: string }[] {
  const root = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { workspaces: string[] };
  return root.workspaces
    .map((dir) => ({ dir, manifest: JSON.parse(readFileSync(join(REPO_ROOT, dir, 'package.json'), 'utf8')) as { name: string; private?: boolean } }))
    .filter(({ manifest }) => manifest.private !== true)
    .map(({ dir, manifest }) => ({ dir, name: manifest.name }));
}

/** Every file path an `exports` entry names, for every condition but the repository's "shoal-source". */
function exportTargets(entry: unknown): string[] {
  if (typeof entry === 'string') return [entry];
  if (entry === null || typeof entry !== 'object') return [];
  return Object.entries(entry).flatMap(([condition, target]) => (condition === 'shoal-source' ? [] : exportTargets(target)));
}

/** All files under `dir`, relative to it, with `/` separators. */
function filesUnder(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as import('node:fs').Dirent[])
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)).split(sep).join('/'));
}

/**
 * `tsc` diagnostics by file, except those inside tfjs's own declarations and TypeScript's DOM lib:
 * tfjs 4.22's .d.ts need the DOM typings and clash with TypeScript 7's WebGPU ones, which apps
 * avoid with `skipLibCheck` (we check with it off, so errors in Shoal's .d.ts cannot hide).
 */
function ownTypeErrors(output: string): string[] {
  const thirdParty = /^(node_modules\/@tensorflow\/|node_modules\/@webgpu\/|.*\/typescript[^/]*\/lib\/lib\.)/;
  return output
    .split('\n')
    .filter((line) => / error TS\d+:/.test(line))
    .filter((line) => !thirdParty.test(line));
}

const published = publishedWorkspaces();
let workDir: string;
let appDir: string;
let installSeconds = 0;

beforeAll(async () => {
  workDir = realpathSync(mkdtempSync(join(tmpdir(), 'shoal-consumer-')));
  const packDir = join(workDir, 'packs');
  appDir = join(workDir, 'app');
  mkdirSync(packDir);
  cpSync(FIXTURE_APP, appDir, { recursive: true });
  writeFileSync(join(appDir, 'package.json'), JSON.stringify({ name: 'shoal-consumer-app', private: true, type: 'module' }, null, 2));

  // A build from nothing (no stale output of a removed source), as `npm run build` does; `npm pack`
  // then runs each package's prepack (tsc -b, up to date by then), as `npm publish` would.
  await mustRun(process.execPath, ['scripts/clean.mjs'], { cwd: REPO_ROOT });
  await mustRun(TSC, ['-b', 'tsconfig.build.json'], { cwd: REPO_ROOT, timeoutMs: 120_000 });
  await mustRun('npm', ['pack', ...published.flatMap(({ dir }) => ['--workspace', dir]), '--pack-destination', packDir], { cwd: REPO_ROOT, timeoutMs: 120_000 });
  const tarballs = readdirSync(packDir).filter((file) => file.endsWith('.tgz')).map((file) => join(packDir, file));
  expect(tarballs).toHaveLength(published.length);

  // The app's own dev dependency for its TypeScript check: the repo's @types/node, so npm's cache has it.
  const rootManifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
  const typesNode = `@types/node@${rootManifest.devDependencies['@types/node']}`;
  const started = performance.now();
  // Optional peers (@tensorflow/tfjs-node) are not installed by npm: the test below checks it.
  await mustRun('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...tarballs, typesNode], { cwd: appDir, timeoutMs: 300_000 });
  installSeconds = (performance.now() - started) / 1000;
}, 420_000);

afterAll(() => {
  if (workDir !== undefined) rmSync(workDir, { recursive: true, force: true });
});

describe('the packed packages installed into a fresh app', () => {
  it('hold built JavaScript with .d.ts and source maps, no TypeScript sources, and every export resolves to a file', () => {
    console.log(`npm install of ${published.length} tarballs took ${installSeconds.toFixed(1)} s`);
    for (const { name, dir: workspace } of published) {
      const dir = join(appDir, 'node_modules', ...name.split('/'));
      expect(lstatSync(dir).isSymbolicLink(), `${name} is a link, not an installed copy`).toBe(false);
      const files = filesUnder(dir);
      expect(files, name).toContain('dist/index.js');
      expect(files, name).toContain('dist/index.d.ts');
      expect(files, name).toContain('dist/index.js.map');
      expect(files.filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts')), name).toEqual([]);
      expect(files.filter((file) => file.startsWith('src/') || file.endsWith('.tsbuildinfo')), name).toEqual([]);
      // Each built module comes from a source file of today (none is left over from a removed one).
      const orphans = files.filter((file) => /^dist\/.*\.js$/.test(file)).filter((file) => !existsSync(join(REPO_ROOT, workspace, file.replace(/^dist\//, 'src/').replace(/\.js$/, '.ts'))));
      expect(orphans, name).toEqual([]);
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
      const missing = Object.values(manifest.exports).flatMap(exportTargets).filter((target) => !existsSync(join(dir, target)));
      expect(missing, name).toEqual([]);
    }
    expect(filesUnder(join(appDir, 'node_modules', '@shoal', 'datasets', 'data'))).toEqual(expect.arrayContaining(['sklearn/iris.csv', 'mnist/t10k-labels-idx1-ubyte.gz']));
  });

  it('bring no tsx and no tfjs-node (an optional peer), and exactly one tfjs', () => {
    const topLevel = readdirSync(join(appDir, 'node_modules'));
    expect(topLevel).not.toContain('tsx');
    expect(readdirSync(join(appDir, 'node_modules', '@tensorflow'))).not.toContain('tfjs-node');
    // Two copies of tfjs-core would be two engines: the simulator's tensors would not be the client's.
    const tfjsCores = filesUnder(join(appDir, 'node_modules')).filter((file) => file.endsWith('@tensorflow/tfjs-core/package.json'));
    expect(tfjsCores).toEqual(['@tensorflow/tfjs-core/package.json']);
  });

  it('a plain Node ESM app trains two clients for 2 rounds against a coordinator on 127.0.0.1', async () => {
    const result = await mustRun(process.execPath, ['train.mjs'], { cwd: appDir });
    const summary = lastJsonLine(result.stdout) as { url: string; stoppedBy: string; rounds: unknown[]; resolved: { client: string; coordinator: string } };
    expect(summary.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    expect(summary.stoppedBy).toBe('completed');
    expect(summary.rounds).toEqual([
      { round: 1, status: 'committed', participants: 2 },
      { round: 2, status: 'committed', participants: 2 },
    ]);
    // Node's own resolution (the "node" condition) picked the built files in the app's node_modules.
    expect(fileURLToPath(summary.resolved.client)).toBe(join(appDir, 'node_modules', '@shoal', 'client', 'dist', 'index.js'));
    expect(fileURLToPath(summary.resolved.coordinator)).toBe(join(appDir, 'node_modules', '@shoal', 'coordinator', 'dist', 'index.js'));
  });

  it.each([
    ['node16', 'a Node app', 'node16'],
    ['bundler', 'a Node and a browser app', 'bundler'],
    ['browser', 'a browser app without Node typings', 'bundler'],
  ])('TypeScript: tsconfig.%s.json, %s, type-checks against the published .d.ts (moduleResolution %s)', async (config) => {
    const result = await run(TSC, ['-p', `tsconfig.${config}.json`, '--pretty', 'false'], { cwd: appDir });
    // A failed run must be explained by diagnostics (then all in third-party files), never silent.
    if (result.code !== 0) expect(result.stdout).toMatch(/ error TS\d+:/);
    expect(result.stderr).toBe('');
    expect(ownTypeErrors(result.stdout)).toEqual([]);
  });

  it(`esbuild bundles the browser build from the "browser" condition; Shoal's part stays within ${GZIP_BUDGET_BYTES / 1024} kB gzipped`, async () => {
    const inputs = Object.keys((await pageBundle()).metafile.inputs);
    expect(inputs).toContain('node_modules/@shoal/client/dist/browser/index.js');
    expect(inputs).toContain('node_modules/@shoal/secagg/dist/prg.js');
    expect(inputs.filter((input) => /\.ts$/.test(input) || /^node_modules\/ws\//.test(input) || /\/dist\/node\//.test(input))).toEqual([]);

    const withoutTfjs = await build({ ...pageBuildOptions(), external: ['@tensorflow/*'], write: false });
    const gzipBytes = gzipSync(withoutTfjs.outputFiles[0]!.contents, { level: 9 }).length;
    console.log(`installed @shoal/client, browser build without tfjs: ${(gzipBytes / 1024).toFixed(1)} kB gzipped`);
    expect(gzipBytes).toBeLessThanOrEqual(GZIP_BUDGET_BYTES);
  });

  it.skipIf(!haveChromium)('the bundled page trains a round in Chromium beside a Node client, on WASM from the installed .wasm files', async () => {
    const token = 'consumer-browser-token';
    const peer = spawn(process.execPath, ['browser-peer.mjs', token], { cwd: appDir, env: appEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = jsonLines(peer);
    let server: Server | undefined;
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    try {
      await pageBundle();
      const { url } = (await lines.next(30_000)) as { url: string };
      server = await servePage(url, token);
      const page = await browser.newPage();
      const pageErrors: string[] = [];
      page.on('pageerror', (error) => pageErrors.push(error.message));
      await page.goto(`http://127.0.0.1:${(server.address() as { port: number }).port}/`);
      const outcome = (await lines.next(60_000)) as { rounds: unknown[] };
      expect(outcome.rounds).toEqual([{ round: 1, status: 'committed', participants: 2 }]);
      await page.waitForFunction('globalThis.__shoal?.done === true || globalThis.__shoal?.error !== undefined', undefined, { timeout: 20_000 });
      const report = (await page.evaluate(() => (globalThis as { __shoal?: PageReport }).__shoal))!;
      expect(report.error).toBeUndefined();
      expect(report).toMatchObject({ backend: 'wasm', done: true });
      expect(report.rounds).toContainEqual({ round: 1, status: 'sent' });
      expect(pageErrors).toEqual([]);
    } finally {
      await browser.close();
      peer.kill('SIGKILL');
      await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
    }
  });

  describe('the installed shoal command (built JavaScript, no tsx)', () => {
    const shoal = () => join(appDir, 'node_modules', '.bin', 'shoal');

    it('--help, --version and privacy', async () => {
      expect((await mustRun(shoal(), ['--help'], { cwd: appDir })).stdout).toMatch(/shoal serve[\s\S]*shoal simulate[\s\S]*shoal privacy/);
      const { version } = JSON.parse(readFileSync(join(appDir, 'node_modules', '@shoal', 'cli', 'package.json'), 'utf8')) as { version: string };
      expect((await mustRun(shoal(), ['--version'], { cwd: appDir })).stdout).toBe(`shoal ${version}\n`);
      const privacy = await mustRun(shoal(), ['privacy', '--sample-rate', '0.04', '--noise-multiplier', '1.5', '--rounds', '2250', '--delta', '1e-5', '--json'], { cwd: appDir });
      expect(lastJsonLine(privacy.stdout)['epsilon']).toBeCloseTo(7.32911, 4);
    });

    it('simulate: 2 rounds on iris from @shoal/datasets', async () => {
      const result = await mustRun(shoal(), ['simulate', 'tiny-simulation.json', '--out', 'runs/tiny', '--quiet'], { cwd: appDir });
      expect(result.stdout).toContain('tiny: 2/2 rounds committed on iris');
      const metrics = readFileSync(join(appDir, 'runs', 'tiny', 'metrics.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { round: number; status: string });
      expect(metrics.map(({ round, status }) => ({ round, status }))).toEqual([
        { round: 1, status: 'committed' },
        { round: 2, status: 'committed' },
      ]);
    });

    it('serve: listens on 127.0.0.1 and stops on SIGTERM', async () => {
      const child = spawn(shoal(), ['serve', '--config', 'tiny-simulation.json', '--host', '127.0.0.1', '--port', '0'], {
        cwd: appDir,
        env: appEnv({ SHOAL_TOKENS: 'consumer-serve-token' }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const lines = jsonLines(child);
      try {
        expect(await lines.next(30_000)).toMatchObject({ event: 'listening', url: expect.stringMatching(/^ws:\/\/127\.0\.0\.1:\d+$/) });
        child.kill('SIGTERM');
        expect(await lines.next(30_000)).toMatchObject({ event: 'finished', stoppedBy: 'stopped' });
      } finally {
        child.kill('SIGKILL');
      }
    });
  });
});

/** esbuild options for the app's page.js, as an app would bundle it: no Shoal-specific settings. */
function pageBuildOptions(): BuildOptions & { metafile: true } {
  return { entryPoints: [join(appDir, 'page.js')], absWorkingDir: appDir, bundle: true, platform: 'browser', format: 'esm', target: 'es2022', minify: true, metafile: true, logLevel: 'silent' };
}

let pageBuild: Promise<BuildResult<{ metafile: true }>> | undefined;
/** Bundles page.js into public/page.bundle.js once (the bundle test and the Chromium test share it). */
function pageBundle(): Promise<BuildResult<{ metafile: true }>> {
  pageBuild ??= build({ ...pageBuildOptions(), outfile: join(appDir, 'public', 'page.bundle.js') });
  return pageBuild;
}

/** The JSON lines a child prints, one at a time; `next` fails with its stderr if it exits first or times out. */
function jsonLines(child: ChildProcess): { next(timeoutMs: number): Promise<unknown> } {
  const queue: unknown[] = [];
  const waiters: ((line: unknown) => void)[] = [];
  let tail = '';
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout!.on('data', (chunk: Buffer) => {
    tail += chunk.toString();
    const complete = tail.split('\n');
    tail = complete.pop()!;
    for (const text of complete.filter((line) => line.startsWith('{'))) {
      const line = JSON.parse(text) as unknown;
      const waiter = waiters.shift();
      if (waiter === undefined) queue.push(line);
      else waiter(line);
    }
  });
  // 'close', not 'exit': only then has everything the child printed been read.
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return {
    next(timeoutMs) {
      if (queue.length > 0) return Promise.resolve(queue.shift());
      let timer: NodeJS.Timeout | undefined;
      return Promise.race([
        new Promise<unknown>((resolve) => waiters.push(resolve)),
        exited.then(() => Promise.reject(new Error(`the process exited before printing the next line; stderr:\n${stderr}`))),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no line after ${timeoutMs} ms; stderr:\n${stderr}`)), timeoutMs))),
      ]).finally(() => clearTimeout(timer));
    },
  };
}

/**
 * Serves the app's page on 127.0.0.1 (an OS-chosen port): index.html, the esbuild bundle, the
 * coordinator URL as /config.json, and the WASM backend's .wasm files from the installed
 * `@tensorflow/tfjs-backend-wasm/dist/` at /wasm/ (where page.js tells `initBrowserBackend` to look).
 */
async function servePage(coordinatorUrl: string, token: string): Promise<Server> {
  const wasmDir = join(appDir, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');
  const wasmFiles = new Set(readdirSync(wasmDir).filter((file) => file.endsWith('.wasm')));
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://127.0.0.1').pathname;
    const wasm = /^\/wasm\/([\w.-]+)$/.exec(path)?.[1];
    const send = (type: string, body: string | Buffer) => response.writeHead(200, { 'content-type': type }).end(body);
    if (path === '/') send('text/html; charset=utf-8', readFileSync(join(appDir, 'index.html')));
    else if (path === '/page.bundle.js') send('text/javascript; charset=utf-8', readFileSync(join(appDir, 'public', 'page.bundle.js')));
    else if (path === '/config.json') send('application/json', JSON.stringify({ url: coordinatorUrl, token }));
    else if (wasm !== undefined && wasmFiles.has(wasm)) send('application/wasm', readFileSync(join(wasmDir, wasm)));
    else response.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return server;
}
