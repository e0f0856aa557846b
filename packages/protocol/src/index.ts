export * from './errors.js';
export * from './weights.js';
export * from './models.js';
export * from './messages.js';
export * from './codec.js';
export * from './random.js';
export * from './clock.js';
export * from './validate.js';
