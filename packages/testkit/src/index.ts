export * from './ws-peer.js';
export * from './process.js';
