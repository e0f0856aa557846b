/** The bundled datasets. */
export const DATASET_NAMES = ['mnist', 'digits', 'iris'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

/** The dataset a config means when it names none (`simulation.dataset`). */
export const DEFAULT_DATASET: DatasetName = 'mnist';

/**
 * Example shape and class count of each bundled dataset, known without loading it: `simulate`
 * checks its model against them, and `serve` shapes a built-in model by them.
 */
export const DATASET_SHAPES: Readonly<Record<DatasetName, { readonly featureShape: readonly number[]; readonly numClasses: number }>> = {
  mnist: { featureShape: [28, 28, 1], numClasses: 10 },
  digits: { featureShape: [64], numClasses: 10 },
  iris: { featureShape: [4], numClasses: 3 },
};
