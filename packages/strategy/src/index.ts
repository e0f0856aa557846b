export * from './strategy.js';
export * from './aggregate.js';
export * from './decorator.js';
export * from './fedavg.js';
export * from './fedavgm.js';
export * from './fedprox.js';
export * from './create.js';
export * from './central-dp.js';
