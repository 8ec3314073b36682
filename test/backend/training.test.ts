import * as tf from '@tensorflow/tfjs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { buildModel } from '../../src/models/zoo.js';
import { createRng } from '../../src/pipeline/random.js';
import { relError, wasmDataIds } from './helpers.js';

const spec = { inputShape: [28, 28, 1] as [number, number, number], numClasses: 10, seed: 7 };
const BATCH = 16;

let model: tf.LayersModel;
let vars: tf.Variable[];
let x: tf.Tensor4D;
let labels: tf.Tensor2D;

beforeAll(async () => {
  await initBackend('wasm', () => {});
  // A learnable batch: a bright 6x6 square at a class-specific place on faint noise.
  const classes = Array.from({ length: BATCH }, (_, i) => i % spec.numClasses);
  const rng = createRng(7); // seeded, like the weights: the same float32 sums every run
  const pixels = new Float32Array(BATCH * 28 * 28).map(() => 0.1 * rng());
  classes.forEach((c, i) => {
    const top = (c % 5) * 5, left = Math.floor(c / 5) * 14;
    for (let r = top; r < top + 6; r++) for (let col = left; col < left + 6; col++) pixels[i * 784 + r * 28 + col] = 1;
  });
  x = tf.tensor4d(pixels, [BATCH, 28, 28, 1]);
  labels = tf.oneHot(tf.tensor1d(classes, 'int32'), spec.numClasses) as tf.Tensor2D;
});

afterAll(() => {
  tf.dispose([x, labels]);
});

// Each test starts from freshly initialised weights.
beforeEach(() => {
  model = buildModel('cnn-small', spec);
  vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
});

afterEach(() => {
  model.dispose();
});

const loss = (input: tf.Tensor): tf.Scalar =>
  tf.losses.softmaxCrossEntropy(labels, model.apply(input, { training: true }) as tf.Tensor) as tf.Scalar;

/** The input gradient of the loss, the core of a PGD step. */
const inputGradient = (input: tf.Tensor) => tf.grad(loss)(input);

function pgdStep(input: tf.Tensor4D, eps: number): tf.Tensor4D {
  return tf.tidy(() => tf.clipByValue(input.add(inputGradient(input).sign().mul(eps)), 0, 1) as tf.Tensor4D);
}

function lossValue(input: tf.Tensor): number {
  return tf.tidy(() => loss(input).dataSync()[0]);
}

describe('cnn-small on wasm', () => {
  it('trains with SGD momentum: the loss falls on a fixed batch and no tensor or wasm buffer is left behind', () => {
    expect(tf.getBackend()).toBe('wasm');
    const optimizer = tf.train.momentum(0.05, 0.9);
    const step = () => {
      const cost = optimizer.minimize(() => loss(x), true, vars)!;
      const value = cost.dataSync()[0];
      cost.dispose();
      return value;
    };
    const first = step(); // creates the momentum accumulators
    const tensors = tf.memory().numTensors;
    const buffers = wasmDataIds();
    let last = first;
    for (let i = 0; i < 15; i++) last = step();
    expect(tf.memory().numTensors).toBe(tensors);
    expect(wasmDataIds()).toBe(buffers);
    expect(Number.isFinite(last)).toBe(true);
    expect(last).toBeLessThan(first * 0.5);
    optimizer.dispose();
  });

  it('takes PGD steps: each raises the loss and none leaves a tensor or wasm buffer behind', () => {
    let adv = pgdStep(x, 2 / 255);
    adv.dispose();
    const tensors = tf.memory().numTensors;
    const buffers = wasmDataIds();
    let current = x.clone();
    let previous = lossValue(current);
    for (let i = 0; i < 3; i++) {
      adv = pgdStep(current, 4 / 255);
      current.dispose();
      current = adv;
      const now = lossValue(current);
      expect(now).toBeGreaterThan(previous);
      previous = now;
    }
    current.dispose();
    expect(tf.memory().numTensors).toBe(tensors);
    expect(wasmDataIds()).toBe(buffers);
  });

  it('computes the same weight and input gradients as the cpu backend', async () => {
    const gradients = () => tf.tidy(() => {
      const { grads } = tf.variableGrads(() => loss(x), vars);
      return [...vars.map((v) => grads[v.name]), inputGradient(x)].map((g) => g.dataSync() as Float32Array);
    });
    const ours = gradients();
    await tf.setBackend('cpu');
    try {
      const reference = gradients();
      const names = [...vars.map((v) => v.name), 'input'];
      reference.forEach((r, i) => expect(relError(ours[i], r), names[i]).toBeLessThan(1e-4));
    } finally {
      await tf.setBackend('wasm');
    }
  });
});
