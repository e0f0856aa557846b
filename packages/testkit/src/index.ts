export * from './ws-peer.js';
