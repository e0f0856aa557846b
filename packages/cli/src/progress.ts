import type { RoundMetrics } from '@shoal/coordinator';

/** A one-line progress bar, drawn only when `stream` is a TTY (CI logs stay clean). */
export function progressBar(stream: NodeJS.WriteStream, totalRounds: number) {
  const enabled = stream.isTTY === true;
  const width = 30;
  return {
    update(metrics: RoundMetrics) {
      if (!enabled) return;
      const filled = Math.round((width * metrics.round) / totalRounds);
      const accuracy = metrics.accuracy === undefined ? '' : ` acc ${(100 * metrics.accuracy).toFixed(1)}%`;
      stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] round ${metrics.round}/${totalRounds} ${metrics.status}${accuracy}  `);
    },
    done() {
      if (enabled) stream.write('\n');
    },
  };
}
