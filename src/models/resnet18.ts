import * as tf from '@tensorflow/tfjs';
import { seededInit, type ModelSpec } from './spec.js';

/**
 * PreAct ResNet-18 (He et al., "Identity Mappings in Deep Residual Networks", ECCV 2016), the model BackdoorBench
 * and the PBE paper evaluate: four stages of two pre-activation blocks (BN -> ReLU -> conv3x3 -> BN -> ReLU ->
 * conv3x3, plus the identity or a 1x1 conv shortcut taken after the first BN-ReLU), widths 64/128/256/512 times
 * `spec.width`, strides 1/2/2/2, then global average pooling -> dense (logits), as BackdoorBench's
 * models/preact_resnet.py (no batch norm after the last block).
 *
 * Any input size: below 112 pixels the stem is one 3x3 conv at stride 1 (BackdoorBench's CIFAR/GTSRB form); from 112
 * on it is ImageNet's 7x7 conv at stride 2, BN -> ReLU and a 3x3 max-pool at stride 2, which keeps a 224x224 step 16x cheaper.
 * Convs carry no bias (batch norm follows); batch norm uses PyTorch's momentum 0.1 and epsilon 1e-5.
 *
 *   buildModel('resnet18', { inputShape: [32, 32, 3], numClasses: 10, width: 0.5 })
 */
export function resnet18(spec: ModelSpec): tf.LayersModel {
  const init = seededInit(spec);
  const width = spec.width ?? 1;
  const channels = (base: number) => Math.max(1, Math.round(base * width));
  const conv = (filters: number, kernelSize: number, strides: number, name: string) =>
    tf.layers.conv2d({ filters, kernelSize, strides, padding: 'same', useBias: false, kernelInitializer: init.he(), name });
  const bn = (name: string) => tf.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-5, name });
  const relu = (name: string) => tf.layers.reLU({ name });
  const apply = (layer: tf.layers.Layer, x: tf.SymbolicTensor) => layer.apply(x) as tf.SymbolicTensor;

  const input = tf.input({ shape: spec.inputShape });
  const large = Math.min(spec.inputShape[0], spec.inputShape[1]) >= 112;
  let x = large ? apply(conv(channels(64), 7, 2, 'stem_conv'), input) : apply(conv(channels(64), 3, 1, 'stem_conv'), input);
  if (large) {
    x = apply(relu('stem_relu'), apply(bn('stem_bn'), x));
    x = apply(tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same', name: 'stem_pool' }), x);
  }
  let inChannels = channels(64);
  [64, 128, 256, 512].forEach((base, stage) => {
    for (let block = 0; block < 2; block++) {
      const name = `stage${stage + 1}_block${block + 1}`;
      const strides = stage > 0 && block === 0 ? 2 : 1;
      const out = channels(base);
      const pre = apply(relu(`${name}_relu1`), apply(bn(`${name}_bn1`), x));
      const shortcut = strides !== 1 || inChannels !== out ? apply(conv(out, 1, strides, `${name}_shortcut`), pre) : x;
      let y = apply(conv(out, 3, strides, `${name}_conv1`), pre);
      y = apply(relu(`${name}_relu2`), apply(bn(`${name}_bn2`), y));
      y = apply(conv(out, 3, 1, `${name}_conv2`), y);
      x = tf.layers.add({ name: `${name}_add` }).apply([y, shortcut]) as tf.SymbolicTensor;
      inChannels = out;
    }
  });
  x = apply(tf.layers.globalAveragePooling2d({ name: 'pool' }), x);
  const logits = apply(tf.layers.dense({ units: spec.numClasses, kernelInitializer: init.glorot(), name: 'logits' }), x);
  return tf.model({ inputs: input, outputs: logits, name: 'resnet18' });
}
