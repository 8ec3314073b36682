import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { checkTrainable } from '../../src/models/layer-check.js';
import { buildModel, modelNames } from '../../src/models/zoo.js';

beforeAll(async () => {
  await initBackend('wasm', () => {});
});

const params = (m: tf.LayersModel) => m.countParams();
const size = (ws: tf.LayerVariable[]) => ws.reduce((n, w) => n + tf.util.sizeFromShape(w.shape as number[]), 0);

describe('model zoo', () => {
  it('lists the four models', () => {
    expect(modelNames).toEqual(['cnn-small', 'cnn4', 'resnet18', 'mobilenet-v2']);
  });

  it('resnet18 at width 1 has PreAct ResNet-18\'s 11.17M parameters (BackdoorBench, 10 classes, CIFAR stem)', () => {
    const m = buildModel('resnet18', { inputShape: [32, 32, 3], numClasses: 10 });
    // 11,171,146 in PyTorch, plus BN running means/variances, which Keras counts as (non-trainable) weights.
    const trainable = size(m.trainableWeights);
    expect(trainable).toBe(11_171_146);
    m.dispose();
  });

  it('mobilenet-v2 at width 1 has Keras MobileNetV2\'s trainable parameters (10 classes)', () => {
    const m = buildModel('mobilenet-v2', { inputShape: [224, 224, 3], numClasses: 10 });
    const trainable = size(m.trainableWeights);
    // Keras' MobileNetV2 (1000 classes): 3,504,872 trainable, of which 1280 * 1000 + 1000 in the head; here 1280 * 10 + 10.
    expect(trainable).toBe(3_504_872 - 1_281_000 + 12_810);
    expect(size(m.nonTrainableWeights)).toBe(34_112);
    m.dispose();
  });

  const cases: [string, [number, number, number], number][] = [
    ['resnet18', [32, 32, 3], 0.125], ['resnet18', [112, 96, 1], 0.125], ['mobilenet-v2', [32, 32, 3], 0.35],
    ['mobilenet-v2', [128, 128, 3], 0.35],
  ];
  it.each(cases)('%s on %j at width %d: logits for any input size, trainable layers, width shrinks it', (name, inputShape, width) => {
    const m = buildModel(name, { inputShape, numClasses: 7, width, seed: 1 });
    const full = buildModel(name, { inputShape, numClasses: 7 });
    try {
      expect(() => checkTrainable(m, name)).not.toThrow();
      expect(params(m)).toBeLessThan(params(full) / 4);
      const y = tf.tidy(() => (m.predict(tf.zeros([2, ...inputShape])) as tf.Tensor).shape);
      expect(y).toEqual([2, 7]);
    } finally {
      m.dispose();
      full.dispose();
    }
  });

  it.each(['resnet18', 'mobilenet-v2'])('%s trains on wasm: an SGD step lowers the loss on its batch, no tensor left behind', (name) => {
    const m = buildModel(name, { inputShape: [16, 16, 3], numClasses: 4, width: 0.25, seed: 2 });
    const x = tf.randomUniform([8, 16, 16, 3], 0, 1, 'float32', 3);
    const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 0, 1, 2, 3], 'int32'), 4);
    const optimizer = tf.train.sgd(1e-3);
    const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
    const loss = () => tf.losses.softmaxCrossEntropy(y, m.apply(x, { training: true }) as tf.Tensor) as tf.Scalar;
    try {
      const tensors = tf.memory().numTensors;
      const before = optimizer.minimize(loss, true, vars)!;
      const after = tf.tidy(loss);
      expect(after.dataSync()[0]).toBeLessThan(before.dataSync()[0]);
      tf.dispose([before, after]);
      expect(tf.memory().numTensors).toBe(tensors);
    } finally {
      tf.dispose([x, y]);
      optimizer.dispose();
      m.dispose();
    }
  });

  it('the same seed gives the same initial weights', () => {
    const a = buildModel('mobilenet-v2', { inputShape: [32, 32, 3], numClasses: 3, width: 0.35, seed: 9 });
    const b = buildModel('mobilenet-v2', { inputShape: [32, 32, 3], numClasses: 3, width: 0.35, seed: 9 });
    const wa = a.getWeights(), wb = b.getWeights();
    expect(wa.every((w, i) => tf.tidy(() => w.equal(wb[i]).all().dataSync()[0] === 1))).toBe(true);
    a.dispose();
    b.dispose();
  });

  it('rejects a non-positive width', () => {
    expect(() => buildModel('resnet18', { inputShape: [32, 32, 3], numClasses: 10, width: 0 })).toThrow(/width is expected to be a positive number, but got 0/);
  });
});
