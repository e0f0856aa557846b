// The browser app, bundled by esbuild from the installed `@shoal/client` (its "browser" export
// condition): trains one round on random points and reports through `globalThis.__shoal`.
import { ShoalClient, initBrowserBackend } from '@shoal/client';

const report = (fields) => (globalThis.__shoal = { ...globalThis.__shoal, ...fields });
try {
  const { url, token } = await (await fetch('/config.json')).json();
  const x = new Float32Array(32 * 4).map((_, i) => (Math.floor(i / 4) % 2 === 0 ? -1 : 1) + Math.random() - 0.5);
  const y = new Int32Array(32).map((_, i) => i % 2);
  const client = new ShoalClient({
    url,
    token,
    data: { x, y, featureShape: [4] },
    consent: true, // the page's user already agreed
    // The .wasm files are served from node_modules/@tensorflow/tfjs-backend-wasm/dist/ at /wasm/.
    prepare: async () => report({ backend: (await initBrowserBackend({ wasmPaths: '/wasm/', prefer: 'wasm' })).name }),
  });
  client.on('roundEnd', ({ round, status }) => report({ rounds: [...(globalThis.__shoal?.rounds ?? []), { round, status }] }));
  await client.run();
  report({ done: true });
} catch (error) {
  report({ error: String(error?.stack ?? error) });
}
