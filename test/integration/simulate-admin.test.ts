/**
 * A simulation whose config sets `server.adminTokens` serves /metrics and /dashboard on loopback
 * (its clients stay on the in-memory transport): the runner reports the origin before any client
 * starts (and waits for the caller), an admin token reads valid exposition text and the dashboard,
 * a missing token gets 401, and the run then trains as usual.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runSimulation } from '@shoal/sim';
import { parseConfig } from '@shoal/sim/config';
import { parseExposition, sampleValue } from './fixtures/exposition.js';

const ADMIN = 'simulation-operator';
let outDir: string | undefined;
afterEach(async () => {
  if (outDir !== undefined) await rm(outDir, { recursive: true, force: true });
});

describe('shoal simulate with server.adminTokens', () => {
  it('serves /metrics and /dashboard on loopback while the simulation runs, to admin tokens only', async () => {
    outDir = await mkdtemp(join(tmpdir(), 'shoal-simulate-admin-'));
    const config = parseConfig({
      name: 'simulate-admin',
      rounds: 2,
      clientsPerRound: 3,
      minClients: 2,
      model: 'logreg',
      server: { adminTokens: [ADMIN] },
      simulation: { dataset: 'digits', numClients: 3, examplesPerClient: 20, testExamples: 50, workers: 1 },
    });
    let origin: string | undefined;
    let lastScrape = '';
    const summary = await runSimulation(config, {
      outDir,
      onAdminListening: async (httpUrl) => {
        origin = httpUrl;
        expect((await fetch(`${httpUrl}/metrics`)).status).toBe(401);
        const dashboard = await fetch(`${httpUrl}/dashboard?token=${ADMIN}`);
        expect(dashboard.status).toBe(200);
        expect(await dashboard.text()).toContain('<html');
        const metrics = await fetch(`${httpUrl}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } });
        expect(metrics.status).toBe(200);
        lastScrape = await metrics.text();
      },
    });
    expect(origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    // Scraped before any round: valid text, nothing committed yet.
    expect(sampleValue(parseExposition(lastScrape), 'shoal_rounds_total', { status: 'committed' })).toBe(0);
    expect(summary.rounds.map((round) => round.status)).toEqual(['committed', 'committed']);
  });
});
