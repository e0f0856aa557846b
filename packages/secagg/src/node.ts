// Node-only fast paths with the same bytes as the portable implementations: `@shoal/secagg/node`.
export { nodeKeystream, nodeMaskPrg } from './prg-node.js';
export { nodeKeyAgreement } from './x25519-node.js';
export { nodeSigning } from './signing-node.js';
