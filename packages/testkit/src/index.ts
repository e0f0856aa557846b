export * from './ws-peer.js';
export * from './process.js';
export * from './errors.js';
export * from './serve-process.js';
export * from './raw-tcp.js';
export * from './fake-clock.js';
export * from './float-bounds.js';
