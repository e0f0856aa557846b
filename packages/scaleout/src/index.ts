export * from './plane.js';
export * from './task.js';
export * from './pace.js';
export * from './gateway.js';
export * from './leader.js';
export * from './roles.js';
export * from './wait.js';
export * from './groups.js';
