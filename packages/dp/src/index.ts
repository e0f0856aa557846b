export * from './random.js';
export * from './clip.js';
export * from './central.js';
export * from './adaptive.js';
export * from './rdp.js';
export * from './accountant.js';
export * from './steps.js';
export * from './config.js';
export { checkNoiseMultiplier, checkClipNorm, checkSampleRate, checkDelta } from './checks.js';
