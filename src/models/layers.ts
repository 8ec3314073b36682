import * as tf from '@tensorflow/tfjs';
import { modelError } from '../errors.js';

/** The model's Conv2D layers, input to output. */
export function convLayers(model: tf.LayersModel): tf.layers.Layer[] {
  return model.layers.filter((l) => l.getClassName() === 'Conv2D');
}

export function lastConv(model: tf.LayersModel, who: string): tf.layers.Layer {
  const convs = convLayers(model);
  if (convs.length === 0) throw modelError(model.name, `${who} needs a Conv2D layer, and the model has none`);
  return convs[convs.length - 1];
}

/** A model sharing `model`'s weights whose outputs are the given layers' outputs (followed by the logits when `withLogits`). */
export function tapModel(model: tf.LayersModel, layers: tf.layers.Layer[], withLogits = false): tf.LayersModel {
  const outputs = layers.map((l) => l.output as tf.SymbolicTensor);
  return tf.model({ inputs: model.inputs, outputs: withLogits ? [...outputs, model.outputs[0]] : outputs });
}

/** The input of the last Dense layer (the penultimate features), as a model sharing `model`'s weights. */
export function penultimateModel(model: tf.LayersModel, who: string): tf.LayersModel {
  const dense = model.layers.filter((l) => l.getClassName() === 'Dense');
  if (dense.length === 0) throw modelError(model.name, `${who} needs a Dense output layer, and the model has none`);
  return tf.model({ inputs: model.inputs, outputs: dense[dense.length - 1].input as tf.SymbolicTensor });
}

/** Zeroes output channels of a Conv2D layer (kernel columns and bias): a pruned channel outputs activation(0). */
export function zeroChannels(layer: tf.layers.Layer, channels: readonly number[]): void {
  if (channels.length === 0) return;
  const weights = layer.getWeights();
  const outChannels = weights[0].shape[3] as number;
  const mask = new Float32Array(outChannels).fill(1);
  for (const c of channels) mask[c] = 0;
  const masked = tf.tidy(() => weights.map((w) => w.mul(tf.tensor1d(mask)))); // kernel [h, w, in, out] and bias [out] broadcast on the last axis
  layer.setWeights(masked);
  tf.dispose(masked);
}
