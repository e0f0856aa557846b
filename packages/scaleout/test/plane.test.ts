/**
 * The control plane's scripts against a real redis-server: the lease and its fencing epoch, a stale
 * leader's every write refused, reports accepted once and only while their round is selecting, and
 * the quota split (fast-check).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FencedError, quotasFor } from '@shoal/scaleout';
import { redisPlanes } from './redis-planes.js';

const { plane } = redisPlanes('plane');

const RECORD = new Uint8Array([1, 2, 3]);

describe('the leader lease', () => {
  it('goes to one node at a time, each taking it with a higher epoch', async () => {
    const [a, b] = [await plane(), await plane()];
    const first = await a.acquireLease('a', 60_000);
    expect(first).toBe(1);
    expect(await b.acquireLease('b', 60_000)).toBeUndefined(); // held
    expect(await b.renewLease('b', first!, 60_000)).toBe(false); // not b's
    expect(await a.renewLease('a', first!, 60_000)).toBe(true);
    await a.releaseLease('a', first!);
    const second = await b.acquireLease('b', 60_000);
    expect(second).toBe(2);
    expect(await a.renewLease('a', first!, 60_000)).toBe(false); // a's lease is gone for good
  });

  it('never hands out an epoch at or below one the caller has seen (Redis restarted empty)', async () => {
    const a = await plane();
    expect(await a.acquireLease('a', 60_000, 7)).toBe(7);
  });
});

describe('a stale leader', () => {
  it('has every write refused once another leader took the lease, and changes nothing', async () => {
    const [stale, current] = [await plane(), await plane()];
    const old = (await stale.acquireLease('old', 60_000))!;
    expect(await stale.begin(old, 1, '{"round":1}')).toBe(true);
    await stale.releaseLease('old', old); // as if its lease expired while it was paused
    const epoch = (await current.acquireLease('new', 60_000))!;
    expect(epoch).toBeGreaterThan(old);

    await expect(stale.advance(old, 1, 'selecting', 'aggregating')).rejects.toBeInstanceOf(FencedError);
    await expect(stale.end(old, 1, { status: 'committed', modelVersion: 'run:1', previousVersion: 'run:0', weights: new Float32Array([1]) }, RECORD)).rejects.toThrow(/epoch 1 is no longer current/);
    await expect(stale.begin(old, 2, '{}')).rejects.toBeInstanceOf(FencedError);
    await expect(stale.finish(old, 1)).rejects.toBeInstanceOf(FencedError);
    expect(await current.roundStatus()).toMatchObject({ round: 1, phase: 'selecting', finished: false });
    expect(await current.model('run:1')).toBeUndefined();
    expect(await current.lastEndedRecord()).toBeUndefined();

    // The new leader ends the round the old one began, once.
    expect(await current.end(epoch, 1, { status: 'abandoned' }, RECORD)).toBe(true);
    expect(await current.end(epoch, 1, { status: 'abandoned' }, RECORD)).toBe(false);
    expect(await current.roundEnd(1)).toBe('abandoned');
    expect(await current.roundStatus()).toMatchObject({ round: 1, phase: 'abandoned' });
  });
});

describe('rounds', () => {
  it('commit once: the model and the record go in with the end, and the trained model is dropped', async () => {
    const leader = await plane();
    const epoch = (await leader.acquireLease('a', 60_000))!;
    await leader.putModel('run:0', new Float32Array([0.5, -1]));
    expect(await leader.begin(epoch, 1, '{}')).toBe(true);
    expect(await leader.begin(epoch, 1, '{}')).toBe(false); // that round exists
    expect(await leader.advance(epoch, 1, 'aggregating', 'committed')).toBe(false); // not in that phase
    expect(await leader.advance(epoch, 1, 'selecting', 'aggregating')).toBe(true);
    expect(await leader.end(epoch, 1, { status: 'committed', modelVersion: 'run:1', previousVersion: 'run:0', weights: new Float32Array([1.5, 2]) }, RECORD)).toBe(true);
    expect(await leader.end(epoch, 1, { status: 'committed', modelVersion: 'run:1', previousVersion: 'run:0', weights: new Float32Array([9, 9]) }, RECORD)).toBe(false);
    expect([...(await leader.model('run:1'))!]).toEqual([1.5, 2]);
    expect(await leader.model('run:0')).toBeUndefined();
    expect([...(await leader.lastEndedRecord())!]).toEqual([...RECORD]);
    expect(await leader.roundEnd(1)).toBe('committed');
    // A later round supersedes an earlier one left open; never the other way round.
    expect(await leader.begin(epoch, 3, '{}')).toBe(true);
    expect(await leader.begin(epoch, 2, '{}')).toBe(false);
  });

  it('take one report per group, only while their round (begun under that epoch) is selecting', async () => {
    const [leader, gateway] = [await plane(), await plane()];
    const epoch = (await leader.acquireLease('a', 60_000))!;
    await leader.begin(epoch, 1, '{}');
    const sum = new Float64Array([1.25, -3]);
    expect(await gateway.report(1, epoch, 'gw-0', '{"count":2}', sum)).toBe('ok');
    expect(await gateway.report(1, epoch, 'gw-0', '{"count":9}', new Float64Array([9, 9]))).toBe('duplicate');
    expect(await gateway.report(1, epoch + 1, 'gw-1', '{}', sum)).toBe('late'); // not the round's epoch
    expect(await gateway.report(2, epoch, 'gw-1', '{}', sum)).toBe('late'); // no such round
    await leader.advance(epoch, 1, 'selecting', 'aggregating');
    expect(await gateway.report(1, epoch, 'gw-2', '{}', sum)).toBe('late'); // closed
    expect(await leader.reportedGroups(1)).toEqual({ 'gw-0': '{"count":2}' });
    expect([...(await leader.groupSum(1, 'gw-0'))!]).toEqual([1.25, -3]);
    await leader.dropResults(1, ['gw-0']);
    expect(await leader.reportedGroups(1)).toEqual({});
    expect(await leader.groupSum(1, 'gw-0')).toBeUndefined();
  });

  it('list only the gateways whose heartbeat has not expired', async () => {
    const [leader, gateway] = [await plane(), await plane()];
    await gateway.heartbeat({ id: 'gw-live', connected: 5, eligible: 4 }, 60_000);
    await gateway.heartbeat({ id: 'gw-gone', connected: 1, eligible: 1 }, 1);
    await new Promise((resolve) => setTimeout(resolve, 20)); // past the 1 ms heartbeat's expiry (a lower bound only)
    expect(await leader.liveGateways()).toEqual([{ id: 'gw-live', connected: 5, eligible: 4 }]);
  });
});

describe('quotasFor', () => {
  it('admits exactly the wanted count when the shares are uneven (no rounding up per gateway)', () => {
    const gateways = [
      { id: 'a', connected: 12, eligible: 12 },
      { id: 'b', connected: 12, eligible: 12 },
      { id: 'c', connected: 12, eligible: 5 },
    ];
    expect(quotasFor(gateways, 24, 3)).toEqual({ a: 10, b: 10, c: 4 });
    expect(quotasFor(gateways, 100, 3)).toEqual({ a: 12, b: 12, c: 5 }); // fewer eligible than wanted: all of them
    expect(quotasFor(gateways, 24, 6)).toEqual({ a: 12, b: 12 }); // c cannot form a group of 6
  });

  const gatewaysArbitrary = fc.uniqueArray(fc.record({ id: fc.string({ minLength: 1, maxLength: 6 }), connected: fc.constant(0), eligible: fc.integer({ min: 0, max: 5_000 }) }), { selector: (gateway) => gateway.id, maxLength: 8 });

  it('gives each usable gateway between one group and what it has, and exactly the wanted count unless one group per gateway needs more', () => {
    fc.assert(
      fc.property(gatewaysArbitrary, fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 1, max: 300 }), (gateways, wanted, minGroupSize) => {
        const quotas = quotasFor(gateways, wanted, minGroupSize);
        const usable = gateways.filter((gateway) => gateway.eligible >= minGroupSize);
        expect(Object.keys(quotas).sort()).toEqual(usable.map((gateway) => gateway.id).sort());
        for (const gateway of usable) {
          expect(quotas[gateway.id]).toBeGreaterThanOrEqual(minGroupSize);
          expect(quotas[gateway.id]).toBeLessThanOrEqual(gateway.eligible);
        }
        const total = Object.values(quotas).reduce((sum, quota) => sum + quota, 0);
        const available = usable.reduce((sum, gateway) => sum + gateway.eligible, 0);
        expect(total).toBeGreaterThanOrEqual(Math.min(wanted, available));
        // More only where a proportional share fell below one group (raised to minGroupSize).
        const raised = Object.values(quotas).filter((quota) => quota === minGroupSize).length;
        expect(total).toBeLessThanOrEqual(Math.min(wanted, available) + raised * minGroupSize);
        if (usable.every((gateway) => (Math.min(wanted, available) * gateway.eligible) / Math.max(1, available) >= minGroupSize)) expect(total).toBe(Math.min(wanted, available));
      }),
    );
  });
});
