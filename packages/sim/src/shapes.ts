import type { DatasetName } from './datasets.js';

/** Example shape and class count of each bundled dataset, known without loading it. */
export const DATASET_SHAPES: Readonly<Record<DatasetName, { readonly featureShape: readonly number[]; readonly numClasses: number }>> = {
  mnist: { featureShape: [28, 28, 1], numClasses: 10 },
  digits: { featureShape: [64], numClasses: 10 },
  iris: { featureShape: [4], numClasses: 3 },
};
