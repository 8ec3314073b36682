import * as tf from '@tensorflow/tfjs';

/** What the Conv2D layer keeps that its public typings hide. */
interface ConvInternals {
  kernel: { read(): tf.Tensor4D };
  bias: { read(): tf.Tensor1D } | null;
  activation: { apply(x: tf.Tensor): tf.Tensor };
  strides: [number, number];
  padding: 'valid' | 'same';
  dataFormat: 'channelsFirst' | 'channelsLast';
  dilationRate: [number, number];
}

// TF.js does not export its Conv2D layer class; an instance leads to it.
const Conv2DLayer = Object.getPrototypeOf(tf.layers.conv2d({ filters: 1, kernelSize: 1 })).constructor as
  new (args: object) => tf.layers.Layer;

/**
 * The Keras `Conv2D` layer, except that a dilated one (atrous convolution) runs the plain conv2d op. TF.js's layer
 * runs the fused conv op, whose built-in gradient refuses dilation > 1 on every backend and cannot be replaced;
 * the plain op's gradient can (backend/dilated-gradients.ts). Undilated layers are TF.js's own, unchanged.
 */
class DilationAwareConv2D extends Conv2DLayer {
  static className = 'Conv2D';

  call(inputs: tf.Tensor | tf.Tensor[], kwargs: object): tf.Tensor | tf.Tensor[] {
    const self = this as unknown as ConvInternals;
    const [dh, dw] = self.dilationRate;
    if ((dh === 1 && dw === 1) || self.dataFormat !== 'channelsLast') return super.call(inputs, kwargs as never);
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      let y: tf.Tensor = tf.conv2d(x, self.kernel.read(), self.strides, self.padding, 'NHWC', [dh, dw]);
      if (self.bias !== null) y = tf.add(y, self.bias.read());
      return self.activation.apply(y);
    });
  }
}

let registered = false;

/**
 * Makes models deserialised from now on (loadLayersModel, modelFromJSON) build their Conv2D layers as
 * `DilationAwareConv2D`. Idempotent; call it in every thread that loads models.
 */
export function registerDilationAwareConv2D(): void {
  if (registered) return;
  tf.serialization.registerClass(DilationAwareConv2D as unknown as tf.serialization.SerializableConstructor<tf.layers.Layer>);
  registered = true;
}
