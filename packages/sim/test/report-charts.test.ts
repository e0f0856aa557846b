// The report's pure parts on small hand-made metrics: which charts a run gets and why the others
// are left out, how aborted rounds are marked, the SecAgg dropout stacks, the Pareto frontier (by
// hand and as a property), and the readers of metrics.jsonl and summary.csv.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dominates, frontierChart, paretoFrontier, parseCsv, parseMetrics, runCharts, sweepAccuracyChart, type Chart, type RoundRecord, type SweepData } from '../src/report/index.js';

/** A committed plain round with central evaluation and the plain-mode norms. */
function plainRound(round: number, extra: Partial<RoundRecord> = {}): RoundRecord {
  return { round, status: 'committed', accuracy: 0.5 + round / 100, loss: 1 / round, trainLoss: 1.2 / round, bytesUp: 1000 * round, bytesDown: 2000, maxUpdateNorm: 2, medianUpdateNorm: 1, ...extra };
}

const SECAGG_DROPOUTS = (advertise: number, masked: number) => ({
  mode: 'secagg+',
  dropouts: [['advertise', advertise], ['share', 0], ['masked', masked], ['confirm', 0], ['unmask', 0]] as const,
});

function spread(mean: number) {
  return { mean, std: 0.1, min: mean - 0.3, max: mean + 0.2, worst10: mean - 0.25, best10: mean + 0.15 };
}

function byId(charts: readonly Chart[]): Record<string, Chart> {
  return Object.fromEntries(charts.map((chart) => [chart.id, chart]));
}

function omissions(charts: readonly Chart[]): Record<string, string> {
  return Object.fromEntries(charts.flatMap((chart) => ('omitted' in chart ? [[chart.id, chart.omitted]] : [])));
}

/** The spec's layers (empty for a single-view spec). */
function layers(chart: Chart): Record<string, any>[] {
  if (!('spec' in chart)) throw new Error(`${chart.id} was omitted: ${chart.omitted}`);
  return (chart.spec['layer'] as Record<string, any>[] | undefined) ?? [];
}

