// A stranger on the network against a real `shoal serve` process: upgrades whose connection is
// reset around the 401, request targets that are not URLs, raw-TCP fuzzing of the upgrade, and
// token guessing. Before the fix the first two killed the process. Throughout, /healthz must
// answer (99% of probes within 100 ms, none over 500 ms), and two honest peers holding round 1
// open must see both rounds commit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { expectResponsive, monitorHealth, rawRequest, startHeldServe, upgradeRequest, type HeldServe, type RawExchange, type ServeProcess } from '@shoal/testkit';

const TOKEN = 'hostile-edge-token';
const UPGRADE_TIMEOUT_MS = 300;
const BAD_TOKEN_LIMIT = 5;
/** Every fuzzed connection must be answered or closed by then: twice the upgrade timeout (node checks it every upgradeTimeoutMs) and slack. */
const ANSWER_BOUND_MS = 2 * UPGRADE_TIMEOUT_MS + 1_500;

let held: HeldServe;
let serve: ServeProcess;
let host: string;
let port: number;
let health: ReturnType<typeof monitorHealth>;
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
  health = monitorHealth(host, port);
});

afterAll(async () => {
  await health?.stop();
  await held?.stop();
});

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
        for (let i = 0; i < 5; i++) await rawRequest(host, port, request, { then, localAddress: freshAddress() });
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
        const exchange = await rawRequest(host, port, upgradeRequest(target, headers), { localAddress: freshAddress() });
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

  it('answers or closes every one of 300 fuzzed raw-TCP upgrades within a bounded time, and lives', async () => {
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
        rawRequest(host, port, text, { ...(cut !== undefined ? { cutAt: cut % (text.length + 1) } : {}), then, localAddress: freshAddress(), timeoutMs: ANSWER_BOUND_MS }),
      );
      exchanges.push(...(await Promise.all(batch)));
    }
    // Answered: a status line arrived (a 404 may keep the connection alive), or the server closed it.
    const unanswered = exchanges.filter((exchange) => exchange.ending === 'timeout' && exchange.status === undefined);
    expect(unanswered.length, 'connections neither answered nor closed within the bound').toBe(0);
    expectAlive();
  });

  it('kept /healthz answering promptly throughout, and the honest peers\' rounds commit', async () => {
    // Stopped before the rounds finish: `serve` closes its HTTP server once training is complete.
    expectResponsive(await health.stop());
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
