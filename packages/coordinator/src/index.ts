export * from './connection.js';
export * from './options.js';
export * from './round.js';
export * from './core.js';
export * from './server.js';
export * from './coordinator.js';
export * from './checkpoint.js';
export * from './model-init.js';
