export * from './backoff.js';
export * from './client.js';
export * from './emitter.js';
export * from './model.js';
export * from './pipeline.js';
export * from './trainer.js';
export * from './transport.js';
