// SHOAL_CRASH_AT's parsing (src/crash-point.ts). The crash itself is a SIGKILL of the process, so it
// is shown by child processes: checkpoint.test.ts (file steps) and test/chaos (stage steps, checked
// to land in the planned stage of a real `shoal serve`).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ShoalError } from '@shoal/protocol';
import { crashInStageIfAsked, crashPoint, fileCrashStep } from '../src/crash-point.js';

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('SHOAL_CRASH_AT', () => {
  it('is no crash point when unset or empty', () => {
    vi.stubEnv('SHOAL_CRASH_AT', '');
    expect(crashPoint()).toBeUndefined();
    expect(fileCrashStep('round-000003.ckpt')).toBeUndefined();
  });

  it('names a file step with its file, or a stage step with its round', () => {
    vi.stubEnv('SHOAL_CRASH_AT', 'before-rename:round-000003.ckpt');
    expect(crashPoint()).toEqual({ step: 'before-rename', target: 'round-000003.ckpt' });
    expect(fileCrashStep('round-000003.ckpt')).toBe('before-rename');
    expect(fileCrashStep('round-000004.ckpt')).toBeUndefined();
    vi.stubEnv('SHOAL_CRASH_AT', 'mid-unmask:7');
    expect(crashPoint()).toEqual({ step: 'mid-unmask', target: '7' });
    expect(fileCrashStep('7')).toBeUndefined(); // a stage step never stops a file write
    // Another stage, or another round, of the named step: the process lives on.
    crashInStageIfAsked('masked', 7);
    crashInStageIfAsked('reveal', 6);
    crashInStageIfAsked('reveal', 70);
  });

  it('refuses an unknown step or a setting without a target, naming the steps', () => {
    for (const setting of ['mid-sleep:3', 'mid-unmask', 'unmask:3']) {
      vi.stubEnv('SHOAL_CRASH_AT', setting);
      expect(() => crashPoint()).toThrow(ShoalError);
      expect(() => crashPoint()).toThrow(/SHOAL_CRASH_AT must be <step>:<target> with step one of mid-write, before-rename, after-rename, mid-update, mid-advertise, mid-share, mid-masked, mid-confirm, mid-unmask/);
    }
  });
});
