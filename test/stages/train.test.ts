import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/select.js';
import { buildModel } from '../../src/models/zoo.js';
import { createRng } from '../../src/pipeline/random.js';
import { applyFlatGradients, batchGradients, sgdMomentum, trainStep } from '../../src/stages/train.js';

const shape: [number, number, number, number] = [12, 28, 28, 1];
const rng = createRng(3);
const x = Float32Array.from({ length: 12 * 784 }, rng);
const labels = Int32Array.from({ length: 12 }, (_, i) => (i * 7) % 10);
const batch = { keys: [...labels].map(String), x, labels, shape, adversarial: false };

const flat = (ts: tf.Tensor[]) => Float32Array.from(ts.flatMap((t) => [...(t.dataSync() as Float32Array)]));
const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe('train step', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('takes w - lr·(∇mean CE + wd·w), as PyTorch SGD with weight decay does', () => {
    const model = buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 2 });
    const before = flat(model.trainableWeights.map((w) => w.read()));
    const expectedGrad = tf.tidy(() => {
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 10).toFloat();
      const { grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, model.apply(tf.tensor4d(x, shape)) as tf.Tensor) as tf.Scalar, vars);
      return flat(vars.map((v) => grads[v.name]));
    });
    const optimizer = sgdMomentum(0.1, 0);
    const loss = trainStep(model, optimizer, batch, 0.01);
    const after = flat(model.trainableWeights.map((w) => w.read()));
    const expected = before.map((w, i) => w - 0.1 * (expectedGrad[i] + 0.01 * w));
    expect(maxDiff(after, expected)).toBeLessThan(1e-6);
    expect(loss).toBeGreaterThan(1);
    expect(loss).toBeLessThan(4);
  });

  it('the gradients of a batch’s parts, normalised by the batch size, add up to the whole batch’s', () => {
    const model = buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 2 });
    tf.tidy(() => {
      const whole = batchGradients(model, tf.tensor4d(x, shape), labels, 12);
      const first = batchGradients(model, tf.tensor4d(x.subarray(0, 5 * 784), [5, 28, 28, 1]), labels.subarray(0, 5), 12);
      const rest = batchGradients(model, tf.tensor4d(x.subarray(5 * 784), [7, 28, 28, 1]), labels.subarray(5), 12);
      const restFlat = flat(rest.grads);
      const summed = flat(first.grads).map((g, i) => g + restFlat[i]);
      expect(maxDiff(summed, flat(whole.grads))).toBeLessThan(1e-6);
      expect(first.lossSum + rest.lossSum).toBeCloseTo(whole.lossSum, 4);
    });
  });

  it('applyFlatGradients takes the same step as trainStep, and rejects gradients of another model', () => {
    const a = buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 4 });
    const b = buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 4 });
    const optA = sgdMomentum(0.05, 0.9);
    const optB = sgdMomentum(0.05, 0.9);
    for (let step = 0; step < 2; step++) {
      trainStep(a, optA, batch, 5e-4);
      const grads = tf.tidy(() => flat(batchGradients(b, tf.tensor4d(x, shape), labels, 12).grads));
      applyFlatGradients(b, optB, grads, 5e-4);
    }
    expect(maxDiff(flat(a.getWeights()), flat(b.getWeights()))).toBeLessThan(1e-6);
    expect(() => applyFlatGradients(b, optB, new Float32Array(10), 0)).toThrow(/has \d+ trainable parameters, but got 10 gradients/);
  });
});
