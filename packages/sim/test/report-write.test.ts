// Writing reports from real files in a temporary folder: the page is one offline file (no script,
// no http URL), each drawn chart's spec is saved with its data and renders without a warning, a run
// in progress is reported as such, and a chart that becomes omitted loses its stale spec.
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ShoalError } from '@shoal/protocol';
import { renderSvg, reportKind, runCharts, writeReport, writeRunReport, writeSweepReport, type VegaLiteSpec } from '../src/report/index.js';

const root = mkdtempSync(join(tmpdir(), 'shoal-report-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const CONFIG = {
  name: 'tiny',
  rounds: 4,
  clientsPerRound: 5,
  sampling: 'poisson',
  model: { builtin: 'logreg' },
  strategy: { name: 'fedavg' },
  secagg: { mode: 'secagg+' },
  dp: { mode: 'distributed', noiseMultiplier: 1.1, clipNorm: 0.5, adaptiveClip: { targetQuantile: 0.5 }, delta: 1e-5, targetEpsilon: 8 },
  simulation: { dataset: 'iris', numClients: 10 },
};

/** Three committed SecAgg+DP rounds, the second with a federated evaluation, and one aborted round. */
const ROUNDS = [
  { round: 1, status: 'committed', accuracy: 0.5, loss: 1.1, trainLoss: 1.2, bytesUp: 9000, bytesDown: 8000, durationMs: 30, epsilon: 2, delta: 1e-5, clipNorm: 0.5, secagg: { mode: 'secagg+', dropouts: { advertise: 1, share: 0, masked: 0, confirm: 0, unmask: 0 } } },
  {
    round: 2,
    status: 'committed',
    accuracy: 0.7,
    loss: 0.8,
    bytesUp: 9500,
    bytesDown: 8000,
    epsilon: 3,
    delta: 1e-5,
    clipNorm: 0.45,
    secagg: { mode: 'secagg+', dropouts: { advertise: 0, share: 1, masked: 1, confirm: 0, unmask: 0 } },
    federatedEvaluation: { clients: 5, examples: 50, accuracy: { mean: 0.65, std: 0.1, min: 0.4, max: 0.8, worst10: 0.4, best10: 0.8 } },
  },
  { round: 3, status: 'aborted', reason: 'only 2 clients left after masked, below the threshold 3', bytesUp: 100, bytesDown: 8000, epsilon: 3.5, delta: 1e-5, secagg: { mode: 'secagg+', dropouts: { advertise: 0, share: 0, masked: 3, confirm: 0, unmask: 0 } } },
  { round: 4, status: 'committed', accuracy: 0.8, loss: 0.6, bytesUp: 9000, bytesDown: 8000, epsilon: 4, delta: 1e-5, clipNorm: 0.4, secagg: { mode: 'secagg+', dropouts: { advertise: 0, share: 0, masked: 0, confirm: 0, unmask: 0 } } },
];

function runFolder(name: string, options: { summary: boolean; rounds?: readonly object[] }): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const rounds = options.rounds ?? ROUNDS;
  writeFileSync(join(dir, 'metrics.jsonl'), rounds.map((r) => `${JSON.stringify(r)}\n`).join(''));
  if (options.summary) {
    const summary = { name, rounds: rounds.length, finalAccuracy: 0.8, stoppedBy: 'completed', backend: 'cpu', durationMs: 4321, partition: { kind: 'dirichlet', sizes: [] }, config: { ...CONFIG, name } };
    writeFileSync(join(dir, 'summary.json'), JSON.stringify(summary));
  }
  return dir;
}

function expectOffline(html: string): void {
  expect(html).not.toMatch(/<script/i);
  expect(html).not.toMatch(/https?:/i);
  expect(html).not.toMatch(/\ssrc=/i);
  expect(html.startsWith('<!doctype html>')).toBe(true);
}

/** The ids of the figures drawn in a page, in order. */
function drawnIds(html: string): string[] {
  return [...html.matchAll(/<section id="([^"]+)" class="chart">/g)].map((match) => match[1]!);
}

