import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clockTicksPerSecond, counterAt, cpuSeconds, nearestRankPercentile, parseProcStat, parseVmRss, residentBytes } from '../src/index.js';

/** A /proc/<pid>/stat line with `comm` as the command name and the given utime and stime (fields 14, 15). */
function statLine(comm: string, utime: number, stime: number): string {
  // Fields 3..13 (state, ppid, pgrp, session, tty_nr, tpgid, flags, minflt, cminflt, majflt, cmajflt), then 14, 15, then more.
  return `4242 (${comm}) S 1 4242 4242 0 -1 4194560 1200 0 3 0 ${utime} ${stime} 0 0 20 0 11 0 5000 1234567 8901\n`;
}

describe('parseProcStat', () => {
  it('reads utime and stime whatever the command name holds (spaces, parentheses)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 15 }), fc.nat(), fc.nat(), (comm, utime, stime) => {
        expect(parseProcStat(statLine(comm, utime, stime))).toEqual({ userTicks: utime, systemTicks: stime });
      }),
      { seed: 13 },
    );
    expect(parseProcStat(statLine('node ) 1 2 (x', 77, 5))).toEqual({ userTicks: 77, systemTicks: 5 });
  });

  it('refuses a line without the fields', () => {
    expect(() => parseProcStat('4242 (node) S 1 2')).toThrow(/not a \/proc\/<pid>\/stat line/);
    expect(() => parseProcStat('no parenthesis at all')).toThrow(/not a \/proc\/<pid>\/stat line/);
  });

  it('reads this very process: CPU time only grows', () => {
    const ticks = clockTicksPerSecond();
    const before = cpuSeconds(process.pid, ticks);
    let spin = 0;
    for (let i = 0; i < 5e6; i++) spin += i % 7;
    expect(spin).toBeGreaterThan(0);
    expect(cpuSeconds(process.pid, ticks)).toBeGreaterThanOrEqual(before);
    expect(residentBytes(process.pid)).toBeGreaterThan(1 << 20);
  });
});

describe('parseVmRss', () => {
  it('reads the VmRSS line in bytes, and refuses a status without one', () => {
    expect(parseVmRss('Name:\tnode\nVmHWM:\t  9000 kB\nVmRSS:\t  8192 kB\nThreads:\t11\n')).toBe(8192 * 1024);
    expect(() => parseVmRss('Name:\tnode\nState:\tZ (zombie)\n')).toThrow(/VmRSS/);
  });
});

describe('nearestRankPercentile', () => {
  it('is a sample with at least p % of the samples at or below it, and the smallest such', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ noNaN: true }), { minLength: 1, maxLength: 200 }), fc.double({ min: 0.01, max: 100, noNaN: true }), (values, p) => {
        const sorted = [...values].sort((a, b) => a - b);
        const value = nearestRankPercentile(sorted, p);
        expect(sorted).toContain(value);
        const atOrBelow = sorted.filter((x) => x <= value).length;
        const below = sorted.filter((x) => x < value).length;
        expect(atOrBelow / sorted.length).toBeGreaterThanOrEqual(p / 100);
        expect(below / sorted.length).toBeLessThan(p / 100);
      }),
      { seed: 13 },
    );
  });

  it('matches the rule by hand, and refuses no samples or p outside (0, 100]', () => {
    const ten = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    expect(nearestRankPercentile(ten, 50)).toBe(5);
    expect(nearestRankPercentile(ten, 99)).toBe(10);
    expect(nearestRankPercentile(ten, 10)).toBe(1);
    expect(() => nearestRankPercentile([], 50)).toThrow(/no samples/);
    expect(() => nearestRankPercentile(ten, 0)).toThrow(/\(0, 100\]/);
  });
});

describe('counterAt', () => {
  const samples = [
    { atMs: 0, value: 1 },
    { atMs: 100, value: 1.5 },
    { atMs: 300, value: 3.5 },
  ];

  it('interpolates between samples and clamps outside them', () => {
    expect(counterAt(samples, 50)).toBe(1.25);
    expect(counterAt(samples, 200)).toBe(2.5);
    expect(counterAt(samples, 300)).toBe(3.5);
    expect(counterAt(samples, -10)).toBe(1);
    expect(counterAt(samples, 1_000)).toBe(3.5);
    expect(() => counterAt([], 5)).toThrow(/no counter samples/);
  });

  it('of a growing counter grows with time and stays within the samples around it', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 1_000 }), fc.integer({ min: 0, max: 1_000 })), { minLength: 1, maxLength: 30 }), fc.integer({ min: -100, max: 40_000 }), fc.integer({ min: 0, max: 1_000 }), (steps, at, later) => {
        let atMs = 0;
        let value = 0;
        const growing = steps.map(([dt, dv]) => ({ atMs: (atMs += dt), value: (value += dv) }));
        const here = counterAt(growing, at);
        expect(counterAt(growing, at + later)).toBeGreaterThanOrEqual(here);
        expect(here).toBeGreaterThanOrEqual(growing[0]!.value);
        expect(here).toBeLessThanOrEqual(growing.at(-1)!.value);
      }),
      { seed: 13 },
    );
  });
});
