/**
 * `@shoal/datasets`: MNIST, scikit-learn digits, iris and tiny Shakespeare as files in this package's `data/` folder
 * (formats, origins and licences in README.md). A package of its own so that the CLI and the
 * simulator can find them after an `npm install` while the client SDK stays small.
 */
import { fileURLToPath } from 'node:url';

/**
 * Absolute path of the folder holding `mnist/`, `sklearn/` and `shakespeare/`, ending in a path separator.
 * `@shoal/sim`'s `loadDataset()` reads from here unless given another `dataDir`. Located relative to
 * this module, which sits one level below the package root both as source (src/) and built (dist/).
 */
export const datasetsDir: string = fileURLToPath(new URL('../data/', import.meta.url));

export * from './shapes.js';
