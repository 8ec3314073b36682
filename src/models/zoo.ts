import * as tf from '@tensorflow/tfjs';
import { usageError } from '../errors.js';

export interface ModelSpec {
  inputShape: [number, number, number];
  numClasses: number;
  /** Seeds the weight initialisers, so the same seed gives the same initial model. */
  seed?: number;
}

/** A Glorot-uniform kernel initialiser per layer, seeded from the spec's seed and the layer's position. */
function seeded(spec: ModelSpec) {
  let layer = 0;
  return () => ({ kernelInitializer: tf.initializers.glorotUniform(spec.seed === undefined ? {} : { seed: spec.seed * 1000 + layer++ }) });
}

type Builder = (spec: ModelSpec) => tf.Sequential;

/** Two 3x3 convs (16, 32) with max-pooling and a 64-unit dense layer: the reference model for 28x28 data. */
function cnnSmall(spec: ModelSpec): tf.Sequential {
  const { inputShape, numClasses } = spec;
  const init = seeded(spec);
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ ...init(), inputShape, filters: 16, kernelSize: 3, padding: 'same', activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ ...init(), filters: 32, kernelSize: 3, padding: 'same', activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ ...init(), units: 64, activation: 'relu' }),
      tf.layers.dense({ ...init(), units: numClasses }),
    ],
  });
}

/** Four 3x3 convs (32, 32, 64, 64), pooling after each pair: the reference model for 32x32x3 data. */
function cnn4(spec: ModelSpec): tf.Sequential {
  const { inputShape, numClasses } = spec;
  const init = seeded(spec);
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ ...init(), inputShape, filters: 32, kernelSize: 3, padding: 'same', activation: 'relu' }),
      tf.layers.conv2d({ ...init(), filters: 32, kernelSize: 3, padding: 'same', activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ ...init(), filters: 64, kernelSize: 3, padding: 'same', activation: 'relu' }),
      tf.layers.conv2d({ ...init(), filters: 64, kernelSize: 3, padding: 'same', activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ ...init(), units: 128, activation: 'relu' }),
      tf.layers.dense({ ...init(), units: numClasses }),
    ],
  });
}

const zoo: Record<string, Builder> = { 'cnn-small': cnnSmall, 'cnn4': cnn4 };

export const modelNames = Object.keys(zoo);

/** Builds a fresh model by zoo name. Models output logits (no softmax). */
export function buildModel(name: string, spec: ModelSpec): tf.Sequential {
  const build = zoo[name];
  if (!build) throw usageError(`unknown model "${name}"; known models: ${modelNames.join(', ')}`);
  return build(spec);
}
