/**
 * The reports of a tiny real simulation and a tiny real sweep, opened in real Chromium
 * (playwright-core, /usr/bin/chromium): every figure the page draws is an SVG of non-zero size with
 * data marks in it, the page loads nothing but itself, and a screenshot of each goes to
 * test-artifacts/ (report-run.png, report-sweep.png) for a person to look at.
 *
 * Run with `npx vitest run --config vitest.browser.config.ts test/browser/report.test.ts`.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { runToCompletion } from '@shoal/testkit';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env['SHOAL_REQUIRE_BROWSER']) {
  throw new Error(`Chromium is required (SHOAL_REQUIRE_BROWSER is set) but ${CHROMIUM} is missing: apt-get install -y chromium`);
}
if (!haveChromium) console.warn(`report browser tests skipped: ${CHROMIUM} is missing (apt-get install -y chromium)`);

const REPO_ROOT = join(import.meta.dirname, '..', '..');
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'];

/**
 * Iris, logreg, 8 clients, 3 rounds, SecAgg+ with distributed DP (so ε, the clip norm and per-stage
 * dropouts exist) and 15 % injected dropouts: a second or two per run. One worker thread: 8 clients
 * gain nothing from more.
 */
const CONFIG = {
  name: 'report-browser',
  seed: 1,
  rounds: 3,
  model: 'logreg',
  clientsPerRound: 6,
  minClients: 3,
  train: { epochs: 2, learningRate: 0.5 },
  secagg: { mode: 'secagg+' },
  dp: { mode: 'distributed', noiseMultiplier: 0.8, clipNorm: 1 },
  faults: { dropout: 0.15 },
  simulation: { dataset: 'iris', numClients: 8, workers: 1 },
};

let folder: string | undefined;
let browser: Browser | undefined;

const shoal = (args: readonly string[]) => runToCompletion(process.execPath, [join('packages', 'cli', 'bin', 'shoal.js'), ...args], { cwd: REPO_ROOT, timeoutMs: 150_000 });

beforeAll(async () => {
  if (!haveChromium) return;
  folder = await mkdtemp(join(tmpdir(), 'shoal-report-browser-'));
  await writeFile(join(folder, 'config.json'), JSON.stringify(CONFIG));
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  if (folder !== undefined) await rm(folder, { recursive: true, force: true });
});

interface FigureCheck {
  readonly id: string;
  readonly width: number;
  readonly height: number;
  readonly dataMarks: number;
}

/** Opens a report, checks it requested nothing but its own file, saves a screenshot and measures each drawn figure. */
async function openReport(path: string, screenshot: string): Promise<{ drawn: FigureCheck[]; omitted: string[] }> {
  const page = await browser!.newPage({ viewport: { width: 1100, height: 900 } });
  try {
    const requests: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    const url = pathToFileURL(path).href;
    await page.goto(url);
    expect(requests).toEqual([url]);
    await mkdir(join(REPO_ROOT, 'test-artifacts'), { recursive: true });
    await page.screenshot({ path: join(REPO_ROOT, 'test-artifacts', screenshot), fullPage: true });
    const drawn = await page.$$eval('section.chart:not(.omitted)', (sections) =>
      sections.map((section) => {
        const svg = section.querySelector('svg');
        const box = svg?.getBoundingClientRect();
        // Vega puts each data mark's items in a group of class role-mark; axes and legends have other roles.
        const dataMarks = svg === null || svg === undefined ? 0 : svg.querySelectorAll('g.role-mark > path, g.role-mark > line, g.role-mark > rect, g.role-mark > text, g.role-mark > g > path').length;
        return { id: section.id, width: box?.width ?? 0, height: box?.height ?? 0, dataMarks };
      }),
    );
    const omitted = await page.$$eval('section.chart.omitted', (sections) => sections.map((section) => section.id));
    return { drawn, omitted };
  } finally {
    await page.close();
  }
}

function expectRendered(figures: readonly FigureCheck[]): void {
  for (const figure of figures) {
    expect(figure.width, figure.id).toBeGreaterThan(100);
    expect(figure.height, figure.id).toBeGreaterThan(100);
    expect(figure.dataMarks, figure.id).toBeGreaterThan(0);
  }
}

describe.skipIf(!haveChromium)('reports in Chromium', () => {
  it('a simulation\'s report draws accuracy, loss, ε, clip norm, SecAgg dropouts and traffic', { timeout: 180_000 }, async () => {
    const out = join(folder!, 'run');
    const result = await shoal(['simulate', join(folder!, 'config.json'), '--out', out, '--quiet']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`report: ${join(out, 'report.html')}\n`);

    const { drawn, omitted } = await openReport(join(out, 'report.html'), 'report-run.png');
    expectRendered(drawn);
    expect(drawn.map((figure) => figure.id)).toEqual(expect.arrayContaining(['accuracy', 'loss', 'epsilon', 'clip-norm', 'secagg-dropouts', 'bytes']));
    expect(omitted).toEqual(['client-accuracy-spread']); // no federated evaluation configured
  });

  it('a 2×2 sweep\'s report overlays the runs and draws the privacy–utility frontier', { timeout: 300_000 }, async () => {
    const out = join(folder!, 'sweep');
    const result = await shoal(['sweep', join(folder!, 'config.json'), '--grid', 'dp.noiseMultiplier=[0.6,1.2]', '--grid', 'train.learningRate=[0.1,0.5]', '--concurrency', '2', '--out', out]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`report: ${join(out, 'report.html')}\n`);

    const { drawn, omitted } = await openReport(join(out, 'report.html'), 'report-sweep.png');
    expectRendered(drawn);
    expect(drawn.map((figure) => figure.id)).toEqual(['accuracy-curves', 'privacy-utility-frontier']);
    expect(omitted).toEqual([]);
  });
});