describe('run report', () => {
  it('writes one offline page with every chart, the key facts and the aborted round, and saves each spec with its data', async () => {
    const dir = runFolder('finished', { summary: true });
    const path = await writeRunReport(dir);
    expect(path).toBe(join(dir, 'report.html'));
    const html = readFileSync(path, 'utf8');
    expectOffline(html);
    const ids = ['accuracy', 'loss', 'client-accuracy-spread', 'epsilon', 'clip-norm', 'secagg-dropouts', 'bytes'];
    expect(drawnIds(html)).toEqual(ids);
    expect(html.match(/<svg /g)).toHaveLength(ids.length);
    for (const fact of ['iris', 'dirichlet', 'fedavg', 'secagg+', 'distributed: noise multiplier z = 1.1, clip norm adaptive from 0.5, δ = 0.00001, budget ε ≤ 8', '80.00 %', '4.000 at δ = 0.00001', '4.3 s', '3 committed, 1 aborted (of 4 configured)']) {
      expect(html).toContain(fact);
    }
    expect(html).toContain('only 2 clients left after masked, below the threshold 3');
    for (const id of ids) {
      expect(html).toContain(`<a href="report-specs/${id}.vl.json">Vega-Lite spec</a>`);
      const spec = JSON.parse(readFileSync(join(dir, 'report-specs', `${id}.vl.json`), 'utf8')) as VegaLiteSpec;
      expect(JSON.stringify(spec)).toContain('"values":[');
    }
  });

  it('reports a run in progress (no summary.json) as far as it got, and drops the spec of a chart no longer drawn', async () => {
    const dir = runFolder('in-progress', { summary: false, rounds: ROUNDS.slice(0, 2) });
    writeFileSync(join(dir, 'metrics.jsonl'), `${readFileSync(join(dir, 'metrics.jsonl'), 'utf8')}{"round":3,"stat`);
    const html = readFileSync(await writeRunReport(dir), 'utf8');
    expectOffline(html);
    expect(html).toContain('Run in-progress <span class="status-in-progress">(in progress)</span>');
    expect(html).toContain('2 rounds recorded so far');
    expect(html).toContain('Skipped 1 line of metrics.jsonl that was not a round record (line 3); a run in progress may be writing the last one.');
    expect(existsSync(join(dir, 'report-specs', 'client-accuracy-spread.vl.json'))).toBe(true);

    // The same folder rewritten without federated evaluation: that chart is omitted, its old spec gone.
    writeFileSync(join(dir, 'metrics.jsonl'), `${JSON.stringify(ROUNDS[0])}\n`);
    const again = readFileSync(await writeRunReport(dir), 'utf8');
    expect(again).toContain("<p class=\"omitted\">Not drawn: no federated evaluation: no round recorded the clients&#39; own accuracies.</p>");
    expect(existsSync(join(dir, 'report-specs', 'client-accuracy-spread.vl.json'))).toBe(false);
  });

  it('renders every chart spec to SVG without a warning from vega or vega-lite', async () => {
    const rounds = (await import('../src/report/records.js')).parseMetrics(ROUNDS.map((r) => JSON.stringify(r)).join('\n')).rounds;
    for (const chart of runCharts(rounds, 8)) {
      if (!('spec' in chart)) throw new Error(`${chart.id} omitted: ${chart.omitted}`);
      const { svg, warnings } = await renderSvg(chart.spec);
      expect(warnings, chart.id).toEqual([]);
      expect(svg).toMatch(/^<svg [^>]*width="\d+" height="\d+"/);
      expect(svg).toContain('role-mark');
    }
  });
});

describe('sweep report', () => {
  it('overlays the runs, draws the frontier, links each run report and tables summary.csv', async () => {
    const dir = join(root, 'sweep');
    const names = ['dp.noiseMultiplier-0.5', 'dp.noiseMultiplier-1'];
    for (const name of names) runFolder(join('sweep', name), { summary: true });
    await writeRunReport(join(dir, names[0]!));
    writeFileSync(
      join(dir, 'summary.csv'),
      'run,dp.noiseMultiplier,seed,final_accuracy,best_accuracy,rounds_to_target,final_epsilon,committed_rounds,wall_time_s\r\n' +
        `${names[0]},0.5,1,0.9,0.9,,12.5,3,4.2\r\n${names[1]},1,1,0.8,0.85,,6.25,3,4.1\r\n`,
    );
    expect(await reportKind(dir)).toBe('sweep');
    const html = readFileSync(await writeSweepReport(dir), 'utf8');
    expectOffline(html);
    expect(drawnIds(html)).toEqual(['accuracy-curves', 'privacy-utility-frontier']);
    expect(html).toContain(`<a href="${names[0]}/report.html">${names[0]}</a>`);
    expect(html).toContain(`<td>${names[1]}</td>`); // no report of its own to link
    expect(html).toContain('<td class="number">12.5</td>');
    const frontier = JSON.parse(readFileSync(join(dir, 'report-specs', 'privacy-utility-frontier.vl.json'), 'utf8')) as { data: { values: { frontier: string }[] } };
    expect(frontier.data.values.map((v) => v.frontier)).toEqual(['Pareto-optimal', 'Pareto-optimal']);
    // The saved specs re-render on their own, without a warning.
    for (const id of ['accuracy-curves', 'privacy-utility-frontier']) {
      const saved = JSON.parse(readFileSync(join(dir, 'report-specs', `${id}.vl.json`), 'utf8')) as VegaLiteSpec;
      expect((await renderSvg(saved)).warnings, id).toEqual([]);
    }
  });

  it('without ε in any run, says so where the frontier would be', async () => {
    const dir = join(root, 'plain-sweep');
    runFolder(join('plain-sweep', 'a'), { summary: true });
    writeFileSync(join(dir, 'summary.csv'), 'run,train.learningRate,seed,final_accuracy,best_accuracy,rounds_to_target,final_epsilon,committed_rounds,wall_time_s\r\na,0.1,1,0.9,0.9,,,3,1\r\n');
    const { kind, path } = await writeReport(dir);
    expect(kind).toBe('sweep');
    const html = readFileSync(path, 'utf8');
    expect(html).toContain('Not drawn: no run has ε: DP is off in every run of this sweep');
    expect(drawnIds(html)).toEqual(['accuracy-curves']);
  });
});

describe('which report', () => {
  it('refuses a folder that is neither a run nor a sweep, naming the files it looked for', async () => {
    const empty = join(root, 'empty');
    mkdirSync(empty);
    const error = await reportKind(empty).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ShoalError);
    expect((error as ShoalError).code).toBe('INVALID_CONFIG');
    expect((error as Error).message).toBe(`${empty} is neither a run folder (no metrics.jsonl or summary.json) nor a sweep folder (no summary.csv)`);
    await expect(reportKind(join(root, 'missing'))).rejects.toThrow('no such folder');
  });
});
