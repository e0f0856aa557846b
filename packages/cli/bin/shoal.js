#!/usr/bin/env node
// The `shoal` command. Installed from npm it runs the built JavaScript in ../dist. In a checkout of
// the Shoal repository (../src/main.ts exists there and only there: src/ is not published) it runs
// the TypeScript sources through tsx instead, with every @shoal/* import resolved to its sources
// too (the "shoal-source" export condition), so `npx shoal` and `npm run simulate` need no build.
import { existsSync } from 'node:fs';
import { register } from 'node:module';

/** A module resolve hook that adds the "shoal-source" condition, then lets the next hook resolve. */
const SOURCE_CONDITION_HOOK = `export function resolve(specifier, context, next) {
  return next(specifier, { ...context, conditions: [...context.conditions, 'shoal-source'] });
}`;

const sourceEntry = new URL('../src/main.ts', import.meta.url);
let entry = new URL('../dist/main.js', import.meta.url);
if (existsSync(sourceEntry)) {
  const tsx = await import('tsx/esm/api');
  tsx.register();
  // Hooks run last-registered first: this one adds the condition before tsx's resolver runs.
  register(`data:text/javascript,${encodeURIComponent(SOURCE_CONDITION_HOOK)}`);
  entry = sourceEntry;
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
