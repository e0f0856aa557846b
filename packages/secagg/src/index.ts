export * from './errors.js';
export * from './keys.js';
export * from './shamir.js';
export * from './share-crypto.js';
export * from './prg.js';
export * from './word-sum.js';
export * from './encoding.js';
export * from './graph.js';
export * from './params.js';
export * from './client.js';
export * from './server.js';
// Node-only fast paths (node:crypto) live in '@shoal/secagg/node', so browser bundles never load them.