describe('run charts', () => {
  it('a plain run without DP or federated evaluation: accuracy, loss, norms and bytes; the rest omitted, each saying why', () => {
    const charts = runCharts([plainRound(1), plainRound(2), plainRound(3)]);
    expect(charts.filter((chart) => 'spec' in chart).map((chart) => chart.id)).toEqual(['accuracy', 'loss', 'clip-norm', 'bytes']);
    expect(omissions(charts)).toEqual({
      'client-accuracy-spread': "no federated evaluation: no round recorded the clients' own accuracies",
      epsilon: 'DP off: no round recorded ε',
      'secagg-dropouts': 'SecAgg off: no per-stage dropouts (plain rounds record only a total)',
    });
    const accuracy = layers(byId(charts)['accuracy']!);
    expect(accuracy).toHaveLength(1); // no aborted round, no rule layer
    expect(accuracy[0]!.data.values).toEqual([1, 2, 3].map((round) => ({ round, series: 'central test accuracy', value: 0.5 + round / 100 })));
    // Plain mode without DP: the bound and the median, no clip norm.
    expect(new Set(layers(byId(charts)['clip-norm']!)[0]!.data.values.map((v: { series: string }) => v.series))).toEqual(new Set(['update-norm bound (maxUpdateNorm)', 'median update norm']));
  });

  it('under SecAgg with DP and federated evaluation every chart is drawn; the clip norm replaces the equal bound', () => {
    const rounds: RoundRecord[] = [1, 2].map((round) => ({
      round,
      status: 'committed',
      accuracy: 0.6,
      loss: 0.9,
      bytesUp: 5e6,
      bytesDown: 6e6,
      secagg: SECAGG_DROPOUTS(round, 1),
      clipNorm: 0.5 + round / 10,
      maxUpdateNorm: 0.5 + round / 10,
      epsilon: round * 1.5,
      delta: 1e-5,
      federatedEvaluation: { clients: 7, examples: 700, accuracy: spread(0.6) },
    }));
    const charts = byId(runCharts(rounds, 4));
    expect(Object.values(charts).every((chart) => 'spec' in chart)).toBe(true);
    expect(layers(charts['clip-norm']!)[0]!.data.values.map((v: { series: string; value: number }) => [v.series, v.value])).toEqual([
      ['DP clip norm', 0.6],
      ['DP clip norm', 0.7],
    ]);
    // The budget dp.targetEpsilon as a rule at ε = 4.
    expect(layers(charts['epsilon']!)[1]).toMatchObject({ mark: { type: 'rule' }, data: { values: [{ budget: 4 }] } });
    // Traffic in the unit its largest value reaches.
    expect(layers(charts['bytes']!)[0]!.data.values[0]).toEqual({ round: 1, series: 'up (clients → coordinator)', value: 5 });
    expect(layers(charts['bytes']!)[0]!.encoding.y.title).toBe('MB');
    // The spread: three lines and a band of mean ± std.
    const spreadLayers = layers(charts['client-accuracy-spread']!);
    expect(new Set(spreadLayers[0]!.data.values.map((v: { series: string }) => v.series))).toEqual(new Set(['mean over clients', 'worst 10 % of clients', 'best 10 % of clients']));
    expect(spreadLayers[1]!.data.values[0]).toEqual({ round: 1, low: expect.closeTo(0.5, 12), high: expect.closeTo(0.7, 12) });
  });

  it('stacks the dropouts of each round stage on stage, in protocol order', () => {
    const rounds: RoundRecord[] = [{ round: 1, status: 'committed', secagg: SECAGG_DROPOUTS(2, 3) }];
    const bars = layers(byId(runCharts(rounds))['secagg-dropouts']!)[0]!.data.values as { stage: string; low: number; high: number }[];
    expect(bars.map(({ stage, low, high }) => [stage, low, high])).toEqual([
      ['advertise', 0, 2],
      ['share', 2, 2],
      ['masked', 2, 5],
      ['confirm', 5, 5],
      ['unmask', 5, 5],
    ]);
  });

  it('marks aborted rounds on every per-round chart and names them in the caption, without dropping them', () => {
    const rounds: RoundRecord[] = [plainRound(1), { round: 2, status: 'aborted', reason: 'too few clients', bytesUp: 10, bytesDown: 20 }, plainRound(3), { round: 4, status: 'aborted' }];
    const charts = runCharts(rounds);
    for (const chart of charts.filter((c) => 'spec' in c)) {
      const rule = layers(chart).at(-1)!;
      expect(rule.mark).toMatchObject({ type: 'rule', strokeDash: [4, 3] });
      expect(rule.data.values).toEqual([
        { round: 2, reason: 'too few clients' },
        { round: 4, reason: '' },
      ]);
      expect((chart as { caption: string }).caption).toContain('the 2 aborted rounds (2, 4;');
      // The x axis spans the aborted last round too.
      expect(layers(chart)[0]!.encoding.x.scale.domain).toEqual(chart.id === 'secagg-dropouts' ? [0.5, 4.5] : [1, 4]);
    }
  });

  it('a run without rounds gets no chart, and an all-aborted run no accuracy', () => {
    expect(new Set(Object.values(omissions(runCharts([]))))).toEqual(new Set(['no rounds recorded yet']));
    const aborted = omissions(runCharts([{ round: 1, status: 'aborted', bytesUp: 1, bytesDown: 1 }]));
    expect(aborted['accuracy']).toContain('no round recorded a central test accuracy');
    expect(aborted['bytes']).toBeUndefined();
  });

  it('SecAgg without DP: no norms to show, and the reason says SecAgg hides them', () => {
    const omitted = omissions(runCharts([{ round: 1, status: 'committed', secagg: SECAGG_DROPOUTS(0, 0) }]));
    expect(omitted['clip-norm']).toBe('DP off, and SecAgg hides the individual update norms: no clip norm or update norms recorded');
  });
});

describe('Pareto frontier', () => {
  const point = (run: string, epsilon: number, accuracy: number) => ({ run, epsilon, accuracy });

  it('keeps the runs no other is both more private and more accurate than, ordered by ε', () => {
    const points = [point('a', 1, 0.7), point('b', 2, 0.8), point('c', 2, 0.75), point('d', 3, 0.8), point('e', 4, 0.9), point('f', 0.5, 0.6), point('g', 4, 0.9)];
    // c loses to b (same ε, lower accuracy), d to b (more ε, same accuracy); e and g tie and both stay.
    expect(paretoFrontier(points).map((p) => p.run)).toEqual(['f', 'a', 'b', 'e', 'g']);
    expect(dominates(point('b', 2, 0.8), point('d', 3, 0.8))).toBe(true);
    expect(dominates(point('e', 4, 0.9), point('g', 4, 0.9))).toBe(false);
  });

  it('no frontier point is dominated, and every other point is dominated by a frontier point', () => {
    const value = fc.integer({ min: 0, max: 8 }).map((n) => n / 4); // coarse, so ties happen
    const points = fc.array(fc.record({ epsilon: value, accuracy: value }), { maxLength: 30 });
    fc.assert(
      fc.property(points, (all) => {
        const frontier = paretoFrontier(all);
        for (const p of frontier) expect(all.some((q) => dominates(q, p))).toBe(false);
        for (const p of all.filter((p) => !frontier.includes(p))) expect(frontier.some((q) => dominates(q, p))).toBe(true);
        for (let i = 1; i < frontier.length; i++) expect(frontier[i]!.epsilon).toBeGreaterThanOrEqual(frontier[i - 1]!.epsilon);
      }),
    );
  });
});

