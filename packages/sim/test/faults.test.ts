import { describe, expect, it } from 'vitest';
import { createSeededRandom, decodeFrame, encodeFrame } from '@shoal/protocol';
import type { ClientConnection, ClientTransport } from '@shoal/client';
import { withFaults } from '../src/faults.js';

/** A transport whose one connection records what the client sent and whether it was closed. */
function recordingTransport() {
  const sent: string[] = [];
  let closedWith: string | undefined;
  let deliver: (frame: Uint8Array) => void = () => {};
  const transport: ClientTransport = {
    async connect() {
      const connection: ClientConnection = {
        send: (frame) => sent.push((decodeFrame(frame) as { type: string }).type),
        close: (_code, reason) => (closedWith = reason),
        onFrame: (handler) => (deliver = handler),
        onClose: () => {},
      };
      return connection;
    },
  };
  return { transport, sent, closed: () => closedWith, deliver: (message: object) => deliver(encodeFrame(message)) };
}

const train = (round: number, secagg?: object) => ({ type: 'train', round, modelVersion: 'r:0', config: {}, deadlineMs: 1, ...(secagg ? { secagg } : {}) });

describe('withFaults', () => {
  it('closes instead of sending the update of a round in which the client is doomed', async () => {
    const inner = recordingTransport();
    const connection = await withFaults(inner.transport, { dropout: 1, stage: 'train' }, createSeededRandom(1)).connect('x', 't');
    connection.onFrame(() => {});
    connection.send(encodeFrame({ type: 'hello' }));
    inner.deliver(train(1));
    connection.send(encodeFrame({ type: 'update', round: 1 }));
    expect(inner.sent).toEqual(['hello']);
    expect(inner.closed()).toMatch(/simulated dropout before train/);
  });

  it('lets a SecAgg client through the stages before the doomed one', async () => {
    const inner = recordingTransport();
    const connection = await withFaults(inner.transport, { dropout: 1, stage: 'unmask' }, createSeededRandom(1)).connect('x', 't');
    connection.onFrame(() => {});
    inner.deliver(train(4, { mode: 'secagg+' }));
    for (const type of ['advertise', 'shares', 'masked', 'reveal']) connection.send(encodeFrame({ type, round: 4 }));
    expect(inner.sent).toEqual(['advertise', 'shares', 'masked']);
    expect(inner.closed()).toMatch(/before unmask/);
  });

  it('vanishes at the consistency check: after the masked input, instead of the confirm', async () => {
    const inner = recordingTransport();
    const connection = await withFaults(inner.transport, { dropout: 1, stage: 'confirm' }, createSeededRandom(1)).connect('x', 't');
    connection.onFrame(() => {});
    inner.deliver(train(4, { mode: 'secagg' }));
    for (const type of ['advertise', 'shares', 'masked', 'confirm', 'reveal']) connection.send(encodeFrame({ type, round: 4 }));
    expect(inner.sent).toEqual(['advertise', 'shares', 'masked']);
    expect(inner.closed()).toMatch(/simulated dropout before confirm/);
  });

  it('draws the stage among all five SecAgg stages when none is configured', async () => {
    const random = createSeededRandom(5);
    const seen = new Set<string>();
    const order = ['advertise', 'shares', 'masked', 'confirm', 'reveal'];
    for (let i = 0; i < 200; i++) {
      const inner = recordingTransport();
      const connection = await withFaults(inner.transport, { dropout: 1 }, random).connect('x', 't');
      connection.onFrame(() => {});
      inner.deliver(train(1, { mode: 'secagg' }));
      for (const type of order) connection.send(encodeFrame({ type, round: 1 }));
      seen.add(/before (\w+)/.exec(inner.closed() ?? '')![1]!);
    }
    expect([...seen].sort()).toEqual(['advertise', 'confirm', 'masked', 'share', 'unmask']);
  });

  it('vanishes in about the configured fraction of rounds', async () => {
    let dropped = 0;
    const random = createSeededRandom(3);
    for (let i = 0; i < 400; i++) {
      const inner = recordingTransport();
      const connection = await withFaults(inner.transport, { dropout: 0.25 }, random).connect('x', 't');
      connection.onFrame(() => {});
      inner.deliver(train(1));
      connection.send(encodeFrame({ type: 'update', round: 1 }));
      if (inner.closed() !== undefined) dropped++;
    }
    expect(dropped / 400).toBeGreaterThan(0.18);
    expect(dropped / 400).toBeLessThan(0.32);
  });

  it('is the identity with no dropout', async () => {
    const inner = recordingTransport();
    expect(withFaults(inner.transport, { dropout: 0 }, createSeededRandom(1))).toBe(inner.transport);
  });
});
