import * as tf from '@tensorflow/tfjs';
import type { Batch } from './batch-types.js';

/**
 * One SGD step on softmax cross-entropy, with L2 weight decay added to the gradient as PyTorch's SGD does
 * (loss + wd/2·Σw² over all trainable weights). Returns the batch's cross-entropy (without the decay term).
 * Ownership: creates and disposes all its tensors.
 */
export function trainStep(model: tf.LayersModel, optimizer: tf.Optimizer, b: Batch, weightDecay: number): number {
  const numClasses = model.outputs[0].shape[1] as number;
  const weights = model.trainableWeights.map((w) => w.read() as tf.Variable);
  return tf.tidy(() => {
    const x = tf.tensor4d(b.x, b.shape);
    const y = tf.oneHot(tf.tensor1d(b.labels, 'int32'), numClasses).toFloat();
    let crossEntropy: tf.Scalar | undefined;
    optimizer.minimize(
      () => {
        const ce = tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar;
        crossEntropy = tf.keep(ce.clone());
        if (weightDecay === 0) return ce;
        const l2 = tf.addN(weights.map((w) => w.square().sum())).mul(weightDecay / 2);
        return ce.add(l2) as tf.Scalar;
      },
      false,
      weights,
    );
    const value = crossEntropy!.dataSync()[0];
    crossEntropy!.dispose();
    return value;
  });
}

export function sgdMomentum(lr: number, momentum: number): tf.Optimizer {
  return momentum > 0 ? tf.train.momentum(lr, momentum) : tf.train.sgd(lr);
}
