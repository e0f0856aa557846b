export * from './ws-peer.js';
export * from './process.js';
export * from './errors.js';
