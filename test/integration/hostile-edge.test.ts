// A stranger on the network against a real `shoal serve` process: upgrades whose connection is
// reset around the 401, request targets that are not URLs, raw-TCP fuzzing of the upgrade, and
// token guessing. Before the fix the first two killed the process. Throughout, /healthz must
// answer 200 "ok" (probed beside every burst of the attacks), and two honest peers holding round 1
// open must see both rounds commit. Nothing here is timed: /healthz latency under a hostile flood
// is bench/hostile-health.bench.ts's figure.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { rawRequest, startHeldServe, upgradeRequest, type HeldServe, type RawExchange, type ServeProcess } from '@shoal/testkit';
import { HEALTHY, probeHealth } from './fixtures/health-probe.js';

const TOKEN = 'hostile-edge-token';
const UPGRADE_TIMEOUT_MS = 300;
const BAD_TOKEN_LIMIT = 5;
/**
 * A fuzzed connection the coordinator neither answers nor closes fails when we give up on it, this
 * long after it opened: far past the upgrade timeout that closes a slow request (node checks it
 * every upgradeTimeoutMs), so only a connection left open for good, never a slow machine, reaches it.
 */
const WATCHDOG_MS = 30_000;

let held: HeldServe;
let serve: ServeProcess;
let host: string;
let port: number;
/** What /healthz answered at each probe, in order; every attack probes beside its bursts. */
const healthAnswers: { status: number; body: string }[] = [];
/** Each test that sends bad tokens uses its own source addresses, so the per-address back-off of one never shows in another. */
let nextAddress = 2;
function freshAddress(): string {
  const n = nextAddress++;
  return `127.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

beforeAll(async () => {
  held = await startHeldServe(TOKEN, { limits: { upgradeTimeoutMs: UPGRADE_TIMEOUT_MS, badTokenLimit: BAD_TOKEN_LIMIT, badTokenWindowMs: 600_000 } });
  serve = held.serve;
  host = new URL(held.url).hostname;
  port = Number(new URL(held.url).port);
});

afterAll(async () => {
  await held?.stop();
});

/** Runs one burst of an attack with a /healthz probe sent beside it, and records the probe's answer. */
async function probedBeside<T>(burst: Promise<T>): Promise<T> {
  const [result, answer] = await Promise.all([burst, probeHealth(held.url)]);
  healthAnswers.push(answer);
  return result;
}

function expectAlive(): void {
  expect(serve.child.exitCode, `shoal serve exited; stderr:\n${serve.stderr()}`).toBeNull();
  expect(serve.child.signalCode).toBeNull();
}

describe('shoal serve against hostile upgrades', () => {
  it('survives bad or missing tokens whose connection is reset around the 401', async () => {
    const requests = [
      upgradeRequest('/'),
      upgradeRequest('/', { Authorization: 'Bearer wrong' }),
      upgradeRequest('/?token=wrong'),
      upgradeRequest('/', { Authorization: 'Basic abc' }),
    ];
    for (const request of requests) {
      for (const then of ['reset', 'reset-on-response'] as const) {
        const fiveInARow = async () => {
          for (let i = 0; i < 5; i++) await rawRequest(host, port, request, { then, localAddress: freshAddress() });
        };
        await probedBeside(fiveInARow());
      }
      // Reset after only part of the request went out, too.
      await rawRequest(host, port, request, { cutAt: request.length - 3, then: 'reset', localAddress: freshAddress() });
    }
    // The process takes a moment to die from an unhandled 'error'; give it that moment, then probe.
    const probe = await rawRequest(host, port, upgradeRequest('/', { Authorization: 'Bearer wrong' }), { localAddress: freshAddress() });
    expect(probe.status).toBe(401);
    expectAlive();
  });

  it('answers 400 to a request target that is not a URL, token or not, and lives', async () => {
    for (const target of ['http://x:99999/', 'http://[::1/', 'http://a b/', 'http://%zz/']) {
      for (const headers of [{ Authorization: `Bearer ${TOKEN}` }, {}] as Record<string, string>[]) {
        const exchange = await probedBeside(rawRequest(host, port, upgradeRequest(target, headers), { localAddress: freshAddress() }));
        // node's own parser refuses some of these targets before the upgrade handler sees them; 400 either way.
        expect(exchange.status, `${target} ${JSON.stringify(headers)}`).toBe(400);
      }
    }
    expectAlive();
  });

  it('answers repeated bad tokens from one address with 429 and Retry-After, and only that address', async () => {
    const guesser = freshAddress();
    const statuses: (number | undefined)[] = [];
    for (let i = 0; i < BAD_TOKEN_LIMIT + 2; i++) {
      statuses.push((await rawRequest(host, port, upgradeRequest('/', { Authorization: `Bearer guess-${i}` }), { localAddress: guesser })).status);
    }
    expect(statuses).toEqual([...Array(BAD_TOKEN_LIMIT).fill(401), 429, 429]);
    const refused = await rawRequest(host, port, upgradeRequest('/', { Authorization: `Bearer ${TOKEN}` }), { localAddress: guesser });
    expect(refused.status).toBe(429); // even the right token: that is what stops guessing
    expect(refused.head).toMatch(/\r\nRetry-After: \d+/);
    const neighbour = await rawRequest(host, port, upgradeRequest('/', { Authorization: `Bearer ${TOKEN}` }), { localAddress: freshAddress(), then: 'reset-on-response' });
    expect(neighbour.status).toBe(101);
  });

  it('answers or closes every one of 300 fuzzed raw-TCP upgrades itself (a slow one at its upgrade timeout), never leaving one open, and lives', async () => {
    const token = fc.constantFrom(`Bearer ${TOKEN}`, 'Bearer wrong', '', 'Bearer ', `bearer ${TOKEN}`, 'Bearer \u00ff\u0000');
    const headerLine = fc.oneof(
      token.map((value) => `Authorization: ${value}`),
      fc.constantFrom('Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Version: 99', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='),
      fc.constantFrom('Sec-WebSocket-Key: ', 'Content-Length: 5', 'Content-Length: -1', 'Transfer-Encoding: chunked', 'Host:', 'X: \u0001'),
      fc.tuple(fc.string({ maxLength: 12 }), fc.string({ maxLength: 40 })).map(([name, value]) => `${name}: ${value}`),
    );
    const target = fc.oneof(
      fc.constantFrom('/', `/?token=${TOKEN}`, '/?token=wrong', 'http://x:99999/', '*', '//', 'http://[', '/%', '/?token=%ff'),
      fc.string({ maxLength: 30 }),
    );
    const requestLine = fc.tuple(fc.constantFrom('GET', 'POST', 'get', 'CONNECT', 'GET GET', ''), target, fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2', 'HTTP/1.1 x', ''));
    const request = fc
      .tuple(requestLine, fc.array(headerLine, { maxLength: 8 }), fc.boolean())
      .map(([[method, path, version], headers, wellFormedUpgrade]) => {
        const lines = [`${method} ${path} ${version}`, ...(wellFormedUpgrade ? ['Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13'] : []), ...headers];
        return `${lines.join('\r\n')}\r\n\r\n`;
      });
    const exchangeCase = fc.record({
      request,
      cut: fc.option(fc.nat(), { nil: undefined }),
      then: fc.constantFrom('wait', 'reset', 'reset-on-response') as fc.Arbitrary<'wait' | 'reset' | 'reset-on-response'>,
    });
    const cases = fc.sample(exchangeCase, { numRuns: 300, seed: 8 });
    const exchanges: RawExchange[] = [];
    // Twenty at a time: upgrades overlap, and a case cut short waits out the upgrade timeout beside others.
    for (let start = 0; start < cases.length; start += 20) {
      const batch = cases.slice(start, start + 20).map(({ request: text, cut, then }) =>
        rawRequest(host, port, text, { ...(cut !== undefined ? { cutAt: cut % (text.length + 1) } : {}), then, localAddress: freshAddress(), timeoutMs: WATCHDOG_MS }),
      );
      const answered = await probedBeside(Promise.all(batch));
      // Answered: a status line arrived (a 404 may keep the connection alive), or the server closed it.
      // Checked per batch, so a coordinator that leaves connections open fails after one watchdog, not one per batch.
      const unanswered = answered.filter((exchange) => exchange.ending === 'timeout' && exchange.status === undefined);
      expect(unanswered.length, `cases ${start}–${start + 19}: connections the coordinator neither answered nor closed (left to our watchdog)`).toBe(0);
      exchanges.push(...answered);
    }
    // The slow ones were ended by the coordinator's upgrade timeout (node answers 408), not by us.
    expect(exchanges.filter((exchange) => exchange.status === 408).length).toBeGreaterThan(0);
    expectAlive();
  }, 2 * WATCHDOG_MS);

  it('answered /healthz with 200 "ok" beside every burst of the attacks, and the honest peers\' rounds commit', async () => {
    // 4 requests × 2 reset modes, 4 targets × 2 token choices, and 300 fuzzed upgrades in 15 batches.
    expect(healthAnswers).toEqual(Array(4 * 2 + 4 * 2 + 15).fill(HEALTHY));
    held.release();
    const finished = await serve.line((line) => line['event'] === 'finished');
    expect(finished['stoppedBy']).toBe('completed');
    const rounds = serve.lines.filter((line) => 'status' in line).map((line) => [line['round'], line['status'], line['participants']]);
    expect(rounds).toEqual([
      [1, 'committed', 2],
      [2, 'committed', 2],
    ]);
    expectAlive();
  });
});
