// What the load benchmarks read about another process (a `shoal serve` child) from Linux's /proc:
// its resident memory and the CPU time it has used. The parsers are pure (and property-tested);
// the readers are one file read each.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** CPU time a process has used so far, from /proc/<pid>/stat (user and system, in clock ticks). */
export interface CpuTicks {
  readonly userTicks: number;
  readonly systemTicks: number;
}

/**
 * utime and stime (fields 14 and 15) of a /proc/<pid>/stat line. The second field, the command
 * name in parentheses, may itself hold spaces and parentheses, so the fields are counted from the
 * last ')'. Throws on a line that does not have that shape.
 */
export function parseProcStat(line: string): CpuTicks {
  const end = line.lastIndexOf(')');
  // After ") " come field 3 (state) onwards: utime is field 14, so index 11 here, stime index 12.
  const fields = end < 0 ? [] : line.slice(end + 1).trim().split(/\s+/);
  const userTicks = Number(fields[11]);
  const systemTicks = Number(fields[12]);
  if (!(Number.isSafeInteger(userTicks) && userTicks >= 0 && Number.isSafeInteger(systemTicks) && systemTicks >= 0)) {
    throw new Error(`not a /proc/<pid>/stat line (no utime and stime after the command name): ${JSON.stringify(line.slice(0, 200))}`);
  }
  return { userTicks, systemTicks };
}

/** VmRSS of a /proc/<pid>/status text, in bytes. Throws when the line is missing. */
export function parseVmRss(status: string): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (match === null) throw new Error('no "VmRSS: <n> kB" line in /proc/<pid>/status (the process has exited, or this is not Linux)');
  return Number(match[1]) * 1024;
}

/** Resident memory of process `pid` now, in bytes. */
export function residentBytes(pid: number): number {
  return parseVmRss(readFileSync(`/proc/${pid}/status`, 'utf8'));
}

/** CPU seconds (user + system) process `pid` has used since it started. */
export function cpuSeconds(pid: number, ticksPerSecond: number): number {
  const { userTicks, systemTicks } = parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  return (userTicks + systemTicks) / ticksPerSecond;
}

/** The kernel's clock ticks per second (`getconf CLK_TCK`), the unit of /proc/<pid>/stat's times. */
export function clockTicksPerSecond(): number {
  const result = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const ticks = Number(result.stdout.trim());
  if (result.status !== 0 || !Number.isSafeInteger(ticks) || ticks <= 0) {
    throw new Error(`getconf CLK_TCK failed (exit ${result.status}, output ${JSON.stringify(result.stdout)}): cannot convert /proc CPU times to seconds`);
  }
  return ticks;
}

/**
 * The p-th percentile (0 < p ≤ 100) of `sorted` (ascending) by the nearest-rank rule: the smallest
 * sample with at least p % of the samples at or below it. Throws on an empty array.
 */
export function nearestRankPercentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new Error('percentile of no samples');
  if (!(p > 0 && p <= 100)) throw new Error(`percentile must be in (0, 100], got ${p}`);
  return sorted[Math.ceil((p / 100) * sorted.length) - 1]!;
}

/** One timestamped reading of a counter that only grows (CPU seconds). */
export interface CounterSample {
  readonly atMs: number;
  readonly value: number;
}

/**
 * The counter's value at `atMs`, interpolated linearly between the samples around it (`samples`
 * ascending in time); clamped to the first or last sample outside their span.
 */
export function counterAt(samples: readonly CounterSample[], atMs: number): number {
  if (samples.length === 0) throw new Error('no counter samples');
  const first = samples[0]!;
  if (atMs <= first.atMs) return first.value;
  for (let i = 1; i < samples.length; i++) {
    const before = samples[i - 1]!;
    const after = samples[i]!;
    if (atMs <= after.atMs) {
      const span = after.atMs - before.atMs;
      return span === 0 ? after.value : before.value + ((after.value - before.value) * (atMs - before.atMs)) / span;
    }
  }
  return samples.at(-1)!.value;
}
