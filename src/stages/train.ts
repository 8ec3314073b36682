import * as tf from '@tensorflow/tfjs';
import type { Batch } from './batch-types.js';

/**
 * One SGD step on softmax cross-entropy, with L2 weight decay added to the gradient as PyTorch's SGD does
 * (g + wd·w, the gradient of loss + wd/2·Σw²). Returns the batch's mean cross-entropy (without the decay term).
 * The step is batchGradients + applyGradients, so a batch whose parts' gradients were computed elsewhere (on
 * compute workers) and summed takes the same step. Ownership: creates and disposes all its tensors.
 */
export function trainStep(model: tf.LayersModel, optimizer: tf.Optimizer, b: Batch, weightDecay: number): number {
  return tf.tidy(() => {
    const { grads, lossSum } = batchGradients(model, tf.tensor4d(b.x, b.shape), b.labels, b.shape[0]);
    applyGradients(model, optimizer, grads, weightDecay);
    return lossSum / b.shape[0];
  });
}

/**
 * Gradients of Σ CE / `normalizer` over the samples of x (the model in training mode), one per trainable weight
 * in model.trainableWeights order, and Σ CE. With normalizer = the whole batch's size, the gradients of a batch's
 * parts add up to the gradient of the batch's mean cross-entropy.
 */
export function batchGradients(model: tf.LayersModel, x: tf.Tensor4D, labels: Int32Array, normalizer: number): { grads: tf.Tensor[]; lossSum: number } {
  const numClasses = model.outputs[0].shape[1] as number;
  const weights = trainableVariables(model);
  const y = tf.oneHot(tf.tensor1d(labels, 'int32'), numClasses).toFloat();
  let lossSum = 0;
  const { grads } = tf.variableGrads(() => {
    const sum = tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor, undefined, undefined, tf.Reduction.SUM);
    lossSum = sum.dataSync()[0];
    return sum.div(normalizer) as tf.Scalar;
  }, weights);
  return { grads: weights.map((w) => grads[w.name]), lossSum };
}

/** Applies gradients (model.trainableWeights order) plus the weight-decay term wd·w with the optimizer. */
export function applyGradients(model: tf.LayersModel, optimizer: tf.Optimizer, grads: tf.Tensor[], weightDecay: number): void {
  tf.tidy(() => {
    const named = trainableVariables(model).map((w, i) => ({ name: w.name, tensor: weightDecay === 0 ? grads[i] : grads[i].add(w.mul(weightDecay)) }));
    optimizer.applyGradients(named);
  });
}

/** applyGradients for gradients flattened one after the other in model.trainableWeights order (as workers send them). */
export function applyFlatGradients(model: tf.LayersModel, optimizer: tf.Optimizer, flat: Float32Array, weightDecay: number): void {
  const sizes = model.trainableWeights.map((w) => w.shape.reduce<number>((n, d) => n * (d as number), 1));
  const total = sizes.reduce((n, size) => n + size, 0);
  if (total !== flat.length) throw new Error(`applyFlatGradients: the model has ${total} trainable parameters, but got ${flat.length} gradients`);
  tf.tidy(() => {
    let offset = 0;
    const grads = model.trainableWeights.map((w, i) => {
      offset += sizes[i];
      return tf.tensor(flat.subarray(offset - sizes[i], offset), w.shape as number[]);
    });
    applyGradients(model, optimizer, grads, weightDecay);
  });
}

function trainableVariables(model: tf.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((w) => w.read() as tf.Variable);
}

export function sgdMomentum(lr: number, momentum: number): tf.Optimizer {
  return momentum > 0 ? new Momentum(lr, momentum) : tf.train.sgd(lr);
}

/** tfjs 4.22's MomentumOptimizer.dispose() leaves its SGD learning-rate scalar behind (it does not call SGD's dispose). */
class Momentum extends tf.MomentumOptimizer {
  override dispose(): void {
    super.dispose();
    (this as unknown as { c: tf.Tensor }).c.dispose();
  }
}
