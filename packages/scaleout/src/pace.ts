import { PACE_CAPABILITY, encodeFrame, type RetryWindow } from '@shoal/protocol';
import type { Cohort } from '@shoal/coordinator';

/**
 * Pace steering at a gateway, right after its selection for `round`: tells each eligible device it
 * did not admit, if it announced `'pace'`, to come back within `window` (the leader's
 * `RoundTask.retryWindowMs`). Such a device closes its connection and reconnects later, so the
 * devices a round does not need return spread over the next rounds instead of waiting here all at
 * once. Devices without the capability hear nothing and stay connected and idle, as before. No
 * window (every eligible device was admitted, no round follows, or the leader has not timed a round
 * yet), or no device admitted here (too few for a group: the next round needs them all): nothing
 * is sent. Returns the bytes sent.
 */
export function paceNotAdmitted(cohort: Cohort, round: number, eligible: readonly string[], admitted: readonly string[], window: RetryWindow | undefined): number {
  if (window === undefined || admitted.length === 0) return 0;
  const taken = new Set(admitted);
  const frame = encodeFrame({ type: 'pace', round, retryInMs: window });
  let bytes = 0;
  for (const device of eligible) {
    if (!taken.has(device) && cohort.supports(device, PACE_CAPABILITY)) bytes += cohort.send(device, frame);
  }
  return bytes;
}
