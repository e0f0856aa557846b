// A browser app's TypeScript against `@shoal/client/browser`'s published .d.ts, with the DOM
// typings (test/consumer/consumer.test.ts type-checks it under moduleResolution "bundler").
import { ShoalClient, initBrowserBackend, type BrowserClientOptions, type RoundPlan } from '@shoal/client/browser';

const options: BrowserClientOptions = {
  url: 'wss://fl.example.com',
  token: 'secret-token',
  data: { x: new Float32Array(8), y: new Int32Array(2), featureShape: [4] },
  consent: () => Promise.resolve(window.confirm('Help train the model? Your data stays on this device.')),
  prepare: () => initBrowserBackend({ wasmPaths: '/wasm/' }),
};
const client = new ShoalClient(options);
client.on('roundPlan', (plan: RoundPlan) => {
  document.title = `round ${plan.round}`;
});
await client.run();

// @ts-expect-error: the browser backend has no 'tensorflow' (tfjs-node) choice
await initBrowserBackend({ prefer: 'tensorflow' });
