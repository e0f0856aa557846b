// Node-only fast paths with the same bytes as the portable implementations: `@shoal/secagg/node`.
export * from './prg-node.js';
export * from './x25519-node.js';
