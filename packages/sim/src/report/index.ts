// Writing the reports: a run folder's or a sweep folder's report.html, with each drawn chart's
// Vega-Lite spec saved beside it in report-specs/<chart>.vl.json so users can restyle it.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomically } from '@shoal/coordinator';
import { runCharts, sweepCharts, type Chart } from './charts.js';
import { runReportHtml, specPath, sweepReportHtml, SPECS_FOLDER, type Figure } from './html.js';
import { readRun, readSweep, reportKind, type ReportKind } from './read.js';
import { renderSvg } from './render.js';
import { valueAtPath } from './records.js';

export { accuracyChart, bytesChart, clientSpreadChart, clipNormChart, dropoutsChart, epsilonChart, frontierChart, lossChart, runCharts, sweepAccuracyChart, sweepCharts, type Chart, type VegaLiteSpec } from './charts.js';
export { dominates, paretoFrontier, type PrivacyUtilityPoint } from './frontier.js';
export { parseCsv, parseMetrics, type ClientSpread, type RoundRecord, type RunSummary } from './records.js';
export { readRun, readSweep, reportKind, type ReportKind, type RunData, type SweepData, type SweepRun } from './read.js';
export { renderSvg, type RenderedChart } from './render.js';

/** The file every report is written to, inside the folder it reports on. */
export const REPORT_FILE = 'report.html';

/**
 * Renders the drawn charts and saves their specs under `dir`/report-specs/; an omitted chart's
 * spec left from an earlier report is removed, so the folder never holds a stale figure.
 */
async function figures(dir: string, charts: readonly Chart[]): Promise<Figure[]> {
  await mkdir(join(dir, SPECS_FOLDER), { recursive: true });
  const placed: Figure[] = [];
  for (const chart of charts) {
    const path = specPath(chart.id);
    if ('omitted' in chart) {
      await rm(join(dir, path), { force: true });
      placed.push(chart);
      continue;
    }
    const { svg } = await renderSvg(chart.spec);
    await writeFileAtomically(join(dir, path), `${JSON.stringify(chart.spec, null, 2)}\n`);
    placed.push({ ...chart, svg, specPath: path });
  }
  return placed;
}

/** Writes `dir`/report.html for the run in `dir` (finished or in progress); resolves with its path. */
export async function writeRunReport(dir: string): Promise<string> {
  const run = await readRun(dir);
  const budget = valueAtPath(run.summary?.config, 'dp.targetEpsilon');
  const targetEpsilon = typeof budget === 'number' && Number.isFinite(budget) ? budget : undefined;
  const html = runReportHtml(run, await figures(dir, runCharts(run.rounds, targetEpsilon)));
  const path = join(dir, REPORT_FILE);
  await writeFileAtomically(path, html);
  return path;
}

/** Writes `dir`/report.html for the sweep whose summary.csv is in `dir`; resolves with its path. */
export async function writeSweepReport(dir: string): Promise<string> {
  const sweep = await readSweep(dir);
  const html = sweepReportHtml(sweep, await figures(dir, sweepCharts(sweep)));
  const path = join(dir, REPORT_FILE);
  await writeFileAtomically(path, html);
  return path;
}

/**
 * Writes the report `dir` calls for: a sweep's when it has summary.csv, else a run's when it has
 * metrics.jsonl or summary.json; throws INVALID_CONFIG naming those files when it has neither.
 */
export async function writeReport(dir: string): Promise<{ readonly kind: ReportKind; readonly path: string }> {
  const kind = await reportKind(dir);
  return { kind, path: kind === 'sweep' ? await writeSweepReport(dir) : await writeRunReport(dir) };
}