describe('sweep charts', () => {
  function sweep(rows: { name: string; epsilon: string; accuracy: string }[]): SweepData {
    return {
      name: 's',
      header: ['run', 'dp.noiseMultiplier', 'seed', 'final_accuracy', 'final_epsilon'],
      sweptKeys: ['dp.noiseMultiplier'],
      runs: rows.map((row, i) => ({
        name: row.name,
        cells: { run: row.name, 'dp.noiseMultiplier': String(i), seed: '1', final_accuracy: row.accuracy, final_epsilon: row.epsilon },
        rounds: [{ round: 1, status: 'committed', accuracy: 0.5 }, { round: 2, status: 'aborted' }, { round: 3, status: 'committed', accuracy: Number(row.accuracy || 0.6) }],
        hasReport: false,
      })),
    };
  }

  it('says so instead of drawing a frontier when no run has ε', () => {
    const chart = frontierChart(sweep([{ name: 'a', epsilon: '', accuracy: '0.9' }]));
    expect(chart).toEqual({ id: 'privacy-utility-frontier', title: 'Privacy–utility frontier', omitted: 'no run has ε: DP is off in every run of this sweep (or none finished with a test accuracy)' });
  });

  it('marks the Pareto-optimal runs, labels them with their swept values, and counts the runs it cannot place', () => {
    const chart = frontierChart(sweep([
      { name: 'a', epsilon: '1', accuracy: '0.7' },
      { name: 'b', epsilon: '2', accuracy: '0.65' },
      { name: 'c', epsilon: '3', accuracy: '0.8' },
      { name: 'd', epsilon: '', accuracy: '0.9' },
    ]));
    if (!('spec' in chart)) throw new Error(chart.omitted);
    const values = (chart.spec['data'] as { values: { run: string; label: string; frontier: string }[] }).values;
    expect(values.map((v) => [v.run, v.label, v.frontier])).toEqual([
      ['a', '0', 'Pareto-optimal'],
      ['b', '1', 'dominated'],
      ['c', '2', 'Pareto-optimal'],
    ]);
    expect(chart.caption).toContain('1 run without ε or final accuracy not shown');
  });

  it('gives runs that tie on ε and accuracy one label listing them all, so the labels do not overprint', () => {
    const chart = frontierChart(sweep([
      { name: 'a', epsilon: '2', accuracy: '0.7' },
      { name: 'b', epsilon: '2', accuracy: '0.7' },
    ]));
    if (!('spec' in chart)) throw new Error(chart.omitted);
    const values = (chart.spec['data'] as { values: { run: string; frontier: string; tag: string }[] }).values;
    expect(values.map((v) => [v.run, v.frontier, v.tag])).toEqual([
      ['a', 'Pareto-optimal', '0 | 1'],
      ['b', 'Pareto-optimal', ''],
    ]);
  });

  it('overlays the committed rounds of every run, coloured by run', () => {
    const chart = sweepAccuracyChart(sweep([{ name: 'a', epsilon: '', accuracy: '0.7' }, { name: 'b', epsilon: '', accuracy: '0.8' }]));
    if (!('spec' in chart)) throw new Error(chart.omitted);
    const values = (chart.spec['data'] as { values: { run: string; round: number }[] }).values;
    expect(values.map((v) => `${v.run}:${v.round}`)).toEqual(['a:1', 'a:3', 'b:1', 'b:3']);
  });
});

describe('reading metrics.jsonl and summary.csv', () => {
  it('keeps what has the right type, skips lines that are not rounds and reports their numbers', () => {
    const text = [
      JSON.stringify({ round: 1, status: 'committed', accuracy: 0.5, loss: 'high', secagg: { mode: 'secagg', dropouts: { unmask: 1, advertise: 2, later: 3 } } }),
      '',
      JSON.stringify({ round: 2, status: 'aborted', reason: 'quorum', federatedEvaluation: { clients: 3, examples: 30, accuracy: { mean: 0.5 } } }),
      JSON.stringify({ status: 'committed' }),
      '{"round": 3, "sta',
    ].join('\n');
    const { rounds, unreadableLines } = parseMetrics(text);
    expect(rounds).toEqual([
      { round: 1, status: 'committed', accuracy: 0.5, secagg: { mode: 'secagg', dropouts: [['advertise', 2], ['unmask', 1], ['later', 3]] } },
      { round: 2, status: 'aborted', reason: 'quorum' },
    ]);
    expect(unreadableLines).toEqual([4, 5]);
  });

  it('reads back any table written as RFC 4180 CSV', () => {
    const field = (text: string) => (/[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text);
    const cell = fc.string({ unit: fc.constantFrom('a', 'b', ',', '"', '\n', '\r', ' ', 'é') });
    const rows = fc.array(fc.array(cell, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 5 });
    fc.assert(
      fc.property(rows, fc.constantFrom('\r\n', '\n'), (table, eol) => {
        expect(parseCsv(table.map((row) => `${row.map(field).join(',')}${eol}`).join(''))).toEqual(table);
      }),
    );
  });
});
