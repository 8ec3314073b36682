import * as tf from '@tensorflow/tfjs';
import { usageError } from '../errors.js';
import { mobilenetV2 } from './mobilenet-v2.js';
import { resnet18 } from './resnet18.js';
import { seededInit, type ModelSpec } from './spec.js';

export type { ModelSpec } from './spec.js';

/** A Glorot-uniform kernel initialiser per layer, seeded from the spec's seed and the layer's position. */
function seeded(spec: ModelSpec) {
  const init = seededInit(spec);
  return () => ({ kernelInitializer: init.glorot() });
}

type Builder = (spec: ModelSpec) => tf.LayersModel;

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

const zoo: Record<string, Builder> = { 'cnn-small': cnnSmall, 'cnn4': cnn4, 'resnet18': resnet18, 'mobilenet-v2': mobilenetV2 };

export const modelNames = Object.keys(zoo);

/** Builds a fresh model by zoo name. Models output logits (no softmax). */
export function buildModel(name: string, spec: ModelSpec): tf.LayersModel {
  const build = zoo[name];
  if (!build) throw usageError(`unknown model "${name}"; known models: ${modelNames.join(', ')}`);
  if (spec.width !== undefined && !(spec.width > 0)) throw usageError(`model width is expected to be a positive number, but got ${spec.width}`);
  return build(spec);
}
