// Vega-Lite spec → Vega → SVG text, in Node, with Vega's headless view (`renderer: 'none'`): no
// canvas, no browser. vega and vega-lite are loaded on the first render, so importing @shoal/sim
// (e.g. to run a simulation) does not pay for them.
import type { VegaLiteSpec } from './charts.js';

/** A rendered chart: its SVG for inlining into HTML, and what vega or vega-lite warned about. */
export interface RenderedChart {
  readonly svg: string;
  readonly warnings: readonly string[];
}

/** Vega's logger interface (vega-util's LoggerInterface), implemented here to collect messages instead of printing them. */
interface CollectingLogger {
  level(level?: number): number | CollectingLogger;
  error(...args: unknown[]): CollectingLogger;
  warn(...args: unknown[]): CollectingLogger;
  info(...args: unknown[]): CollectingLogger;
  debug(...args: unknown[]): CollectingLogger;
}

/** Warn level in vega-util's numbering (None 0, Error 1, Warn 2, Info 3, Debug 4). */
const WARN = 2;

function collectingLogger(errors: string[], warnings: string[]): CollectingLogger {
  let level = WARN;
  const text = (args: unknown[]) => args.map((arg) => (arg instanceof Error ? arg.message : String(arg))).join(' ');
  const logger: CollectingLogger = {
    level(value?: number) {
      if (value === undefined) return level;
      level = value;
      return logger;
    },
    error: (...args) => (errors.push(text(args)), logger),
    warn: (...args) => (level >= WARN && warnings.push(text(args)), logger),
    info: () => logger,
    debug: () => logger,
  };
  return logger;
}

/**
 * Renders a Vega-Lite spec to SVG. Throws when vega-lite cannot compile it or vega reports an
 * error while running it (a bug in a spec builder, never the user's data); warnings are returned.
 */
export async function renderSvg(spec: VegaLiteSpec): Promise<RenderedChart> {
  const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  const errors: string[] = [];
  const warnings: string[] = [];
  const logger = collectingLogger(errors, warnings);
  const compiled = vegaLite.compile(spec as unknown as Parameters<typeof vegaLite.compile>[0], { logger }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logger, logLevel: WARN });
  try {
    const svg = await view.toSVG();
    if (errors.length > 0) throw new Error(`vega could not render the chart "${String(spec['description'])}": ${errors.join('; ')}`);
    return { svg: forInlineHtml(svg), warnings };
  } finally {
    view.finalize();
  }
}

/**
 * The SVG made ready to sit inside an HTML page: HTML's parser puts an inline <svg> in the SVG
 * namespace by itself, so the namespace declarations (the page's only http: strings) go.
 */
function forInlineHtml(svg: string): string {
  return svg.replace(/^<svg([^>]*)>/, (_tag, attributes: string) => `<svg${attributes.replace(/\s+xmlns(?::xlink)?="[^"]*"/g, '')} role="img">`);
}
