import * as tf from '@tensorflow/tfjs';
import { modelError } from '../errors.js';

/**
 * Layer classes that pbe trains (weight and input gradients) on every backend here. Each one is built, trained
 * and compared against the cpu backend by test/models/layer-contract.test.ts, which fails when this list and
 * the tested classes differ. Left out because TF.js 4.22 has no gradient for them on any backend: ThresholdedReLU
 * (Greater), CenterCrop and Resizing (CropAndResize; Resizing also mis-shapes its output).
 */
export const trainableLayerClasses: readonly string[] = [
  'InputLayer', 'Conv2D', 'DepthwiseConv2D', 'SeparableConv2D', 'Conv2DTranspose', 'Dense', 'Flatten', 'Reshape', 'Permute',
  'BatchNormalization', 'LayerNormalization', 'MaxPooling2D', 'AveragePooling2D', 'GlobalAveragePooling2D',
  'GlobalMaxPooling2D', 'Dropout', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout', 'Add', 'Concatenate', 'Multiply',
  'Average', 'Maximum', 'Minimum', 'Activation', 'ReLU', 'LeakyReLU', 'PReLU', 'ELU', 'Softmax', 'ZeroPadding2D',
  'Cropping2D', 'UpSampling2D', 'Rescaling',
];

/** Containers whose layers are checked one by one. */
const containers = new Set(['Sequential', 'Model', 'Functional']);

/**
 * Throws a model error naming the first layer pbe cannot train (its name and class, and why), so a model fails
 * when it is loaded rather than at its first training or PGD step. Nested models are checked layer by layer.
 */
export function checkTrainable(model: tf.LayersModel, location: string): void {
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if (containers.has(cls)) {
      checkTrainable(layer as unknown as tf.LayersModel, location);
      continue;
    }
    const problem = layerProblem(layer, cls);
    if (problem !== undefined) throw modelError(location, `layer "${layer.name}" (${cls}) ${problem}`);
  }
}

function layerProblem(layer: tf.layers.Layer, cls: string): string | undefined {
  if (!trainableLayerClasses.includes(cls)) {
    return `is not a layer pbe can train; supported layer classes: ${trainableLayerClasses.join(', ')}`;
  }
  const config = layer.getConfig();
  const dilation = config.dilationRate as number | number[] | undefined;
  const dilated = dilation !== undefined && [dilation].flat().some((d) => d !== 1);
  // TF.js's DepthwiseConv2D layer passes no dilation to its op: the model would compute something else than in Keras.
  if (cls === 'DepthwiseConv2D' && dilated) {
    return `has dilation_rate ${JSON.stringify(dilation)}, which TensorFlow.js's DepthwiseConv2D ignores (it computes an undilated convolution)`;
  }
  if (config.dataFormat === 'channelsFirst') {
    return 'uses data_format channels_first; pbe feeds images as [height, width, channels] and supports channels_last models only';
  }
  return undefined;
}
