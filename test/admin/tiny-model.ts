import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { ModelManifest } from '../../services/inference/fractureModel.js';

/**
 * A tiny model with the shipped model's contract (manifest.json + TF.js layers model.json +
 * weights.bin; outputs: heat-map logits and an image logit), with fixed random weights. It lets
 * the real classify worker run end to end in tests when no trained model is in models/. Its
 * scores mean nothing.
 */
export async function writeTinyModel(dir: string): Promise<ModelManifest> {
  fs.mkdirSync(dir, { recursive: true });
  const S = 64;
  const stride = 8;
  const input = tf.input({ shape: [S, S, 1] });
  const features = tf.layers.conv2d({ filters: 4, kernelSize: stride, strides: stride, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 7 }) }).apply(input) as tf.SymbolicTensor;
  const heat = tf.layers.conv2d({ filters: 1, kernelSize: 1, name: 'heat', kernelInitializer: tf.initializers.glorotUniform({ seed: 8 }) }).apply(features) as tf.SymbolicTensor;
  const pooled = tf.layers.globalAveragePooling2d({}).apply(features) as tf.SymbolicTensor;
  const cls = tf.layers.dense({ units: 1, name: 'cls', kernelInitializer: tf.initializers.glorotUniform({ seed: 9 }) }).apply(pooled) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: [heat, cls] });
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    const weights = Buffer.from(artifacts.weightData as ArrayBuffer);
    fs.writeFileSync(path.join(dir, 'weights.bin'), weights);
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({
      format: 'layers-model', generatedBy: 'test/admin/tiny-model.ts', convertedBy: null,
      modelTopology: artifacts.modelTopology,
      weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
    }));
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: weights.length } };
  }));
  model.dispose();
  const manifest: ModelManifest = {
    name: 'tiny-test-model',
    version: 'test-1',
    modelFile: 'model.json',
    inputSize: S,
    normalisation: { mean: 0.5, std: 0.25 },
    score: { mode: 'cls', topk: 4 },
    calibration: { type: 'platt', a: 1, b: 0 },
    operatingPoints: { doubt: 0.3, definite: 0.7 },
    heatmap: { stride, size: S / stride, boxThresholds: { doubt: 0.5, definite: 0.7 } },
  };
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  return manifest;
}
