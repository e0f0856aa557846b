import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { buildModel, checkManifest, readWeights } from '@shoal/client';
import { loadSavedModel } from '@shoal/coordinator';

describe('a tfjs model saved on disk as the initial model', () => {
  it('loads in the coordinator without tfjs and rebuilds identically in the client', async () => {
    await tf.setBackend('cpu');
    const original = tf.sequential({
      layers: [tf.layers.dense({ inputShape: [6], units: 5, activation: 'relu' }), tf.layers.dense({ units: 3, activation: 'softmax' })],
    });
    // Save the way tfjs does (model.json + one binary weights file), through a custom save handler.
    const dir = await mkdtemp(join(tmpdir(), 'shoal-saved-'));
    await original.save(
      tf.io.withSaveHandler(async (artifacts) => {
        await writeFile(join(dir, 'weights.bin'), new Uint8Array(artifacts.weightData as ArrayBuffer));
        await writeFile(join(dir, 'model.json'), JSON.stringify({ modelTopology: artifacts.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }] }));
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );

    const initial = await loadSavedModel(join(dir, 'model.json'));
    expect(initial.weights).toEqual(readWeights(original));

    const rebuilt = await buildModel(initial.descriptor.topology);
    expect(() => checkManifest(rebuilt, initial.descriptor.manifest)).not.toThrow();
    expect(rebuilt.getWeights().map((w) => w.shape)).toEqual(original.getWeights().map((w) => w.shape));
    original.dispose();
    rebuilt.dispose();
  });
});
