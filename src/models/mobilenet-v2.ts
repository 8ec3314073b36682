import * as tf from '@tensorflow/tfjs';
import { seededInit, type ModelSpec } from './spec.js';

/** Inverted-residual stages: expansion t, output channels c, blocks n, first stride s (Sandler et al., Table 2). */
const stages = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]];

/** Channels scaled by the width multiplier, rounded to a multiple of 8 and never below 90% of the exact value. */
function divisible(value: number): number {
  const rounded = Math.max(8, Math.floor(value + 4) - (Math.floor(value + 4) % 8));
  return rounded < 0.9 * value ? rounded + 8 : rounded;
}

/**
 * MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018), as Keras
 * builds it: a 3x3 stem conv, 17 inverted-residual blocks (1x1 expand -> ReLU6 -> 3x3 depthwise -> ReLU6 -> 1x1
 * linear projection, each followed by batch norm; a residual add where shape allows), a 1x1 conv to 1280
 * channels (scaled when the width multiplier `spec.width` is above 1), global average pooling and dense logits.
 *
 * Any input size: below 112 pixels the stem and the second stage run at stride 1 (the CIFAR form), so a 32x32
 * image still ends at 4x4; from 112 on the ImageNet strides (32x down-sampling). Batch norm uses momentum 0.9 and
 * epsilon 1e-3 (Keras' MobileNetV2 values, 0.999 momentum lowered for short fine-tuning).
 *
 *   buildModel('mobilenet-v2', { inputShape: [224, 224, 3], numClasses: 10, width: 0.35 })
 */
export function mobilenetV2(spec: ModelSpec): tf.LayersModel {
  const init = seededInit(spec);
  const alpha = spec.width ?? 1;
  const small = Math.min(spec.inputShape[0], spec.inputShape[1]) < 112;
  const apply = (layer: tf.layers.Layer, x: tf.SymbolicTensor) => layer.apply(x) as tf.SymbolicTensor;
  const bn = (name: string) => tf.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-3, name });
  const relu6 = (name: string) => tf.layers.reLU({ maxValue: 6, name });
  const pointwise = (filters: number, name: string) =>
    tf.layers.conv2d({ filters, kernelSize: 1, useBias: false, kernelInitializer: init.he(), name });

  const input = tf.input({ shape: spec.inputShape });
  let channels = divisible(32 * alpha);
  let x = apply(tf.layers.conv2d({
    filters: channels, kernelSize: 3, strides: small ? 1 : 2, padding: 'same', useBias: false, kernelInitializer: init.he(), name: 'stem_conv',
  }), input);
  x = apply(relu6('stem_relu'), apply(bn('stem_bn'), x));
  let index = 0;
  stages.forEach(([expansion, base, blocks, firstStride], stage) => {
    const out = divisible(base * alpha);
    for (let block = 0; block < blocks; block++) {
      const name = `block${++index}`;
      const strides = block === 0 ? (small && stage === 1 ? 1 : firstStride) : 1;
      let y = x;
      if (expansion !== 1) {
        y = apply(relu6(`${name}_expand_relu`), apply(bn(`${name}_expand_bn`), apply(pointwise(channels * expansion, `${name}_expand`), y)));
      }
      y = apply(tf.layers.depthwiseConv2d({
        kernelSize: 3, strides, padding: 'same', useBias: false, depthwiseInitializer: init.he(), name: `${name}_depthwise`,
      }), y);
      y = apply(relu6(`${name}_depthwise_relu`), apply(bn(`${name}_depthwise_bn`), y));
      y = apply(bn(`${name}_project_bn`), apply(pointwise(out, `${name}_project`), y));
      x = strides === 1 && channels === out ? tf.layers.add({ name: `${name}_add` }).apply([x, y]) as tf.SymbolicTensor : y;
      channels = out;
    }
  });
  const last = alpha > 1 ? divisible(1280 * alpha) : 1280;
  x = apply(relu6('head_relu'), apply(bn('head_bn'), apply(pointwise(last, 'head_conv'), x)));
  x = apply(tf.layers.globalAveragePooling2d({ name: 'pool' }), x);
  const logits = apply(tf.layers.dense({ units: spec.numClasses, kernelInitializer: init.glorot(), name: 'logits' }), x);
  return tf.model({ inputs: input, outputs: logits, name: 'mobilenet_v2' });
}
