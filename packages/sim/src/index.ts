export * from './datasets.js';
export * from './synthetic.js';
export * from './partition.js';
export * from './config.js';
export * from './memory-transport.js';
export * from './runner.js';
export * from './faults.js';
export * from './evaluate.js';
